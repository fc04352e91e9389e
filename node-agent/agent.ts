// The agent loop: start the pods of the local cache (so a node that reboots without its servers still runs its
// workloads), register the Node, publish the agent's endpoint secret, renew the lease, list and watch the pods
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
import type { ConfigMap, Pod, PodInputs, PodStatus, Secret } from './kube-objects.js';
import { PodCache } from './pod-cache.js';
import { PodWorkers, type PodWorkerSettings, type WorkerPodSpec } from './pod-worker.js';
import { LABEL_CONTAINER, LABEL_POD_UID, SANDBOX_CONTAINER_NAME, ownerLabels, type ContainerRuntime } from './runtime/types.js';
import { UsageSampler, usageReportPath } from './usage.js';

export interface AgentConfig {
  /** The cluster this agent belongs to (its id): with nodeName, what marks the containers it owns. */
  clusterId: string;
  nodeName: string;
  api: NodeApi;
  runtime: ContainerRuntime;
  dataDir: string;
  /** The Node object to register and report (inventory from hardware/); called again for each status report. */
  node: () => NodeObject | Promise<NodeObject>;
  /** Published in Secret kube-system/flotilla-agent-NODE for the servers to call this agent (logs, exec). */
  endpointToken?: string;
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
}

export function isStatefulSetPod(pod: Pod): boolean {
  return (pod.metadata.ownerReferences ?? []).some((o) => o.kind === 'StatefulSet');
}

/** Runs until the signal aborts. Containers keep running after it returns: stopping the agent is not deleting pods. */
export async function runAgent(signal: AbortSignal, config: AgentConfig): Promise<void> {
  const log = config.log ?? pino({ level: 'silent' });
  if (config.usageSeconds !== undefined && !(config.usageSeconds > 0)) throw new Error(`usageSeconds must be a positive number of seconds, got ${config.usageSeconds}`);
  const cache = new PodCache(config.dataDir);
  const desired = new Map<string, PodInputs>();
  /** StatefulSet pods held stopped until a server confirms them again. */
  const fenced = new Set<string>();
  let lastContactMs = Date.now();
  const contact = () => { lastContactMs = Date.now(); };
  const reporter = new StatusReporter(config.api, log, signal, contact);
  const podEvents = new PodEventSink(config.api.client, config.nodeName, log);
  const workers = new PodWorkers({
    ...config.podWorkers,
    runtime: config.runtime,
    clusterId: config.clusterId,
    nodeName: config.nodeName,
    dataDir: config.dataDir,
    log,
    ...(config.hostIP ? { hostIP: config.hostIP } : {}),
    onStatus: (inputs, status) => reporter.report(inputs.pod, status),
    onEvent: (inputs, event) => podEvents.record(inputs.pod, event),
  });

  for (const inputs of await cache.load().catch((err: unknown) => { log.error({ err }, 'pod cache unreadable; starting empty'); return []; })) {
    const uid = inputs.pod.metadata.uid;
    if (!uid) continue;
    desired.set(uid, inputs);
    if (isStatefulSetPod(inputs.pod)) fenced.add(uid);
    else workers.update(inputs);
  }
  const workersDone = workers.run(signal);
  const usage = new UsageSampler({
    runtime: config.runtime, clusterId: config.clusterId, nodeName: config.nodeName, simulated: config.simulatedUsage === true,
    pods: () => [...desired.values()].map((inputs) => inputs.pod),
  });
  const saveCache = () => cache.save([...desired.values()]).catch((err: unknown) => log.error({ err }, 'pod cache write failed'));

  /** Stops and removes a pod's containers, with or without a worker (a fenced pod has none). */
  const stopPod = async (uid: string, grace: number | undefined): Promise<void> => {
    reporter.forget(uid);
    if (workers.get(uid)) return workers.delete(uid, grace);
    const { runtime } = config;
    const all = await runtime.listContainers({ ...ownerLabels(config), [LABEL_POD_UID]: uid });
    const apps = all.filter((c) => c.labels[LABEL_CONTAINER] !== SANDBOX_CONTAINER_NAME && c.state === 'running');
    await Promise.all(apps.map((c) => runtime.stopContainer(c.id, grace ?? 30)));
    await Promise.all(all.map((c) => runtime.removeContainer(c.id)));
  };

  const readObject: ObjectReader = (kind, ns, name) => (kind === 'ConfigMap' ? config.api.getConfigMap(ns, name) : config.api.getSecret(ns, name));
  const resolveInputs = async (pod: Pod, read: ObjectReader = readObject): Promise<PodInputs> => {
    const ns = pod.metadata.namespace ?? 'default';
    const configMaps: Record<string, ConfigMap> = {};
    const secrets: Record<string, Secret> = {};
    const refs = referencedObjects(pod);
    await Promise.all([
      ...[...refs.configMaps].map(async (name) => { const o = await read('ConfigMap', ns, name); if (o) configMaps[name] = o; }),
      ...[...refs.secrets].map(async (name) => { const o = await read('Secret', ns, name); if (o) secrets[name] = o; }),
    ]);
    return { pod, configMaps, secrets };
  };

  /**
   * Re-reads the ConfigMaps and Secrets that running pods reference, each object once per round however many
   * pods share it, and hands the pods whose objects changed (or appeared, or went) to their workers, which
   * rewrite the mounted files in place. Pods without references cost nothing.
   */
  const refreshReferences = async (): Promise<void> => {
    const round = new Map<string, Promise<ConfigMap | Secret | undefined>>();
    const read: ObjectReader = (kind, ns, name) => {
      const key = `${kind}/${ns}/${name}`;
      let p = round.get(key);
      if (!p) round.set(key, p = readObject(kind, ns, name));
      return p;
    };
    let changed = false;
    for (const [uid, inputs] of [...desired]) {
      if (fenced.has(uid)) continue;
      const refs = referencedObjects(inputs.pod);
      if (refs.configMaps.size + refs.secrets.size === 0) continue;
      const next = await resolveInputs(inputs.pod, read);
      // A watch event replaced or removed the pod meanwhile: its own inputs are newer than these.
      if (desired.get(uid) !== inputs) continue;
      if (JSON.stringify([next.configMaps, next.secrets]) === JSON.stringify([inputs.configMaps, inputs.secrets])) continue;
      desired.set(uid, next);
      workers.update(next);
      changed = true;
    }
    if (changed) await saveCache();
  };
  const refreshMs = config.podWorkers?.resyncMs ?? 10_000;

  const apply = async (pod: Pod): Promise<void> => {
    const uid = pod.metadata.uid;
    if (!uid || pod.spec.nodeName !== config.nodeName) return;
    if (pod.metadata.deletionTimestamp) return terminate(pod, uid);
    const inputs = await resolveInputs(pod);
    desired.set(uid, inputs);
    fenced.delete(uid);
    workers.update(inputs);
    await saveCache();
  };

  /** Forgets a pod; resolves once its containers are stopped (after their grace period) and removed. */
  const remove = async (uid: string, grace = desired.get(uid)?.pod.spec.terminationGracePeriodSeconds): Promise<void> => {
    desired.delete(uid);
    fenced.delete(uid);
    await saveCache();
    await stopPod(uid, grace);
  };
  /** The grace period of each pod whose graceful deletion this agent is carrying out. */
  const terminating = new Map<string, number>();
  /**
   * Removes a pod without waiting: a grace period must not hold up the events behind it (a rolling update's new
   * pods). A pod whose graceful deletion is under way is left to it.
   */
  const removeInBackground = (uid: string): void => {
    if (terminating.has(uid)) return;
    remove(uid).catch((err: unknown) => log.error({ err, uid }, 'stopping a removed pod failed'));
  };
  /**
   * Graceful deletion, as the kubelet does it: the containers get the pod's deletionGracePeriodSeconds (SIGTERM,
   * SIGKILL once it runs out), then the pod object is deleted with grace 0 and its uid as the precondition. In
   * the background, like removeInBackground; a repeated delete with a shorter grace period stops the containers
   * again with that one. A pod whose final delete fails is deleted again when the agent next lists its pods.
   */
  const terminate = (pod: Pod, uid: string): void => {
    const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30;
    const under = terminating.get(uid);
    if (under !== undefined && under <= grace) return;
    terminating.set(uid, grace);
    (async () => {
      await remove(uid, grace);
      await config.api.deletePod(pod);
    })().catch((err: unknown) => log.warn({ err, pod: pod.metadata.name }, 'finishing the deletion of a pod failed'))
      .finally(() => { if (terminating.get(uid) === grace) terminating.delete(uid); });
  };

  const fenceAfterMs = (config.fenceAfterSeconds ?? 45) * 1000;
  const fenceDone = (async () => {
    while (!signal.aborted) {
      await delay(Math.min(1000, fenceAfterMs / 4), signal);
      if (signal.aborted || Date.now() - lastContactMs <= fenceAfterMs) continue;
      for (const [uid, inputs] of desired) {
        if (fenced.has(uid) || !isStatefulSetPod(inputs.pod)) continue;
        fenced.add(uid);
        log.warn({ pod: inputs.pod.metadata.name, silentS: Math.round((Date.now() - lastContactMs) / 1000) }, 'no server reachable: stopping StatefulSet pod so that its ordinal never runs twice');
        await stopPod(uid, inputs.pod.spec.terminationGracePeriodSeconds).catch((err: unknown) => log.error({ err }, 'fencing a StatefulSet pod failed'));
      }
    }
  })();

  const listAndWatch = async (): Promise<void> => {
    const list = await config.api.listPods(config.nodeName);
    contact();
    const listed = new Set(list.items.map((p) => p.metadata.uid).filter((u): u is string => Boolean(u)));
    for (const uid of [...desired.keys()]) if (!listed.has(uid)) removeInBackground(uid);
    for (const pod of list.items) await apply(pod);
    // Containers of pods deleted while this agent was away or could not reach a server.
    const orphans = await workers.removeOrphans();
    if (orphans.length) log.info({ count: orphans.length }, 'removed containers of pods this node no longer has');
    let resourceVersion = list.metadata.resourceVersion ?? '0';
    for (;;) {
      let chain = Promise.resolve();
      await config.api.watchPods(config.nodeName, resourceVersion, (e) => {
        contact();
        if (e.object.metadata?.resourceVersion) resourceVersion = e.object.metadata.resourceVersion;
        chain = chain.then(() => (e.type === 'DELETED' ? removeInBackground(e.object.metadata.uid ?? '') : e.type === 'BOOKMARK' ? undefined : apply(e.object)))
          .catch((err: unknown) => log.warn({ err, pod: e.object.metadata?.name }, 'applying a pod event failed'));
      }, signal);
      await chain;
      if (signal.aborted) return;
      // The stream ended: a server going away ends it too, so check that one is still there before watching again.
      await config.api.renewLease(config.nodeName, leaseSeconds(config));
      contact();
    }
  };

  let failures = 0;
  let eventsPosted = false;
  while (!signal.aborted) {
    const session = new AbortController();
    const stopSession = () => session.abort();
    signal.addEventListener('abort', stopSession, { once: true });
    try {
      const registered = await config.api.registerNode(await config.node());
      contact();
      await config.api.updateNodeStatus(await config.node());
      if (config.endpointToken) await config.api.publishAgentToken(config.nodeName, config.endpointToken);
      if (!eventsPosted) {
        for (const e of config.events ?? []) await config.api.nodeEvent(config.nodeName, registered.metadata.uid, e);
        eventsPosted = true;
      }
      const beats = startHeartbeats(config, session.signal, log, contact);
      const usageReports = startUsageReports(config, usage, session.signal, log);
      const refreshes = (async () => {
        for (;;) {
          await delay(refreshMs, session.signal);
          if (session.signal.aborted) return;
          await refreshReferences().catch((err: unknown) => log.warn({ err: (err as Error).message }, 'reading ConfigMaps and Secrets failed; retrying next period'));
        }
      })();
      try {
        for (;;) {
          try {
            await listAndWatch();
            break;
          } catch (err) {
            if (err instanceof ApiClientError && err.code === 410) continue; // history compacted: list again
            throw err;
          }
        }
      } finally {
        session.abort();
        await Promise.all([beats, usageReports, refreshes]);
      }
    } catch (err) {
      if (signal.aborted) break;
      const waitMs = Math.min((config.retryMaxSeconds ?? 30) * 1000, (config.retrySeconds ?? 1) * 1000 * 2 ** Math.min(failures++, 16));
      log.warn({ err: (err as Error).message, retryMs: waitMs }, 'server unreachable or refused; pods keep running; retrying');
      await delay(waitMs, signal);
      continue;
    } finally {
      signal.removeEventListener('abort', stopSession);
    }
    failures = 0;
  }
  await Promise.all([workersDone, fenceDone]);
  await reporter.idle();
}

function leaseSeconds(config: AgentConfig): number {
  return Math.max(1, Math.round((config.heartbeatSeconds ?? 5) * 4));
}

/** spec.leaseDurationSeconds of the Lease a server answered a renewal with, when it says. */
function grantedLeaseSeconds(lease: unknown): number | undefined {
  const d = (lease as { spec?: { leaseDurationSeconds?: unknown } } | undefined)?.spec?.leaseDurationSeconds;
  return typeof d === 'number' && d > 0 ? d : undefined;
}

function startHeartbeats(config: AgentConfig, signal: AbortSignal, log: Logger, contact: () => void): Promise<void> {
  const configuredBeatS = config.heartbeatSeconds ?? 5;
  const statusS = config.nodeStatusSeconds ?? 60;
  return (async () => {
    let sinceStatus = 0;
    let beatS = configuredBeatS;
    while (!signal.aborted) {
      try {
        const granted = grantedLeaseSeconds(await config.api.renewLease(config.nodeName, leaseSeconds(config)));
        // A server grants at most its node grace period: renewing at a third of that keeps the node Ready.
        beatS = granted === undefined ? configuredBeatS : Math.min(configuredBeatS, granted / 3);
        contact();
        if ((sinceStatus += beatS) >= statusS) {
          sinceStatus = 0;
          const node = await config.node();
          await config.api.updateNodeStatus(node).catch(async (err: unknown) => {
            // Someone deleted the Node while this agent runs: register it again, as a starting agent would.
            if (!(err instanceof ApiClientError && err.code === 404)) throw err;
            log.warn('the Node object was deleted; registering it again');
            await config.api.registerNode(node);
          });
        }
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'heartbeat failed');
      }
      await delay(beatS * 1000, signal);
    }
  })();
}

/** Sends a usage report at once and then every usageSeconds; a failed one is logged and replaced by the next. */
async function startUsageReports(config: AgentConfig, sampler: UsageSampler, signal: AbortSignal, log: Logger): Promise<void> {
  const intervalS = config.usageSeconds ?? 10;
  while (!signal.aborted) {
    try {
      await config.api.client.request('PUT', usageReportPath(config.nodeName), await sampler.sample(), { signal });
    } catch (err) {
      if (!signal.aborted) log.warn({ err: (err as Error).message }, 'usage report failed');
    }
    await delay(intervalS * 1000, signal);
  }
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

/** Reads one ConfigMap or Secret; undefined when it does not exist. */
type ObjectReader = (kind: 'ConfigMap' | 'Secret', namespace: string, name: string) => Promise<ConfigMap | Secret | undefined>;

function referencedObjects(pod: Pod): { configMaps: Set<string>; secrets: Set<string> } {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  for (const c of [...((pod.spec as WorkerPodSpec).initContainers ?? []), ...pod.spec.containers]) {
    for (const e of c.env ?? []) {
      if (e.valueFrom?.configMapKeyRef) configMaps.add(e.valueFrom.configMapKeyRef.name);
      if (e.valueFrom?.secretKeyRef) secrets.add(e.valueFrom.secretKeyRef.name);
    }
    for (const f of c.envFrom ?? []) {
      if (f.configMapRef) configMaps.add(f.configMapRef.name);
      if (f.secretRef) secrets.add(f.secretRef.name);
    }
  }
  for (const v of pod.spec.volumes ?? []) {
    if (v.configMap) configMaps.add(v.configMap.name);
    if (v.secret) secrets.add(v.secret.secretName);
  }
  return { configMaps, secrets };
}

export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
