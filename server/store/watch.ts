import { GoneError } from './types.js';
import type { ResourceKey, WatchEvent } from './types.js';

export type WatchListener = (event: WatchEvent) => void;

interface Subscription {
  resource: ResourceKey;
  namespace: string | undefined;
  listener: WatchListener;
  /** Called when the hub ends the watch itself (shutdown, state replaced). */
  onClose?: () => void;
}

/**
 * Fans committed changes out to watchers and keeps a bounded window of recent changes so that a watcher can
 * resume from a revision it has seen. The window lives in memory only: after a restart it starts empty at the
 * store's revision, and older resumes get 410 Gone (clients then list again), as with a compacted etcd.
 *
 * Invariant: every event in `#history` has revision > `#compacted`; a watch from revision R replays exactly the
 * events with revision > R when R >= #compacted.
 */
export class WatchHub {
  #history: WatchEvent[] = [];
  #head = 0; // index of the oldest retained event in #history (a ring once full)
  #compacted: number;
  #current: number;
  readonly #subs = new Set<Subscription>();

  constructor(revision: number, readonly window: number) {
    this.#compacted = revision;
    this.#current = revision;
  }

  get watcherCount(): number {
    return this.#subs.size;
  }

  publish(events: WatchEvent[], revision: number): void {
    for (const e of events) {
      if (this.#history.length < this.window) this.#history.push(e);
      else {
        this.#compacted = this.#history[this.#head]!.revision;
        this.#history[this.#head] = e;
        this.#head = (this.#head + 1) % this.window;
      }
      for (const s of this.#subs) if (matches(s, e)) s.listener(e);
    }
    this.#current = revision;
  }

  /**
   * Calls `listener` for every change after `fromRevision` (replayed history first, then live), in revision
   * order, synchronously, until the returned stop function is called or the hub ends the watch (`onClose`). Throws GoneError when the history no
   * longer reaches back to `fromRevision`.
   */
  watch(resource: ResourceKey, namespace: string | undefined, fromRevision: number, listener: WatchListener, onClose?: () => void): () => void {
    if (fromRevision < this.#compacted) throw new GoneError(fromRevision, this.#compacted);
    const sub: Subscription = { resource, namespace, listener, ...(onClose ? { onClose } : {}) };
    if (fromRevision < this.#current) {
      const n = this.#history.length;
      for (let i = 0; i < n; i++) {
        const e = this.#history[(this.#head + i) % n]!;
        if (e.revision > fromRevision && matches(sub, e)) listener(e);
      }
    }
    this.#subs.add(sub);
    return () => { this.#subs.delete(sub); };
  }

  closeAll(): void {
    for (const s of this.#subs) s.onClose?.();
    this.#subs.clear();
  }

  /** Forgets all history (after the state was replaced wholesale) and ends every watch. */
  reset(revision: number): void {
    this.closeAll();
    this.#history = [];
    this.#head = 0;
    this.#compacted = revision;
    this.#current = revision;
  }
}

function matches(s: Subscription, e: WatchEvent): boolean {
  return s.resource === e.resource && (s.namespace === undefined || s.namespace === e.namespace);
}
