// The scheduling queue, as kube-scheduler's PriorityQueue (pkg/scheduler/backend/queue/scheduling_queue.go):
// every pending pod the loop knows is in exactly one of
// - activeQ: to be tried now, in kube-scheduler's order (its PrioritySort plugin): higher spec.priority first,
//   then the older creationTimestamp, then namespace/name so that equal pods come out in the same order on
//   every member;
// - podBackoffQ: waiting out its back-off (initialBackoffMs doubled per attempt up to maxBackoffMs), counted
//   from its last failure, before activeQ;
// - unschedulablePods: tried and found not to fit, with the reasons the nodes rejected it for. Only a cluster
//   event that can resolve one of those reasons (a queueing hint, RESOLVED_BY) moves it on, to podBackoffQ
//   while its back-off lasts, else to activeQ; after maxInUnschedulableMs without one it is flushed back all
//   the same, in case an event was missed or a reason is resolved by something no event names;
// - in flight: popped and being placed or bound, until the loop says how that went (or a newer version of the
//   pod arrives, which goes to activeQ as a pod in no sub-queue does).
//
// Pure: time is the `now` each call is given (milliseconds, assumed not to go backwards; if it does, pods are
// moved late, never lost); nothing here sleeps or sets a timer. The loop asks nextDue() when to come back.
import * as L from './layout.js';
import { canonicalJson } from '../../api-types/index.js';
import type { Node, Pod } from '../../api-types/index.js';

/** What a node update changed, of what scheduling reads (kube-scheduler's node ActionTypes, plus the node's
 * architecture, GPUs and image platforms, which flotilla's filters read). */
export type NodeChange = 'allocatable' | 'labels' | 'taints' | 'unschedulable' | 'conditions' | 'architecture' | 'gpus' | 'images';

/** What scheduling reads of a node, one canonical string per NodeChange: equal views mean an update changes
 * no placement (a heartbeat, a condition no filter reads). */
export type NodeView = Readonly<Record<NodeChange, string>>;

export function nodeView(node: Node): NodeView {
  const s = node.status;
  return {
    allocatable: canonicalJson(s?.allocatable ?? s?.capacity ?? {}),
    labels: canonicalJson(node.metadata.labels ?? {}),
    taints: canonicalJson(node.spec?.taints ?? []),
    unschedulable: String(node.spec?.unschedulable ?? false),
    conditions: String((s?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True')),
    architecture: s?.nodeInfo?.architecture ?? '',
    gpus: canonicalJson((s?.gpus ?? []).map((g) => [g.uuid, g.vendor, g.model, g.memory, g.health])),
    images: canonicalJson(s?.imagePlatforms ?? []),
  };
}

/** The parts of `next` that differ from `prev`. */
export function nodeChanges(prev: NodeView, next: NodeView): NodeChange[] {
  return (Object.keys(next) as NodeChange[]).filter((c) => prev[c] !== next[c]);
}

/** A cluster change that may make unschedulable pods fit (kube-scheduler's ClusterEvent). */
export type QueueEvent =
  | { type: 'node-add' }
  | { type: 'node-update'; changed: readonly NodeChange[] }
  /** A pod newly bound to a node (it may be what a required pod affinity wants). */
  | { type: 'assigned-pod-add' }
  /** A bound pod's labels changed (pod affinity and anti-affinity select on them). */
  | { type: 'assigned-pod-update' }
  /** A bound pod deleted, finished, or an assumed binding undone: its node's resources are free again. */
  | { type: 'assigned-pod-delete' };

// One bit per thing an event can change; an event is the set of its bits.
const NODE_ADD = 1;
const CHANGE_BIT: Record<NodeChange, number> = {
  allocatable: 1 << 1, labels: 1 << 2, taints: 1 << 3, unschedulable: 1 << 4, conditions: 1 << 5, architecture: 1 << 6, gpus: 1 << 7,
  images: 1 << 8,
};
const POD_ADD = 1 << 9;
const POD_UPDATE = 1 << 10;
const POD_DELETE = 1 << 11;
const EVENT_BITS = 12;
const ANY_EVENT = (1 << EVENT_BITS) - 1;

function eventBits(e: QueueEvent): number {
  switch (e.type) {
    case 'node-add': return NODE_ADD;
    case 'node-update': return e.changed.reduce((m, c) => m | CHANGE_BIT[c], 0);
    case 'assigned-pod-add': return POD_ADD;
    case 'assigned-pod-update': return POD_UPDATE;
    case 'assigned-pod-delete': return POD_DELETE;
  }
}

const { labels: LABELS, allocatable: ALLOCATABLE, taints: TAINTS, gpus: GPUS } = CHANGE_BIT;
/** Per rejection reason (R_* of the placement core), the events that can resolve it on some node: the
 * EventsToRegister of the kube-scheduler plugin that rejects for it. A new node can resolve anything; a reason
 * missing here, any event. */
const RESOLVED_BY: Readonly<Record<number, number>> = {
  [L.R_NOT_READY]: NODE_ADD | CHANGE_BIT.conditions,
  [L.R_UNSCHEDULABLE]: NODE_ADD | CHANGE_BIT.unschedulable,
  // The node's architecture is its kubernetes.io/arch label, else status.nodeInfo.architecture; a node newly
  // holding an image for another platform widens what the image is known to run on.
  [L.R_ARCH]: NODE_ADD | LABELS | CHANGE_BIT.architecture | CHANGE_BIT.images,
  [L.R_NODE_SELECTOR]: NODE_ADD | LABELS,
  [L.R_NODE_AFFINITY]: NODE_ADD | LABELS,
  [L.R_TAINT]: NODE_ADD | TAINTS,
  [L.R_PODS]: NODE_ADD | ALLOCATABLE | POD_DELETE,
  [L.R_CPU]: NODE_ADD | ALLOCATABLE | POD_DELETE,
  [L.R_MEMORY]: NODE_ADD | ALLOCATABLE | POD_DELETE,
  [L.R_HOST_PORT]: NODE_ADD | POD_DELETE,
  // Node labels place nodes in topology domains; pods' labels are what the terms select.
  [L.R_POD_AFFINITY]: NODE_ADD | LABELS | POD_ADD | POD_UPDATE,
  [L.R_POD_ANTI_AFFINITY]: NODE_ADD | LABELS | POD_UPDATE | POD_DELETE,
  // GPUs are counted among the free ones (a bound pod holds its GPUs); a label turns GPU sharing on.
  [L.R_GPU_COUNT]: NODE_ADD | GPUS | LABELS | POD_DELETE,
  [L.R_GPU_MODEL]: NODE_ADD | GPUS | LABELS | POD_DELETE,
  [L.R_GPU_MEMORY]: NODE_ADD | GPUS | LABELS | POD_DELETE,
  [L.R_GPU_ID_ABSENT]: NODE_ADD | GPUS,
  [L.R_GPU_ID_HELD]: GPUS | LABELS | POD_DELETE,
};

/** Why an attempt left the pod unplaced: the reasons nodes rejected it for (none when there are no nodes), or
 * an error about the pod itself (malformed, or not recordable where it was placed), which no event resolves. */
export type Failure = { reasons: readonly number[] } | { error: string };

export interface QueueOptions {
  /** kube-scheduler's podInitialBackoffSeconds, podMaxBackoffSeconds (defaults 1 s, 10 s). */
  initialBackoffMs?: number;
  maxBackoffMs?: number;
  /** kube-scheduler's podMaxInUnschedulablePodsDuration (default 5 min). */
  maxInUnschedulableMs?: number;
}

export type QueueState = 'active' | 'backoff' | 'unschedulable' | 'in-flight';

interface Entry {
  key: string;
  pod: Pod;
  state: QueueState;
  /** Times popped (kube-scheduler's Attempts); the back-off grows with it. */
  attempts: number;
  /** When the pod was queued (never tried) or last failed; back-off and the unschedulable flush count from it. */
  since: number;
  /** The scheduling cycle it was popped in (kube-scheduler's podSchedulingCycle). */
  cycle: number;
  /** While unschedulable: what it failed for, and the event bits that can resolve that. */
  failure: Failure | null;
  resolvedBy: number;
}

/** What the queue shows of a pod (tests, diagnostics). */
export interface QueuedPod {
  key: string;
  pod: Pod;
  attempts: number;
  /** backoff: when it moves to activeQ; unschedulable: when it is flushed back. */
  due?: number;
  failure?: Failure;
}

export class SchedulingQueue {
  readonly initialBackoffMs: number;
  readonly maxBackoffMs: number;
  readonly maxInUnschedulableMs: number;
  readonly #entries = new Map<string, Entry>();
  readonly #active = new Heap<ActiveItem>(activeBefore);
  readonly #backoff = new Heap<BackoffItem>((a, b) => a.due < b.due);
  /** In the order they entered it, which is `since` order while the clock does not go backwards. */
  readonly #unschedulable = new Map<string, Entry>();
  /** Unschedulable pods per event bit that can resolve them: an event no waiting pod cares for costs nothing. */
  readonly #interested = new Array<number>(EVENT_BITS).fill(0);
  #cycle = 0;
  /** The cycle of the last event (kube-scheduler's moveRequestCycle): a pod popped in or before it that fails
   * may have missed the event, and goes to podBackoffQ instead of unschedulablePods. */
  #moveRequestCycle = -1;

  constructor(options: QueueOptions = {}) {
    this.initialBackoffMs = options.initialBackoffMs ?? 1000;
    this.maxBackoffMs = options.maxBackoffMs ?? 10_000;
    this.maxInUnschedulableMs = options.maxInUnschedulableMs ?? 5 * 60_000;
  }

  get activeCount(): number { return this.#active.size; }

  /**
   * A pending pod, new or a newer version: a new pod is queued to activeQ; a queued one is replaced where it is,
   * except that an unschedulable pod whose spec or metadata changed (not only its status) is moved on, and an
   * in-flight one goes to activeQ.
   */
  add(pod: Pod, key: string, now: number): void {
    const e = this.#entries.get(key);
    if (!e) {
      const entry: Entry = { key, pod, state: 'active', attempts: 0, since: now, cycle: -1, failure: null, resolvedBy: 0 };
      this.#entries.set(key, entry);
      this.#toActive(entry);
      return;
    }
    const rv = pod.metadata.resourceVersion;
    if (rv !== undefined && rv === e.pod.metadata.resourceVersion) return; // the same version again
    const old = e.pod;
    e.pod = pod;
    switch (e.state) {
      case 'active': this.#toActive(e); break;
      case 'backoff': this.#backoff.set({ key, entry: e, due: this.#backoffDue(e) }); break;
      case 'in-flight': this.#toActive(e); break;
      case 'unschedulable': if (updatedForScheduling(old, pod)) this.#moveOn(e, now); break;
    }
  }

  /** Forgets the pod (deleted, bound, finished, or being deleted), wherever it is. */
  delete(key: string): void {
    const e = this.#entries.get(key);
    if (!e) return;
    this.#leave(e);
    this.#entries.delete(key);
  }

  /** The next pod to try, after moving the pods due by `now`; it is in flight until failed(), backOff() or
   * delete() (a conflicting bind leaves it in flight: the newer version that beat it re-queues it). */
  pop(now: number): Pod | undefined {
    this.#flush(now);
    const item = this.#active.pop();
    if (!item) return undefined;
    const e = item.entry;
    e.state = 'in-flight'; e.attempts++; e.cycle = ++this.#cycle;
    return e.pod;
  }

  /** An attempt left the pod unplaced: to unschedulablePods, or podBackoffQ when an event came while it was in
   * flight. Ignored unless this very version is in flight (a newer one is queued already, or it is gone). */
  failed(pod: Pod, key: string, failure: Failure, now: number): void {
    const e = this.#inFlight(pod, key);
    if (!e) return;
    e.since = now;
    if (this.#moveRequestCycle >= e.cycle) { this.#toBackoff(e); return; }
    e.failure = failure;
    e.resolvedBy = 'error' in failure ? 0 : failure.reasons.reduce((m, r) => m | (RESOLVED_BY[r] ?? ANY_EVENT), NODE_ADD);
    e.state = 'unschedulable';
    this.#unschedulable.set(key, e);
    this.#count(e.resolvedBy, 1);
  }

  /** Binding the placed pod failed (not a conflict): it retries after its back-off, whatever happens. */
  backOff(pod: Pod, key: string, now: number): void {
    const e = this.#inFlight(pod, key);
    if (!e) return;
    e.since = now;
    this.#toBackoff(e);
  }

  /** A queueing hint: moves the unschedulable pods the event can help on. Returns how many moved. */
  onEvent(event: QueueEvent, now: number): number {
    this.#moveRequestCycle = this.#cycle;
    const bits = eventBits(event);
    let wanted = false;
    for (let b = 0; b < EVENT_BITS; b++) if ((bits & (1 << b)) !== 0 && this.#interested[b]! > 0) wanted = true;
    if (!wanted) return 0;
    let moved = 0;
    for (const e of this.#unschedulable.values()) { // #moveOn deletes the current entry only, which a Map allows
      if ((e.resolvedBy & bits) === 0) continue;
      this.#moveOn(e, now); moved++;
    }
    return moved;
  }

  /** When the next pod moves to activeQ by itself (ms), if any waits; nothing moves before it but events. */
  nextDue(): number | undefined {
    let due = this.#backoff.peek()?.due;
    for (const e of this.#unschedulable.values()) {
      const flush = e.since + this.maxInUnschedulableMs;
      if (due === undefined || flush < due) due = flush;
      break; // the oldest entry is the first
    }
    return due;
  }

  /** The three sub-queues and the pods in flight, for tests and diagnostics: activeQ in pop order, podBackoffQ
   * by due time, unschedulablePods in the order they became so. */
  snapshot(now: number): Record<QueueState, QueuedPod[]> {
    this.#flush(now);
    const view = (e: Entry, due?: number): QueuedPod => ({
      key: e.key, pod: e.pod, attempts: e.attempts, ...(due !== undefined ? { due } : {}), ...(e.failure ? { failure: e.failure } : {}),
    });
    return {
      active: this.#active.sorted().map((i) => view(i.entry)),
      backoff: this.#backoff.sorted().map((i) => view(i.entry, i.due)),
      unschedulable: [...this.#unschedulable.values()].map((e) => view(e, e.since + this.maxInUnschedulableMs)),
      'in-flight': [...this.#entries.values()].filter((e) => e.state === 'in-flight').map((e) => view(e)),
    };
  }

  /** kube-scheduler's calculateBackoffDuration: initial, doubled per attempt after the first, capped. */
  backoffMs(attempts: number): number {
    let d = this.initialBackoffMs;
    for (let i = 1; i < attempts; i++) {
      if (d > this.maxBackoffMs - d) return this.maxBackoffMs;
      d += d;
    }
    return Math.min(d, this.maxBackoffMs);
  }

  #backoffDue(e: Entry): number { return e.since + this.backoffMs(e.attempts); }

  #inFlight(pod: Pod, key: string): Entry | undefined {
    const e = this.#entries.get(key);
    return e && e.state === 'in-flight' && e.pod === pod ? e : undefined;
  }

  /** Out of unschedulablePods: to podBackoffQ while its back-off lasts, else activeQ. */
  #moveOn(e: Entry, now: number): void {
    if (this.#backoffDue(e) > now) this.#toBackoff(e); else this.#toActive(e);
  }

  #toActive(e: Entry): void {
    this.#leave(e);
    e.state = 'active';
    this.#active.set(activeItem(e));
  }

  #toBackoff(e: Entry): void {
    this.#leave(e);
    e.state = 'backoff';
    this.#backoff.set({ key: e.key, entry: e, due: this.#backoffDue(e) });
  }

  /** Takes the entry out of its sub-queue (it stays known). */
  #leave(e: Entry): void {
    if (e.state === 'active') this.#active.delete(e.key);
    else if (e.state === 'backoff') this.#backoff.delete(e.key);
    else if (e.state === 'unschedulable') {
      this.#unschedulable.delete(e.key);
      this.#count(e.resolvedBy, -1);
      e.failure = null; e.resolvedBy = 0;
    }
  }

  #count(bits: number, by: 1 | -1): void {
    for (let b = 0; b < EVENT_BITS; b++) if ((bits & (1 << b)) !== 0) this.#interested[b]! += by;
  }

  /** kube-scheduler's flushBackoffQCompleted and flushUnschedulablePodsLeftover, at `now`. */
  #flush(now: number): void {
    for (let top = this.#backoff.peek(); top && top.due <= now; top = this.#backoff.peek()) this.#toActive(top.entry);
    for (const e of this.#unschedulable.values()) {
      if (e.since + this.maxInUnschedulableMs > now) break;
      this.#moveOn(e, now);
    }
  }
}

/** kube-scheduler's isPodUpdated: whether the new version differs in more than its status and version. */
function updatedForScheduling(old: Pod, pod: Pod): boolean {
  const strip = (p: Pod): unknown => {
    const { resourceVersion: _rv, ...metadata } = p.metadata;
    return { ...p, metadata, status: undefined };
  };
  return canonicalJson(strip(old)) !== canonicalJson(strip(pod));
}

interface ActiveItem { key: string; entry: Entry; priority: number; created: number; name: string }
interface BackoffItem { key: string; entry: Entry; due: number }

function activeItem(entry: Entry): ActiveItem {
  const pod = entry.pod;
  const created = Date.parse(pod.metadata.creationTimestamp ?? '');
  return {
    key: entry.key, entry, priority: pod.spec.priority ?? 0,
    // A pod without a creation time (never stored) sorts after every stored one of its priority.
    created: Number.isNaN(created) ? Infinity : created,
    name: `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`,
  };
}

/** Whether `a` is tried before `b`. */
function activeBefore(a: ActiveItem, b: ActiveItem): boolean {
  if (a.priority !== b.priority) return a.priority > b.priority;
  if (a.created !== b.created) return a.created < b.created;
  return a.name < b.name;
}

/**
 * A binary heap of items keyed by `key`, with lazy deletion: set() pushes a new item, delete() only forgets the
 * key, and pop()/peek() skip items that are no longer their key's current one. Stale items are dropped
 * wholesale when they outnumber the live ones, so the heap stays within a constant factor of its size.
 */
class Heap<T extends { key: string }> {
  #current = new Map<string, T>();
  #heap: T[] = [];

  constructor(private readonly before: (a: T, b: T) => boolean) {}

  get size(): number { return this.#current.size; }
  has(key: string): boolean { return this.#current.has(key); }

  /** Adds the item, replacing any item of its key. */
  set(item: T): void {
    this.#current.set(item.key, item);
    this.#push(item);
    if (this.#heap.length > 2 * this.#current.size + 64) this.#rebuild();
  }

  delete(key: string): void { this.#current.delete(key); }

  peek(): T | undefined {
    while (this.#heap.length > 0) {
      const top = this.#heap[0]!;
      if (this.#current.get(top.key) === top) return top;
      this.#removeTop();
    }
    return undefined;
  }

  /** Removes and returns the first item. */
  pop(): T | undefined {
    const top = this.peek();
    if (top) { this.#removeTop(); this.#current.delete(top.key); }
    return top;
  }

  /** The items in order (a copy; O(n log n)). */
  sorted(): T[] {
    return [...this.#current.values()].sort((a, b) => (this.before(a, b) ? -1 : this.before(b, a) ? 1 : 0));
  }

  #removeTop(): void {
    const last = this.#heap.pop()!;
    if (this.#heap.length > 0) { this.#heap[0] = last; this.#down(0); }
  }

  #push(e: T): void {
    const h = this.#heap;
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.before(e, h[parent]!)) break;
      h[i] = h[parent]!; i = parent;
    }
    h[i] = e;
  }

  #down(i: number): void {
    const h = this.#heap; const e = h[i]!; const n = h.length;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && this.before(h[child + 1]!, h[child]!)) child++;
      if (!this.before(h[child]!, e)) break;
      h[i] = h[child]!; i = child;
    }
    h[i] = e;
  }

  #rebuild(): void {
    this.#heap = [...this.#current.values()];
    for (let i = (this.#heap.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }
}
