import type { Test } from 'uvu';

let setUpFailed = false;
process.on('exit', () => { if (setUpFailed) process.exitCode = 1; });

/**
 * Registers a suite's set-up (`start`, as its `before` hook) and its undoing (`stop`, as its `after` hook).
 * uvu 0.5 runs `after` hooks when a `before` hook throws, but drops the error: the suite's tests silently do
 * not run and the process exits 0. Here the error is printed and fails the process (run-tests also counts the
 * tests that did not run). `stop` runs whether `start` finished or not, so it copes with a half-done set-up
 * (optional chaining on what `start` assigns); processes `start` spawns are `ownChild`ren as well, so they die
 * with the test process whatever happens.
 */
export function setUp<T>(test: Test<T>, start: () => Promise<void> | void, stop: () => Promise<void> | void): void {
  test.before(async () => {
    try {
      await start();
    } catch (err) {
      setUpFailed = true;
      console.error(`\nset-up failed: ${err instanceof Error ? err.stack ?? err.message : String(err)}`);
      throw err;
    }
  });
  test.after(async () => { await stop(); });
}

/**
 * Registers an `after.each` hook that stops what a test started, whether the test passed or not (uvu runs
 * `after.each` hooks when a test throws), and returns the function a test (or its set-up helper) hands each
 * stop to. A test that fails half-way then leaves no loop, worker or server running that would keep the
 * process from exiting. Stops run newest first and must tolerate having run already.
 */
export function stopAfterEach<T>(test: Test<T>): (stop: () => unknown) => void {
  const stops: (() => unknown)[] = [];
  test.after.each(async () => {
    for (const stop of stops.splice(0).reverse()) await stop();
  });
  return (stop) => { stops.push(stop); };
}
