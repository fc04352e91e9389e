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
// Retries: an unschedulable pod waits out its back-off, or less when a change that can help it happens: a node
// added or changed in what scheduling reads, a bound pod deleted or finished, a pod newly bound (helps required
// pod affinity), a bound pod relabelled (helps required pod affinity or anti-affinity). Nothing else (a pending
// pod's churn, a node's heartbeat or usage, a node leaving) retries it. A pod that cannot be placed whatever
// the cluster does (malformed, or placed where the table cannot record it) waits for a new version of itself.
//
// Order: each batch takes the active pods in kube-scheduler's order (./queue.ts: priority, then age), so a
// freed resource goes to the pod that has the first claim on it, whatever order the pods arrived or retried in.
import { ANNOTATION_ASSIGNED_GPUS, podKey, stableJson } from './pod-request.js';
import { ActiveQueue } from './queue.js';
import { Scheduler, explain, type Placement } from './scheduler.js';
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

interface Waiting {
  pod: Pod;
  until: number;
  /** Declares required pod affinity (a newly bound pod may satisfy it) / anti-affinity (relabelled pods may). */
  affinity: boolean;
  antiAffinity: boolean;
}

const finished = (pod: Pod): boolean => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';

/** What scheduling reads of a node; equal strings mean an update cannot change any placement. */
export function schedulingView(node: Node): string {
  const s = node.status;
  return stableJson([
    node.metadata.labels ?? {}, node.spec?.unschedulable ?? false, node.spec?.taints ?? [],
    s?.allocatable ?? s?.capacity ?? {}, (s?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True'),
    s?.nodeInfo?.architecture ?? '', (s?.gpus ?? []).map((g) => [g.uuid, g.vendor, g.model, g.memory, g.health]),
  ]);
}

const anyPod = (): boolean => true;
const wantsPods = (w: Waiting): boolean => w.affinity;
const selectsPods = (w: Waiting): boolean => w.affinity || w.antiAffinity;

const sameLabels = (a: Record<string, string>, b: Record<string, string>): boolean =>
  Object.keys(a).length === Object.keys(b).length && Object.entries(a).every(([k, v]) => b[k] === v);

/** Runs until the signal aborts; resolves then. Rejects only when the initial snapshot fails. */
export async function runSchedulingLoop(cluster: SchedulerCluster, signal: AbortSignal, options: LoopOptions = {}): Promise<void> {
  const scheduler = options.scheduler ?? new Scheduler();
  const batchSize = options.batchSize ?? 256;
  const initialMs = options.backoff?.initialMs ?? 1000; const maxMs = options.backoff?.maxMs ?? 60000;
  const active = new ActiveQueue(); // pending pods to place
  const waiting = new Map<string, Waiting>(); // unschedulable pods in back-off
  // Pods that cannot be placed at their current resourceVersion; only another version of the pod re-queues them.
  const parked = new Map<string, string | undefined>();
  const attempts = new Map<string, number>();
  const nodeViews = new Map<string, string>(); // node name -> schedulingView
  let wakeUp: (() => void) | null = null;
  const wake = (): void => { const w = wakeUp; wakeUp = null; w?.(); };
  let timer: ReturnType<typeof setTimeout> | null = null;

  /** Moves the waiting pods the change can help to the active queue. */
  const retryWaiting = (helps: (w: Waiting) => boolean): void => {
    let moved = false;
    for (const [key, w] of waiting) {
      if (!helps(w)) continue;
      waiting.delete(key); active.set(key, w.pod); moved = true;
    }
    if (moved) wake();
  };
  const forget = (key: string): void => { active.delete(key); waiting.delete(key); parked.delete(key); attempts.delete(key); };
  const observePod = (pod: Pod, deleted: boolean): void => {
    const key = podKey(pod);
    const before = scheduler.table.boundPod(key);
    if (deleted || finished(pod)) {
      scheduler.podRemoved(key); forget(key);
      if (before) retryWaiting(anyPod); // its node has room again
      return;
    }
    // A Terminating pod keeps its node's resources and GPUs until it is removed, as in Kubernetes: its
    // containers may run for their whole grace period.
    if (pod.spec.nodeName) {
      const gpus = pod.metadata.annotations?.[ANNOTATION_ASSIGNED_GPUS];
      try { scheduler.podBound(pod, pod.spec.nodeName, gpus ? gpus.split(',') : []); } catch (e) { options.onError?.(e as Error); }
      forget(key);
      // The loop's own bindings are recorded already (and retry on their outcome); this is someone else's.
      if (!before || before.nodeName !== pod.spec.nodeName) retryWaiting(wantsPods);
      else if (!sameLabels(before.request.labels, pod.metadata.labels ?? {})) retryWaiting(selectsPods);
      return;
    }
    if (pod.metadata.deletionTimestamp) { forget(key); return; } // held by a finalizer: never placed
    if (parked.has(key) && parked.get(key) === pod.metadata.resourceVersion) return; // the same version again
    // A new or changed pending pod is worth a fresh attempt.
    parked.delete(key); waiting.delete(key);
    active.set(key, pod);
    wake();
  };
  const observeNode = (node: Node): void => {
    const view = schedulingView(node);
    if (nodeViews.get(node.metadata.name ?? '') === view) return;
    scheduler.upsertNode(node);
    nodeViews.set(node.metadata.name ?? '', view);
    retryWaiting(anyPod);
  };
  const onEvent = (e: ClusterEvent): void => {
    try {
      if (e.kind === 'pod') observePod(e.pod, e.type === 'delete');
      else if (e.type === 'upsert') observeNode(e.node);
      else { scheduler.removeNode(e.name); nodeViews.delete(e.name); } // fewer nodes help no pod
    } catch (err) { options.onError?.(err as Error); }
  };

  // Watch first and hold events until the snapshot is applied, so no change between the two is lost;
  // replaying an event the snapshot already holds is harmless (upserts and deletes are idempotent).
  let held: ClusterEvent[] | null = [];
  cluster.watch((e) => { if (held) held.push(e); else onEvent(e); }, signal);
  const snap = await cluster.snapshot();
  for (const node of snap.nodes) {
    try { observeNode(node); } catch (e) { options.onError?.(e as Error); }
  }
  for (const pod of snap.pods) observePod(pod, false);
  for (const e of held) onEvent(e);
  held = null;
  const onAbort = (): void => wake();
  signal.addEventListener('abort', onAbort, { once: true });

  // Both skip a pod whose newer version arrived while it was being placed: that version is queued already.
  const backOff = (pod: Pod): void => {
    const key = podKey(pod);
    if (active.has(key)) return;
    const n = (attempts.get(key) ?? 0) + 1;
    attempts.set(key, n);
    const affinity = pod.spec.affinity;
    waiting.set(key, {
      pod, until: Date.now() + Math.min(maxMs, initialMs * 2 ** (n - 1)),
      affinity: !!affinity?.podAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.length,
      antiAffinity: !!affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.length,
    });
  };
  const park = (pod: Pod): void => {
    const key = podKey(pod);
    if (!active.has(key)) parked.set(key, pod.metadata.resourceVersion);
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
      while (batch.length < batchSize) {
        const pod = active.pop();
        if (!pod) break;
        batch.push(pod);
      }
      const placements = scheduler.scheduleBatch(batch);
      await Promise.all(placements.map(async (p) => {
        if (!p.nodeName) {
          if (p.error) park(p.pod); else backOff(p.pod);
          options.onPlacement?.(p, 'unschedulable');
          try { await cluster.reportUnschedulable(p.pod, explain(p)); } catch (e) { options.onError?.(e as Error); }
          return;
        }
        let outcome: 'bound' | 'conflict' | 'error';
        try { outcome = await cluster.bind(p.pod, p.nodeName, p.gpuUuids, p.pod.metadata.resourceVersion); } catch (e) {
          options.onError?.(e as Error); outcome = 'error';
        }
        if (outcome === 'bound') {
          retryWaiting(wantsPods); // a pod newly in place may be what a waiting pod's required affinity wants
        } else {
          // Undo the assumption (only ours: a competing bind's event may have replaced it); a conflict waits
          // for the newer version (its event re-queues the pod).
          scheduler.unassume(p);
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
