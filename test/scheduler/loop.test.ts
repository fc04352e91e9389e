// The scheduling loop against the in-memory cluster: batches, binding, conflicts, back-off, retry on change.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runSchedulingLoop } from '../../server/scheduler/loop.js';
import { MemoryCluster } from '../../server/scheduler/memory-cluster.js';
import { Scheduler } from '../../server/scheduler/scheduler.js';
import { GPU_MODELS, makeNode, makePod } from './cluster-gen.js';

/** Polls until cond() holds; fails after 5 s so a broken loop cannot hang the suite. */
async function until(cond: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 500; i++) { if (cond()) return; await new Promise((r) => setTimeout(r, 10)); }
  assert.unreachable(`timed out waiting for ${what}`);
}

function start(cluster: MemoryCluster, options: Parameters<typeof runSchedulingLoop>[2] = {}) {
  const ac = new AbortController();
  const done = runSchedulingLoop(cluster, ac.signal, { scheduler: new Scheduler({ engine: 'wasm' }), backoff: { initialMs: 20, maxMs: 100 }, ...options });
  return { stop: async () => { ac.abort(); await done; }, done };
}

test('binds pending pods from the snapshot and from events, with GPU annotations', async () => {
  const c = new MemoryCluster();
  c.putNode(makeNode({ name: 'cpu-1', cpu: 4, memoryGi: 8 }));
  c.putNode(makeNode({ name: 'gpu-1', cpu: 16, memoryGi: 64, gpus: [GPU_MODELS[1], GPU_MODELS[3]] }));
  c.putPod(makePod({ name: 'web' }));
  const loop = start(c);
  c.putPod(makePod({ name: 'train', gpus: 1, annotations: { 'flotilla.io/gpu-memory-min': '20Gi' } }));
  await until(() => [...c.pods.values()].every((p) => p.spec.nodeName), 'both pods bound');
  const train = c.pods.get('uid-default-train')!;
  assert.is(train.spec.nodeName, 'gpu-1');
  assert.is(train.metadata.annotations?.['flotilla.io/assigned-gpus'], 'GPU-gpu-1-0');
  assert.is(c.pods.get('uid-default-web')!.spec.nodeName, 'cpu-1');
  await loop.stop();
});

test('a bind conflict re-queues the pod, which binds once the newer version arrives', async () => {
  const c = new MemoryCluster();
  c.putNode(makeNode({ name: 'n1', cpu: 4, memoryGi: 8 }));
  let conflicts = 0; let interfered = false;
  c.beforeBind = (pod) => {
    if (interfered) return;
    interfered = true;
    const current = c.pods.get('uid-default-p')!;
    c.putPod({ ...current, metadata: { ...current.metadata, labels: { touched: 'yes' } } }); // bumps resourceVersion
    assert.is.not(pod.metadata.resourceVersion, c.pods.get('uid-default-p')!.metadata.resourceVersion);
  };
  const loop = start(c, { onPlacement: (_p, outcome) => { if (outcome === 'conflict') conflicts++; } });
  c.putPod(makePod({ name: 'p' }));
  await until(() => !!c.pods.get('uid-default-p')?.spec.nodeName, 'pod bound after conflict');
  assert.is(conflicts, 1);
  assert.is(c.pods.get('uid-default-p')!.metadata.labels?.touched, 'yes');
  await loop.stop();
});

test('an unschedulable pod is reported, backs off, and binds when a node joins', async () => {
  const c = new MemoryCluster();
  c.putNode(makeNode({ name: 'small', cpu: 1, memoryGi: 2 }));
  const loop = start(c, { backoff: { initialMs: 60000, maxMs: 60000 } }); // only a cluster change can retry it
  c.putPod(makePod({ name: 'big', cpu: '2', memory: '1Gi' }));
  await until(() => c.unschedulable.has('uid-default-big'), 'unschedulable report');
  assert.is(c.unschedulable.get('uid-default-big'), '0/1 nodes are available: 1 Insufficient cpu.');
  c.putNode(makeNode({ name: 'large', cpu: 8, memoryGi: 16 }));
  await until(() => c.pods.get('uid-default-big')?.spec.nodeName === 'large', 'bound after node joined');
  await loop.stop();
});

test('back-off retries without any change and deleting a pod frees its resources', async () => {
  const c = new MemoryCluster();
  c.putNode(makeNode({ name: 'n1', cpu: 2, memoryGi: 4 }));
  c.putPod(makePod({ name: 'first', cpu: '2' }));
  const loop = start(c);
  await until(() => !!c.pods.get('uid-default-first')?.spec.nodeName, 'first bound');
  c.putPod(makePod({ name: 'second', cpu: '2' }));
  await until(() => c.unschedulable.has('uid-default-second'), 'second unschedulable');
  let retries = 0;
  const before = c.unschedulable.get('uid-default-second');
  c.unschedulable.delete('uid-default-second');
  await until(() => { if (c.unschedulable.has('uid-default-second')) retries++; return retries > 0; }, 'a back-off retry');
  assert.is(c.unschedulable.get('uid-default-second'), before);
  c.deletePod('uid-default-first');
  await until(() => c.pods.get('uid-default-second')?.spec.nodeName === 'n1', 'second bound after first deleted');
  await loop.stop();
});

test('abort resolves the loop', async () => {
  const c = new MemoryCluster();
  const loop = start(c);
  await loop.stop();
  assert.is(await loop.done, undefined);
});

test.run();
