// A real `flotilla server` process for agent suites, with the few API calls the suites make.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ApiClient, ApiClientError } from '../../client/client.js';
import { hollowInventory } from '../../node-agent/hollow.js';
import { run, type AgentRunConfig, type AgentRunInfo } from '../../node-agent/run.js';
import type { ContainerRuntime } from '../../node-agent/runtime/types.js';
import { ServerProcess } from '../support/server-process.js';
import { eventually } from '../support/eventually.js';

export interface PodView {
  metadata: { name: string; uid: string };
  spec: { nodeName?: string };
  status?: { phase?: string; conditions?: Array<{ type: string; status: string }>; containerStatuses?: Array<{ containerID?: string; restartCount: number }> };
}

/** Agent loop settings quick enough for tests: heartbeats, status reports, retries and resyncs in fractions of a second. */
export const FAST_AGENT_TUNING: NonNullable<AgentRunConfig['tuning']> = {
  heartbeatSeconds: 0.3, nodeStatusSeconds: 0.6, retrySeconds: 0.1, retryMaxSeconds: 0.5, podWorkers: { resyncMs: 300 },
};

export interface TestAgent {
  /** Resolves once the agent has registered; rejects when the agent ended first. */
  ready: Promise<void>;
  /** Ends the agent (its containers keep running, as after any agent stop). */
  stop: () => Promise<void>;
  /** What the agent reported when ready (its cluster DNS among others); resolves with `ready`. */
  info: Promise<AgentRunInfo>;
}

export class RealServer {
  dir = '';
  server!: ServerProcess;
  client!: ApiClient;

  /** Starts the server; later calls start the same one again, on the same port (after kill()). */
  async start(): Promise<void> {
    this.dir ||= mkdtempSync(join(tmpdir(), 'flotilla-agent-srv-'));
    this.server ??= new ServerProcess(join(this.dir, 'server'), '127.0.0.1');
    await this.server.start();
    this.client ??= new ApiClient(this.server.url, this.server.token, { tls: this.server.tls, timeoutMs: 10_000 });
  }

  /** SIGKILL: the harshest way for the control plane to vanish. */
  async kill(): Promise<void> {
    await this.server.kill('SIGKILL');
  }

  async close(): Promise<void> {
    this.client?.close();
    await this.server?.kill('SIGTERM');
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  /**
   * An agent for node `nodeName` on `runtime`, in this process, against this server: a hollow inventory
   * (4 CPUs, 8 GiB unless `resources` says), data in <dir>/agent and the admin token to join with unless
   * `dataDir` and `token` say, FAST_AGENT_TUNING unless `tuning` says.
   */
  startAgent(nodeName: string, runtime: ContainerRuntime, opts: {
    resources?: Parameters<typeof hollowInventory>[1]; tuning?: AgentRunConfig['tuning']; advertiseAddress?: string; dataDir?: string; token?: string; dns?: AgentRunConfig['dns'];
    ingress?: AgentRunConfig['ingress'];
  } = {}): TestAgent {
    const ac = new AbortController();
    let registered!: (info: AgentRunInfo) => void;
    const started = new Promise<AgentRunInfo>((resolve) => { registered = resolve; });
    const done = run(ac.signal, {
      server: this.server.url, token: opts.token ?? this.server.token, ca: this.server.ca, dataDir: opts.dataDir ?? join(this.dir, 'agent'), nodeName,
      listenHost: '127.0.0.1', listenPort: 0, ...(opts.advertiseAddress ? { advertiseAddress: opts.advertiseAddress } : {}), runtime,
      inventory: hollowInventory(nodeName, opts.resources ?? { cpu: '4', memory: '8Gi' }), findings: [],
      tuning: opts.tuning ?? FAST_AGENT_TUNING, log: pino({ level: 'silent' }), ...(opts.dns !== undefined ? { dns: opts.dns } : {}),
      ...(opts.ingress ? { ingress: opts.ingress } : {}),
    }, (info) => registered(info));
    const info = Promise.race([started, done.then((): never => { throw new Error(`the agent of ${nodeName} ended before it was ready`); })]);
    // A test that never awaits `ready` must not see an unhandled rejection when the agent ends at stop().
    const ready = info.then(() => undefined);
    info.catch(() => {});
    ready.catch(() => {});
    return { ready, info, stop: async () => { ac.abort(); await done; } };
  }

  createPod(pod: Record<string, unknown>, namespace = 'default'): Promise<PodView> {
    return this.client.request<PodView>('POST', `/api/v1/namespaces/${namespace}/pods`, pod);
  }

  async getPod(name: string, namespace = 'default'): Promise<PodView | undefined> {
    try {
      return await this.client.request<PodView>('GET', `/api/v1/namespaces/${namespace}/pods/${name}`);
    } catch (err) {
      if (err instanceof ApiClientError && err.code === 404) return undefined;
      throw err;
    }
  }

  deletePod(name: string, namespace = 'default'): Promise<unknown> {
    return this.client.request('DELETE', `/api/v1/namespaces/${namespace}/pods/${name}`);
  }

  /** Waits until the pod is Running with condition Ready=True on the server. */
  podReady(name: string, limitMs = 20_000): Promise<PodView> {
    return eventually(`pod ${name} Running and Ready on the server`, async () => {
      const p = await this.getPod(name);
      return p?.status?.phase === 'Running' && p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? p : undefined;
    }, limitMs);
  }
}

export function appPod(name: string, nodeName: string, image: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name },
    spec: { nodeName, terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image, ...extra }] },
  };
}
