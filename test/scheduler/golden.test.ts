// Golden scenarios: test/scheduler/golden/*.yaml list nodes and a batch of pods; `expect` holds one line per
// pod ("NAME -> NODE [GPUS]" or "NAME: explanation"). Both engines must produce exactly those lines.
// Rewrite the expectations after an intended change with FLOTILLA_UPDATE_GOLDEN=1 (then review the diff).
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseDocument } from 'yaml';
import { Scheduler, explain } from '../../server/scheduler/scheduler.js';
import { GPU_MODELS, makeNode, makePod, type NodeOptions, type PodOptions } from './cluster-gen.js';

const dir = new URL('../../../test/scheduler/golden/', import.meta.url);
const update = process.env.FLOTILLA_UPDATE_GOLDEN === '1';
const GPU_BY_NAME: Record<string, (typeof GPU_MODELS)[number]> = {
  RTX4090: GPU_MODELS[0], A100_40: GPU_MODELS[1], A100_80: GPU_MODELS[2], T4: GPU_MODELS[3], H100: GPU_MODELS[4], MI210: GPU_MODELS[5],
};

interface Scenario {
  strategy?: 'binpack' | 'spread';
  seed?: number;
  nodes: (Omit<NodeOptions, 'gpus'> & { gpus?: string[] })[];
  bound?: { pod: PodOptions; node: string; gpus?: string[] }[];
  pods: PodOptions[];
  expect?: string[];
}

function run(s: Scenario, engine: 'wasm' | 'fallback', file: string): string[] {
  const sched = new Scheduler({ engine, strategy: s.strategy ?? 'binpack', seed: s.seed ?? 0 });
  for (const n of s.nodes) {
    const gpus = (n.gpus ?? []).map((g) => {
      const model = GPU_BY_NAME[g];
      if (!model) throw new Error(`${file}: node ${n.name}: unknown GPU "${g}" (known: ${Object.keys(GPU_BY_NAME).join(', ')})`);
      return model;
    });
    sched.upsertNode(makeNode({ ...n, gpus }));
  }
  for (const b of s.bound ?? []) sched.podBound(makePod(b.pod), b.node, b.gpus ?? []);
  return sched.scheduleBatch(s.pods.map(makePod)).map((p) =>
    p.nodeName ? `${p.pod.metadata.name} -> ${p.nodeName}${p.gpuUuids.length ? ` [${p.gpuUuids.join(',')}]` : ''}` : `${p.pod.metadata.name}: ${explain(p)}`);
}

const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();

test('golden scenarios exist', () => { assert.ok(files.length >= 4, `${files.length} scenario files`); });

for (const file of files) {
  test(`golden ${file}`, () => {
    const path = new URL(file, dir);
    const doc = parseDocument(readFileSync(path, 'utf8'), { merge: true });
    const scenario = doc.toJS() as Scenario;
    const wasm = run(scenario, 'wasm', file);
    assert.equal(run(scenario, 'fallback', file), wasm, 'the fallback core agrees with wasm');
    if (update) { doc.set('expect', wasm); writeFileSync(path, String(doc)); return; }
    assert.ok(Array.isArray(scenario.expect), `${file}: no expect list; run with FLOTILLA_UPDATE_GOLDEN=1`);
    assert.equal(wasm, scenario.expect);
  });
}

test.run();
