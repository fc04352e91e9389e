// wasm and the TypeScript reference choose the same node, GPUs, score and reasons on seeded random clusters.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { R_POD_ANTI_AFFINITY } from '../../server/scheduler/layout.js';
import { Scheduler } from '../../server/scheduler/scheduler.js';
import { randomCluster, randomPod, seededRandom } from './cluster-gen.js';

const CLUSTERS = Number(process.env.FLOTILLA_DIFF_CLUSTERS ?? 2000);
const PODS_PER_CLUSTER = 12;

test(`wasm and reference agree on ${CLUSTERS} random clusters`, () => {
  let placements = 0; let placed = 0; let gpuPlaced = 0; let malformed = 0; let repelled = 0;
  for (let seed = 1; seed <= CLUSTERS; seed++) {
    const rng = seededRandom(seed);
    const s = new Scheduler({ engine: 'wasm', seed, initialCapacity: 4, strategy: seed % 3 === 0 ? 'spread' : 'binpack' });
    const nodes = randomCluster(rng, 1 + Math.floor(rng() * 40));
    for (const n of nodes) s.upsertNode(n);
    if (seed % 5 === 0 && nodes.length > 1) s.removeNode(nodes[0]!.metadata.name);
    const pods = Array.from({ length: PODS_PER_CLUSTER }, (_, i) => randomPod(rng, i));
    for (const pod of pods) {
      const w = s.place(pod, s.engine);
      const r = s.place(pod, s.reference);
      const where = `seed ${seed} pod ${pod.metadata.name}`;
      assert.is(w.nodeName, r.nodeName, `${where}: node`);
      assert.equal(w.gpuUuids, r.gpuUuids, `${where}: GPUs`);
      assert.is(w.score, r.score, `${where}: score`);
      assert.equal(w.reasons, r.reasons, `${where}: reasons`);
      placements++;
      if (w.error) malformed++;
      if (w.nodeName) { placed++; if (w.gpuUuids.length) gpuPlaced++; }
      // A pod without required anti-affinity of its own can only be refused by that of bound pods.
      const own = pod.spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.length ?? 0;
      if (own === 0 && w.reasons.some((r) => r.code === R_POD_ANTI_AFFINITY)) repelled++;
      s.assume(w);
    }
  }
  // The generator must exercise both outcomes, GPUs included, or agreement proves little.
  assert.ok(placed > placements * 0.3, `placed ${placed}/${placements}`);
  assert.ok(placed < placements, 'some pods must be unschedulable');
  assert.ok(gpuPlaced > 50, `GPU pods placed: ${gpuPlaced}`);
  assert.ok(repelled > 200, `pods refused by bound pods' anti-affinity: ${repelled}`);
  assert.is(malformed, 0);
});

test('the fallback (reference on plain memory) matches the wasm table', () => {
  for (let seed = 1000; seed < 1020; seed++) {
    const rng = seededRandom(seed);
    const nodes = randomCluster(rng, 30);
    const pods = Array.from({ length: 60 }, (_, i) => randomPod(rng, i));
    const wasm = new Scheduler({ engine: 'wasm', seed });
    const fallback = new Scheduler({ engine: 'reference', seed });
    assert.is(fallback.engine.name, 'reference');
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
