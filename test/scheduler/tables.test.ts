// The node table's interned tables (strings, GPU models, architectures, zones) never fill: values nodes stop
// reporting are forgotten and their ids reused, many values at once are fine, and pods never add values. Every
// placement here is made by the wasm core, the fallback core and the object-level reference, which must agree.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Node, NodeGpu, Pod } from '../../api-types/index.js';
import * as L from '../../server/scheduler/layout.js';
import { ReferenceScheduler } from '../../server/scheduler/reference.js';
import { Scheduler } from '../../server/scheduler/scheduler.js';
import { makeNode, makePod, type NodeOptions, type PodOptions } from './cluster-gen.js';

/** The same cluster in the three schedulers; every placement is checked for agreement. */
function cluster(initialCapacity = 4) {
  const wasm = new Scheduler({ engine: 'wasm', initialCapacity });
  const fallback = new Scheduler({ engine: 'fallback', initialCapacity });
  assert.is(wasm.engine.name, 'wasm');
  assert.is(fallback.engine.name, 'fallback');
  const reference = new ReferenceScheduler();
  return {
    wasm,
    upsert(node: Node): void { wasm.upsertNode(node); fallback.upsertNode(node); reference.upsertNode(node); },
    remove(name: string): void { wasm.removeNode(name); fallback.removeNode(name); reference.removeNode(name); },
    bind(pod: Pod, nodeName: string): void { wasm.podBound(pod, nodeName, []); fallback.podBound(pod, nodeName, []); reference.podBound(pod, nodeName, []); },
    /** Where the pod goes (null: nowhere) and the reason codes of the rejected nodes, sorted. */
    place(o: PodOptions): { node: string | null; reasons: number[] } {
      const pod = makePod(o);
      const w = wasm.place(pod); const f = fallback.place(pod); const r = reference.place(pod);
      assert.is(w.error, undefined, `${o.name}: ${w.error}`);
      assert.is(f.nodeName, w.nodeName, `${o.name}: the fallback core agrees with wasm`);
      assert.equal(f.reasons, w.reasons, `${o.name}: the fallback core's reasons`);
      assert.equal(f.gpuUuids, w.gpuUuids, `${o.name}: the fallback core's GPUs`);
      assert.is(r.nodeName, w.nodeName, `${o.name}: the reference agrees with wasm`);
      assert.equal(r.gpuUuids, w.gpuUuids, `${o.name}: the reference's GPUs`);
      const refReasons = [...r.reasons.values()].filter((why) => why.length > 0).map((why) => why[0]!).sort((a, b) => a - b);
      const reasons = w.reasons.flatMap((x) => Array<number>(x.count).fill(x.code));
      assert.equal(reasons, refReasons, `${o.name}: the reference's reasons`);
      return { node: w.nodeName, reasons };
    },
  };
}

const base = (name: string, extra: Partial<NodeOptions> = {}): NodeOptions => ({ name, cpu: 16, memoryGi: 64, ...extra });
function gpuNode(name: string, models: string[], extra: Partial<NodeOptions> = {}): Node {
  const node = makeNode(base(name, extra));
  const gpus: NodeGpu[] = models.map((model, index) => ({ index, uuid: `GPU-${name}-${index}`, vendor: 'nvidia', model, memory: '24Gi', health: 'Healthy' }));
  node.status!.gpus = gpus;
  node.status!.allocatable!['nvidia.com/gpu'] = gpus.length;
  return node;
}
const exactly = (model: string): string => `^${model.replace(/[.\\[\]^$*+?|-]/g, '\\$&')}$`;
const gpuPod = (name: string, model: string): PodOptions => ({ name, gpus: 1, annotations: { 'flotilla.io/gpu-model': exactly(model) } });

test('a node cycling through 320 GPU model names: each new model is schedulable at once, the old ones are forgotten', () => {
  const c = cluster();
  c.upsert(gpuNode('steady', ['NVIDIA A100-SXM4-80GB']));
  for (let i = 0; i < 320; i++) {
    const model = `Cycling GPU rev.${i}`;
    c.upsert(gpuNode('cycler', [model, model]));
    assert.is(c.place(gpuPod(`new-${i}`, model)).node, 'cycler', `model ${i} schedulable`);
    if (i > 0) assert.equal(c.place(gpuPod(`old-${i}`, `Cycling GPU rev.${i - 1}`)).reasons, [L.R_GPU_MODEL, L.R_GPU_MODEL], `model ${i - 1} is gone`);
  }
  assert.is(c.place(gpuPod('a100', 'NVIDIA A100-SXM4-80GB')).node, 'steady');
  assert.is(c.place({ name: 'any', gpus: 2 }).node, 'cycler');
  assert.is(c.wasm.table.internedCounts.models, 2, 'only the models nodes report now are held');
});

test('360 distinct GPU models at once (45 nodes of 8): every one schedulable; removed nodes free theirs', () => {
  const c = cluster();
  const model = (n: number, g: number) => `Model ${n}-${g}`;
  for (let n = 0; n < 45; n++) c.upsert(gpuNode(`g${n}`, Array.from({ length: 8 }, (_, g) => model(n, g))));
  assert.is(c.wasm.table.internedCounts.models, 360);
  for (let n = 0; n < 45; n++) for (const g of [0, 7]) assert.is(c.place(gpuPod(`p${n}-${g}`, model(n, g))).node, `g${n}`);
  for (let n = 0; n < 40; n++) c.remove(`g${n}`);
  assert.is(c.wasm.table.internedCounts.models, 40);
  c.upsert(gpuNode('late', ['Late model']));
  assert.is(c.place(gpuPod('late', 'Late model')).node, 'late');
  assert.is(c.place(gpuPod('gone', model(3, 3))).node, null);
});

test('300 zones at once, and one node cycling through 500 zones: zone pod (anti-)affinity stays right', () => {
  const c = cluster();
  for (let i = 0; i < 300; i++) c.upsert(makeNode(base(`z${i}`, { zone: `zone-${i}` })));
  assert.is(c.wasm.table.internedCounts.zones, 300);
  const db = makePod({ name: 'db', labels: { app: 'db' } });
  c.bind(db, 'z150');
  const term = { labelSelector: { matchLabels: { app: 'db' } }, topologyKey: 'topology.kubernetes.io/zone' };
  assert.is(c.place({ name: 'near', affinity: { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term] } } }).node, 'z150');
  const far = c.place({ name: 'far', affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term] } } });
  assert.ok(far.node !== null && far.node !== 'z150', String(far.node));
  for (let i = 0; i < 300; i++) c.remove(`z${i}`);
  assert.is(c.wasm.table.internedCounts.zones, 0);
  // A small table: two nodes, one of them moving through zones; zone ids must stay within the table.
  c.upsert(makeNode(base('home', { zone: 'home' })));
  c.upsert(makeNode(base('z150', { zone: 'zone-start' })));
  for (let i = 0; i < 500; i++) {
    // Every 7th step the db node joins zone "home": both nodes are then in the db's zone.
    const shared = i % 7 === 0;
    c.upsert(makeNode(base('z150', { zone: shared ? 'home' : `zone-${i}` })));
    const near = c.place({ name: `near-${i}`, affinity: { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [term] } } });
    if (shared) assert.ok(near.node === 'home' || near.node === 'z150', `step ${i}: ${near.node}`);
    else assert.equal(near, { node: 'z150', reasons: [L.R_POD_AFFINITY] }, `step ${i}`);
  }
  assert.ok(c.wasm.table.internedCounts.zones <= 2);
});

test('label values cycling 20,000 times on one node keep the string table at what nodes hold; Gt/Lt read the current value', () => {
  const c = cluster();
  c.upsert(makeNode(base('other')));
  const held = (): number => c.wasm.table.internedCounts.strings;
  for (let i = 0; i < 20000; i++) {
    c.upsert(makeNode(base('cycler', { labels: { generation: String(i), build: `b-${i}` } })));
    if (i % 2500 !== 0) continue;
    const gt = (v: number) => c.place({ name: `gt-${i}-${v}`, affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'generation', operator: 'Gt', values: [String(v)] }] }] } } } }).node;
    assert.is(gt(i - 1), 'cycler');
    assert.is(gt(i), null);
    assert.is(c.place({ name: `sel-${i}`, nodeSelector: { build: `b-${i}` } }).node, 'cycler');
    assert.is(c.place({ name: `old-${i}`, nodeSelector: { build: `b-${i - 1}` } }).node, null);
  }
  const steady = held();
  assert.ok(steady < 30, `strings held: ${steady}`);
  // Pods asking for values no node has add nothing, whatever they ask.
  for (let i = 0; i < 1000; i++) {
    c.place({ name: `ask-${i}`, nodeSelector: { [`key-${i}`]: `value-${i}` }, tolerations: [{ key: `t-${i}`, value: `v-${i}`, operator: 'Equal', effect: 'NoSchedule' }], annotations: { 'flotilla.io/image-arch': `arch${i}` } });
  }
  assert.is(held(), steady);
  assert.is(c.wasm.table.internedCounts.arches, 1);
});

test('40 architectures at once (more than one 32-bit mask); an image-arch list no node has matches no node', () => {
  const c = cluster();
  for (let i = 0; i < 40; i++) c.upsert(makeNode(base(`a${i}`, { arch: `arch${i}` })));
  for (let i = 0; i < 40; i++) assert.is(c.place({ name: `p${i}`, annotations: { 'flotilla.io/image-arch': `nosuch,arch${i}` } }).node, `a${i}`);
  assert.equal(c.place({ name: 'none', annotations: { 'flotilla.io/image-arch': 'nosuch' } }).reasons, Array<number>(40).fill(L.R_ARCH));
  assert.ok(c.place({ name: 'any' }).node !== null);
});

test.run();
