// The one polling helper: what counts as "not yet", what a failure says, and StopWaiting.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StopWaiting, eventually } from './eventually.js';

test('returns the first value that is neither undefined nor false; errors mean "not yet"', async () => {
  let n = 0;
  const value = await eventually('the third check', () => {
    n++;
    if (n === 1) return false;
    if (n === 2) throw new Error('not listening yet');
    return n === 3 ? { n } : undefined;
  }, { everyMs: 1 });
  assert.equal(value, { n: 3 });
});

test('giving up names what was awaited, the last error and the detail', async () => {
  try {
    await eventually('a miracle', () => { throw new Error('still nothing'); }, { limitMs: 30, everyMs: 5, detail: () => 'output: none' });
    assert.unreachable('eventually returned');
  } catch (err) {
    assert.match((err as Error).message, /^gave up after 30 ms waiting for: a miracle; last error: still nothing; output: none$/);
  }
});

test('StopWaiting ends the wait at once', async () => {
  const started = Date.now();
  try {
    await eventually('a process that died', () => { throw new StopWaiting('it exited with 2'); }, { limitMs: 60_000, detail: () => 'output: usage' });
    assert.unreachable('eventually returned');
  } catch (err) {
    assert.instance(err, StopWaiting);
    assert.match((err as Error).message, /^stopped waiting for: a process that died: it exited with 2; output: usage$/);
  }
  assert.ok(Date.now() - started < 30_000, 'not after the limit');
});

test.run();
