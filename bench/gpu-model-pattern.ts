// flotilla.io/gpu-model matching on hostile input: the worst pattern the linear-time subset accepts against the
// longest model a node may report, and GPU pods with such patterns (each distinct, so no cached model set) on a
// cluster of 800 distinct worst-case models; beside it, RegExp backtracking on the kind of pattern the subset
// refuses, (a+)+$ against n 'a's and a 'b' (n = 29 took 2.8 s per scheduling pass before).
// Usage: node dist/bench/gpu-model-pattern.js [--runs R] [--n N]
// Last line: one JSON object {matchMicros, placeMillis, models, regexpBacktrackMillis, backtrackN}, medians of R runs.
import { GPU_MODEL_PATTERN_MAX_LENGTH, NODE_STATUS_STRING_MAX_LENGTH, parseGpuModelPattern } from '../api-types/index.js';
import { Scheduler } from '../server/scheduler/scheduler.js';
import { makeNode, makePod } from '../test/scheduler/cluster-gen.js';
import { median, numberArg } from './args.js';

const RUNS = numberArg('--runs', 7);
const N = numberArg('--n', 22);
const millis = (f: () => void): number => { const t0 = process.hrtime.bigint(); f(); return Number(process.hrtime.bigint() - t0) / 1e6; };

// Every atom optional and matching every character: all states stay live at every position.
const worstPattern = (tail: string): string => 'a*'.repeat((GPU_MODEL_PATTERN_MAX_LENGTH - tail.length) >> 1) + tail;
const worstModel = (i: number): string => `${'a'.repeat(NODE_STATUS_STRING_MAX_LENGTH - 8)}${String(i).padStart(8, '0')}`;

const compiled = parseGpuModelPattern(worstPattern('$'));
const model = worstModel(0);
const matchMicros = median(Array.from({ length: RUNS }, () => millis(() => { for (let i = 0; i < 100; i++) compiled.test(model); }) * 10));

const s = new Scheduler({ engine: 'wasm', initialCapacity: 128 });
for (let n = 0; n < 100; n++) {
  const node = makeNode({ name: `g${n}`, cpu: 64, memoryGi: 512 });
  node.status!.gpus = Array.from({ length: 8 }, (_, g) => ({ index: g, uuid: `GPU-${n}-${g}`, vendor: 'nvidia', model: worstModel(n * 8 + g), memory: '80Gi', health: 'Healthy' as const }));
  node.status!.allocatable!['nvidia.com/gpu'] = 8;
  s.upsertNode(node);
}
let pod = 0;
const placeMillis = median(Array.from({ length: RUNS }, () => millis(() => {
  const p = pod++;
  const placed = s.place(makePod({ name: `p${p}`, gpus: 1, annotations: { 'flotilla.io/gpu-model': worstPattern(`${String(p % 800).padStart(8, '0')}$`) } }));
  if (placed.nodeName === null) throw new Error(`pod ${p} not placed: ${placed.error ?? ''}`);
})));

const hostile = 'a'.repeat(N) + 'b';
const regexpBacktrackMillis = median(Array.from({ length: Math.min(RUNS, 3) }, () => millis(() => /(a+)+$/.test(hostile))));

console.log(`gpu-model patterns: ${matchMicros.toFixed(1)} us per worst-case match (${GPU_MODEL_PATTERN_MAX_LENGTH}-char pattern, ` +
  `${NODE_STATUS_STRING_MAX_LENGTH}-char model); ${placeMillis.toFixed(2)} ms per GPU pod over 800 such models; ` +
  `RegExp (a+)+$ on ${N} a's + b: ${regexpBacktrackMillis.toFixed(1)} ms (refused at admission)`);
console.log(JSON.stringify({
  matchMicros: Math.round(matchMicros * 10) / 10, placeMillis: Math.round(placeMillis * 100) / 100, models: 800,
  regexpBacktrackMillis: Math.round(regexpBacktrackMillis * 10) / 10, backtrackN: N,
}));
