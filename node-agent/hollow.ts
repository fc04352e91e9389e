// Hollow nodes: many agents in one process, each with its own FakeRuntime, data folder, HTTP client, endpoint
// and Node, so that the control plane can be tested at fleet scale on one machine. Each node is the real agent
// loop; only the containers are pretend. Nodes are named PREFIX-0..N-1 and can be stopped and started alone
// (stop(name) is what a node failure looks like to the servers: heartbeats and watches end, pods stay).
// `flotilla agent --simulate N` applies the control file DATA/hollow/control (see control()) on SIGUSR2.
//
// Hollow nodes only, for tests and benchmarks that need workloads to misbehave on purpose:
// - images named by a convention exit by themselves (scriptedBehaviour below: crash:MS, finish:MS, flaky:N-MS);
// - pods annotated flotilla.io/simulated-cpu / flotilla.io/simulated-memory report that usage (node-agent/usage.ts).
import type { ServerChoice } from '../client/client.js';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import type { NodeInventory } from '../hardware/inventory.js';
import { run, type AgentRunConfig } from './run.js';
import { FakeRuntime, type FakeBehaviour } from './runtime/fake.js';
import type { ContainerConfig } from './runtime/types.js';
import { GPU_RESOURCE_NVIDIA, LABEL_ARCH, LABEL_GPU_COUNT, LABEL_GPU_MEMORY, LABEL_GPU_MODEL, LABEL_GPU_VENDOR, LABEL_HOLLOW, LABEL_HOSTNAME, LABEL_OS } from '../api-types/index.js';

export interface HollowFleetOptions {
  /** A server URL, or a choice among several (client/client.ts ServerChoice). */
  server: string | ServerChoice;
  token: string;
  /** The cluster CA (PEM), when known (node-agent/run.ts AgentRunConfig.ca). */
  ca?: string;
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
  /** The architecture each node reports (kubernetes.io/arch, nodeInfo), and its images' platform (default amd64). */
  arch?: string;
  tuning?: AgentRunConfig['tuning'];
  log?: Logger;
}

export function hollowInventory(name: string, o: Pick<HollowFleetOptions, 'cpu' | 'memory' | 'maxPods' | 'gpus' | 'arch'> = {}): NodeInventory {
  const gpus = Array.from({ length: o.gpus ?? 0 }, (_, index) => ({
    index, uuid: `GPU-hollow-${name}-${index}`, vendor: 'nvidia', model: 'Hollow-GPU-24G', memory: '24Gi', health: 'Healthy' as const,
  }));
  const capacity: Record<string, string> = { cpu: o.cpu ?? '8', memory: o.memory ?? '32Gi', pods: String(o.maxPods ?? 110) };
  if (gpus.length > 0) capacity[GPU_RESOURCE_NVIDIA] = String(gpus.length);
  const labels: Record<string, string> = {
    [LABEL_ARCH]: o.arch ?? 'amd64', [LABEL_OS]: 'linux', [LABEL_HOSTNAME]: name.slice(0, 63),
    [LABEL_GPU_COUNT]: String(gpus.length), [LABEL_HOLLOW]: 'true',
  };
  if (gpus.length > 0) Object.assign(labels, { [LABEL_GPU_VENDOR]: 'nvidia', [LABEL_GPU_MODEL]: 'Hollow-GPU-24G', [LABEL_GPU_MEMORY]: '24Gi' });
  return {
    labels, capacity, allocatable: { ...capacity }, gpus, hardware: { cpuModel: 'hollow' },
    nodeInfo: { architecture: o.arch ?? 'amd64', operatingSystem: 'linux', osImage: 'Flotilla hollow node', kernelVersion: '0' },
  };
}

/**
 * What a container of `image` does on a hollow node, for the image names hollow nodes understand; undefined
 * for any other image (it runs until stopped). MS is milliseconds after the container started:
 *   crash:MS      exits with code 1 (a Deployment's pod goes into CrashLoopBackOff)
 *   finish:MS     exits with code 0 (a Job's pod succeeds)
 *   flaky:N-MS    the first N containers of this image the fleet starts exit 1, every later one exits 0
 *                 (`started` counts them per image across the fleet's nodes, so N failures in all)
 * A malformed name of these families is an error naming the image and the expected form.
 */
export function scriptedBehaviour(image: string, started: Map<string, number>): FakeBehaviour | undefined {
  const m = /^(crash|finish|flaky):(.*)$/.exec(image);
  if (!m) return undefined;
  const family = m[1] as 'crash' | 'finish' | 'flaky';
  const tag = m[2]!;
  if (family === 'flaky') {
    const f = /^(\d+)-(\d+)$/.exec(tag);
    if (!f) throw new Error(`hollow image "${image}": expected flaky:N-MS (N failing starts, then exits 0; MS milliseconds), e.g. flaky:1-300`);
    const n = started.get(image) ?? 0;
    started.set(image, n + 1);
    return { exitAfterMs: Number(f[2]), exitCode: n < Number(f[1]) ? 1 : 0 };
  }
  if (!/^\d+$/.test(tag)) throw new Error(`hollow image "${image}": expected ${family}:MS (exit ${family === 'crash' ? 1 : 0} after MS milliseconds), e.g. ${family}:500`);
  return { exitAfterMs: Number(tag), exitCode: family === 'crash' ? 1 : 0 };
}

/** A FakeRuntime whose containers follow scriptedBehaviour for the images it names. */
class HollowRuntime extends FakeRuntime {
  constructor(private readonly started: Map<string, number>, arch = 'amd64') {
    super({ platform: { os: 'linux', architecture: arch } });
  }

  override async createContainer(config: ContainerConfig): Promise<string> {
    const behaviour = scriptedBehaviour(config.image, this.started);
    // createContainer reads the behaviour synchronously, so concurrent creations each get their own.
    if (behaviour) this.setBehaviour(config.image, behaviour);
    return super.createContainer(config);
  }
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
    const started = new Map<string, number>();
    for (let i = 0; i < options.count; i++) this.nodes.set(`${options.prefix ?? 'hollow'}-${i}`, { runtime: new HollowRuntime(started, options.arch) });
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
        server: this.options.server, token: this.options.token, ...(this.options.ca ? { ca: this.options.ca } : {}), dataDir: join(this.options.dataDir, n), nodeName: n,
        listenHost: '127.0.0.1', listenPort: 0, advertiseAddress: '127.0.0.1',
        runtime: node.runtime, inventory: hollowInventory(n, this.options), findings: [],
        tuning: { ...this.options.tuning, simulatedUsage: true },
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
