import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { WorkQueue } from '../../server/controllers/work-queue.js';
import { EventRecorder } from '../../server/controllers/events.js';
import { ControllerManager } from '../../server/controllers/manager.js';
import type { Controller } from '../../server/controllers/manager.js';
import { objectKey } from '../../server/controllers/cluster-objects.js';
import { ClusterSim, R } from './cluster-sim.js';

test('WorkQueue: a key is queued once, and a key added while processing is processed again afterwards', () => {
  const q = new WorkQueue();
  q.add('a');
  q.add('a');
  q.add('b');
  assert.is(q.length, 2);
  assert.is(q.take(), 'a');
  q.add('a');
  assert.is(q.length, 1, 'a is being processed: not queued twice');
  assert.is(q.take(), 'b');
  assert.is(q.take(), undefined, 'a is not handed out while it is being processed');
  q.done('a');
  assert.is(q.take(), 'a');
  q.done('a');
  q.done('b');
  assert.ok(q.idle);
});

test('WorkQueue: retries back off exponentially per key and give up after maxRetries', () => {
  const q = new WorkQueue({ baseMs: 10, maxMs: 50, maxRetries: 4 });
  const dues: number[] = [];
  for (let i = 0; i < 4; i++) {
    assert.ok(q.retry('k', 1000));
    let t = 1000;
    while (q.promote(t) !== undefined) t++;
    dues.push(t - 1000);
    assert.is(q.take(), 'k');
    q.done('k');
  }
  assert.equal(dues, [10, 20, 40, 50]);
  assert.is(q.retry('k', 1000), false, 'the fifth failure drops the key');
  q.forget('k');
  assert.ok(q.retry('k', 0));
  assert.is(q.promote(0), 10, 'forget resets the back-off');
});

test('WorkQueue: a delayed key keeps its earliest due time', () => {
  const q = new WorkQueue();
  q.addAt('x', 500);
  q.addAt('x', 200);
  q.addAt('x', 900);
  assert.is(q.promote(199), 200);
  q.promote(200);
  assert.is(q.take(), 'x');
});

test('EventRecorder: a repeated event bumps count and lastTimestamp of one Event', async () => {
  const sim = await new ClusterSim().start();
  try {
    const cm = await sim.objects.create(R('configmaps'), 'default', { metadata: { name: 'settings' }, data: { a: '1' } });
    const rec = new EventRecorder(sim.objects, 'test-controller', sim.clock.now);
    await rec.record(cm, 'Warning', 'Broken', 'key a is wrong');
    sim.clock.advance(5000);
    await rec.record(cm, 'Warning', 'Broken', 'key a is wrong');
    await rec.record(cm, 'Normal', 'Fixed', 'key a is right');
    const events = sim.objects.list(R('events'), 'default').items.filter((e) => (e.involvedObject as { name: string }).name === 'settings');
    assert.is(events.length, 2);
    const broken = events.find((e) => e.reason === 'Broken')!;
    assert.is(broken.count, 2);
    assert.is(broken.type, 'Warning');
    assert.is(Date.parse(broken.lastTimestamp as string) - Date.parse(broken.firstTimestamp as string), 5000);
    assert.equal(broken.involvedObject, { apiVersion: 'v1', kind: 'ConfigMap', name: 'settings', namespace: 'default', uid: cm.metadata.uid, resourceVersion: cm.metadata.resourceVersion });
    assert.equal(broken.source, { component: 'test-controller' });
  } finally {
    await sim.stop();
  }
});

test('ControllerManager: watch events wake a controller; failures retry; requeueAfter follows the injected clock', async () => {
  const sim = new ClusterSim();
  await sim.objects.create(R('namespaces'), undefined, { metadata: { name: 'default' } });
  const seen: string[] = [];
  let failuresLeft = 2;
  const toy: Controller = {
    name: 'toy',
    watches: [{ resource: R('configmaps'), keys: (e) => [objectKey(e.object)] }],
    allKeys: () => sim.objects.list(R('configmaps')).items.map(objectKey),
    async reconcile(key) {
      seen.push(key);
      if (key === 'default/flaky' && failuresLeft-- > 0) throw new Error('not yet');
      return key === 'default/timer' ? { requeueAfterMs: 60_000 } : {};
    },
  };
  const manager = new ControllerManager(sim.deps, [toy], { onGiveUp: (c, k, err) => { throw new Error(`${c} gave up on ${k}: ${String(err)}`); } });
  const abort = new AbortController();
  const running = manager.run(abort.signal);
  try {
    await sim.objects.create(R('configmaps'), 'default', { metadata: { name: 'plain' } });
    await sim.objects.create(R('configmaps'), 'default', { metadata: { name: 'flaky' } });
    await sim.objects.create(R('configmaps'), 'default', { metadata: { name: 'timer' } });
    await manager.settle();
    assert.equal(seen, ['default/plain', 'default/flaky', 'default/timer']);
    seen.length = 0;
    sim.clock.advance(5);
    await manager.settle();
    assert.equal(seen, ['default/flaky'], 'first retry after 5 ms');
    seen.length = 0;
    sim.clock.advance(10);
    await manager.settle();
    assert.equal(seen, ['default/flaky'], 'second retry after 10 more ms, then it succeeds');
    seen.length = 0;
    sim.clock.advance(59_000);
    await manager.settle();
    assert.equal(seen, []);
    sim.clock.advance(1_000);
    await manager.settle();
    assert.equal(seen, ['default/timer']);
  } finally {
    abort.abort();
    await running;
    sim.store.close();
  }
});

test.run();
