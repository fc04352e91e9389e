// The scheduling loop: keeps a Scheduler's NodeTable in step with the cluster, places pending pods in batches,
// binds them with optimistic concurrency and retries the ones that do not fit.
//
// Contract with the cluster (SchedulerCluster):
// - watch() then snapshot(): every change after the snapshot is delivered as an event (some before it may be
//   delivered too).
// - bind() succeeds only when the pod's resourceVersion is still current; otherwise 'conflict', and the loop
//   waits for the newer version (delivered as an event) before placing the pod again.
// - a bound pod appears as an event with spec.nodeName; the loop counts its usage from then on.
import { ANNOTATION_ASSIGNED_GPUS, podKey } from './node-table.js';
import { Scheduler, explain, type Placement } from './scheduler.js';
import type { Node, Pod } from './types.js';

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
}

export interface LoopOptions {
  scheduler?: Scheduler;
  /** Pods placed per batch (each sees the ones placed before it). Default 256. */
  batchSize?: number;
  /** Back-off for unschedulable pods: initialMs doubled per failed attempt up to maxMs. Defaults 1000, 60000. */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Observes every decision (tests, metrics). */
  onPlacement?: (placement: Placement, outcome: 'bound' | 'conflict' | 'unschedulable' | 'error') => void;
  onError?: (error: Error) => void;
}

interface Waiting { pod: Pod; until: number }

const finished = (pod: Pod): boolean =>
  pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed' || !!pod.metadata.deletionTimestamp;

/** Runs until the signal aborts; resolves then. Rejects only when the initial snapshot fails. */
export async function runSchedulingLoop(cluster: SchedulerCluster, signal: AbortSignal, options: LoopOptions = {}): Promise<void> {
  const scheduler = options.scheduler ?? new Scheduler();
  const batchSize = options.batchSize ?? 256;
  const initialMs = options.backoff?.initialMs ?? 1000; const maxMs = options.backoff?.maxMs ?? 60000;
  const active = new Map<string, Pod>(); // pending pods to place, in arrival order
  const waiting = new Map<string, Waiting>(); // unschedulable pods in back-off
  const attempts = new Map<string, number>();
  let wakeUp: (() => void) | null = null;
  const wake = (): void => { const w = wakeUp; wakeUp = null; w?.(); };
  let timer: ReturnType<typeof setTimeout> | null = null;

  const retryWaiting = (): void => {
    if (waiting.size === 0) return;
    for (const [key, w] of waiting) active.set(key, w.pod);
    waiting.clear();
    wake();
  };
  const observePod = (pod: Pod, deleted: boolean): void => {
    const key = podKey(pod);
    if (deleted || finished(pod)) {
      scheduler.podRemoved(key); active.delete(key); waiting.delete(key); attempts.delete(key);
      retryWaiting(); // capacity was freed
      return;
    }
    if (pod.spec.nodeName) {
      const gpus = pod.metadata.annotations?.[ANNOTATION_ASSIGNED_GPUS];
      try { scheduler.podBound(pod, pod.spec.nodeName, gpus ? gpus.split(',') : []); } catch (e) { options.onError?.(e as Error); }
      active.delete(key); waiting.delete(key); attempts.delete(key);
      return;
    }
    // A new or changed pending pod is worth a fresh attempt.
    waiting.delete(key);
    active.set(key, pod);
    wake();
  };
  const onEvent = (e: ClusterEvent): void => {
    try {
      if (e.kind === 'pod') { observePod(e.pod, e.type === 'delete'); return; }
      if (e.type === 'upsert') scheduler.upsertNode(e.node); else scheduler.removeNode(e.name);
      retryWaiting();
    } catch (err) { options.onError?.(err as Error); }
  };

  // Watch first and hold events until the snapshot is applied, so no change between the two is lost;
  // replaying an event the snapshot already holds is harmless (upserts and deletes are idempotent).
  let held: ClusterEvent[] | null = [];
  cluster.watch((e) => { if (held) held.push(e); else onEvent(e); }, signal);
  const snap = await cluster.snapshot();
  for (const node of snap.nodes) {
    try { scheduler.upsertNode(node); } catch (e) { options.onError?.(e as Error); }
  }
  for (const pod of snap.pods) observePod(pod, false);
  for (const e of held) onEvent(e);
  held = null;
  const onAbort = (): void => wake();
  signal.addEventListener('abort', onAbort, { once: true });

  const backOff = (pod: Pod): void => {
    const key = podKey(pod);
    const n = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, n);
    waiting.set(key, { pod, until: Date.now() + Math.min(maxMs, initialMs * 2 ** (n - 1)) });
  };
  const armTimer = (): void => {
    if (timer) { clearTimeout(timer); timer = null; }
    if (waiting.size === 0 || signal.aborted) return;
    let next = Infinity;
    for (const w of waiting.values()) next = Math.min(next, w.until);
    timer = setTimeout(() => {
      timer = null;
      const now = Date.now();
      for (const [key, w] of waiting) if (w.until <= now) { waiting.delete(key); active.set(key, w.pod); }
      wake();
      armTimer();
    }, Math.max(0, next - Date.now()));
  };

  try {
    while (!signal.aborted) {
      if (active.size === 0) {
        armTimer();
        await new Promise<void>((resolve) => { wakeUp = resolve; });
        continue;
      }
      const batch: Pod[] = [];
      for (const [key, pod] of active) {
        active.delete(key); batch.push(pod);
        if (batch.length >= batchSize) break;
      }
      const placements = scheduler.scheduleBatch(batch);
      await Promise.all(placements.map(async (p) => {
        if (!p.nodeName) {
          backOff(p.pod);
          options.onPlacement?.(p, 'unschedulable');
          try { await cluster.reportUnschedulable(p.pod, explain(p)); } catch (e) { options.onError?.(e as Error); }
          return;
        }
        let outcome: 'bound' | 'conflict' | 'error';
        try { outcome = await cluster.bind(p.pod, p.nodeName, p.gpuUuids, p.pod.metadata.resourceVersion); } catch (e) {
          options.onError?.(e as Error); outcome = 'error';
        }
        const key = podKey(p.pod);
        if (outcome !== 'bound') {
          // Undo the assumption; a conflict waits for the newer version (its event re-queues the pod).
          if (scheduler.table.boundPod(key)) scheduler.podRemoved(key);
          if (outcome === 'error') backOff(p.pod);
        }
        options.onPlacement?.(p, outcome);
      }));
    }
  } finally {
    if (timer) clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}
