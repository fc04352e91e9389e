// The scheduling loop: keeps a Scheduler's NodeTable in step with the cluster, places pending pods in batches,
// binds them with optimistic concurrency and retries the ones that do not fit.
//
// Contract with the cluster (SchedulerCluster):
// - watch() then snapshot(): every change after the snapshot is delivered as an event (some before it may be
//   delivered too).
// - bind() succeeds only when the pod's resourceVersion is still current; otherwise 'conflict', and the loop
//   waits for the newer version (delivered as an event) before placing the pod again.
// - a bound pod appears as an event with spec.nodeName; the loop counts its usage from then on.
//
// What is tried when is the SchedulingQueue's (./queue.ts: activeQ, podBackoffQ, unschedulablePods, as
// kube-scheduler's); this driver feeds it the cluster's changes as queueing hints (a node added or changed in
// what scheduling reads, a bound pod deleted or finished, a pod newly bound, a bound pod relabelled), pops
// batches in its order, and tells it how each attempt went. A pending pod's churn, a node's heartbeat or usage,
// or a node leaving helps no waiting pod. The clock and the sleeping are injected (LoopOptions.now, .sleep).
import { ANNOTATION_ASSIGNED_GPUS } from '../../api-types/index.js';
import { podKey } from './pod-request.js';
import { SchedulingQueue, nodeChanges, nodeView, type NodeView, type QueueEvent } from './queue.js';
import { Scheduler, explain, type Placement } from './scheduler.js';
import type { Platform } from './image-platforms.js';
import type { VolumeVerdict } from './volume-binding.js';
import type { Node, Pod } from '../../api-types/index.js';

export type ClusterEvent =
  | { kind: 'node'; type: 'upsert'; node: Node }
  | { kind: 'node'; type: 'delete'; name: string }
  | { kind: 'pod'; type: 'upsert'; pod: Pod }
  | { kind: 'pod'; type: 'delete'; pod: Pod };

/** What the scheduling loop needs from the cluster: state and changes in, decisions out. */
export interface SchedulerCluster {
  snapshot(): Promise<{ nodes: Node[]; pods: Pod[] }>;
  /** Calls onEvent for every change from now until the signal aborts. Called before snapshot(). */
  watch(onEvent: (event: ClusterEvent) => void, signal: AbortSignal): void;
  /** Sets spec.nodeName and annotation flotilla.io/assigned-gpus if the pod is still at resourceVersion. */
  bind(pod: Pod, nodeName: string, gpuUuids: string[], resourceVersion: string | undefined): Promise<'bound' | 'conflict'>;
  /** Records why the pod stays pending (a PodScheduled=False condition and an event, in the server). */
  reportUnschedulable(pod: Pod, message: string): Promise<void>;
  /** What the pod's PersistentVolumeClaims ask (./volume-binding.ts); without it, claims are not looked at. */
  volumes?(pod: Pod): VolumeVerdict;
}

export interface LoopOptions {
  scheduler?: Scheduler;
  /** Pods placed per batch (each sees the ones placed before it). Default 256. */
  batchSize?: number;
  /** Back-off of a pod that failed: initialMs doubled per attempt up to maxMs. Defaults 1000, 10000, as
   * kube-scheduler's podInitialBackoffSeconds and podMaxBackoffSeconds. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** How long an unschedulable pod waits for an event that can help it before it is tried anyway
   * (kube-scheduler's podMaxInUnschedulablePodsDuration). Default 5 minutes. */
  maxInUnschedulableMs?: number;
  /** The clock, in milliseconds. Default Date.now. */
  now?: () => number;
  /** Resolves after `ms` (Infinity: never), or as soon as `wake` aborts. Default: a timer. */
  sleep?: (ms: number, wake: AbortSignal) => Promise<void>;
  /** Asks the registry which platforms an image exists for (./registry-platforms.ts); asked for every image of a
   * batch before it is placed, its answer (undefined: unknown) goes to scheduler.images. Unset: nodes only. */
  registry?: { lookup(image: string): Promise<Platform[] | undefined> };
  /** Observes every decision (tests, metrics). */
  onPlacement?: (placement: Placement, outcome: 'bound' | 'conflict' | 'unschedulable' | 'error') => void;
  onError?: (error: Error) => void;
}

const finished = (pod: Pod): boolean => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';

const sameLabels = (a: Record<string, string>, b: Record<string, string>): boolean =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);

/** LoopOptions.sleep's default. */
export function sleep(ms: number, wake: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (wake.aborted) return resolve();
    // setTimeout fires at once for delays past 2^31-1 ms; a longer sleep ends only by waking.
    const timer = ms <= 0x7fffffff ? setTimeout(done, ms) : undefined;
    function done(): void { clearTimeout(timer); wake.removeEventListener('abort', done); resolve(); }
    wake.addEventListener('abort', done, { once: true });
  });
}

/** Runs until the signal aborts; resolves then. Rejects only when the initial snapshot fails. */
export async function runSchedulingLoop(cluster: SchedulerCluster, signal: AbortSignal, options: LoopOptions = {}): Promise<void> {
  const scheduler = options.scheduler ?? new Scheduler();
  const batchSize = options.batchSize ?? 256;
  const now = options.now ?? Date.now;
  const sleepFor = options.sleep ?? sleep;
  const queue = new SchedulingQueue({
    ...(options.backoff?.initialMs !== undefined ? { initialBackoffMs: options.backoff.initialMs } : {}),
    ...(options.backoff?.maxMs !== undefined ? { maxBackoffMs: options.backoff.maxMs } : {}),
    ...(options.maxInUnschedulableMs !== undefined ? { maxInUnschedulableMs: options.maxInUnschedulableMs } : {}),
  });
  const nodeViews = new Map<string, NodeView>();
  const report = (e: unknown): void => options.onError?.(e as Error);
  // Aborted by whatever may have made a pod due, so that a sleeping loop looks again.
  let wake = new AbortController();
  // abort() builds its DOMException reason on every call, even when aborted already: only the first one wakes.
  const wakeUp = (): void => { if (!wake.signal.aborted) wake.abort(); };
  const hint = (event: QueueEvent): void => { if (queue.onEvent(event, now()) > 0) wakeUp(); };

  const observePod = (pod: Pod, deleted: boolean): void => {
    const key = podKey(pod);
    const before = scheduler.table.boundPod(key);
    if (deleted || finished(pod)) {
      scheduler.podRemoved(key); queue.delete(key);
      if (before) hint({ type: 'assigned-pod-delete' });
      return;
    }
    // A Terminating pod keeps its node's resources and GPUs until it is removed, as in Kubernetes: its
    // containers may run for their whole grace period.
    if (pod.spec.nodeName) {
      const gpus = pod.metadata.annotations?.[ANNOTATION_ASSIGNED_GPUS];
      try { scheduler.podBound(pod, pod.spec.nodeName, gpus ? gpus.split(',') : []); } catch (e) { report(e); }
      queue.delete(key);
      // The loop's own bindings are recorded already (and hint on their outcome); this is someone else's.
      if (!before || before.nodeName !== pod.spec.nodeName) hint({ type: 'assigned-pod-add' });
      else if (!sameLabels(before.request.labels, pod.metadata.labels ?? {})) hint({ type: 'assigned-pod-update' });
      return;
    }
    if (pod.metadata.deletionTimestamp) { queue.delete(key); return; } // held by a finalizer: never placed
    queue.add(pod, key, now());
    wakeUp();
  };
  const observeNode = (node: Node): void => {
    const view = nodeView(node);
    const prev = nodeViews.get(node.metadata.name ?? '');
    const changed = prev ? nodeChanges(prev, view) : [];
    if (prev && changed.length === 0) return;
    scheduler.upsertNode(node);
    nodeViews.set(node.metadata.name ?? '', view);
    hint(prev ? { type: 'node-update', changed } : { type: 'node-add' });
  };
  const onEvent = (e: ClusterEvent): void => {
    try {
      if (e.kind === 'pod') observePod(e.pod, e.type === 'delete');
      else if (e.type === 'upsert') observeNode(e.node);
      else { scheduler.removeNode(e.name); nodeViews.delete(e.name); } // fewer nodes help no pod
    } catch (err) { report(err); }
  };

  // Watch first and hold events until the snapshot is applied, so no change between the two is lost;
  // replaying an event the snapshot already holds is harmless (upserts and deletes are idempotent).
  let held: ClusterEvent[] | null = [];
  cluster.watch((e) => { if (held) held.push(e); else onEvent(e); }, signal);
  const snap = await cluster.snapshot();
  for (const node of snap.nodes) {
    try { observeNode(node); } catch (e) { report(e); }
  }
  for (const pod of snap.pods) observePod(pod, false);
  for (const e of held) onEvent(e);
  held = null;
  const onAbort = (): void => wakeUp();
  signal.addEventListener('abort', onAbort, { once: true });

  try {
    while (!signal.aborted) {
      const batch: Pod[] = [];
      for (let t = now(); batch.length < batchSize;) {
        const pod = queue.pop(t);
        if (!pod) break;
        batch.push(pod);
      }
      if (batch.length === 0) {
        const due = queue.nextDue();
        wake = new AbortController();
        await sleepFor(due === undefined ? Infinity : Math.max(0, due - now()), wake.signal);
        continue;
      }
      if (options.registry) {
        const { registry } = options;
        const images = new Set(batch.flatMap((pod) => [...pod.spec.initContainers ?? [], ...pod.spec.containers].map((c) => c.image)));
        await Promise.all([...images].map(async (image) => scheduler.images.learn(image, await registry.lookup(image))));
      }
      // A pod whose claims keep it pending is retried after its back-off: claims bind without a queueing hint.
      const placeable: Pod[] = [];
      const original = new Map<Pod, Pod>();
      for (const pod of batch) {
        const verdict = cluster.volumes?.(pod) ?? { pod };
        if ('pod' in verdict) { placeable.push(verdict.pod); original.set(verdict.pod, pod); continue; }
        queue.backOff(pod, podKey(pod), now());
        cluster.reportUnschedulable(pod, `0/${scheduler.table.count} nodes are available: ${verdict.unschedulable}.`).catch(report);
      }
      const placements = scheduler.scheduleBatch(placeable).map((p) => ({ ...p, pod: original.get(p.pod) ?? p.pod }));
      // Failures are queued before any bind can deliver an event, so none is missed in between.
      const failedAt = now();
      for (const p of placements) {
        if (!p.nodeName) queue.failed(p.pod, podKey(p.pod), p.error !== undefined ? { error: p.error } : { reasons: p.reasons.map((r) => r.code) }, failedAt);
      }
      await Promise.all(placements.map(async (p) => {
        if (!p.nodeName) {
          options.onPlacement?.(p, 'unschedulable');
          try { await cluster.reportUnschedulable(p.pod, explain(p)); } catch (e) { report(e); }
          return;
        }
        let outcome: 'bound' | 'conflict' | 'error';
        try { outcome = await cluster.bind(p.pod, p.nodeName, p.gpuUuids, p.pod.metadata.resourceVersion); } catch (e) {
          report(e); outcome = 'error';
        }
        if (outcome === 'bound') {
          queue.delete(podKey(p.pod));
          hint({ type: 'assigned-pod-add' }); // a pod newly in place may be what a waiting pod's required affinity wants
        } else {
          // Undo the assumption (only ours: a competing bind's event may have replaced it), which may have been
          // what kept a pod of the same batch out. A conflict waits in flight for the newer version (its event
          // re-queues the pod); an error retries after the back-off.
          scheduler.unassume(p);
          hint({ type: 'assigned-pod-delete' });
          if (outcome === 'error') queue.backOff(p.pod, podKey(p.pod), now());
        }
        options.onPlacement?.(p, outcome);
      }));
    }
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
}
