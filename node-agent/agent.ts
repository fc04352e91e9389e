// The agent loop: start the pods of the local cache (so a node that reboots without its servers still runs its
// workloads), register the Node, renew the lease, list and watch the pods
// bound to it, hand them to the pod workers with their ConfigMaps and Secrets (re-read every pod resync period, so
// that mounted ConfigMap and Secret files follow changes in place, as in Kubernetes; environment variables keep
// the values their container started with), report pod status and usage
// (node-agent/usage.ts), keep the cache current, and fence StatefulSet pods while no server can be reached.
//
// Fencing contract (StatefulSet pods, ownerReferences kind StatefulSet): the control plane declares a silent
// node lost after the node grace period (15 s) and replaces its pods after the eviction delay (30 s). A
// StatefulSet ordinal must never run twice, so the agent stops such pods itself once it has reached no server
// for fenceAfterSeconds (default 45 = 15 + 30): by the time a replacement may start elsewhere, the original is
// down. On reconnect, pods still bound here start again; replaced ones are gone from the list and stay down.
// After a restart with no server, cached StatefulSet pods are not started (the agent cannot know how long it
// was away); containers of them that survived an agent restart keep running until the fence time passes.
import { PodEventSink } from './pod-events.js';
import pino, { type Logger } from 'pino';
import { ApiClientError, type NodeApi, type NodeEvent, type NodeObject } from './api-client.js';
import type { ConfigMap, Pod, PodStatus, Secret } from '../api-types/index.js';
import { podReferences } from '../api-types/index.js';
import type { PodInputs } from './pod-actions.js';
import { PodCache } from './pod-cache.js';
import { checkRegisteredNode, type NodeIdentity } from './identity.js';
import { PodWorkers, terminatePod, type PodWorkerSettings } from './pod-worker.js';
import { LABEL_POD_UID, ownerLabels, type ContainerRuntime } from './runtime/types.js';
import { UsageSampler, usageReportPath } from './usage.js';
import { ImageInventory } from './images/inventory.js';
import { claimVolumes, cleanUpLocalVolumes, withLocalPathDir, type ClaimReads } from './storage.js';

export interface AgentConfig {
  /** The cluster this agent belongs to (its id): with nodeName, what marks the containers it owns. */
  clusterId: string;
  nodeName: string;
  api: NodeApi;
  runtime: ContainerRuntime;
  dataDir: string;
  /** The Node object to register and report (inventory from hardware/); called again for each status report. */
  node: () => NodeObject | Promise<NodeObject>;
  /** This machine's key (node-agent/identity.ts): a registered Node of another machine's key stops the session. */
  nodeKey?: Pick<NodeIdentity, 'fingerprint'>;
  /** Posted once per agent start, after the first registration (preflight findings). */
  events?: NodeEvent[];
  hostIP?: string;
  /** Lease renewal period (default 5 s; the lease lasts four periods). */
  heartbeatSeconds?: number;
  /** Node status report period (default 60 s). */
  nodeStatusSeconds?: number;
  /** Node and pod usage report period (default 10 s; node-agent/usage.ts). */
  usageSeconds?: number;
  /** Hollow node: node usage is the sum of its pods, and pods may declare theirs (node-agent/usage.ts). */
  simulatedUsage?: boolean;
  /** First wait before reconnecting (default 1 s), doubled per failure up to retryMaxSeconds (default 30 s). */
  retrySeconds?: number;
  retryMaxSeconds?: number;
  /** StatefulSet pods stop after this long without reaching any server (default 45 s; see the fencing contract). */
  fenceAfterSeconds?: number;
  /** Pod worker tuning (sandbox image, back-off, resync). */
  podWorkers?: Partial<Omit<PodWorkerSettings, 'runtime' | 'nodeName' | 'dataDir' | 'onStatus'>>;
  log?: Logger;
  /** The clock of the decisions on time (fencing, last contact); default Date.now. */
  now?: () => number;
}

export function isStatefulSetPod(pod: Pod): boolean {
  return (pod.metadata.ownerReferences ?? []).some((o) => o.kind === 'StatefulSet');
}

/** Runs until the signal aborts. Containers keep running after it returns: stopping the agent is not deleting pods. */
export async function runAgent(signal: AbortSignal, config: AgentConfig): Promise<void> {
  await new Agent(config).run(signal);
}

/** Reads one ConfigMap or Secret; undefined when it does not exist. */
type ObjectReader = (kind: 'ConfigMap' | 'Secret', namespace: string, name: string) => Promise<ConfigMap | Secret | undefined>;

/**
 * One node's agent: its state (the pods bound to it, those fenced, when a server was last reached, the graceful
 * deletions under way) and its loops, each a method: registration with retry (run), lease renewal and node
 * status (heartbeats), list and watch of the pods (listAndWatch, apply), ConfigMap and Secret refresh
 * (refreshes), usage reports, status reports (StatusReporter) and fencing. Decisions on time read `now()`.
 */
export class Agent {
  private readonly log: Logger;
  private readonly now: () => number;
  private readonly cache: PodCache;
  /** The pods bound to this node, with their ConfigMaps and Secrets, by uid. */
  private readonly desired = new Map<string, PodInputs>();
  /** StatefulSet pods held stopped until a server confirms them again. */
  private readonly fenced = new Set<string>();
  /** Fenced pods from the cache whose containers may have outlived the last agent: the fence still stops them. */
  private readonly fenceDue = new Set<string>();
  /** The grace period of each pod whose graceful deletion this agent is carrying out. */
  private readonly terminating = new Map<string, number>();
  private lastContactMs: number;
  private readonly podEvents: PodEventSink;
  private readonly usage: UsageSampler;
  private readonly images: ImageInventory;
  /** os/architecture of the last Node object reported (what an image must be for to run here). */
  private platform = '';
  private reporter: StatusReporter | undefined;
  private workers: PodWorkers | undefined;

  constructor(private readonly config: AgentConfig) {
    if (config.usageSeconds !== undefined && !(config.usageSeconds > 0)) throw new Error(`usageSeconds must be a positive number of seconds, got ${config.usageSeconds}`);
    this.log = config.log ?? pino({ level: 'silent' });
    this.now = config.now ?? Date.now;
    this.lastContactMs = this.now();
    this.cache = new PodCache(config.dataDir);
    this.podEvents = new PodEventSink(config.api.client, config.nodeName, this.log);
    this.usage = new UsageSampler({
      runtime: config.runtime, clusterId: config.clusterId, nodeName: config.nodeName, simulated: config.simulatedUsage === true,
      pods: () => [...this.desired.values()].map((inputs) => inputs.pod),
    });
    this.images = new ImageInventory(config.runtime);
  }

  /** The Node object to register or report: config.node() with the image inventory's status fields. */
  private async nodeObject(): Promise<NodeObject> {
    const node = await this.config.node();
    const info = node.status?.nodeInfo as { operatingSystem?: string; architecture?: string } | undefined;
    if (info?.architecture) this.platform = `${info.operatingSystem ?? 'linux'}/${info.architecture}`;
    return { ...node, status: { ...node.status, ...this.images.status } };
  }

  /** Runs until the signal aborts. Containers keep running after it returns: stopping the agent is not deleting pods. */
  async run(signal: AbortSignal): Promise<void> {
    const { config, log } = this;
    const reporter = this.reporter = new StatusReporter(config.api, log, signal, () => this.contact());
    const workers = this.workers = new PodWorkers({
      ...config.podWorkers,
      runtime: config.runtime,
      clusterId: config.clusterId,
      nodeName: config.nodeName,
      dataDir: config.dataDir,
      log,
      ...(config.hostIP ? { hostIP: config.hostIP } : {}),
      onStatus: (inputs, status) => reporter.report(inputs.pod, status),
      onEvent: (inputs, event) => this.podEvents.record(inputs.pod, event),
      nodePlatform: () => this.platform,
    });
    await this.startCachedPods();
    const workersDone = workers.run(signal);
    const fenceDone = this.fencing(signal);
    let failures = 0;
    let eventsPosted = false;
    while (!signal.aborted) {
      try {
        await this.session(signal, !eventsPosted);
        eventsPosted = true;
      } catch (err) {
        if (signal.aborted) break;
        const waitMs = Math.min((config.retryMaxSeconds ?? 30) * 1000, (config.retrySeconds ?? 1) * 1000 * 2 ** Math.min(failures++, 16));
        log.warn({ err: (err as Error).message, retryMs: waitMs }, 'server unreachable or refused; pods keep running; retrying');
        await delay(waitMs, signal);
        continue;
      }
      failures = 0;
    }
    await Promise.all([workersDone, fenceDone]);
    await reporter.idle();
  }

  private contact(): void {
    this.lastContactMs = this.now();
  }

  private get podWorkers(): PodWorkers {
    if (!this.workers) throw new Error('the agent is not running');
    return this.workers;
  }

  /**
   * The pods of the local cache, so that a node that reboots without its servers still runs its workloads;
   * StatefulSet pods excepted (fenced: the agent cannot know how long it was away).
   */
  private async startCachedPods(): Promise<void> {
    const cached = await this.cache.load().catch((err: unknown) => { this.log.error({ err }, 'pod cache unreadable; starting empty'); return []; });
    for (const inputs of cached) {
      const uid = inputs.pod.metadata.uid;
      if (!uid) continue;
      this.desired.set(uid, inputs);
      if (isStatefulSetPod(inputs.pod)) {
        this.fenced.add(uid);
        this.fenceDue.add(uid);
      }
      else this.podWorkers.update(inputs);
    }
  }

  /**
   * One connection to the servers: register the Node (and check it is this machine's), post the start-up events
   * (once per agent start), then heartbeats, usage reports and reference refreshes beside the pod list and
   * watch, until the watch fails or the signal aborts. Rejects when a server cannot be reached.
   */
  private async session(signal: AbortSignal, postEvents: boolean): Promise<void> {
    const { config } = this;
    const session = new AbortController();
    const stopSession = () => session.abort();
    signal.addEventListener('abort', stopSession, { once: true });
    try {
      await this.refreshImages();
      const registered = await config.api.registerNode(withLocalPathDir(await this.nodeObject(), config.dataDir));
      if (config.nodeKey) checkRegisteredNode(registered, config.nodeKey);
      this.contact();
      await config.api.updateNodeStatus(await this.nodeObject());
      if (postEvents) for (const e of config.events ?? []) await config.api.nodeEvent(config.nodeName, registered.metadata.uid, e);
      const loops = [this.heartbeats(session.signal), this.usageReports(session.signal), this.refreshes(session.signal)];
      try {
        for (;;) {
          try {
            await this.listAndWatch(signal);
            break;
          } catch (err) {
            if (err instanceof ApiClientError && err.code === 410) continue; // history compacted: list again
            throw err;
          }
        }
      } finally {
        session.abort();
        await Promise.all(loops);
      }
    } finally {
      signal.removeEventListener('abort', stopSession);
    }
  }

  private async listAndWatch(signal: AbortSignal): Promise<void> {
    const { config, log } = this;
    const list = await config.api.listPods(config.nodeName);
    this.contact();
    const listed = new Set(list.items.map((p) => p.metadata.uid).filter((u): u is string => Boolean(u)));
    for (const uid of [...this.desired.keys()]) if (!listed.has(uid)) this.removeInBackground(uid);
    for (const pod of list.items) await this.apply(pod);
    // Containers of pods deleted while this agent was away or could not reach a server.
    const orphans = await this.podWorkers.removeOrphans();
    if (orphans.length) log.info({ count: orphans.length }, 'removed containers of pods this node no longer has');
    let resourceVersion = list.metadata.resourceVersion ?? '0';
    for (;;) {
      let chain = Promise.resolve();
      await config.api.watchPods(config.nodeName, resourceVersion, (e) => {
        this.contact();
        if (e.object.metadata?.resourceVersion) resourceVersion = e.object.metadata.resourceVersion;
        chain = chain.then(() => (e.type === 'DELETED' ? this.removeInBackground(e.object.metadata.uid ?? '') : e.type === 'BOOKMARK' ? undefined : this.apply(e.object)))
          .catch((err: unknown) => log.warn({ err, pod: e.object.metadata?.name }, 'applying a pod event failed'));
      }, signal);
      await chain;
      if (signal.aborted) return;
      // The stream ended: a server going away ends it too, so check that one is still there before watching again.
      await config.api.renewLease(config.nodeName, leaseSeconds(config));
      this.contact();
    }
  }

  private async apply(pod: Pod): Promise<void> {
    const uid = pod.metadata.uid;
    if (!uid || pod.spec.nodeName !== this.config.nodeName) return;
    if (pod.metadata.deletionTimestamp) return this.terminate(pod, uid);
    const inputs = await this.resolveInputs(pod);
    this.desired.set(uid, inputs);
    this.fenced.delete(uid);
    this.fenceDue.delete(uid);
    this.podWorkers.update(inputs);
    await this.saveCache();
  }

  private saveCache(): Promise<void> {
    return this.cache.save([...this.desired.values()]).catch((err: unknown) => this.log.error({ err }, 'pod cache write failed'));
  }

  private readonly claimReads: ClaimReads = {
    claim: (ns, name) => this.config.api.getPersistentVolumeClaim(ns, name),
    volume: (name) => this.config.api.getPersistentVolume(name),
  };

  private readonly readObject: ObjectReader = (kind, ns, name) => (kind === 'ConfigMap' ? this.config.api.getConfigMap(ns, name) : this.config.api.getSecret(ns, name));

  private async resolveInputs(pod: Pod, read: ObjectReader = this.readObject): Promise<PodInputs> {
    const ns = pod.metadata.namespace ?? 'default';
    const configMaps: Record<string, ConfigMap> = {};
    const secrets: Record<string, Secret> = {};
    const refs = podReferences(pod);
    const [persistentVolumes] = await Promise.all([
      refs.persistentVolumeClaims.size > 0 ? claimVolumes(pod, this.claimReads) : undefined,
      ...[...refs.configMaps].map(async (name) => { const o = await read('ConfigMap', ns, name); if (o) configMaps[name] = o as ConfigMap; }),
      ...[...new Set([...refs.secrets, ...refs.imagePullSecrets])].map(async (name) => { const o = await read('Secret', ns, name); if (o) secrets[name] = o as Secret; }),
    ]);
    return { pod, configMaps, secrets, ...(persistentVolumes ? { persistentVolumes } : {}) };
  }

  /**
   * Re-reads the referenced ConfigMaps, Secrets and claims every pod resync period until the session ends (a claim
   * bound meanwhile gives its pod the volume), and removes the directories of deleted local-path volumes.
   */
  private async refreshes(signal: AbortSignal): Promise<void> {
    const refreshMs = this.config.podWorkers?.resyncMs ?? 10_000;
    for (;;) {
      await delay(refreshMs, signal);
      if (signal.aborted) return;
      await this.refreshReferences().catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'reading ConfigMaps, Secrets and claims failed; retrying next period'));
      await cleanUpLocalVolumes(this.config.dataDir, this.config.api, this.log).catch((err: unknown) => this.log.warn({ err: (err as Error).message }, 'removing deleted local-path volumes failed; retrying next period'));
    }
  }

  /**
   * Re-reads the ConfigMaps and Secrets that running pods reference, each object once per round however many
   * pods share it, and hands the pods whose objects changed (or appeared, or went) to their workers, which
   * rewrite the mounted files in place. Pods without references cost nothing.
   */
  private async refreshReferences(): Promise<void> {
    const round = new Map<string, Promise<ConfigMap | Secret | undefined>>();
    const read: ObjectReader = (kind, ns, name) => {
      const key = `${kind}/${ns}/${name}`;
      let p = round.get(key);
      if (!p) round.set(key, p = this.readObject(kind, ns, name));
      return p;
    };
    let changed = false;
    for (const [uid, inputs] of [...this.desired]) {
      if (this.fenced.has(uid)) continue;
      const refs = podReferences(inputs.pod);
      if (refs.configMaps.size + refs.secrets.size + refs.imagePullSecrets.size + refs.persistentVolumeClaims.size === 0) continue;
      const next = await this.resolveInputs(inputs.pod, read);
      // A watch event replaced or removed the pod meanwhile: its own inputs are newer than these.
      if (this.desired.get(uid) !== inputs) continue;
      if (JSON.stringify([next.configMaps, next.secrets, next.persistentVolumes]) === JSON.stringify([inputs.configMaps, inputs.secrets, inputs.persistentVolumes])) continue;
      this.desired.set(uid, next);
      this.podWorkers.update(next);
      changed = true;
    }
    if (changed) await this.saveCache();
  }

  /** Stops and removes a pod's containers, with or without a worker (a fenced pod has none). */
  private async stopPod(uid: string, grace: number | undefined): Promise<void> {
    this.reporter?.forget(uid);
    if (this.podWorkers.get(uid)) return this.podWorkers.delete(uid, grace);
    const { runtime } = this.config;
    await terminatePod(runtime, await runtime.listContainers({ ...ownerLabels(this.config), [LABEL_POD_UID]: uid }), grace ?? 30);
  }

  /** Forgets a pod; resolves once its containers are stopped (after their grace period) and removed. */
  private async remove(uid: string, grace = this.desired.get(uid)?.pod.spec.terminationGracePeriodSeconds): Promise<void> {
    this.desired.delete(uid);
    this.fenced.delete(uid);
    this.fenceDue.delete(uid);
    await this.saveCache();
    await this.stopPod(uid, grace);
  }

  /**
   * Removes a pod without waiting: a grace period must not hold up the events behind it (a rolling update's new
   * pods). A pod whose graceful deletion is under way is left to it.
   */
  private removeInBackground(uid: string): void {
    if (this.terminating.has(uid)) return;
    this.remove(uid).catch((err: unknown) => this.log.error({ err, uid }, 'stopping a removed pod failed'));
  }

  /**
   * Graceful deletion, as the kubelet does it: the containers get the pod's deletionGracePeriodSeconds (SIGTERM,
   * SIGKILL once it runs out), then the pod object is deleted with grace 0 and its uid as the precondition. In
   * the background, like removeInBackground; a repeated delete with a shorter grace period stops the containers
   * again with that one. A pod whose final delete fails is deleted again when the agent next lists its pods.
   */
  private terminate(pod: Pod, uid: string): void {
    const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30;
    const under = this.terminating.get(uid);
    if (under !== undefined && under <= grace) return;
    this.terminating.set(uid, grace);
    (async () => {
      await this.remove(uid, grace);
      await this.config.api.deletePod(pod);
    })().catch((err: unknown) => this.log.warn({ err, pod: pod.metadata.name }, 'finishing the deletion of a pod failed'))
      .finally(() => { if (this.terminating.get(uid) === grace) this.terminating.delete(uid); });
  }

  /** Checks every second (or a quarter of the fence time) whether StatefulSet pods must stop (the fencing contract). */
  private async fencing(signal: AbortSignal): Promise<void> {
    const fenceAfterMs = (this.config.fenceAfterSeconds ?? 45) * 1000;
    while (!signal.aborted) {
      await delay(Math.min(1000, fenceAfterMs / 4), signal);
      if (signal.aborted) return;
      await this.fenceIfSilent(fenceAfterMs);
    }
  }

  private async fenceIfSilent(fenceAfterMs: number): Promise<void> {
    const silentMs = this.now() - this.lastContactMs;
    if (silentMs <= fenceAfterMs) return;
    for (const [uid, inputs] of this.desired) {
      if ((this.fenced.has(uid) && !this.fenceDue.has(uid)) || !isStatefulSetPod(inputs.pod)) continue;
      this.fenced.add(uid);
      this.fenceDue.delete(uid);
      this.log.warn({ pod: inputs.pod.metadata.name, silentS: Math.round(silentMs / 1000) }, 'no server reachable: stopping StatefulSet pod so that its ordinal never runs twice');
      await this.stopPod(uid, inputs.pod.spec.terminationGracePeriodSeconds).catch((err: unknown) => this.log.error({ err }, 'fencing a StatefulSet pod failed'));
    }
  }

  /** Lists the runtime's images again; true when the node's image status changed. A failure keeps the last listing. */
  private async refreshImages(): Promise<boolean> {
    try { return await this.images.refresh(); } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'listing images failed');
      return false;
    }
  }

  /** Renews the lease every heartbeat period and sends the node status every nodeStatusSeconds, and at once when
   * the node's images changed (a pull, a load, a removal), until the session ends. */
  private async heartbeats(signal: AbortSignal): Promise<void> {
    const { config, log } = this;
    const configuredBeatS = config.heartbeatSeconds ?? 5;
    const statusS = config.nodeStatusSeconds ?? 60;
    let sinceStatus = 0;
    let beatS = configuredBeatS;
    while (!signal.aborted) {
      try {
        const granted = grantedLeaseSeconds(await config.api.renewLease(config.nodeName, leaseSeconds(config)));
        // A server grants at most its node grace period: renewing at a third of that keeps the node Ready.
        beatS = granted === undefined ? configuredBeatS : Math.min(configuredBeatS, granted / 3);
        this.contact();
        const imagesChanged = await this.refreshImages();
        if ((sinceStatus += beatS) >= statusS || imagesChanged) {
          sinceStatus = 0;
          await config.api.updateNodeStatus(await this.nodeObject());
        }
      } catch (err) {
        // Deleting a Node revokes its certificate (server/tokens/node-certificates.ts): the agent does not come back by itself.
        const revoked = err instanceof ApiClientError && err.code === 401;
        log.warn({ err: (err as Error).message }, revoked
          ? `heartbeat refused: this node's certificate authenticates nobody (its Node was deleted or replaced); to join again, remove ${this.config.dataDir}/pki/node.crt and start the agent with a join token`
          : 'heartbeat failed');
      }
      await delay(beatS * 1000, signal);
    }
  }

  /** Sends a usage report at once and then every usageSeconds; a failed one is logged and replaced by the next. */
  private async usageReports(signal: AbortSignal): Promise<void> {
    const intervalS = this.config.usageSeconds ?? 10;
    while (!signal.aborted) {
      try {
        await this.config.api.client.request('PUT', usageReportPath(this.config.nodeName), await this.usage.sample(), { signal });
      } catch (err) {
        if (!signal.aborted) this.log.warn({ err: (err as Error).message }, 'usage report failed');
      }
      await delay(intervalS * 1000, signal);
    }
  }
}

function leaseSeconds(config: AgentConfig): number {
  return Math.max(1, Math.round((config.heartbeatSeconds ?? 5) * 4));
}

/** spec.leaseDurationSeconds of the Lease a server answered a renewal with, when it says. */
function grantedLeaseSeconds(lease: unknown): number | undefined {
  const d = (lease as { spec?: { leaseDurationSeconds?: unknown } } | undefined)?.spec?.leaseDurationSeconds;
  return typeof d === 'number' && d > 0 ? d : undefined;
}

/** Sends pod statuses one at a time, latest per pod wins; failed sends are retried with back-off until the signal aborts. */
class StatusReporter {
  private readonly pending = new Map<string, { pod: Pod; status: PodStatus }>();
  private flushing: Promise<void> | undefined;

  constructor(private readonly api: NodeApi, private readonly log: Logger, private readonly signal: AbortSignal, private readonly contact: () => void) {}

  report(pod: Pod, status: PodStatus): void {
    const uid = pod.metadata.uid;
    if (!uid) return;
    this.pending.set(uid, { pod, status });
    this.flushing ??= this.flush().finally(() => { this.flushing = undefined; });
  }

  forget(uid: string): void {
    this.pending.delete(uid);
  }

  async idle(): Promise<void> {
    await this.flushing;
  }

  private async flush(): Promise<void> {
    let failures = 0;
    while (this.pending.size > 0 && !this.signal.aborted) {
      const [uid, item] = this.pending.entries().next().value as [string, { pod: Pod; status: PodStatus }];
      this.pending.delete(uid);
      try {
        await this.api.updatePodStatus(item.pod, item.status);
        this.contact();
        failures = 0;
      } catch (err) {
        if (err instanceof ApiClientError && err.code === 404) continue; // the pod is gone
        if (!this.pending.has(uid)) this.pending.set(uid, item);
        this.log.warn({ err: (err as Error).message, pod: item.pod.metadata.name }, 'pod status report failed');
        await delay(Math.min(30_000, 500 * 2 ** failures++), this.signal);
      }
    }
  }
}

/**
 * "Something changed since the last pass" for a loop that rebuilds from its inputs: change callbacks call mark(),
 * the loop awaits changed() before each pass. Marks between two passes make one pass; the first pass is due at
 * once. changed() resolves false (and at once) when the signal has aborted.
 */
export class ChangeSignal {
  private dirty = true;
  private wake: (() => void) | undefined;

  constructor(private readonly signal: AbortSignal) {}

  readonly mark = (): void => {
    this.dirty = true;
    this.wake?.();
  };

  async changed(): Promise<boolean> {
    while (!this.dirty && !this.signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => { this.signal.removeEventListener('abort', done); this.wake = undefined; resolve(); };
        this.wake = done;
        this.signal.addEventListener('abort', done, { once: true });
      });
    }
    this.dirty = false;
    return !this.signal.aborted;
  }
}

export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
