// Table-driven semantics of every filter, scorer and message, on both engines and the object-level reference.
import { statSync } from 'node:fs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import * as L from '../../server/scheduler/layout.js';
import { ReferenceScheduler } from '../../server/scheduler/reference.js';
import { Scheduler, explain } from '../../server/scheduler/scheduler.js';
import { DEFAULT_WASM_URL, loadWasmCore } from '../../server/scheduler/wasm-core.js';
import type { Node, NodeSelectorTerm, Pod } from '../../api-types/index.js';
import { GPU_MODELS, makeNode, makePod, type NodeOptions, type PodOptions } from './cluster-gen.js';

const [RTX4090, A100_40, A100_80, T4, , MI210] = GPU_MODELS;
const ENGINES = ['wasm', 'fallback'] as const;

/** Places `pod` on a fresh cluster (after `bound` pods) with each engine and the object-level reference; all must agree. */
function place(nodes: NodeOptions[], pod: PodOptions, bound: { pod: PodOptions; node: string; gpus?: string[] }[] = [], strategy: 'binpack' | 'spread' = 'binpack') {
  const results = ENGINES.map((engine) => {
    const s = new Scheduler({ engine, strategy });
    nodes.forEach((n) => s.upsertNode(makeNode(n)));
    bound.forEach((b) => s.podBound(makePod(b.pod), b.node, b.gpus ?? []));
    return s.place(makePod(pod));
  });
  const [w, r] = results as [ReturnType<Scheduler['place']>, ReturnType<Scheduler['place']>];
  assert.is(w.nodeName, r.nodeName, 'engines agree on the node');
  assert.equal(w.gpuUuids, r.gpuUuids, 'engines agree on the GPUs');
  const ref = new ReferenceScheduler({ strategy });
  nodes.forEach((o) => ref.upsertNode(makeNode(o)));
  bound.forEach((b) => ref.podBound(makePod(b.pod), b.node, b.gpus ?? []));
  const o = ref.place(makePod(pod));
  assert.is(o.nodeName, w.nodeName, 'the object-level reference agrees on the node');
  assert.equal(o.gpuUuids, w.gpuUuids, 'the object-level reference agrees on the GPUs');
  return { node: w.nodeName, gpus: w.gpuUuids, message: explain(w), placement: w };
}
const n = (name: string, extra: Partial<NodeOptions> = {}): NodeOptions => ({ name, cpu: 4, memoryGi: 8, ...extra });

test('layout: the wasm module and the host agree; regions sorted and f64 regions aligned', () => {
  assert.not.throws(() => loadWasmCore());
  const size = statSync(DEFAULT_WASM_URL).size;
  assert.ok(size > 1000 && size < 16384, `scheduler.wasm is ${size} bytes; the budget is 16 KiB`);
  const regions = L.NODE_REGIONS;
  assert.ok(regions.length > 20);
  regions.forEach((r, i) => { if (i > 0) assert.ok(r.perNode >= regions[i - 1]!.perNode + regions[i - 1]!.bytes, r.name); });
  for (const r of regions.filter((x) => x.perNode < L.N_CPU_ALLOC)) assert.is(r.perNode % 8, 0, r.name);
  assert.is(L.NODE_BASE % 8, 0);
  assert.is(L.powerTable()[0], 1000); assert.is(L.powerTable()[1000], 10000); assert.is(L.powerTable()[500], 3162);
});

test('ready, cordoned, resources: reason per node', () => {
  const r = place([n('a', { ready: false }), n('b', { unschedulable: true }), n('c', { cpu: 1 }), n('d', { memoryGi: 1 }), n('e', { pods: 0 })],
    { name: 'p', cpu: '2', memory: '2Gi' });
  assert.is(r.node, null);
  assert.is(r.message, '0/5 nodes are available: 1 node(s) were not ready, 1 node(s) were unschedulable, 1 Too many pods, 1 Insufficient cpu, 1 Insufficient memory.');
});

test('usage of bound pods counts; podRemoved frees it', () => {
  const nodes = [n('a')];
  assert.is(place(nodes, { name: 'p', cpu: '3' }, [{ pod: { name: 'q', cpu: '2' }, node: 'a' }]).node, null);
  const s = new Scheduler({ engine: 'wasm' });
  s.upsertNode(makeNode(n('a')));
  s.podBound(makePod({ name: 'q', cpu: '2' }), 'a', []);
  assert.is(s.place(makePod({ name: 'p', cpu: '3' })).nodeName, null);
  s.podRemoved('uid-default-q');
  assert.is(s.place(makePod({ name: 'p', cpu: '3' })).nodeName, 'a');
});

test('nodeSelector and required node affinity operators', () => {
  const nodes = [n('ssd', { labels: { disk: 'ssd', tier: '3' } }), n('hdd', { labels: { disk: 'hdd', tier: '1' } }), n('bare')];
  assert.is(place(nodes, { name: 'p', nodeSelector: { disk: 'ssd' } }).node, 'ssd');
  assert.match(place(nodes, { name: 'p', nodeSelector: { disk: 'nvme' } }).message, "3 node(s) didn't match Pod's node selector");
  const aff = (matchExpressions: object[]): PodOptions => ({ name: 'p', affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions } as never] } } } });
  assert.is(place(nodes, aff([{ key: 'disk', operator: 'In', values: ['hdd', 'x'] }])).node, 'hdd');
  assert.is(place(nodes, aff([{ key: 'tier', operator: 'Gt', values: ['2'] }])).node, 'ssd');
  assert.is(place(nodes, aff([{ key: 'tier', operator: 'Lt', values: ['2'] }])).node, 'hdd');
  assert.is(place(nodes, aff([{ key: 'disk', operator: 'DoesNotExist' }])).node, 'bare');
  assert.is(place(nodes, aff([{ key: 'disk', operator: 'Exists' }, { key: 'disk', operator: 'NotIn', values: ['ssd'] }])).node, 'hdd');
  assert.match(place(nodes, aff([{ key: 'tier', operator: 'Gt', values: ['5'] }])).message, "3 node(s) didn't match Pod's node affinity");
});

test('node affinity terms without requirements: a required one matches no node, a preferred one counts for nothing (as in Kubernetes)', () => {
  const nodes = [n('a'), n('b', { labels: { disk: 'ssd' } })];
  const required = (nodeSelectorTerms: NodeSelectorTerm[]): PodOptions => ({ name: 'p', affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms } } } });
  assert.is(place(nodes, required([{}])).message, "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity.");
  assert.is(place(nodes, required([{ matchExpressions: [] }, { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] }])).node, 'b');
  // Binpack prefers a (it holds q); only the weight-1 preference for b may outweigh that, not an empty one.
  const preferred: PodOptions = { name: 'p', cpu: '1', memory: '2Gi', affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [
    { weight: 100, preference: {} }, { weight: 1, preference: { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] } }] } } };
  const bound = [{ pod: { name: 'q', cpu: '250m', memory: '512Mi' }, node: 'a' }];
  assert.is(place(nodes, { ...preferred, affinity: {} }, bound).node, 'a');
  assert.is(place(nodes, preferred, bound).node, 'b');
});

test('spec.os.name fits only nodes of that OS, beside any nodeSelector', () => {
  const nodes = [n('linux-1'), n('win-1', { labels: { 'kubernetes.io/os': 'windows' } })];
  assert.is(place(nodes, { name: 'p', os: 'windows' }).node, 'win-1');
  assert.is(place(nodes, { name: 'p', os: 'linux' }).node, 'linux-1');
  const r = place([n('linux-1'), n('linux-2')], { name: 'p', os: 'windows' });
  assert.is(r.node, null);
  assert.is(r.message, "0/2 nodes are available: 2 node(s) didn't match Pod's node selector.");
  assert.is(place(nodes, { name: 'p', os: 'linux', nodeSelector: { 'kubernetes.io/os': 'windows' } }).node, null, 'both must hold');
});

test('the pod overhead (from its RuntimeClass) counts on top of the containers for fit', () => {
  const nodes = [n('a', { cpu: 2, memoryGi: 2 })];
  assert.is(place(nodes, { name: 'p', cpu: '1500m', memory: '1Gi' }).node, 'a');
  assert.match(place(nodes, { name: 'p', cpu: '1500m', memory: '1Gi', overhead: { cpu: '600m' } }).message, '1 Insufficient cpu');
  assert.match(place(nodes, { name: 'p', cpu: '1500m', memory: '1Gi', overhead: { memory: '1500Mi' } }).message, '1 Insufficient memory');
  const bound = [{ pod: { name: 'q', cpu: '500m', overhead: { cpu: '1' } }, node: 'a' }];
  assert.is(place(nodes, { name: 'p', cpu: '600m' }, bound).node, null, 'a bound pod\'s overhead stays counted');
  assert.is(place(nodes, { name: 'p', cpu: '500m' }, bound).node, 'a');
});

test('taints: NoSchedule and NoExecute filter, tolerations by Equal/Exists, PreferNoSchedule only scores', () => {
  const tainted = [n('gpu', { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] }), n('evict', { taints: [{ key: 'x', effect: 'NoExecute' }] })];
  assert.match(place(tainted, { name: 'p' }).message, '2 node(s) had untolerated taint');
  assert.is(place(tainted, { name: 'p', tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' }] }).node, 'gpu');
  assert.is(place(tainted, { name: 'p', tolerations: [{ key: 'dedicated', operator: 'Equal', value: 'cpu' }] }).node, null);
  assert.is(place(tainted, { name: 'p', tolerations: [{ key: 'x', operator: 'Exists' }] }).node, 'evict');
  assert.ok(place(tainted, { name: 'p', tolerations: [{ operator: 'Exists' }] }).node);
  const soft = [n('spot', { taints: [{ key: 'spot', effect: 'PreferNoSchedule' }] }), n('plain')];
  assert.is(place(soft, { name: 'p' }).node, 'plain');
  assert.is(place([soft[0]!], { name: 'p' }).node, 'spot');
});

test('host ports conflict per protocol', () => {
  const bound = [{ pod: { name: 'web', hostPorts: [80] }, node: 'a' }];
  assert.is(place([n('a'), n('b')], { name: 'p', hostPorts: [80] }, bound).node, 'b');
  assert.match(place([n('a')], { name: 'p', hostPorts: [80] }, bound).message, "1 node(s) didn't have free ports");
  assert.is(place([n('a')], { name: 'p', hostPorts: [81] }, bound).node, 'a');
});

test('architecture from flotilla.io/image-arch', () => {
  const nodes = [n('pi', { arch: 'arm64' }), n('pc', { arch: 'amd64' })];
  assert.is(place(nodes, { name: 'p', annotations: { 'flotilla.io/image-arch': 'arm64' } }).node, 'pi');
  assert.match(place([nodes[0]!], { name: 'p', annotations: { 'flotilla.io/image-arch': 'amd64' } }).message, "1 node(s) didn't match the image architecture");
});

test('pod affinity and anti-affinity by hostname and zone; the first pod of a group may match itself', () => {
  const nodes = [n('a1', { zone: 'z1' }), n('a2', { zone: 'z1' }), n('b1', { zone: 'z2' })];
  const db = [{ pod: { name: 'db', labels: { app: 'db' } }, node: 'a1' }];
  const term = (topologyKey: string, app = 'db') => [{ topologyKey, labelSelector: { matchLabels: { app } } }];
  const anti = (k: string): PodOptions => ({ name: 'p', labels: { app: 'web' }, affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: term(k) } } });
  const aff = (k: string, app = 'db'): PodOptions => ({ name: 'p', labels: { app: 'web' }, affinity: { podAffinity: { requiredDuringSchedulingIgnoredDuringExecution: term(k, app) } } });
  assert.is(place(nodes, anti(LABEL_ZONE), db).node, 'b1');
  assert.is.not(place(nodes, anti('kubernetes.io/hostname'), db).node, 'a1');
  assert.is(place(nodes, aff('kubernetes.io/hostname'), db).node, 'a1');
  assert.ok(['a1', 'a2'].includes(place(nodes, aff(LABEL_ZONE), db).node!));
  assert.match(place(nodes, aff(LABEL_ZONE, 'cache')).message, "3 node(s) didn't match pod affinity rules");
  assert.ok(place(nodes, aff(LABEL_ZONE, 'web')).node, 'first pod of its own group');
  assert.match(place([n('a1', { zone: 'z1' })], anti('kubernetes.io/hostname'), db).message, "1 node(s) didn't match pod anti-affinity rules");
});
const LABEL_ZONE = 'topology.kubernetes.io/zone';

test('symmetric anti-affinity: a bound pod repels matching pods until it leaves; columns survive eviction', () => {
  const anti = (topologyKey: string, app: string, namespaces?: string[]): PodOptions['affinity'] => ({ podAntiAffinity: {
    requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey, labelSelector: { matchLabels: { app } }, ...(namespaces ? { namespaces } : {}) }] } });
  const loner = { pod: { name: 'loner', labels: { app: 'loner' }, affinity: anti('kubernetes.io/hostname', 'web') }, node: 'a' };
  const web = { name: 'web', labels: { app: 'web' }, cpu: '1' };
  // Binpack would choose a (fuller); the loner's term sends web to b.
  assert.is(place([n('a'), n('b')], web, [loner, { pod: { name: 'x', cpu: '2' }, node: 'a' }]).node, 'b');
  assert.is(place([n('a')], web, [loner]).message, "0/1 nodes are available: 1 node(s) didn't match pod anti-affinity rules.");
  assert.is(place([n('a')], { ...web, namespace: 'team-b' }, [loner]).node, 'a', 'the term selects its own namespace only');
  assert.is(place([n('a')], web, [{ ...loner, pod: { ...loner.pod, affinity: anti('kubernetes.io/hostname', 'web', ['team-b']) } }]).node, 'a');
  const zonal = { pod: { name: 'z', affinity: anti('topology.kubernetes.io/zone', 'web') }, node: 'a' };
  assert.is(place([n('a', { zone: 'z1' }), n('b', { zone: 'z1' }), n('c', { zone: 'z2' })], web, [zonal, { pod: { name: 'y', cpu: '2' }, node: 'b' }]).node, 'c');
  for (const engine of ENGINES) {
    const s = new Scheduler({ engine });
    s.upsertNode(makeNode(n('a')));
    s.podBound(makePod(loner.pod), 'a', []);
    s.podBound(makePod({ ...loner.pod, name: 'loner-2' }), 'a', []);
    assert.is(s.place(makePod(web)).nodeName, null, engine);
    // Fill every tracked column with other selectors, so the carriers column is evicted and rebuilt.
    for (let i = 0; i < L.MAX_TERMS + 4; i++) s.place(makePod({ name: `probe-${i}`, affinity: { podAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [
      { weight: 1, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { app: `other-${i}` } } } }] } } }));
    assert.is(s.place(makePod(web)).nodeName, null, `${engine}: after eviction`);
    s.podRemoved('uid-default-loner');
    assert.is(s.place(makePod(web)).nodeName, null, `${engine}: one carrier is left`);
    s.podRemoved('uid-default-loner-2');
    assert.is(s.place(makePod(web)).nodeName, 'a', `${engine}: no carrier left`);
  }
});

test('preferred node affinity and preferred anti-affinity steer the choice', () => {
  const nodes = [n('a', { labels: { disk: 'hdd' } }), n('b', { labels: { disk: 'ssd' } })];
  const pref: PodOptions = { name: 'p', affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 50, preference: { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] } }] } } };
  assert.is(place(nodes, pref).node, 'b');
  const spreadOut: PodOptions = { name: 'p', labels: { app: 'w' }, affinity: { podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { topologyKey: 'kubernetes.io/hostname', labelSelector: { matchLabels: { app: 'w' } } } }] } } };
  assert.is(place(nodes, spreadOut, [{ pod: { name: 'w0', labels: { app: 'w' } }, node: 'b' }]).node, 'a');
});

test('binpack fills the fuller node; spread (per pod or per cluster) the emptier one', () => {
  const nodes = [n('a'), n('b')];
  const bound = [{ pod: { name: 'q', cpu: '2', memory: '4Gi' }, node: 'a' }];
  assert.is(place(nodes, { name: 'p', cpu: '1' }, bound).node, 'a');
  assert.is(place(nodes, { name: 'p', cpu: '1', annotations: { 'flotilla.io/placement': 'spread' } }, bound).node, 'b');
  assert.is(place(nodes, { name: 'p', cpu: '1' }, bound, 'spread').node, 'b');
});

test('GPUs: the smallest fitting GPU, memory minimum, model pattern, health, vendor', () => {
  const box = n('box', { cpu: 32, memoryGi: 128, gpus: [A100_80, RTX4090, T4, A100_40], unhealthy: [] });
  assert.equal(place([box], { name: 'p', gpus: 1 }).gpus, ['GPU-box-2'], 'T4 16Gi is the smallest');
  assert.equal(place([box], { name: 'p', gpus: 1, annotations: { 'flotilla.io/gpu-memory-min': '20Gi' } }).gpus, ['GPU-box-1']);
  assert.equal(place([box], { name: 'p', gpus: 2, annotations: { 'flotilla.io/gpu-memory-min': '30Gi' } }).gpus, ['GPU-box-3', 'GPU-box-0']);
  assert.equal(place([box], { name: 'p', gpus: 1, annotations: { 'flotilla.io/gpu-model': 'A100|H100' } }).gpus, ['GPU-box-3']);
  assert.is(place([box], { name: 'p', gpus: 1, annotations: { 'flotilla.io/gpu-memory-min': '100Gi' } }).message, '0/1 nodes are available: 1 no GPU with >= 100Gi.');
  assert.is(place([box], { name: 'p', gpus: 1, annotations: { 'flotilla.io/gpu-model': 'MI300' } }).message, '0/1 nodes are available: 1 no GPU matching model "MI300".');
  assert.is(place([box], { name: 'p', gpus: 5 }).message, '0/1 nodes are available: 1 Insufficient nvidia.com/gpu.');
  assert.is(place([box], { name: 'p', gpus: 1, gpuResource: 'amd.com/gpu' }).message, '0/1 nodes are available: 1 Insufficient amd.com/gpu.');
  assert.equal(place([n('amd', { gpus: [MI210, RTX4090] })], { name: 'p', gpus: 1, gpuResource: 'amd.com/gpu' }).gpus, ['GPU-amd-0']);
  assert.equal(place([n('sick', { gpus: [T4, RTX4090], unhealthy: [0] })], { name: 'p', gpus: 1 }).gpus, ['GPU-sick-1']);
});

test('flotilla.io/gpu-ids: only the node holding every pinned GPU fits, and it gets exactly those', () => {
  const nodes = [n('a', { cpu: 32, memoryGi: 128, gpus: [A100_80, RTX4090, T4, A100_40] }), n('b', { cpu: 32, memoryGi: 128, gpus: [T4, T4] })];
  const pinned = (ids: string, extra: Record<string, string> = {}): PodOptions =>
    ({ name: 'p', gpus: ids.split(',').length, annotations: { 'flotilla.io/gpu-ids': ids, ...extra } });
  assert.equal(place(nodes, pinned('GPU-a-0')).gpus, ['GPU-a-0'], 'the pinned A100, not the smaller free T4s');
  assert.equal(place(nodes, pinned('GPU-a-3,GPU-a-1')).gpus, ['GPU-a-1', 'GPU-a-3']);
  assert.is(place(nodes, pinned('GPU-b-1')).node, 'b');
  const absent = place(nodes, pinned('GPU-a-0,GPU-b-0'));
  assert.is(absent.node, null, 'no node holds both');
  assert.is(absent.message, '0/2 nodes are available: 2 GPUs GPU-a-0, GPU-b-0 are not all on this node.');
  assert.is(place(nodes, pinned('GPU-c-0')).message, '0/2 nodes are available: 2 GPU GPU-c-0 is not on this node.');
  const held = place(nodes, pinned('GPU-a-2'), [{ pod: { name: 'h', gpus: 1 }, node: 'a', gpus: ['GPU-a-2'] }]);
  assert.is(held.message, '0/2 nodes are available: 1 GPU GPU-a-2 is not on this node, 1 GPU GPU-a-2 is held by another pod.');
  assert.is(place(nodes, pinned('GPU-a-2', { 'flotilla.io/gpu-memory-min': '20Gi' })).message, '0/2 nodes are available: 1 no GPU with >= 20Gi, 1 GPU GPU-a-2 is not on this node.',
    'the other GPU constraints apply to the pinned GPUs');
  assert.is(place([n('sick', { gpus: [T4, RTX4090], unhealthy: [0] })], pinned('GPU-sick-0')).message, '0/1 nodes are available: 1 Insufficient nvidia.com/gpu.');
});

test('GPUs are never double-booked; sharing only between sharing pods on shared nodes', () => {
  const shared = (name: string): NodeOptions => n(name, { cpu: 16, memoryGi: 32, gpus: [T4], labels: { 'flotilla.io/gpu-sharing': 'shared' } });
  const holder = (sharing: boolean): { pod: PodOptions; node: string; gpus: string[] }[] =>
    [{ pod: { name: 'h', gpus: 1, annotations: sharing ? { 'flotilla.io/gpu-sharing': 'shared' } : {} }, node: 'g', gpus: ['GPU-g-0'] }];
  const sharer: PodOptions = { name: 'p', gpus: 1, annotations: { 'flotilla.io/gpu-sharing': 'shared' } };
  assert.is(place([n('g', { gpus: [T4] })], { name: 'p', gpus: 1 }, holder(false)).node, null);
  assert.is(place([n('g', { gpus: [T4] })], sharer, holder(true)).node, null, 'node not labelled shared');
  assert.equal(place([shared('g')], sharer, holder(true)).gpus, ['GPU-g-0']);
  assert.is(place([shared('g')], sharer, holder(false)).node, null, 'held exclusively');
  assert.is(place([shared('g')], { name: 'p', gpus: 1 }, holder(true)).node, null, 'exclusive pod refuses a shared GPU');
  // Within one batch the first placement is accounted before the second.
  const s = new Scheduler({ engine: 'wasm' });
  s.upsertNode(makeNode(n('g', { gpus: [T4, T4] })));
  const batch = s.scheduleBatch([makePod({ name: 'a', gpus: 1 }), makePod({ name: 'b', gpus: 1 }), makePod({ name: 'c', gpus: 1 })]);
  assert.equal(batch.map((p) => p.gpuUuids.join()), ['GPU-g-0', 'GPU-g-1', '']);
});

test('explain renders counts in kube-scheduler style', () => {
  const nodes: NodeOptions[] = [
    n('m1', { memoryGi: 1 }), n('m2', { memoryGi: 1 }), n('m3', { memoryGi: 1 }),
    n('g1', { memoryGi: 64, gpus: [T4] }), n('g2', { memoryGi: 64, gpus: [T4, T4] }),
  ];
  const r = place(nodes, { name: 'p', memory: '8Gi', gpus: 1, annotations: { 'flotilla.io/gpu-memory-min': '16Gi' } });
  assert.is(r.node, 'g1');
  const r2 = place(nodes, { name: 'p', memory: '8Gi', gpus: 1, annotations: { 'flotilla.io/gpu-memory-min': '20Gi' } });
  assert.is(r2.message, '0/5 nodes are available: 3 Insufficient memory, 2 no GPU with >= 20Gi.');
});

test('malformed pods and nodes are refused with the field named', () => {
  const s = new Scheduler({ engine: 'wasm' });
  s.upsertNode(makeNode(n('a')));
  const bad = (pod: Pod) => explain(s.place(pod));
  assert.match(bad(makePod({ name: 'p', cpu: 'lots' })), 'spec.containers[0].resources.requests.cpu: invalid quantity "lots"');
  assert.match(bad(makePod({ name: 'p', gpus: 1, annotations: { 'flotilla.io/gpu-model': '(' } })), 'flotilla.io/gpu-model: unsupported pattern "(": groups "( )" are not supported at offset 0');
  assert.match(bad(makePod({ name: 'p', annotations: { 'flotilla.io/placement': 'random' } })), 'flotilla.io/placement is "random"');
  assert.match(bad(makePod({ name: 'p', affinity: { podAntiAffinity: { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: 'rack' }] } } })), 'topologyKey "rack"');
  const node: Node = makeNode(n('b'));
  node.spec!.taints = [{ key: 'k', effect: 'Sometimes' as never }];
  assert.throws(() => s.upsertNode(node), /spec\.taints\[0\]\.effect "Sometimes"/);
  assert.is(s.table.count, 1, 'a refused node leaves the table unchanged');
});

test('table growth and node removal keep every other node intact', () => {
  const s = new Scheduler({ engine: 'wasm', initialCapacity: 2 });
  for (let i = 0; i < 9; i++) s.upsertNode(makeNode(n(`n${i}`, { cpu: i + 1, gpus: i === 4 ? [A100_80] : [] })));
  s.removeNode('n0'); s.removeNode('n4');
  assert.ok(s.table.capacity >= 9);
  assert.is(s.table.count, 7);
  assert.is(s.place(makePod({ name: 'big', cpu: '9' })).nodeName, 'n8');
  assert.is(s.place(makePod({ name: 'g', gpus: 1 })).nodeName, null);
  s.upsertNode(makeNode(n('n4', { cpu: 5, gpus: [A100_80] })));
  assert.equal(s.place(makePod({ name: 'g', gpus: 1 })).gpuUuids, ['GPU-n4-0']);
});

test.run();
