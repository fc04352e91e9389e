// Scheduler throughput and packing: wasm core vs the TypeScript fallback core on the same seeded cluster and pods.
// Usage: node dist/bench/scheduler.js [--nodes N] [--pods M] [--seed S]
// Last line: one JSON object {nodes, pods, wasmPodsPerSec, tsPodsPerSec, speedup, nodesUsed, nodesLowerBound,
// placed, mismatches}.
import { Scheduler, type Placement } from '../server/scheduler/scheduler.js';
import type { Node, Pod } from '../api-types/index.js';
import { GPU_MODELS, makeNode, makePod, seededRandom } from '../test/scheduler/cluster-gen.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v <= 0) throw new Error(`--${name} needs a positive integer, got "${process.argv[i + 1]}"`);
  return v;
}

const NODES = flag('nodes', 1000);
const PODS = flag('pods', NODES * 5);
const SEED = flag('seed', 42);
const NODE_CPU = 16; const NODE_MEM_GI = 64;

// Uniform node size (so the lower bound is meaningful); a quarter carry 8 GPUs of mixed models.
function cluster(): Node[] {
  const rng = seededRandom(SEED);
  return Array.from({ length: NODES }, (_, i) => {
    const gpu = i % 4 === 3;
    const model = GPU_MODELS[Math.floor(rng() * 5)]!; // NVIDIA models only
    return makeNode({
      name: `node-${i}`, cpu: NODE_CPU, memoryGi: NODE_MEM_GI, zone: `zone-${i % 3}`,
      labels: { disk: i % 2 ? 'ssd' : 'hdd' }, gpus: gpu ? Array.from({ length: 8 }, (_, k) => (k < 6 ? model : GPU_MODELS[3])) : [],
    });
  });
}

// 20% GPU pods; 10% with a disk selector; 10% in anti-affinity groups of 3 replicas (one per host).
function workload(): Pod[] {
  const rng = seededRandom(SEED + 1);
  const cpus = ['250m', '500m', '1', '2'] as const; const mems = ['512Mi', '1Gi', '2Gi', '4Gi', '8Gi'] as const;
  return Array.from({ length: PODS }, (_, i) => {
    const r = rng();
    const gpu = r < 0.2; const selector = r >= 0.2 && r < 0.3; const group = r >= 0.3 && r < 0.4;
    const app = group ? `group-${Math.floor(i / 30)}` : `app-${i % 50}`;
    return makePod({
      name: `pod-${i}`, cpu: cpus[Math.floor(rng() * cpus.length)]!, memory: mems[Math.floor(rng() * mems.length)]!,
      gpus: gpu ? (rng() < 0.8 ? 1 : 2) : 0, labels: { app },
      annotations: gpu && rng() < 0.5 ? { 'flotilla.io/gpu-memory-min': rng() < 0.5 ? '16Gi' : '24Gi' } : {},
      ...(selector ? { nodeSelector: { disk: 'ssd' } } : {}),
      ...(group ? { affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [
        { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { app } } }] } } } : {}),
    });
  });
}

function run(engine: 'wasm' | 'fallback', nodes: Node[], pods: Pod[]): { placements: Placement[]; seconds: number } {
  const s = new Scheduler({ engine, seed: SEED, initialCapacity: NODES });
  for (const n of nodes) s.upsertNode(n);
  const t0 = process.hrtime.bigint();
  const placements = s.scheduleBatch(pods);
  return { placements, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

const nodes = cluster(); const pods = workload();
// Warm-up on at least 2,000 placements per engine (repeating a prefix of the batch on small runs), so both
// are measured after JIT tier-up, not during it.
for (const engine of ['wasm', 'fallback'] as const) {
  const prefix = pods.slice(0, 2000);
  for (let done = 0; done < 2000; done += prefix.length) run(engine, nodes, prefix);
}
const wasm = run('wasm', nodes, pods);
const ts = run('fallback', nodes, pods);
let mismatches = 0;
wasm.placements.forEach((p, i) => {
  const q = ts.placements[i]!;
  if (p.nodeName !== q.nodeName || p.gpuUuids.join() !== q.gpuUuids.join()) mismatches++;
});
const placed = wasm.placements.filter((p) => p.nodeName);
const used = new Set(placed.map((p) => p.nodeName));
const cpu = placed.reduce((a, p) => a + p.request!.cpuMilli, 0);
const mem = placed.reduce((a, p) => a + p.request!.memoryBytes, 0);
const lowerBound = Math.max(Math.ceil(cpu / (NODE_CPU * 1000)), Math.ceil(mem / (NODE_MEM_GI * 2 ** 30)));
const round = (x: number): number => Math.round(x);
console.log(`scheduler bench: ${NODES} nodes, ${PODS} pods; wasm ${wasm.seconds.toFixed(3)} s, fallback ${ts.seconds.toFixed(3)} s; ` +
  `${placed.length} placed, ${used.size} nodes used (lower bound ${lowerBound})`);
console.log(JSON.stringify({
  nodes: NODES, pods: PODS, wasmPodsPerSec: round(PODS / wasm.seconds), tsPodsPerSec: round(PODS / ts.seconds),
  speedup: Math.round((ts.seconds / wasm.seconds) * 100) / 100, nodesUsed: used.size, nodesLowerBound: lowerBound,
  placed: placed.length, mismatches,
}));
