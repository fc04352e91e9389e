// The scheduling loop against the in-memory cluster: batches, binding, conflicts, back-off, retry on change.
// Back-off is short (20-100 ms) and the unschedulable flush 5 minutes, so only a change retries an unschedulable
// pod within a test unless it says otherwise.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { runSchedulingLoop } from '../../server/scheduler/loop.js';
import { MemoryCluster } from '../../server/scheduler/memory-cluster.js';
import { Scheduler, type Placement } from '../../server/scheduler/scheduler.js';
import { GPU_MODELS, makeNode, makePod, type PodOptions } from './cluster-gen.js';
import { eventually } from '../support/eventually.js';
import { stopAfterEach } from '../support/set-up.js';

const stopLater = stopAfterEach(test);

function start(cluster: MemoryCluster, options: Parameters<typeof runSchedulingLoop>[2] = {}) {
  const ac = new AbortController();
  const done = runSchedulingLoop(cluster, ac.signal, { scheduler: new Scheduler({ engine: 'wasm' }), backoff: { initialMs: 20, maxMs: 100 }, ...options });
  const stop = async () => { ac.abort(); await done; };
  stopLater(stop);
  return { stop, done };
}

test('binds pending pods from the snapshot and from events, with GPU annotations', async () => {
  const c = new MemoryCluster();
  c.putNode(makeNode({ name: 'cpu-1', cpu: 4, memoryGi: 8 }));
  c.putNode(makeNode({ name: 'gpu-1', cpu: 16, memoryGi: 64, gpus: [GPU_MODELS[1], GPU_MODELS[3]] }));
  c.putPod(makePod({ name: 'web' }));
  const loop = start(c);
  c.putPod(makePod({ name: 'train', gpus: 1, annotations: { 'flotilla.io/gpu-memory-min': '20Gi' } }));
  await eventually('both pods bound', () => [...c.pods.values()].every((p) => p.spec.nodeName));
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
  await eventually('pod bound after conflict', () => !!c.pods.get('uid-default-p')?.spec.nodeName);
  assert.is(conflicts, 1);
  assert.is(c.pods.get('uid-default-p')!.metadata.labels?.touched, 'yes');
  await loop.stop();
});

test('an unschedulable pod is reported, backs off, and binds when a node joins', async () => {
  const c = new MemoryCluster();
  c.putNode(makeNode({ name: 'small', cpu: 1, memoryGi: 2 }));
  const loop = start(c);
  c.putPod(makePod({ name: 'big', cpu: '2', memory: '1Gi' }));
  await eventually('unschedulable report', () => c.unschedulable.has('uid-default-big'));
  assert.is(c.unschedulable.get('uid-default-big'), '0/1 nodes are available: 1 Insufficient cpu.');
  c.putNode(makeNode({ name: 'large', cpu: 8, memoryGi: 16 }));
  await eventually('bound after node joined', () => c.pods.get('uid-default-big')?.spec.nodeName === 'large');
  await loop.stop();
});

test('an unschedulable pod is retried after podMaxInUnschedulablePodsDuration without any change; deleting a pod frees its resources', async () => {
  const c = new MemoryCluster();
  c.putNode(makeNode({ name: 'n1', cpu: 2, memoryGi: 4 }));
  c.putPod(makePod({ name: 'first', cpu: '2' }));
  const loop = start(c, { maxInUnschedulableMs: 50 });
  await eventually('first bound', () => !!c.pods.get('uid-default-first')?.spec.nodeName);
  c.putPod(makePod({ name: 'second', cpu: '2' }));
  await eventually('second unschedulable', () => c.unschedulable.has('uid-default-second'));
  let retries = 0;
  const before = c.unschedulable.get('uid-default-second');
  c.unschedulable.delete('uid-default-second');
  await eventually('a retry by the flush', () => { if (c.unschedulable.has('uid-default-second')) retries++; return retries > 0; });
  assert.is(c.unschedulable.get('uid-default-second'), before);
  c.deletePod('uid-default-first');
  await eventually('second bound after first deleted', () => c.pods.get('uid-default-second')?.spec.nodeName === 'n1');
  await loop.stop();
});

test('a Terminating pod keeps its resources until it is removed; an unbound one being deleted is never placed', async () => {
  const c = new MemoryCluster();
  c.putNode(makeNode({ name: 'n1', cpu: 3, memoryGi: 4 }));
  c.putPod(makePod({ name: 'first', cpu: '2' }));
  const loop = start(c);
  await eventually('first bound', () => !!c.pods.get('uid-default-first')?.spec.nodeName);
  const first = c.pods.get('uid-default-first')!;
  c.putPod({ ...first, metadata: { ...first.metadata, deletionTimestamp: '2026-01-01T00:00:30Z' } });
  c.putPod(makePod({ name: 'second', cpu: '2' }));
  await eventually('second unschedulable while first terminates', () => c.unschedulable.has('uid-default-second'));
  const held = makePod({ name: 'held', cpu: '1' });
  c.putPod({ ...held, metadata: { ...held.metadata, deletionTimestamp: '2026-01-01T00:00:00Z' } }); // held by a finalizer
  c.deletePod('uid-default-first');
  await eventually('second bound once first is gone', () => c.pods.get('uid-default-second')?.spec.nodeName === 'n1');
  assert.is(c.pods.get('uid-default-held')?.spec.nodeName, undefined, 'it would fit beside second');
  await loop.stop();
});

/** Placement attempts per pod name, fed by onPlacement. */
function attemptCounter(): { counts: Map<string, number>; onPlacement: (p: Pick<Placement, 'pod'>) => void } {
  const counts = new Map<string, number>();
  return { counts, onPlacement: (p) => { const name = p.pod.metadata.name ?? ''; counts.set(name, (counts.get(name) ?? 0) + 1); } };
}

test('a waiting pod is retried by changes that can help it, and by nothing else', async () => {
  const c = new MemoryCluster();
  const small = makeNode({ name: 'small', cpu: 1, memoryGi: 2 });
  c.putNode(small);
  c.putNode(makeNode({ name: 'fenced', cpu: 8, memoryGi: 16, taints: [{ key: 'private', effect: 'NoSchedule' }] }));
  const { counts, onPlacement } = attemptCounter();
  const loop = start(c, { onPlacement });
  c.putPod(makePod({ name: 'big', cpu: '2' }));
  await eventually('big unschedulable', () => c.unschedulable.has('uid-default-big'));
  // Changes that cannot help: a node rewritten with the same scheduling view (heartbeat-like status), a node
  // leaving, a pending pod coming and going.
  c.putNode({ ...small, status: { ...small.status, conditions: [...small.status!.conditions!, { type: 'DiskPressure', status: 'False' }] } });
  c.deleteNode('fenced');
  c.putPod(makePod({ name: 'passing', cpu: '4' }));
  c.deletePod('uid-default-passing');
  c.putPod(makePod({ name: 'filler', cpu: '500m' })); // placed after any retry those changes would have queued
  await eventually('filler bound', () => !!c.pods.get('uid-default-filler')?.spec.nodeName);
  assert.is(counts.get('big'), 1, 'big was retried by a change that cannot help it');
  // Changes that can help: a bound pod leaving (still too small), then a node joining.
  c.deletePod('uid-default-filler');
  await eventually('retry after a bound pod left', () => counts.get('big') === 2);
  c.putNode(makeNode({ name: 'large', cpu: 8, memoryGi: 16 }));
  await eventually('big bound after a node joined', () => c.pods.get('uid-default-big')?.spec.nodeName === 'large');
  await loop.stop();
});

test('a waiting pod with required pod affinity is retried when a pod it wants is bound', async () => {
  const c = new MemoryCluster();
  c.putNode(makeNode({ name: 'n1', cpu: 4, memoryGi: 8 }));
  const loop = start(c);
  c.putPod(makePod({ name: 'follower', affinity: { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [
    { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { app: 'leader' } } }] } } }));
  await eventually('follower unschedulable', () => c.unschedulable.has('uid-default-follower'));
  c.putPod(makePod({ name: 'leader', labels: { app: 'leader' } }));
  await eventually('follower bound next to leader', () => c.pods.get('uid-default-follower')?.spec.nodeName === 'n1');
  await loop.stop();
});

test('a malformed pod is reported once and waits for a new version of itself', async () => {
  const c = new MemoryCluster();
  c.putNode(makeNode({ name: 'n1', cpu: 4, memoryGi: 8 }));
  const { counts, onPlacement } = attemptCounter();
  const loop = start(c, { onPlacement });
  const bad = c.putPod(makePod({ name: 'bad', annotations: { 'flotilla.io/placement': 'sideways' } }));
  await eventually('bad reported', () => c.unschedulable.has('uid-default-bad'));
  assert.match(c.unschedulable.get('uid-default-bad')!, /flotilla\.io\/placement is "sideways"/);
  c.putNode(makeNode({ name: 'n2', cpu: 4, memoryGi: 8 })); // would retry any waiting pod
  c.putPod(makePod({ name: 'filler' }));
  await eventually('filler bound', () => !!c.pods.get('uid-default-filler')?.spec.nodeName);
  await new Promise((r) => setTimeout(r, 100)); // the hold is what is tested: several back-off periods pass without a retry
  c.putPod(makePod({ name: 'filler-2' }));
  await eventually('filler-2 bound', () => !!c.pods.get('uid-default-filler-2')?.spec.nodeName);
  assert.is(counts.get('bad'), 1, 'the malformed pod was placed again without changing');
  c.putPod({ ...bad, metadata: { ...bad.metadata, annotations: { 'flotilla.io/placement': 'spread' } } });
  await eventually('fixed pod bound', () => !!c.pods.get('uid-default-bad')?.spec.nodeName);
  await loop.stop();
});

test('a pod the node table cannot record is reported, parked, and the loop goes on', async () => {
  const c = new MemoryCluster();
  c.putNode(makeNode({ name: 'n1', cpu: 32, memoryGi: 64 }));
  for (let i = 0; i < 16; i++) {
    const p = makePod({ name: `port-${i}`, hostPorts: [7000 + i] });
    c.putPod({ ...p, spec: { ...p.spec, nodeName: 'n1' } });
  }
  const { counts, onPlacement } = attemptCounter();
  const errors: Error[] = [];
  const loop = start(c, { onPlacement, onError: (e) => errors.push(e) });
  const extra = c.putPod(makePod({ name: 'extra', hostPorts: [8000] }));
  await eventually('extra reported', () => c.unschedulable.has('uid-default-extra'));
  assert.match(c.unschedulable.get('uid-default-extra')!, /more than 16 host ports/);
  c.putNode(makeNode({ name: 'n2', cpu: 4, memoryGi: 8 })); // would retry any waiting pod
  c.putPod(makePod({ name: 'filler' }));
  await eventually('filler bound: the loop is alive', () => !!c.pods.get('uid-default-filler')?.spec.nodeName);
  assert.is(counts.get('extra'), 1, 'the unrecordable pod was placed again without changing');
  c.putPod({ ...extra, metadata: { ...extra.metadata, labels: { touched: 'yes' } } });
  await eventually('a new version is placed again', () => (counts.get('extra') ?? 0) >= 2);
  assert.equal(errors, []);
  await loop.stop();
});

test('a bind conflict undoes only the loop\'s own assumption, never the binding a competing writer installed', async () => {
  const c = new MemoryCluster();
  c.putNode(makeNode({ name: 'gpu-1', cpu: 16, memoryGi: 64, gpus: [GPU_MODELS[0]] }));
  const scheduler = new Scheduler({ engine: 'wasm' });
  const outcomes: string[] = [];
  let competed = false;
  // Another writer binds the pod to the very node and GPU the loop assumed, between the loop's assumption and
  // its bind: its watch event replaces the assumption, and the loop's bind then loses with a conflict.
  c.beforeBind = (pod) => {
    if (competed || pod.metadata.name !== 'p') return;
    competed = true;
    const current = c.pods.get('uid-default-p')!;
    c.putPod({ ...current, metadata: { ...current.metadata, annotations: { 'flotilla.io/assigned-gpus': 'GPU-gpu-1-0' } }, spec: { ...current.spec, nodeName: 'gpu-1' } });
  };
  const loop = start(c, { scheduler, onPlacement: (p, outcome) => { outcomes.push(`${p.pod.metadata.name}:${outcome}`); } });
  try {
    c.putPod(makePod({ name: 'p', gpus: 1 }));
    await eventually('the loop\'s bind of p to lose', () => outcomes.includes('p:conflict'));
    assert.is(scheduler.table.boundPod('uid-default-p')?.nodeName, 'gpu-1', 'the competing binding is still counted');
    // The GPU is held: a second GPU pod must not be given it too.
    c.putPod(makePod({ name: 'q', gpus: 1 }));
    await eventually('q placed or refused', () => c.unschedulable.has('uid-default-q') || !!c.pods.get('uid-default-q')?.spec.nodeName);
    assert.is(c.pods.get('uid-default-q')!.spec.nodeName, undefined, 'q was given the GPU p holds');
    assert.is(c.unschedulable.get('uid-default-q'), '0/1 nodes are available: 1 Insufficient nvidia.com/gpu.');
  } finally {
    await loop.stop();
  }
});

/** A pod created at `created` (ISO time), as the API server stamps it. */
const podAt = (o: PodOptions, created: string, priority?: number) => {
  const p = makePod(o);
  return { ...p, metadata: { ...p.metadata, creationTimestamp: created }, spec: { ...p.spec, ...(priority !== undefined ? { priority } : {}) } };
};

/**
 * Two GPU pods wait for the one GPU `holder` has; `first` is seen first, then `second`, then `first` changes (a
 * new version is attempted again and waits behind `second`, as a status write does on a real server). Frees
 * the GPU and returns the name of the pod that got it.
 */
async function winnerOfFreedGpu(first: ReturnType<typeof podAt>, second: ReturnType<typeof podAt>): Promise<string> {
  const c = new MemoryCluster();
  c.putNode(makeNode({ name: 'gpu-1', cpu: 16, memoryGi: 64, gpus: [GPU_MODELS[0]] }));
  const holder = makePod({ name: 'holder', gpus: 1 });
  c.putPod({ ...holder, metadata: { ...holder.metadata, annotations: { 'flotilla.io/assigned-gpus': 'GPU-gpu-1-0' } }, spec: { ...holder.spec, nodeName: 'gpu-1' } });
  const { counts, onPlacement } = attemptCounter();
  const loop = start(c, { onPlacement });
  try {
    const key = (p: { metadata: { uid?: string } }) => p.metadata.uid!;
    c.putPod(first);
    await eventually(`${first.metadata.name} waiting`, () => c.unschedulable.has(key(first)));
    c.putPod(second);
    await eventually(`${second.metadata.name} waiting`, () => c.unschedulable.has(key(second)));
    c.putPod({ ...first, metadata: { ...first.metadata, labels: { touched: 'yes' } } });
    await eventually(`${first.metadata.name} attempted again`, () => counts.get(first.metadata.name ?? '') === 2);
    c.deletePod('uid-default-holder');
    await eventually('the freed GPU given to a pod', () => [first, second].some((p) => c.pods.get(key(p))!.spec.nodeName));
    return [first, second].find((p) => c.pods.get(key(p))!.spec.nodeName)!.metadata.name ?? '';
  } finally {
    await loop.stop();
  }
}

test('pending pods are served oldest first: a freed GPU goes to the pod created first', async () => {
  const older = podAt({ name: 'older', gpus: 1 }, '2026-01-01T00:00:00.000Z');
  const newer = podAt({ name: 'newer', gpus: 1 }, '2026-01-01T00:00:05.000Z');
  assert.is(await winnerOfFreedGpu(older, newer), 'older');
});

test('pending pods are served by priority before age: a newer pod of higher priority gets the freed GPU', async () => {
  const older = podAt({ name: 'older', gpus: 1 }, '2026-01-01T00:00:00.000Z', 0);
  const urgent = podAt({ name: 'urgent', gpus: 1 }, '2026-01-01T00:00:05.000Z', 1000);
  assert.is(await winnerOfFreedGpu(urgent, older), 'urgent');
});

/** A clock that moves only when told, and a sleep that ends only when it moves or the loop is woken. */
function manualTime() {
  let t = 0;
  let wakeSleeper: (() => void) | null = null;
  const sleeps: number[] = [];
  return {
    sleeps,
    now: () => t,
    sleep: (ms: number, wake: AbortSignal) => new Promise<void>((resolve) => {
      sleeps.push(ms);
      const done = () => { wakeSleeper = null; wake.removeEventListener('abort', done); resolve(); };
      wakeSleeper = done;
      wake.addEventListener('abort', done, { once: true });
    }),
    advance: (ms: number) => { t += ms; wakeSleeper?.(); },
  };
}

test('with an injected clock: the loop sleeps until the unschedulable flush or the back-off is due, and no longer', async () => {
  const c = new MemoryCluster();
  c.putNode(makeNode({ name: 'n1', cpu: 1, memoryGi: 2 }));
  const time = manualTime();
  const { counts, onPlacement } = attemptCounter();
  const loop = start(c, { now: time.now, sleep: time.sleep, backoff: {}, onPlacement });
  c.putPod(makePod({ name: 'big', cpu: '2' }));
  await eventually('big unschedulable, the loop asleep until its flush', () => counts.get('big') === 1 && time.sleeps.at(-1) === 300_000);
  time.advance(299_999);
  await eventually('asleep for the last millisecond', () => time.sleeps.at(-1) === 1);
  assert.is(counts.get('big'), 1);
  time.advance(1);
  await eventually('big tried again by the flush', () => counts.get('big') === 2);
  // A bind error: retried after the back-off (1 s for a first attempt), not before.
  let failing = true;
  const bind = c.bind.bind(c);
  c.bind = async (...args) => { if (failing) { failing = false; throw new Error('store unavailable'); } return bind(...args); };
  c.putPod(makePod({ name: 'small', cpu: '500m' }));
  await eventually('small failed to bind, the loop asleep until its back-off', () => counts.get('small') === 1 && time.sleeps.at(-1) === 1000);
  time.advance(1000);
  await eventually('small bound after its back-off', () => !!c.pods.get('uid-default-small')?.spec.nodeName);
  await loop.stop();
});

test('abort resolves the loop', async () => {
  const c = new MemoryCluster();
  const loop = start(c);
  await loop.stop();
  assert.is(await loop.done, undefined);
});

for (const engine of ['wasm', 'fallback'] as const) {
  test(`${engine}: a node cycling through 300 GPU model names keeps new models schedulable without a restart`, async () => {
    const c = new MemoryCluster();
    const node = (model: string) => {
      const n = makeNode({ name: 'cycler', cpu: 16, memoryGi: 64, gpus: [GPU_MODELS[1]] });
      n.status!.gpus = [{ ...n.status!.gpus![0]!, model }];
      return n;
    };
    c.putNode(node('rev 0'));
    const loop = start(c, { scheduler: new Scheduler({ engine }) });
    for (let i = 1; i <= 300; i++) {
      c.putNode(node(`rev ${i}`));
      if (i % 60 !== 0) continue;
      const pod = c.putPod(makePod({ name: `p${i}`, gpus: 1, annotations: { 'flotilla.io/gpu-model': `^rev ${i}$` } }));
      const key = pod.metadata.uid!;
      await eventually(`pod for model ${i} bound`, () => c.pods.get(key)?.spec.nodeName === 'cycler');
      c.deletePod(key);
    }
    await loop.stop();
  });
}

test.run();
