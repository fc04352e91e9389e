// A simulated cluster for controller suites: a temp SQLite store behind ObjectService, a fake clock, the
// leader's controllers, a test binder (every unbound pod round-robin over Ready, schedulable, untainted nodes)
// and a test "kubelet" (bound pods of live nodes become Running+Ready, or finish as the suite decides).
import { LB_SPEAKER_LEASE_NAMESPACE, resourceByCliName } from '../../api-types/index.js';
import type { Node, Pod, ResourceInfo } from '../../api-types/index.js';
import { ObjectService } from '../../server/objects/service.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import { StoreError } from '../../server/store/types.js';
import type { StoredObject } from '../../server/store/types.js';
import { ControllerManager, leaderControllers } from '../../server/controllers/manager.js';
import type { ControllerDeps, ControllerSettings } from '../../server/controllers/manager.js';
import { InMemoryMetrics } from '../../server/controllers/pod-metrics.js';
import { NodeHeartbeats } from '../../server/cluster/node-heartbeats.js';
import { PodsByOwner } from '../../server/controllers/cluster-objects.js';

export const R = (name: string): ResourceInfo => {
  const r = resourceByCliName(name);
  if (!r) throw new Error(`no resource ${name}`);
  return r;
};

export class FakeClock {
  constructor(public ms = Date.parse('2026-01-01T00:00:00Z')) {}
  now = (): number => this.ms;
  advance(ms: number): void {
    this.ms += ms;
  }
}

export interface SimOptions {
  settings?: Partial<ControllerSettings>;
  /** What a running pod does when the kubelet looks at it: stay running (undefined) or finish. */
  finish?: (pod: Pod) => 'Succeeded' | 'Failed' | undefined;
  /** Pods the kubelet leaves Pending (an image that cannot be pulled, say). */
  hold?: (pod: Pod) => boolean;
}

export class ClusterSim {
  readonly clock = new FakeClock();
  readonly store = new SqliteStore({ path: ':memory:' });
  readonly objects = new ObjectService(this.store, new LocalProposer(this.store), () => new Date(this.clock.now()));
  /** The server's in-memory leases, on the sim clock. */
  readonly heartbeats = new NodeHeartbeats(this.clock.now);
  /** The LoadBalancer speaker leases, on the sim clock: suites renew them (nothing does by itself). */
  readonly lbSpeakers = new NodeHeartbeats(this.clock.now, LB_SPEAKER_LEASE_NAMESPACE);
  /** Nodes with an agent (addNode): they heartbeat at every step unless down. */
  readonly agents = new Set<string>();
  /** Nodes whose agent is down: no heartbeats, and the kubelet ignores their pods. */
  readonly down = new Set<string>();
  readonly metrics = new InMemoryMetrics(this.clock.now);
  /** The current leader's controllers and what they are given: a new leader (newLeader) gets new ones. */
  deps: ControllerDeps;
  manager: ControllerManager;
  #abort = new AbortController();
  #running: Promise<void> | undefined;
  #next = 0;

  constructor(readonly options: SimOptions = {}) {
    this.deps = this.#leaderDeps();
    this.manager = this.#leaderManager();
  }

  #leaderDeps(): ControllerDeps {
    return {
      objects: this.objects,
      heartbeats: this.heartbeats,
      lbSpeakers: this.lbSpeakers,
      pods: new PodsByOwner(this.objects),
      now: this.clock.now,
      settings: this.options.settings ?? {},
      metrics: this.metrics,
    };
  }

  #leaderManager(): ControllerManager {
    return new ControllerManager(this.deps, leaderControllers(this.deps), { onGiveUp: (c, k, err) => { throw new Error(`${c} gave up on ${k}: ${String(err)}`); } });
  }

  async start(): Promise<this> {
    await this.objects.create(R('namespaces'), undefined, { metadata: { name: 'default' } });
    this.#running = this.manager.run(this.#abort.signal);
    return this;
  }

  /**
   * The leader is lost: its controllers stop at once (a reconcile under way ends, nothing of theirs starts again)
   * and none run until newLeader(). Resolves once they have stopped; steps meanwhile change nothing but time,
   * pods and nodes.
   */
  loseLeader(): Promise<void> {
    const running = this.#running;
    const pods = this.deps.pods;
    this.#running = undefined;
    this.#abort.abort();
    return (running ?? Promise.resolve()).then(() => pods.close());
  }

  /** Another member takes over: fresh controllers, with nothing in memory from the last term, over the same state and clock. */
  newLeader(): void {
    if (this.#running) throw new Error('the sim has a leader; loseLeader() first');
    this.#abort = new AbortController();
    this.deps = this.#leaderDeps();
    this.manager = this.#leaderManager();
    this.#running = this.manager.run(this.#abort.signal);
  }

  async stop(): Promise<void> {
    await this.loseLeader();
    this.store.close();
  }

  async addNode(name: string, labels: Record<string, string> = {}): Promise<void> {
    await this.objects.create(R('nodes'), undefined, {
      metadata: { name, labels: { 'kubernetes.io/hostname': name, ...labels } },
      spec: {},
    });
    this.agents.add(name);
    this.heartbeats.renew(name, name, 40);
    await this.objects.patch(R('nodes'), undefined, name, { status: { conditions: [{ type: 'Ready', status: 'True', reason: 'KubeletReady', lastTransitionTime: new Date(this.clock.now()).toISOString() }] } }, 'status');
  }

  pods(namespace = 'default'): Pod[] {
    return this.objects.list(R('pods'), namespace).items as unknown as Pod[];
  }

  get(resource: string, name: string, namespace: string | undefined = 'default'): StoredObject | undefined {
    const r = R(resource);
    return this.objects.get(r, r.namespaced ? namespace : undefined, name);
  }

  /** Binds every unbound pod round-robin over nodes that are Ready, schedulable and not tainted NoSchedule/NoExecute. */
  async bind(): Promise<void> {
    const nodes = (this.objects.list(R('nodes')).items as unknown as Node[]).filter((n) =>
      n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') && !n.spec?.unschedulable
      && !(n.spec?.taints ?? []).some((t) => t.effect !== 'PreferNoSchedule'));
    if (nodes.length === 0) return;
    for (const p of this.pods()) {
      if (p.spec.nodeName || p.metadata.deletionTimestamp) continue;
      const node = nodes[this.#next++ % nodes.length]!;
      await this.objects.replace(R('pods'), 'default', p.metadata.name ?? '', { ...p, spec: { ...p.spec, nodeName: node.metadata.name } });
    }
  }

  /**
   * Bound pods of every namespace on live nodes: Pending -> Running+Ready; Running -> whatever options.finish says; Terminating ->
   * removed (an agent stopped its containers at once). A Running pod the server holds as not Ready (its node
   * was unreachable) is reported Running+Ready again, as an agent reports the status it sees whenever the
   * server's copy differs from it.
   */
  async kubelet(): Promise<void> {
    const at = new Date(this.clock.now()).toISOString();
    for (const p of this.objects.list(R('pods')).items as unknown as Pod[]) {
      const node = p.spec.nodeName;
      if (!node || this.down.has(node)) continue;
      if (p.metadata.deletionTimestamp) {
        await this.objects.delete(R('pods'), p.metadata.namespace, p.metadata.name ?? '', { gracePeriodSeconds: 0, preconditions: { uid: p.metadata.uid ?? '' } })
          .catch((err: unknown) => { if (!(err instanceof StoreError && [404, 409].includes(err.failure.code))) throw err; });
        continue;
      }
      if (p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed' || this.options.hold?.(p)) continue;
      if (p.status?.phase !== 'Running' || !p.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) {
        await this.setPhase(p, 'Running', at);
        continue;
      }
      const end = this.options.finish?.(p);
      if (end) await this.setPhase(p, end, at);
    }
  }

  async setPhase(p: Pod, phase: 'Running' | 'Succeeded' | 'Failed', at: string): Promise<void> {
    const running = phase === 'Running';
    await this.objects.replaceStatus(R('pods'), p.metadata.namespace, p.metadata.name ?? '', {
      phase,
      conditions: [{ type: 'Ready', status: running ? 'True' : 'False', lastTransitionTime: at }],
      containerStatuses: p.spec.containers.map((c) => ({
        name: c.name, image: c.image, ready: running, restartCount: 0,
        state: running ? { running: { startedAt: at } } : { terminated: { exitCode: phase === 'Succeeded' ? 0 : 1, finishedAt: at, reason: phase === 'Succeeded' ? 'Completed' : 'Error' } },
      })),
    });
  }

  /** Renews the heartbeat of every node that is not down. */
  heartbeat(): void {
    for (const n of this.agents) if (!this.down.has(n)) this.heartbeats.renew(n, n, 40);
  }

  /** One round: time passes, live nodes heartbeat, the binder and the kubelet act, the controllers settle. */
  async step(ms = 1000, observe?: () => void): Promise<void> {
    this.clock.advance(ms);
    this.heartbeat();
    await this.#settle();
    observe?.();
    await this.bind();
    await this.#settle();
    observe?.();
    await this.kubelet();
    await this.#settle();
    observe?.();
  }

  /** The leader's controllers settle; without a leader nothing reconciles. */
  async #settle(): Promise<void> {
    if (this.#running) await this.manager.settle();
  }

  /** Steps until `done` holds; fails after `maxSteps`. Returns the number of steps taken. */
  async until(done: () => boolean, maxSteps = 200, ms = 1000, observe?: () => void): Promise<number> {
    for (let i = 0; i < maxSteps; i++) {
      if (done()) return i;
      await this.step(ms, observe);
    }
    if (done()) return maxSteps;
    throw new Error(`condition not reached within ${maxSteps} steps`);
  }
}

export function readyPods(pods: Pod[], filter: (p: Pod) => boolean = () => true): number {
  return pods.filter((p) => filter(p) && !p.metadata.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
}

export function webDeployment(name: string, replicas: number, image: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    metadata: { name },
    spec: {
      replicas,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'web', image, resources: { requests: { cpu: '100m', memory: '64Mi' } } }] } },
      ...extra,
    },
  };
}

/**
 * The fleet the node-failure suites start from: nodes n1..n3, the Deployment `web` (6 replicas) and the
 * DaemonSet `agent`, all 9 pods Ready.
 */
export async function startWebAndAgentOnThreeNodes(sim: ClusterSim): Promise<void> {
  for (const n of ['n1', 'n2', 'n3']) await sim.addNode(n);
  await sim.objects.create(R('deployments'), 'default', webDeployment('web', 6, 'nginx:1.25'));
  await sim.objects.create(R('daemonsets'), 'default', {
    metadata: { name: 'agent' },
    spec: { selector: { matchLabels: { app: 'agent' } }, template: { metadata: { labels: { app: 'agent' } }, spec: { containers: [{ name: 'a', image: 'busybox:1.36' }] } } },
  });
  await sim.until(() => readyPods(sim.pods()) === 9);
}
