/**
 * The one way a test waits: polls `check` until it returns something other than undefined (or false), and
 * returns that. `limitMs` is a bound that only a broken system reaches, never a timing claim: loaded machines
 * are slow, so bounds are generous and the failure message carries the last thing seen (`detail`, or the last
 * error `check` threw) so a failure explains itself. An error thrown by `check` means "not yet", except a
 * `StopWaiting`, which ends the wait at once (the process being waited on has died).
 */
export interface EventuallyOptions {
  /** Give up after this long (default 30 s). */
  limitMs?: number;
  /** Pause between checks (default 50 ms). */
  everyMs?: number;
  /** Called once on failure, appended to the message (e.g. the process output). */
  detail?: () => string;
}

/** Thrown by a check when waiting longer cannot help; `eventually` rethrows it with what it was waiting for. */
export class StopWaiting extends Error {}

export async function eventually<T>(what: string, check: () => Promise<T | undefined | false> | T | undefined | false, options: EventuallyOptions | number = {}): Promise<T> {
  const { limitMs = 30_000, everyMs = 50, detail } = typeof options === 'number' ? { limitMs: options } : options;
  const deadline = Date.now() + limitMs;
  const tail = () => (detail ? `; ${detail()}` : '');
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
    } catch (e) {
      if (e instanceof StopWaiting) throw new StopWaiting(`stopped waiting for: ${what}: ${e.message}${tail()}`);
      lastError = e;
    }
    if (Date.now() > deadline) {
      const why = lastError === undefined ? '' : `; last error: ${lastError instanceof Error ? lastError.message : String(lastError)}`;
      throw new Error(`gave up after ${limitMs} ms waiting for: ${what}${why}${tail()}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
