// The scheduling loop's active queue against a sorted list: same pods out, in kube-scheduler's order, through
// random interleavings of queueing, re-queueing (a newer version) and forgetting.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ActiveQueue } from '../../server/scheduler/queue.js';
import type { Pod } from '../../api-types/index.js';
import { seededRandom } from './cluster-gen.js';

const pod = (name: string, priority: number | undefined, created: string | undefined): Pod => ({
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name, namespace: 'default', ...(created ? { creationTimestamp: created } : {}) },
  spec: { ...(priority !== undefined ? { priority } : {}), containers: [] },
});

test('priority first, then creation time, then name; pods never stored come last within their priority', () => {
  const q = new ActiveQueue();
  q.set('a', pod('a', undefined, '2026-01-01T00:00:02.000Z'));
  q.set('b', pod('b', 0, '2026-01-01T00:00:01.000Z'));
  q.set('c', pod('c', 10, '2026-01-01T00:00:09.000Z'));
  q.set('d', pod('d', undefined, undefined));
  q.set('e', pod('e', 0, '2026-01-01T00:00:01.000Z'));
  q.set('f', pod('f', -5, '2026-01-01T00:00:00.000Z'));
  const out: string[] = [];
  for (let p = q.pop(); p; p = q.pop()) out.push(p.metadata.name ?? '');
  assert.equal(out, ['c', 'b', 'e', 'a', 'd', 'f']);
  assert.is(q.size, 0);
});

test('random set / delete / pop agree with a sorted reference', () => {
  const rng = seededRandom(7);
  const q = new ActiveQueue();
  const ref = new Map<string, Pod>();
  const order = (a: Pod, b: Pod) => (b.spec.priority ?? 0) - (a.spec.priority ?? 0)
    || Date.parse(a.metadata.creationTimestamp!) - Date.parse(b.metadata.creationTimestamp!) || ((a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1);
  for (let step = 0; step < 5000; step++) {
    const r = rng(); const key = `p${Math.floor(rng() * 200)}`;
    if (r < 0.5) {
      const p = pod(key, Math.floor(rng() * 4), new Date(Date.UTC(2026, 0, 1) + Math.floor(rng() * 50) * 1000).toISOString());
      q.set(key, p); ref.set(key, p);
    } else if (r < 0.7) {
      q.delete(key); ref.delete(key);
    } else {
      const expected = [...ref.values()].sort(order)[0];
      const got = q.pop();
      assert.is(got, expected);
      if (got) ref.delete(`${got.metadata.name}`);
    }
    assert.is(q.size, ref.size);
    assert.is(q.has(key), ref.has(key));
  }
});

test.run();
