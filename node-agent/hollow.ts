// Hollow nodes: many agents in one process, each with its own FakeRuntime, data folder, HTTP client, endpoint
// and Node, so that the control plane can be tested at fleet scale on one machine. Each node is the real agent
// loop; only the containers are pretend. Nodes are named PREFIX-0..N-1 and can be stopped and started alone
// (stop(name) is what a node failure looks like to the servers: heartbeats and watches end, pods stay).
// `flotilla agent --simulate N` applies the control file DATA/hollow/control (see control()) on SIGUSR2.
import type { ServerChoice } from '../client/client.js';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { NodeInventory } from '../hardware/inventory.js';
import { run, type AgentRunConfig } from './run.js';
import { FakeRuntime } from './runtime/fake.js';

export interface HollowFleetOptions {
  /** A server URL, or a choice among several (client/client.ts ServerChoice). */
  server: string | ServerChoice;
  token: string;
  /** Each node keeps its cache under DATA/NAME. */
  dataDir: string;
  count: number;
  prefix?: string;
  /** Per node (defaults 8 cores, 32Gi, 110 pods). */
  cpu?: string;
  memory?: string;
  maxPods?: number;
  /** Fake NVIDIA GPUs per node (default 0), each 24Gi. */
  gpus?: number;
  tuning?: AgentRunConfig['tuning'];
  log?: Logger;
}

export function hollowInventory(name: string, o: Pick<HollowFleetOptions, 'cpu' | 'memory' | 'maxPods' | 'gpus'> = {}): NodeInventory {
  const gpus = Array.from({ length: o.gpus ?? 0 }, (_, index) => ({
    index, uuid: `GPU-hollow-${name}-${index}`, vendor: 'nvidia', model: 'Hollow-GPU-24G', memory: '24Gi', health: 'Healthy' as const,
  }));
  const capacity: Record<string, string> = { cpu: o.cpu ?? '8', memory: o.memory ?? '32Gi', pods: String(o.maxPods ?? 110) };
  if (gpus.length > 0) capacity['nvidia.com/gpu'] = String(gpus.length);
  const labels: Record<string, string> = {
    'kubernetes.io/arch': 'amd64', 'kubernetes.io/os': 'linux', 'kubernetes.io/hostname': name.slice(0, 63),
    'flotilla.io/gpu.count': String(gpus.length), 'flotilla.io/hollow': 'true',
  };
  if (gpus.length > 0) Object.assign(labels, { 'flotilla.io/gpu.vendor': 'nvidia', 'flotilla.io/gpu.model': 'Hollow-GPU-24G', 'flotilla.io/gpu.memory': '24Gi' });
  return {
    labels, capacity, allocatable: { ...capacity }, gpus, hardware: { cpuModel: 'hollow' },
    nodeInfo: { architecture: 'amd64', operatingSystem: 'linux', osImage: 'Flotilla hollow node', kernelVersion: '0' },
  };
}

interface HollowNode {
  runtime: FakeRuntime;
  stop?: AbortController;
  done?: Promise<void>;
}

export class HollowFleet {
  private readonly nodes = new Map<string, HollowNode>();
  private readonly log: Logger;

  constructor(private readonly options: HollowFleetOptions) {
    if (!Number.isInteger(options.count) || options.count < 1) throw new Error(`hollow node count must be a positive integer, got ${options.count}`);
    this.log = options.log ?? pino({ level: 'silent' });
    for (let i = 0; i < options.count; i++) this.nodes.set(`${options.prefix ?? 'hollow'}-${i}`, { runtime: new FakeRuntime() });
  }

  names(): string[] {
    return [...this.nodes.keys()];
  }

  /** The node's containers, for tests that look behind the agent. */
  runtime(name: string): FakeRuntime {
    return this.node(name).runtime;
  }

  running(name: string): boolean {
    return this.node(name).stop !== undefined;
  }

  /** Starts the named node's agent (all nodes when none named); a running node is left alone. */
  start(name?: string): void {
    for (const n of name === undefined ? this.names() : [name]) {
      const node = this.node(n);
      if (node.stop) continue;
      const stop = new AbortController();
      node.stop = stop;
      node.done = run(stop.signal, {
        server: this.options.server, token: this.options.token, dataDir: join(this.options.dataDir, n), nodeName: n,
        listenHost: '127.0.0.1', listenPort: 0, advertiseAddress: '127.0.0.1',
        runtime: node.runtime, inventory: hollowInventory(n, this.options), findings: [],
        ...(this.options.tuning ? { tuning: this.options.tuning } : {}),
        log: this.log.child({ node: n }),
      }).catch((err: unknown) => this.log.error({ err, node: n }, 'hollow node stopped with an error'));
    }
  }

  /** Stops the named node's agent as a crash would look from outside: its pretend containers keep running. */
  async stop(name: string): Promise<void> {
    const node = this.node(name);
    node.stop?.abort();
    await node.done;
    delete node.stop;
    delete node.done;
  }

  /**
   * Applies control commands, one per line: "stop NAME" or "start NAME" (blank lines and # comments skipped).
   * All lines are checked before any is applied; a bad one is an error naming its line.
   */
  async control(text: string): Promise<void> {
    const steps: Array<{ verb: 'stop' | 'start'; name: string }> = [];
    text.split('\n').forEach((raw, i) => {
      const line = raw.replace(/#.*/, '').trim();
      if (line === '') return;
      const m = /^(stop|start)\s+(\S+)$/.exec(line);
      if (!m) throw new Error(`hollow control line ${i + 1}: "${raw}" is not "stop NAME" or "start NAME"`);
      this.node(m[2]!);
      steps.push({ verb: m[1] as 'stop' | 'start', name: m[2]! });
    });
    for (const s of steps) {
      if (s.verb === 'stop') await this.stop(s.name);
      else this.start(s.name);
    }
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.names().map((n) => this.stop(n)));
  }

  private node(name: string): HollowNode {
    const node = this.nodes.get(name);
    if (!node) throw new Error(`no hollow node "${name}" (nodes: ${this.options.prefix ?? 'hollow'}-0..${this.options.count - 1})`);
    return node;
  }
}
