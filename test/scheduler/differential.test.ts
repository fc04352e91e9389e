// The wasm core through the NodeTable encoding against the object-level reference (server/scheduler/reference.ts)
// on seeded random clusters: same node, GPUs, score and feasible count, and every node's reason is the first
// of the reasons the reference finds for it. The fallback core agrees with wasm on the same table and on its
// own plain memory.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { R_OK, R_POD_ANTI_AFFINITY } from '../../server/scheduler/layout.js';
import { ReferenceScheduler } from '../../server/scheduler/reference.js';
import { Scheduler, type Placement } from '../../server/scheduler/scheduler.js';
import { randomCluster, randomPod, seededRandom } from './cluster-gen.js';

const CLUSTERS = Number(process.env.FLOTILLA_DIFF_CLUSTERS ?? 2000);
const PODS_PER_CLUSTER = 12;
const decision = (p: Placement) => ({ nodeName: p.nodeName, gpuUuids: p.gpuUuids, score: p.score, feasible: p.feasible, reasons: p.reasons });

test(`wasm through the NodeTable and the object-level reference agree on ${CLUSTERS} random clusters`, () => {
  let placements = 0; let placed = 0; let gpuPlaced = 0; let repelled = 0; let manyReasons = 0; let removed = 0;
  for (let seed = 1; seed <= CLUSTERS; seed++) {
    const rng = seededRandom(seed);
    const options = { seed, strategy: seed % 3 === 0 ? 'spread' as const : 'binpack' as const };
    const s = new Scheduler({ engine: 'wasm', initialCapacity: 4, ...options });
    const ref = new ReferenceScheduler(options);
    const nodes = randomCluster(rng, 1 + Math.floor(rng() * 40));
    for (const n of nodes) { s.upsertNode(n); ref.upsertNode(n); }
    if (seed % 5 === 0 && nodes.length > 1) { s.removeNode(nodes[0]!.metadata.name ?? ''); ref.removeNode(nodes[0]!.metadata.name ?? ''); }
    const pods = Array.from({ length: PODS_PER_CLUSTER }, (_, i) => randomPod(rng, i));
    const bound: string[] = [];
    for (const [i, pod] of pods.entries()) {
      const where = `seed ${seed} pod ${pod.metadata.name}`;
      // The fallback core on the same encoding first: the wasm pass below leaves the per-node reasons.
      const fallback = s.place(pod, s.fallback);
      const w = s.place(pod);
      assert.equal(decision(fallback), decision(w), `${where}: the fallback core agrees with wasm`);
      const r = ref.place(pod);
      assert.is(w.error, undefined, `${where}: ${w.error}`);
      assert.is(w.nodeName, r.nodeName, `${where}: node`);
      assert.equal(w.gpuUuids, r.gpuUuids, `${where}: GPUs`);
      assert.is(w.score, r.score, `${where}: score`);
      assert.is(w.feasible, r.feasible, `${where}: feasible`);
      const counts = new Map<number, number>();
      for (let n = 0; n < s.table.count; n++) {
        const name = s.table.nodeName(n);
        const all = r.reasons.get(name);
        assert.ok(all, `${where}: the reference knows node ${name}`);
        assert.is(s.table.nodeReason(n), all[0] ?? R_OK, `${where}: reason on ${name} (reference: ${all.join(',') || 'fits'})`);
        if (all[0] !== undefined) counts.set(all[0], (counts.get(all[0]) ?? 0) + 1);
        if (all.length > 1) manyReasons++;
      }
      assert.is(r.reasons.size, s.table.count, `${where}: node count`);
      assert.equal(w.reasons, [...counts].sort((a, b) => a[0] - b[0]).map(([code, count]) => ({ code, count })), `${where}: reason counts`);
      placements++;
      if (w.nodeName) { placed++; if (w.gpuUuids.length) gpuPlaced++; }
      // A pod without required anti-affinity of its own can only be refused by that of bound pods.
      const own = pod.spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.length ?? 0;
      if (own === 0 && w.reasons.some((x) => x.code === R_POD_ANTI_AFFINITY)) repelled++;
      s.assume(w);
      if (w.nodeName) { ref.podBound(pod, w.nodeName, w.gpuUuids); bound.push(w.request!.key); }
      // Now and then a bound pod leaves, and a node changes under the bound pods, so that removal and
      // re-encoding are compared too.
      if (i % 4 === 3 && bound.length > 0) {
        const key = bound.splice(Math.floor(rng() * bound.length), 1)[0]!;
        s.podRemoved(key); ref.podRemoved(key); removed++;
      }
      if (i === PODS_PER_CLUSTER / 2) {
        const node = nodes[Math.floor(rng() * nodes.length)]!;
        const changed = { ...node, metadata: { ...node.metadata, labels: { ...node.metadata.labels, pool: 'lab' } },
          spec: { ...node.spec, unschedulable: !node.spec?.unschedulable } };
        s.upsertNode(changed); ref.upsertNode(changed);
      }
    }
  }
  // The generator must exercise both outcomes, GPUs included, or agreement proves little.
  assert.ok(placed > placements * 0.3, `placed ${placed}/${placements}`);
  assert.ok(placed < placements, 'some pods must be unschedulable');
  assert.ok(gpuPlaced > 50, `GPU pods placed: ${gpuPlaced}`);
  assert.ok(repelled > 200, `pods refused by bound pods' anti-affinity: ${repelled}`);
  assert.ok(manyReasons > 1000, `nodes rejected for several reasons: ${manyReasons}`);
  assert.ok(removed > 1000, `bound pods removed: ${removed}`);
});

test('the fallback core (TypeScript, plain memory) matches the wasm table', () => {
  for (let seed = 1000; seed < 1020; seed++) {
    const rng = seededRandom(seed);
    const nodes = randomCluster(rng, 30);
    const pods = Array.from({ length: 60 }, (_, i) => randomPod(rng, i));
    const wasm = new Scheduler({ engine: 'wasm', seed });
    const fallback = new Scheduler({ engine: 'fallback', seed });
    assert.is(fallback.engine.name, 'fallback');
    for (const n of nodes) { wasm.upsertNode(n); fallback.upsertNode(n); }
    const a = wasm.scheduleBatch(pods).map((p) => [p.nodeName, p.gpuUuids.join(',')]);
    const b = fallback.scheduleBatch(pods).map((p) => [p.nodeName, p.gpuUuids.join(',')]);
    assert.equal(a, b, `seed ${seed}`);
  }
});

test('same input, same seed: same placements; another seed may break ties differently', () => {
  const run = (seed: number): (string | null)[] => {
    const rng = seededRandom(7);
    const s = new Scheduler({ engine: 'wasm', seed });
    for (const n of randomCluster(rng, 40)) s.upsertNode(n);
    return s.scheduleBatch(Array.from({ length: 50 }, (_, i) => randomPod(rng, i))).map((p) => p.nodeName);
  };
  assert.equal(run(1), run(1));
  assert.not.equal(run(1), run(2));
});

test.run();
