// The agent loop: start the pods of the local cache (so a node that reboots without its servers still runs its
// workloads), register the Node, renew its lease, list and watch the pods bound to it, hand them to the pod
// workers with their ConfigMaps and Secrets, report pod status, and keep the cache current.
import pino, { type Logger } from 'pino';
import { ApiError, type ApiClient, type NodeObject, type WatchEvent } from './api-client.js';
import type { ConfigMap, Pod, PodInputs, PodStatus, Secret } from './kube-objects.js';
import { PodCache } from './pod-cache.js';
import { PodWorkers, type PodWorkerSettings } from './pod-worker.js';
import type { ContainerRuntime } from './runtime/types.js';

export interface AgentConfig {
  nodeName: string;
  api: ApiClient;
  runtime: ContainerRuntime;
  dataDir: string;
  /** The Node object to register and report (inventory from hardware/); called again for each status report. */
  node: () => NodeObject | Promise<NodeObject>;
  hostIP?: string;
  /** Lease renewal period (default 10 s; the lease lasts four periods). */
  heartbeatSeconds?: number;
  /** Node status report period (default 60 s). */
  nodeStatusSeconds?: number;
  /** Wait before reconnecting after the server could not be reached (default 5 s). */
  retrySeconds?: number;
  /** Pod worker tuning (sandbox image, back-off, resync). */
  podWorkers?: Partial<Omit<PodWorkerSettings, 'runtime' | 'nodeName' | 'dataDir' | 'onStatus'>>;
  log?: Logger;
}

/** Runs until the signal aborts. Containers keep running after it returns: stopping the agent is not deleting pods. */
export async function runAgent(signal: AbortSignal, config: AgentConfig): Promise<void> {
  const log = config.log ?? pino({ level: 'silent' });
  const cache = new PodCache(config.dataDir);
  const desired = new Map<string, PodInputs>();
  const reporter = new StatusReporter(config.api, log, signal);
  const workers = new PodWorkers({
    ...config.podWorkers,
    runtime: config.runtime,
    nodeName: config.nodeName,
    dataDir: config.dataDir,
    log,
    ...(config.hostIP ? { hostIP: config.hostIP } : {}),
    onStatus: (inputs, status) => reporter.report(inputs.pod, status),
  });

  for (const inputs of await cache.load().catch((err: unknown) => { log.error({ err }, 'pod cache unreadable; starting empty'); return []; })) {
    const uid = inputs.pod.metadata.uid;
    if (!uid) continue;
    desired.set(uid, inputs);
    workers.update(inputs);
  }
  const workersDone = workers.run(signal);
  const saveCache = () => cache.save([...desired.values()]).catch((err: unknown) => log.error({ err }, 'pod cache write failed'));

  const resolveInputs = async (pod: Pod): Promise<PodInputs> => {
    const ns = pod.metadata.namespace ?? 'default';
    const configMaps: Record<string, ConfigMap> = {};
    const secrets: Record<string, Secret> = {};
    const refs = referencedObjects(pod);
    await Promise.all([
      ...[...refs.configMaps].map(async (name) => { const o = await config.api.getConfigMap(ns, name); if (o) configMaps[name] = o; }),
      ...[...refs.secrets].map(async (name) => { const o = await config.api.getSecret(ns, name); if (o) secrets[name] = o; }),
    ]);
    return { pod, configMaps, secrets };
  };

  const apply = async (pod: Pod): Promise<void> => {
    const uid = pod.metadata.uid;
    if (!uid || pod.spec.nodeName !== config.nodeName) return;
    if (pod.metadata.deletionTimestamp) {
      await remove(uid);
      await config.api.deletePod(pod);
      return;
    }
    const inputs = await resolveInputs(pod);
    desired.set(uid, inputs);
    workers.update(inputs);
    await saveCache();
  };

  const remove = async (uid: string): Promise<void> => {
    const grace = desired.get(uid)?.pod.spec.terminationGracePeriodSeconds;
    desired.delete(uid);
    reporter.forget(uid);
    await workers.delete(uid, grace);
    await saveCache();
  };

  let firstList = true;
  const listAndWatch = async (): Promise<void> => {
    const list = await config.api.listPods(config.nodeName);
    const listed = new Set(list.items.map((p) => p.metadata.uid).filter((u): u is string => Boolean(u)));
    for (const uid of [...desired.keys()]) if (!listed.has(uid)) await remove(uid);
    for (const pod of list.items) await apply(pod);
    if (firstList) {
      firstList = false;
      const orphans = await workers.removeOrphans();
      if (orphans.length) log.info({ count: orphans.length }, 'removed containers of pods this node no longer has');
    }
    let resourceVersion = list.metadata.resourceVersion ?? '0';
    for (;;) {
      let chain = Promise.resolve();
      await config.api.watchPods(config.nodeName, resourceVersion, (e: WatchEvent<Pod>) => {
        if (e.object.metadata?.resourceVersion) resourceVersion = e.object.metadata.resourceVersion;
        chain = chain.then(() => (e.type === 'DELETED' ? remove(e.object.metadata.uid ?? '') : e.type === 'BOOKMARK' ? undefined : apply(e.object)))
          .catch((err: unknown) => log.warn({ err, pod: e.object.metadata?.name }, 'applying a pod event failed'));
      }, signal);
      await chain;
      if (signal.aborted) return;
    }
  };

  while (!signal.aborted) {
    const session = new AbortController();
    const stopSession = () => session.abort();
    signal.addEventListener('abort', stopSession, { once: true });
    try {
      await config.api.registerNode(await config.node());
      await config.api.updateNodeStatus(await config.node());
      const beats = startHeartbeats(config, session.signal, log);
      try {
        for (;;) {
          try {
            await listAndWatch();
            break;
          } catch (err) {
            if (err instanceof ApiError && err.status === 410) continue; // history compacted: list again
            throw err;
          }
        }
      } finally {
        session.abort();
        await beats;
      }
    } catch (err) {
      if (signal.aborted) break;
      log.warn({ err: (err as Error).message }, 'server unreachable or refused; pods keep running; retrying');
      await delay((config.retrySeconds ?? 5) * 1000, signal);
    } finally {
      signal.removeEventListener('abort', stopSession);
    }
  }
  await workersDone;
  await reporter.idle();
}

function startHeartbeats(config: AgentConfig, signal: AbortSignal, log: Logger): Promise<void> {
  const beatS = config.heartbeatSeconds ?? 10;
  const statusS = config.nodeStatusSeconds ?? 60;
  return (async () => {
    let sinceStatus = 0;
    while (!signal.aborted) {
      try {
        await config.api.renewLease(config.nodeName, beatS * 4);
        if ((sinceStatus += beatS) >= statusS) {
          sinceStatus = 0;
          await config.api.updateNodeStatus(await config.node());
        }
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'heartbeat failed');
      }
      await delay(beatS * 1000, signal);
    }
  })();
}

/** Sends pod statuses one at a time, latest per pod wins; failed sends are retried with back-off until the signal aborts. */
class StatusReporter {
  private readonly pending = new Map<string, { pod: Pod; status: PodStatus }>();
  private flushing: Promise<void> | undefined;

  constructor(private readonly api: ApiClient, private readonly log: Logger, private readonly signal: AbortSignal) {}

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
        failures = 0;
      } catch (err) {
        if (err instanceof ApiError && err.status === 404) continue; // the pod is gone
        if (!this.pending.has(uid)) this.pending.set(uid, item);
        this.log.warn({ err: (err as Error).message, pod: item.pod.metadata.name }, 'pod status report failed');
        await delay(Math.min(30_000, 500 * 2 ** failures++), this.signal);
      }
    }
  }
}

function referencedObjects(pod: Pod): { configMaps: Set<string>; secrets: Set<string> } {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  for (const c of pod.spec.containers) {
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

function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => { clearTimeout(timer); signal.removeEventListener('abort', done); resolve(); };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}
