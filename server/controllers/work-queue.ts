/**
 * A work queue of object keys, as client-go's: a key is queued at most once; a key added while it is being
 * processed is processed again afterwards (never by two workers at once); failures are retried after an
 * exponential back-off per key, up to `maxRetries`, after which the key is dropped until it is added
 * again (the periodic resync re-adds every key, so nothing is lost for good).
 *
 * Time is the injected clock (milliseconds): delayed keys become ready when `promote(now)` finds them due.
 * The queue's size is bounded by the number of distinct keys, which is bounded by the objects in the store.
 */
export class WorkQueue {
  readonly #ready: string[] = [];
  readonly #queued = new Set<string>();
  readonly #processing = new Set<string>();
  /** Keys added again while processing: re-queued by done(). */
  readonly #dirty = new Set<string>();
  /** Key -> due time; a key keeps its earliest due time. */
  readonly #delayed = new Map<string, number>();
  readonly #failures = new Map<string, number>();
  #wake: (() => void) | undefined;
  #shutDown = false;

  constructor(readonly backoff: { baseMs: number; maxMs: number; maxRetries: number } = { baseMs: 5, maxMs: 60_000, maxRetries: 15 }) {}

  get length(): number {
    return this.#ready.length;
  }

  /** Nothing ready and nothing being processed (delayed keys may remain). */
  get idle(): boolean {
    return this.#ready.length === 0 && this.#processing.size === 0;
  }

  add(key: string): void {
    if (this.#processing.has(key)) {
      this.#dirty.add(key);
      return;
    }
    if (this.#queued.has(key)) return;
    this.#queued.add(key);
    this.#ready.push(key);
    this.#wake?.();
  }

  /** Queues `key` once the clock reaches `dueMs`. */
  addAt(key: string, dueMs: number): void {
    const current = this.#delayed.get(key);
    if (current === undefined || dueMs < current) this.#delayed.set(key, dueMs);
  }

  /** Moves due delayed keys to the ready queue. Returns the earliest remaining due time, if any. */
  promote(nowMs: number): number | undefined {
    let next: number | undefined;
    for (const [key, due] of this.#delayed) {
      if (due <= nowMs) {
        this.#delayed.delete(key);
        this.add(key);
      } else if (next === undefined || due < next) {
        next = due;
      }
    }
    return next;
  }

  /** Takes the next ready key and marks it processing; undefined when none is ready. */
  take(): string | undefined {
    const key = this.#ready.shift();
    if (key === undefined) return undefined;
    this.#queued.delete(key);
    this.#processing.add(key);
    return key;
  }

  /** Ends processing of `key`; a key added meanwhile is queued again. */
  done(key: string): void {
    this.#processing.delete(key);
    if (this.#dirty.delete(key)) this.add(key);
  }

  /** Forgets the failure history of `key` (after a successful reconcile). */
  forget(key: string): void {
    this.#failures.delete(key);
  }

  /** Schedules a retry after the key's next back-off; false (and the key is dropped) once retries are exhausted. */
  retry(key: string, nowMs: number): boolean {
    const failures = (this.#failures.get(key) ?? 0) + 1;
    if (failures > this.backoff.maxRetries) {
      this.#failures.delete(key);
      return false;
    }
    this.#failures.set(key, failures);
    this.addAt(key, nowMs + Math.min(this.backoff.maxMs, this.backoff.baseMs * 2 ** (failures - 1)));
    return true;
  }

  /**
   * Resolves when a key is added or the queue is shut down (at once when a key is ready already, or after
   * shutDown). One waiter at a time: the queue has one worker.
   */
  wait(): Promise<void> {
    if (this.#ready.length > 0 || this.#shutDown) return Promise.resolve();
    return new Promise((resolve) => {
      this.#wake = () => {
        this.#wake = undefined;
        resolve();
      };
    });
  }

  /** Wakes the worker for good: its loop is ending (client-go's ShutDown). */
  shutDown(): void {
    this.#shutDown = true;
    this.#wake?.();
  }
}
