// End-to-end harness: a real `flotilla server` process and real `flotilla agent --simulate N` processes (hollow
// nodes), all spawned from the same build as the suite, on loopback ports, in a fresh temporary folder. The
// suites talk to the server through the HTTP client like any user, and stop hollow nodes the way an operator
// would: the control file plus SIGUSR2, or SIGKILL of a whole agent process.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ApiClient, ApiClientError, pinnedFetch, type ClientTls } from '../../client/client.js';
import { caHash } from '../../client/pki.js';
import { formatClusterToken } from '../../client/tokens.js';
import type { ControllerSettings } from '../../server/controllers/controller.js';
import { run as runServer } from '../../server/run.js';
import { StopWaiting, eventually } from '../support/eventually.js';
import { listeningUrl, ownChild, stopChild } from '../support/server-process.js';

export const cliEntry = new URL('./cli-entry.js', import.meta.url).pathname;

/** One spawned `flotilla ...` process with its output kept for failure messages. */
export class FlotillaProcess {
  readonly child: ChildProcess;
  output = '';

  constructor(args: string[], env: Record<string, string> = {}) {
    this.child = ownChild(spawn(process.execPath, [cliEntry, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FLOTILLA_LOG_LEVEL: 'warn', ...env } }));
    this.child.stdout!.on('data', (d) => { this.output = (this.output + d).slice(-20_000); });
    this.child.stderr!.on('data', (d) => { this.output = (this.output + d).slice(-20_000); });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends the signal and resolves once the process is gone. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    return stopChild(this.child, signal);
  }
}

/** `flotilla agent --simulate N --name PREFIX`: nodes PREFIX-0..N-1. */
export class HollowAgent {
  process: FlotillaProcess;

  constructor(readonly cluster: E2eCluster, readonly prefix: string, readonly count: number) {
    this.process = this.#spawn();
  }

  get dataDir(): string {
    return join(this.cluster.dir, `agent-${this.prefix}`);
  }

  names(): string[] {
    return Array.from({ length: this.count }, (_, i) => `${this.prefix}-${i}`);
  }

  /** Stops or starts single hollow nodes ("stop NAME" / "start NAME" lines) through the control file and SIGUSR2. */
  control(lines: string[]): void {
    writeFileSync(join(this.dataDir, 'hollow', 'control'), `${lines.join('\n')}\n`);
    this.process.child.kill('SIGUSR2');
  }

  /** A new process on the same data folder (the pod caches survive; the pretend containers do not). */
  restart(): void {
    if (this.process.alive) throw new Error(`agent ${this.prefix} is still running; kill it first`);
    this.process = this.#spawn();
  }

  #spawn(): FlotillaProcess {
    // The admin token with the CA hash in front: the agent checks the CA at /cacerts before it sends the token.
    return new FlotillaProcess(['agent', '--server', this.cluster.url, '--token', formatClusterToken(caHash(this.cluster.tls.ca), this.cluster.token), '--data', this.dataDir,
      '--simulate', String(this.count), '--name', this.prefix, '--listen', '127.0.0.1:0']);
  }
}

export interface PodView {
  metadata: { name: string; uid: string; labels?: Record<string, string>; annotations?: Record<string, string>; creationTimestamp?: string; deletionTimestamp?: string; resourceVersion?: string };
  spec: { nodeName?: string; containers: Array<{ name: string; image: string }> };
  status?: {
    phase?: string;
    conditions?: Array<{ type: string; status: string }>;
    containerStatuses?: Array<{ restartCount: number; state?: { terminated?: { exitCode: number; finishedAt?: string } }; lastState?: { terminated?: { exitCode: number; reason?: string; finishedAt?: string } } }>;
  };
}

export function isReady(p: PodView): boolean {
  return !p.metadata.deletionTimestamp && p.status?.phase === 'Running' && (p.status.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

export interface ClusterOptions {
  /** Server flags (--node-grace-period ...). */
  serverArgs?: string[];
  /**
   * Runs the server in this process (server/run.ts run()) with these controller settings instead of spawning
   * one: for timings the command line does not offer (the autoscaler's sync period). Agents stay processes.
   */
  inProcessControllers?: Partial<ControllerSettings>;
}

/** A server (a process, or in this process) in a temporary folder and the agents the suite starts against it. */
export class E2eCluster {
  dir = '';
  readonly agents: HollowAgent[] = [];
  server?: FlotillaProcess;
  #inProcess?: { stop: AbortController; done: Promise<void> };
  url = '';
  token = '';
  client!: ApiClient;

  constructor(readonly options: ClusterOptions = {}) {}

  /** The cluster CA file of the server (there once it started). */
  get caPath(): string {
    return join(this.dir, 'server', 'pki', 'ca.crt');
  }

  get tls(): ClientTls {
    return { ca: readFileSync(this.caPath, 'utf8') };
  }

  /** Starts the server on a port it picks itself (port 0) and learns the URL from it. */
  async start(): Promise<this> {
    this.dir = mkdtempSync(join(tmpdir(), 'flotilla-e2e-'));
    const data = join(this.dir, 'server');
    let failed: unknown;
    if (this.options.inProcessControllers) {
      const stop = new AbortController();
      const done = runServer(stop.signal, { dataDir: data, host: '127.0.0.1', port: 0, controllers: this.options.inProcessControllers }, (info) => { this.url = info.url; });
      done.catch((err: unknown) => { failed = err; });
      this.#inProcess = { stop, done };
    } else {
      this.server = new FlotillaProcess(['server', '--data', data, '--listen', '127.0.0.1:0', ...(this.options.serverArgs ?? [])]);
    }
    await eventually('server ready', async () => {
      if (failed !== undefined) throw new StopWaiting(`the server failed: ${failed instanceof Error ? failed.message : String(failed)}`);
      if (this.server) {
        if (!this.server.alive) throw new StopWaiting(`flotilla server exited: ${this.server.output}`);
        this.url ||= listeningUrl(this.server.output) ?? '';
      }
      if (this.url === '') return false;
      const probe = pinnedFetch(this.tls, 1);
      try {
        return (await probe(`${this.url}/readyz`, { signal: AbortSignal.timeout(5_000) })).ok;
      } finally {
        probe.close();
      }
    }, { limitMs: 60_000, everyMs: 100 });
    this.token = readFileSync(join(data, 'admin-token'), 'utf8').trim();
    this.client = new ApiClient(this.url, this.token, { tls: this.tls, timeoutMs: 15_000 });
    return this;
  }

  /** Starts `flotilla agent --simulate count --name prefix` and waits until all its nodes are Ready. */
  async addAgent(prefix: string, count: number): Promise<HollowAgent> {
    const agent = new HollowAgent(this, prefix, count);
    this.agents.push(agent);
    await this.nodesReady(agent.names(), 60_000).catch((err: Error) => { throw new Error(`${err.message}; agent output: ${agent.process.output}`); });
    return agent;
  }

  async nodesReady(names: string[], limitMs = 30_000): Promise<void> {
    await eventually(`nodes ${names.join(', ')} Ready`, async () => {
      const list = await this.client.request<{ items: Array<{ metadata: { name: string }; status?: { conditions?: Array<{ type: string; status: string }> } }> }>('GET', '/api/v1/nodes');
      const ready = new Set(list.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).map((n) => n.metadata.name));
      return names.every((n) => ready.has(n)) ? true : undefined;
    }, limitMs);
  }

  async pods(selector: string, namespace = 'default'): Promise<PodView[]> {
    const list = await this.client.request<{ items: PodView[] }>('GET', `/api/v1/namespaces/${namespace}/pods?labelSelector=${encodeURIComponent(selector)}`);
    return list.items;
  }

  async get<T>(path: string): Promise<T | undefined> {
    try {
      return await this.client.request<T>('GET', path);
    } catch (err) {
      if (err instanceof ApiClientError && err.code === 404) return undefined;
      throw err;
    }
  }

  /** Runs the CLI against this cluster; resolves with its exit code and output. */
  cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = ownChild(spawn(process.execPath, [cliEntry, ...args, '--server', this.url, '--token', this.token, '--ca', this.caPath], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, HOME: this.dir } }));
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => { stdout += d; });
      child.stderr.on('data', (d) => { stderr += d; });
      child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    });
  }

  async stop(): Promise<void> {
    this.client?.close();
    await Promise.all(this.agents.map((a) => a.process.kill('SIGKILL')));
    await this.server?.kill('SIGTERM');
    this.#inProcess?.stop.abort();
    await this.#inProcess?.done;
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }
}

/**
 * Watches pods matching `selector` from now on and keeps, over every event, the lowest count of ready pods and
 * the highest count of live (not terminating) ones: floors and ceilings that held throughout, not just at the
 * moments a suite polled.
 */
export class PodCountWatch {
  readonly #pods = new Map<string, PodView>();
  readonly #stop = new AbortController();
  #done: Promise<void> | undefined;
  lowestReady = Infinity;
  highestLive = 0;

  constructor(private readonly cluster: E2eCluster, private readonly selector: string, private readonly namespace = 'default') {}

  async start(): Promise<void> {
    const list = await this.cluster.client.request<{ metadata: { resourceVersion: string }; items: PodView[] }>('GET', `/api/v1/namespaces/${this.namespace}/pods?labelSelector=${encodeURIComponent(this.selector)}`);
    for (const p of list.items) this.#pods.set(p.metadata.name, p);
    this.#observe();
    const path = `/api/v1/namespaces/${this.namespace}/pods?watch=true&resourceVersion=${list.metadata.resourceVersion}&labelSelector=${encodeURIComponent(this.selector)}`;
    this.#done = this.cluster.client.watch<PodView>(path, (e) => {
      if (e.type === 'DELETED') this.#pods.delete(e.object.metadata.name);
      else if (e.type === 'ADDED' || e.type === 'MODIFIED') this.#pods.set(e.object.metadata.name, e.object);
      else return;
      this.#observe();
    }, this.#stop.signal).catch((err: unknown) => { if (!this.#stop.signal.aborted) throw err; });
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await this.#done;
  }

  #observe(): void {
    const pods = [...this.#pods.values()];
    this.lowestReady = Math.min(this.lowestReady, pods.filter(isReady).length);
    this.highestLive = Math.max(this.highestLive, pods.filter((p) => !p.metadata.deletionTimestamp).length);
  }
}

interface MetricsList { items: Array<{ metadata: { name: string; namespace?: string }; timestamp: string }> }

/**
 * The pods a node said it runs in its usage report (node-agent/usage.ts), waiting for the `nth` report the
 * server received after `afterMs`: reports name only pods with running containers, so this is what the agent
 * really runs, seen from outside its process. A node and its pods share one report's timestamp.
 */
export async function podsReportedBy(cluster: E2eCluster, node: string, afterMs: number, nth = 1, limitMs = 40_000): Promise<string[]> {
  const seen = new Set<string>();
  const stamp = await eventually(`report ${nth} of node ${node} after ${new Date(afterMs).toISOString()}`, async () => {
    const nodes = await cluster.client.request<MetricsList>('GET', '/apis/metrics.k8s.io/v1beta1/nodes');
    const t = nodes.items.find((n) => n.metadata.name === node)?.timestamp;
    if (t && Date.parse(t) > afterMs) seen.add(t);
    return seen.size >= nth ? t : undefined;
  }, limitMs);
  const pods = await cluster.client.request<MetricsList>('GET', '/apis/metrics.k8s.io/v1beta1/pods');
  return pods.items.filter((p) => p.timestamp === stamp).map((p) => p.metadata.name).sort();
}

export interface DeploymentExtras {
  annotations?: Record<string, string>;
  strategy?: Record<string, unknown>;
  /** Default 500m CPU and 64Mi. */
  requests?: { cpu: string; memory: string };
  /** Default spread (even over the nodes); binpack fills nodes one after another. */
  placement?: 'spread' | 'binpack';
}

/** A Deployment of hollow pods with a grace period of 1 s. */
export function deployment(name: string, replicas: number, image: string, extra: DeploymentExtras = {}): Record<string, unknown> {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name },
    spec: {
      replicas, selector: { matchLabels: { app: name } },
      ...(extra.strategy ? { strategy: extra.strategy } : {}),
      template: {
        metadata: { labels: { app: name }, annotations: { 'flotilla.io/placement': extra.placement ?? 'spread', ...extra.annotations } },
        spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image, resources: { requests: extra.requests ?? { cpu: '500m', memory: '64Mi' } } }] },
      },
    },
  };
}
