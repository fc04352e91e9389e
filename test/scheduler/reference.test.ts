// The object-level reference scheduler on its own: every reason per node, GPU choice, symmetric anti-affinity,
// and the node order the NodeTable keeps.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as L from '../../server/scheduler/layout.js';
import { FILTERS, ReferenceScheduler } from '../../server/scheduler/reference.js';
import { GPU_MODELS, makeNode, makePod, type NodeOptions } from './cluster-gen.js';

const [RTX4090, A100_40, A100_80, T4] = GPU_MODELS;
const n = (name: string, extra: Partial<NodeOptions> = {}): NodeOptions => ({ name, cpu: 4, memoryGi: 8, ...extra });

function reference(nodes: NodeOptions[]): ReferenceScheduler {
  const r = new ReferenceScheduler();
  for (const o of nodes) r.upsertNode(makeNode(o));
  return r;
}

test('filters run in pipeline order, and each node gets every reason it fails, not only the first', () => {
  assert.equal(FILTERS.map((f) => f.name), ['ready', 'unschedulable', 'arch', 'nodeSelector', 'nodeAffinity', 'taints',
    'resources', 'hostPorts', 'podAffinity', 'podAntiAffinity', 'gpuIds', 'gpuCount', 'gpuModel', 'gpuMemory']);
  const r = reference([
    n('down', { ready: false, unschedulable: true, cpu: 1, memoryGi: 1, arch: 'arm64' }),
    n('tainted', { taints: [{ key: 'k', effect: 'NoSchedule' }], pods: 0 }),
    n('fits'),
  ]);
  const p = r.place(makePod({ name: 'p', cpu: '2', memory: '2Gi', nodeSelector: { 'kubernetes.io/arch': 'amd64' },
    annotations: { 'flotilla.io/image-arch': 'amd64' } }));
  assert.is(p.nodeName, 'fits');
  assert.is(p.feasible, 1);
  assert.equal(Object.fromEntries(p.reasons), {
    down: [L.R_NOT_READY, L.R_UNSCHEDULABLE, L.R_ARCH, L.R_NODE_SELECTOR, L.R_CPU, L.R_MEMORY],
    tainted: [L.R_TAINT, L.R_PODS],
    fits: [],
  });
});

test('GPUs: the smallest fitting ones; the first unmet GPU condition is the reason', () => {
  const r = reference([n('box', { cpu: 32, memoryGi: 128, gpus: [A100_80, RTX4090, T4, A100_40] })]);
  const gpus = (count: number, annotations: Record<string, string> = {}) => r.place(makePod({ name: 'p', gpus: count, annotations }));
  assert.equal(gpus(1).gpuUuids, ['GPU-box-2']);
  assert.equal(gpus(2, { 'flotilla.io/gpu-memory-min': '30Gi' }).gpuUuids, ['GPU-box-3', 'GPU-box-0']);
  assert.equal(gpus(5).reasons.get('box'), [L.R_GPU_COUNT]);
  assert.equal(gpus(3, { 'flotilla.io/gpu-model': 'A100' }).reasons.get('box'), [L.R_GPU_MODEL]);
  assert.equal(gpus(1, { 'flotilla.io/gpu-memory-min': '100Gi' }).reasons.get('box'), [L.R_GPU_MEMORY]);
  r.podBound(makePod({ name: 'holder', gpus: 1 }), 'box', ['GPU-box-2']);
  assert.equal(gpus(1).gpuUuids, ['GPU-box-1'], 'a held GPU is not given again');
});

test('a bound pod\'s required anti-affinity repels the pods it selects, in its domain only, until it leaves', () => {
  const r = reference([n('a', { zone: 'z1' }), n('b', { zone: 'z1' }), n('c', { zone: 'z2' })]);
  const loner = makePod({ name: 'loner', affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [
    { topologyKey: 'topology.kubernetes.io/zone', labelSelector: { matchLabels: { app: 'web' } } }] } } });
  r.podBound(loner, 'a', []);
  const web = r.place(makePod({ name: 'web', labels: { app: 'web' } }));
  assert.is(web.nodeName, 'c');
  assert.equal(web.reasons.get('b'), [L.R_POD_ANTI_AFFINITY]);
  r.podRemoved(loner.metadata.uid!);
  assert.equal(r.place(makePod({ name: 'web', labels: { app: 'web' } })).reasons.get('b'), []);
});

test('removing a node moves the last one into its place, as the NodeTable does', () => {
  const r = reference([n('n0'), n('n1'), n('n2'), n('n3')]);
  r.removeNode('n1');
  assert.equal([...r.place(makePod({ name: 'p' })).reasons.keys()], ['n0', 'n3', 'n2']);
  r.upsertNode(makeNode(n('n0', { cpu: 8 })));
  assert.equal([...r.place(makePod({ name: 'p' })).reasons.keys()], ['n0', 'n3', 'n2'], 'an update keeps the place');
});

test.run();
