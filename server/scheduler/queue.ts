// The active queue of the scheduling loop: pending pods keyed by pod key, taken in kube-scheduler's order
// (its PrioritySort plugin): higher spec.priority first, then the older creationTimestamp, then
// namespace/name so that equal pods come out in the same order on every member.
//
// A binary heap with lazy deletion: set() pushes a new entry, delete() only forgets the key, and pop() skips
// entries that are no longer the key's current one. Stale entries are dropped wholesale when they outnumber the
// live ones, so the heap stays within a constant factor of the queue.
import type { Pod } from '../../api-types/index.js';

interface Entry { key: string; pod: Pod; priority: number; created: number; name: string }

/** Whether `a` is tried before `b`. */
function before(a: Entry, b: Entry): boolean {
  if (a.priority !== b.priority) return a.priority > b.priority;
  if (a.created !== b.created) return a.created < b.created;
  return a.name < b.name;
}

function entryOf(key: string, pod: Pod): Entry {
  const created = Date.parse(pod.metadata.creationTimestamp ?? '');
  return {
    key, pod, priority: pod.spec.priority ?? 0,
    // A pod without a creation time (never stored) sorts after every stored one of its priority.
    created: Number.isNaN(created) ? Infinity : created,
    name: `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`,
  };
}

export class ActiveQueue {
  #current = new Map<string, Entry>();
  #heap: Entry[] = [];

  get size(): number { return this.#current.size; }
  has(key: string): boolean { return this.#current.has(key); }

  /** Queues the pod, replacing any version of it already queued. */
  set(key: string, pod: Pod): void {
    const e = entryOf(key, pod);
    this.#current.set(key, e);
    this.#push(e);
    if (this.#heap.length > 2 * this.#current.size + 64) this.#rebuild();
  }

  delete(key: string): void { this.#current.delete(key); }

  /** Removes and returns the first pod in scheduling order. */
  pop(): Pod | undefined {
    while (this.#heap.length > 0) {
      const top = this.#heap[0]!;
      const last = this.#heap.pop()!;
      if (this.#heap.length > 0) { this.#heap[0] = last; this.#down(0); }
      if (this.#current.get(top.key) === top) { this.#current.delete(top.key); return top.pod; }
    }
    return undefined;
  }

  #push(e: Entry): void {
    const h = this.#heap;
    let i = h.length;
    h.push(e);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(e, h[parent]!)) break;
      h[i] = h[parent]!; i = parent;
    }
    h[i] = e;
  }

  #down(i: number): void {
    const h = this.#heap; const e = h[i]!; const n = h.length;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      if (child + 1 < n && before(h[child + 1]!, h[child]!)) child++;
      if (!before(h[child]!, e)) break;
      h[i] = h[child]!; i = child;
    }
    h[i] = e;
  }

  #rebuild(): void {
    this.#heap = [...this.#current.values()];
    for (let i = (this.#heap.length >> 1) - 1; i >= 0; i--) this.#down(i);
  }
}
