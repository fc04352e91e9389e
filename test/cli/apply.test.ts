import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { inParallel } from '../../cli/apply.js';

test('inParallel keeps at most `limit` running and reports every outcome in the items\' order', async () => {
  let running = 0;
  let most = 0;
  const release: (() => void)[] = [];
  const reported: string[] = [];
  const items = Array.from({ length: 20 }, (_, i) => i);
  const done = inParallel(items, 4, async (i) => {
    running++;
    most = Math.max(most, running);
    await new Promise<void>((resolve) => release.push(resolve));
    running--;
    if (i === 7) throw new Error('seven');
    return i * 10;
  }, (i, outcome) => { reported.push(outcome.ok ? `${i}=${outcome.value}` : `${i}!${(outcome.error as Error).message}`); });
  // Finish the work last-started first, so that outcomes arrive out of order.
  while (reported.length < items.length) {
    await new Promise((resolve) => setImmediate(resolve));
    release.pop()?.();
  }
  await done;
  assert.is(most, 4);
  assert.equal(reported, items.map((i) => (i === 7 ? '7!seven' : `${i}=${i * 10}`)));
});

test('inParallel stops starting work once reporting throws, and rejects with that error', async () => {
  let started = 0;
  const items = Array.from({ length: 100 }, (_, i) => i);
  const run = inParallel(items, 2, async (i) => { started++; return i; }, (i) => { if (i === 3) throw new Error('stop'); });
  await run.then(() => assert.unreachable('it resolved'), (err: Error) => assert.is(err.message, 'stop'));
  assert.ok(started < 10, `started ${started}`);
});

test.run();
