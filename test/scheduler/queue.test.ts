// The SchedulingQueue's activeQ against a sorted list: same pods out, in kube-scheduler's order, through random
// interleavings of queueing, re-queueing (a newer version) and forgetting; and what a node update changed.
// Back-off, hints and the flush are in the scenario files (queue-scenarios.test.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SchedulingQueue, nodeChanges, nodeView } from '../../server/scheduler/queue.js';
import type { Pod } from '../../api-types/index.js';
import { makeNode, seededRandom } from './cluster-gen.js';

const pod = (name: string, priority: number, created: string, version: number): Pod => ({
  apiVersion: 'v1', kind: 'Pod',
  metadata: { name, namespace: 'default', creationTimestamp: created, resourceVersion: String(version) },
  spec: { priority, containers: [] },
});

test('random add / delete / pop agree with a sorted reference', () => {
  const rng = seededRandom(7);
  const q = new SchedulingQueue();
  const ref = new Map<string, Pod>();
  const order = (a: Pod, b: Pod) => (b.spec.priority ?? 0) - (a.spec.priority ?? 0)
    || Date.parse(a.metadata.creationTimestamp!) - Date.parse(b.metadata.creationTimestamp!) || ((a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1);
  for (let step = 0; step < 5000; step++) {
    const r = rng(); const key = `p${Math.floor(rng() * 200)}`;
    if (r < 0.5) {
      const p = pod(key, Math.floor(rng() * 4), new Date(Date.UTC(2026, 0, 1) + Math.floor(rng() * 50) * 1000).toISOString(), step);
      q.add(p, key, 0); ref.set(key, p);
    } else if (r < 0.7) {
      q.delete(key); ref.delete(key);
    } else {
      const expected = [...ref.values()].sort(order)[0];
      const got = q.pop(0);
      assert.is(got, expected);
      // Popped pods are in flight: forget them, as the loop does once they are bound.
      if (got) { ref.delete(got.metadata.name ?? ''); q.delete(got.metadata.name ?? ''); }
    }
    assert.is(q.activeCount, ref.size);
  }
});

test('a reason code the hint table does not know is resolved by any event, not left to the flush', () => {
  const q = new SchedulingQueue();
  const p = pod('p', 0, '2026-01-01T00:00:00.000Z', 1);
  q.add(p, 'p', 0);
  assert.is(q.pop(0), p);
  q.failed(p, 'p', { reasons: [999] }, 0);
  assert.is(q.onEvent({ type: 'assigned-pod-update' }, 5000), 1);
  assert.is(q.pop(5000), p);
});

test('a node update names what it changed of what scheduling reads, and nothing else', () => {
  const node = makeNode({ name: 'n1', cpu: 4, memoryGi: 8 });
  const view = nodeView(node);
  const heartbeat = { ...node, status: { ...node.status, conditions: [...node.status!.conditions!, { type: 'DiskPressure', status: 'False' as const }] } };
  assert.equal(nodeChanges(view, nodeView(heartbeat)), []);
  const changed = { ...node, metadata: { ...node.metadata, labels: { ...node.metadata.labels, disk: 'ssd' } },
    spec: { ...node.spec, taints: [{ key: 'private', effect: 'NoSchedule' as const }] },
    status: { ...node.status, allocatable: { cpu: '8', memory: '8Gi' }, conditions: [{ type: 'Ready', status: 'False' as const }] } };
  assert.equal(nodeChanges(view, nodeView(changed)), ['allocatable', 'labels', 'taints', 'conditions']);
  assert.equal(nodeChanges(view, nodeView({ ...node, spec: { ...node.spec, unschedulable: true } })), ['unschedulable']);
});

test.run();
