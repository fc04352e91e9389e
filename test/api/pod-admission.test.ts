// RuntimeClass and PriorityClass through the API, and what pod admission does with them at create, as
// Kubernetes' RuntimeClass and Priority admission plugins do (real SQLite, the hono app in process).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { createApp } from '../../server/api/app.js';
import { identity, MASTERS_GROUP, staticTokens } from '../../server/api/middleware/auth.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import { ObjectService } from '../../server/objects/service.js';

const TOKEN = 'test-token-0123456789';
let dir: string | undefined;
let store: SqliteStore | undefined;
let app: ReturnType<typeof createApp>;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-admission-'));
  store = new SqliteStore({ path: join(dir, 'state.db'), historyWindow: 50 });
  const proposer = new LocalProposer(store);
  await proposer.propose({ op: 'create', resource: 'namespaces', uid: randomUUID(), now: new Date().toISOString(), object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } } });
  await proposer.propose({ op: 'create', resource: 'serviceaccounts', uid: randomUUID(), now: new Date().toISOString(), object: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: 'default' } } });
  app = createApp({
    objects: new ObjectService(store, proposer), readBarrier: async () => {},
    authenticate: staticTokens({ [TOKEN]: identity('admin', [MASTERS_GROUP]) }),
    version: { flotilla: '0.1.0', gitVersion: 'v0.1.0' }, readiness: () => [],
  });
});
test.after(() => {
  store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await app.request(path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { 'content-type': method === 'PATCH' ? 'application/merge-patch+json' : 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: await res.json() };
}

const RUNTIME_CLASSES = '/apis/node.k8s.io/v1/runtimeclasses';
const PRIORITY_CLASSES = '/apis/scheduling.k8s.io/v1/priorityclasses';
const PODS = '/api/v1/namespaces/default/pods';

/** NVIDIA's GPU pod example (https://docs.nvidia.com/datacenter/cloud-native/gpu-operator), named `name`, with `spec` merged in. */
const gpuPod = (name: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name },
  spec: {
    restartPolicy: 'Never', runtimeClassName: 'nvidia',
    containers: [{ name: 'cuda-container', image: 'nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0', resources: { limits: { 'nvidia.com/gpu': 1 } } }],
    tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
    ...spec,
  },
});
const plainPod = (name: string, spec: Record<string, unknown> = {}, annotations: Record<string, string> = {}) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, annotations }, spec: { containers: [{ name: 'main', image: 'flotilla/testbox:latest' }], ...spec },
});

function forbidden(r: { status: number; json: { reason?: string; message?: string } }, message: string): void {
  assert.is(r.status, 403, JSON.stringify(r.json));
  assert.is(r.json.reason, 'Forbidden');
  assert.is(r.json.message, message);
}

test('a pod naming a RuntimeClass that does not exist is refused as Kubernetes refuses it', async () => {
  forbidden(await call('POST', PODS, gpuPod('gpu-pod')), 'pods "gpu-pod" is forbidden: pod rejected: RuntimeClass "nvidia" not found');
});

test("NVIDIA's RuntimeClass is served cluster-scoped and its example pod is accepted, with the handler recorded", async () => {
  const created = await call('POST', RUNTIME_CLASSES, { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'nvidia' }, handler: 'nvidia' });
  assert.is(created.status, 201, JSON.stringify(created.json));
  assert.is((await call('GET', `${RUNTIME_CLASSES}/nvidia`)).json.handler, 'nvidia');
  assert.equal((await call('GET', RUNTIME_CLASSES)).json.items.map((o: { metadata: { name: string } }) => o.metadata.name), ['nvidia']);
  const pod = await call('POST', PODS, gpuPod('gpu-pod'));
  assert.is(pod.status, 201, JSON.stringify(pod.json));
  assert.is(pod.json.spec.runtimeClassName, 'nvidia');
  assert.is(pod.json.metadata.annotations['flotilla.io/runtime-handler'], 'nvidia');
  assert.equal(pod.json.spec.tolerations, [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }]);
  assert.is(pod.json.spec.overhead, undefined);
});

test('updates keep what admission set: a re-sent manifest is carried over, a change is refused as immutable', async () => {
  const stored = (await call('GET', `${PODS}/gpu-pod`)).json;
  // What `flotilla apply` sends for an object that exists: the manifest with the current resourceVersion.
  const manifest = gpuPod('gpu-pod');
  const reapplied = await call('PUT', `${PODS}/gpu-pod`, { ...manifest, metadata: { ...manifest.metadata, resourceVersion: stored.metadata.resourceVersion } });
  assert.is(reapplied.status, 200, JSON.stringify(reapplied.json));
  assert.is(reapplied.json.metadata.annotations['flotilla.io/runtime-handler'], 'nvidia');
  assert.is(reapplied.json.spec.priority, 0);
  assert.is(reapplied.json.spec.preemptionPolicy, 'PreemptLowerPriority');
  const changed = await call('PUT', `${PODS}/gpu-pod`, { ...reapplied.json, spec: { ...reapplied.json.spec, priority: 7 } });
  assert.is(changed.status, 422);
  assert.is(changed.json.message, 'Pod "gpu-pod" is invalid: spec.priority: field is immutable');
  const patched = await call('PATCH', `${PODS}/gpu-pod`, { metadata: { annotations: { 'flotilla.io/runtime-handler': 'runc' } } });
  assert.is(patched.status, 422);
  assert.is(patched.json.message, 'Pod "gpu-pod" is invalid: metadata.annotations["flotilla.io/runtime-handler"]: field is immutable');
});

test('a RuntimeClass without a valid handler is refused with the field named', async () => {
  const r = await call('POST', RUNTIME_CLASSES, { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'bad' }, handler: 'Kata_Containers' });
  assert.is(r.status, 422);
  assert.match(r.json.message, /^RuntimeClass "bad" is invalid: handler: /);
});

test("the RuntimeClass's scheduling is merged into the pod, a conflicting nodeSelector is refused, overhead comes from the class", async () => {
  assert.is((await call('POST', RUNTIME_CLASSES, {
    apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'sandboxed' }, handler: 'runsc',
    overhead: { podFixed: { cpu: '250m', memory: '120Mi' } },
    scheduling: { nodeSelector: { sandbox: 'gvisor' }, tolerations: [{ key: 'sandbox', operator: 'Exists', effect: 'NoSchedule' }] },
  })).status, 201);
  const pod = await call('POST', PODS, plainPod('sandboxed-1', {
    runtimeClassName: 'sandboxed', nodeSelector: { disk: 'ssd' }, tolerations: [{ key: 'sandbox', operator: 'Exists', effect: 'NoSchedule' }, { key: 'x', operator: 'Exists' }],
  }));
  assert.is(pod.status, 201, JSON.stringify(pod.json));
  assert.equal(pod.json.spec.nodeSelector, { disk: 'ssd', sandbox: 'gvisor' });
  assert.equal(pod.json.spec.tolerations, [{ key: 'sandbox', operator: 'Exists', effect: 'NoSchedule' }, { key: 'x', operator: 'Exists' }]);
  assert.equal(pod.json.spec.overhead, { cpu: '250m', memory: '120Mi' });
  assert.is(pod.json.metadata.annotations['flotilla.io/runtime-handler'], 'runsc');

  forbidden(await call('POST', PODS, plainPod('sandboxed-2', { runtimeClassName: 'sandboxed', nodeSelector: { sandbox: 'kata' } })),
    'pods "sandboxed-2" is forbidden: conflict: runtimeClass.scheduling.nodeSelector[sandbox] = gvisor; pod.spec.nodeSelector[sandbox] = kata');
  assert.is((await call('POST', PODS, plainPod('sandboxed-3', { runtimeClassName: 'sandboxed', overhead: { cpu: '0.25', memory: '120Mi' } }))).status, 201, 'the same overhead, written otherwise');
  forbidden(await call('POST', PODS, plainPod('sandboxed-4', { runtimeClassName: 'sandboxed', overhead: { cpu: '1' } })),
    'pods "sandboxed-4" is forbidden: pod rejected: Pod\'s Overhead doesn\'t match RuntimeClass\'s defined Overhead');
  forbidden(await call('POST', PODS, plainPod('no-class-overhead', { overhead: { cpu: '1' } })),
    'pods "no-class-overhead" is forbidden: pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead');
});

test('a client cannot pick the runtime handler by annotation', async () => {
  const r = await call('POST', PODS, plainPod('sneaky', {}, { 'flotilla.io/runtime-handler': 'runsc', keep: 'me' }));
  assert.is(r.status, 201);
  assert.equal(r.json.metadata.annotations, { keep: 'me' });
});

test('priority: 0 without a class, the class value with one, a missing class refused, a client value refused', async () => {
  const none = await call('POST', PODS, plainPod('prio-none'));
  assert.is(none.json.spec.priority, 0);
  assert.is(none.json.spec.preemptionPolicy, 'PreemptLowerPriority');
  assert.is(none.json.spec.priorityClassName, undefined);
  forbidden(await call('POST', PODS, plainPod('prio-missing', { priorityClassName: 'high-priority' })),
    'pods "prio-missing" is forbidden: no PriorityClass with name high-priority was found');
  const pc = await call('POST', PRIORITY_CLASSES, { apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: 'high-priority' }, value: 1000000, preemptionPolicy: 'Never', description: 'XYZ service pods only.' });
  assert.is(pc.status, 201, JSON.stringify(pc.json));
  const high = await call('POST', PODS, plainPod('prio-high', { priorityClassName: 'high-priority' }));
  assert.is(high.status, 201, JSON.stringify(high.json));
  assert.is(high.json.spec.priority, 1000000);
  assert.is(high.json.spec.preemptionPolicy, 'Never');
  assert.is((await call('POST', PODS, plainPod('prio-same', { priorityClassName: 'high-priority', priority: 1000000 }))).status, 201, 'the same value may be sent');
  forbidden(await call('POST', PODS, plainPod('prio-chosen', { priority: 5 })),
    'pods "prio-chosen" is forbidden: the integer value of priority (5) must not be provided in pod spec; priority admission controller computed 0 from the given PriorityClass name');
  forbidden(await call('POST', PODS, plainPod('prio-policy', { priorityClassName: 'high-priority', preemptionPolicy: 'PreemptLowerPriority' })),
    'pods "prio-policy" is forbidden: the string value of PreemptionPolicy (PreemptLowerPriority) must not be provided in pod spec; priority admission controller computed Never from the given PriorityClass name');
});

test('the global default PriorityClass applies to pods without a class; only one default may exist', async () => {
  const def = await call('POST', PRIORITY_CLASSES, { apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: 'normal' }, value: 100, globalDefault: true });
  assert.is(def.status, 201, JSON.stringify(def.json));
  assert.is(def.json.preemptionPolicy, 'PreemptLowerPriority');
  const pod = await call('POST', PODS, plainPod('prio-default'));
  assert.is(pod.json.spec.priorityClassName, 'normal');
  assert.is(pod.json.spec.priority, 100);
  forbidden(await call('POST', PRIORITY_CLASSES, { apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: 'other-default' }, value: 5, globalDefault: true }),
    'priorityclasses "other-default" is forbidden: PriorityClass normal is already marked as default. Only one default can exist');
  assert.is((await call('DELETE', `${PRIORITY_CLASSES}/normal`)).status, 200);
});

test('topologySpreadConstraints are refused with a 422 naming the field, in pods and in templates', async () => {
  const spread = [{ maxSkew: 1, topologyKey: 'kubernetes.io/hostname', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { app: 'web' } } }];
  const r = await call('POST', PODS, plainPod('spread', { topologySpreadConstraints: spread }));
  assert.is(r.status, 422);
  assert.match(r.json.message, /^Pod "spread" is invalid: spec\.topologySpreadConstraints: is not supported yet/);
  const d = await call('POST', '/apis/apps/v1/namespaces/default/deployments', {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
    spec: { selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { topologySpreadConstraints: spread, containers: [{ name: 'web', image: 'nginx' }] } } },
  });
  assert.is(d.status, 422);
  assert.match(d.json.message, /spec\.template\.spec\.topologySpreadConstraints: is not supported yet/);
});

test('flotilla.io/gpu-ids: one distinct UUID per GPU the containers ask, else a 422 naming the annotation', async () => {
  const gpuPod = (name: string, gpus: number, ids: string) => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name, annotations: { 'flotilla.io/gpu-ids': ids } },
    spec: { containers: [{ name: 'main', image: 'flotilla/testbox:latest', resources: { limits: { 'nvidia.com/gpu': String(gpus) } } }] },
  });
  const refused = async (pod: ReturnType<typeof gpuPod>, why: RegExp) => {
    const r = await call('POST', PODS, pod);
    assert.is(r.status, 422, JSON.stringify(r.json));
    assert.match(r.json.message, why);
    assert.is((await call('GET', `${PODS}/${pod.metadata.name}`)).status, 404, 'nothing was stored');
  };
  await refused(gpuPod('too-few', 2, 'GPU-a'), /metadata\.annotations\["flotilla\.io\/gpu-ids"\]: lists 1 GPU but the containers ask 2/);
  await refused(gpuPod('twice', 2, 'GPU-a,GPU-a'), /metadata\.annotations\["flotilla\.io\/gpu-ids"\]: GPU GPU-a is listed twice/);
  await refused(gpuPod('empty', 2, 'GPU-a,'), /metadata\.annotations\["flotilla\.io\/gpu-ids"\]: entry 2 \(""\) is not a GPU UUID/);
  await refused({ ...gpuPod('no-gpus', 0, 'GPU-a'), spec: plainPod('x').spec } as ReturnType<typeof gpuPod>, /lists 1 GPU but the containers ask 0/);
  assert.is((await call('POST', PODS, gpuPod('pinned', 2, 'GPU-a,GPU-b'))).status, 201);
});

test('a flotilla.io/gpu-model pattern outside the linear-time subset is refused with a 422 naming the annotation; one inside it is accepted', async () => {
  const r = await call('POST', PODS, plainPod('hostile', {}, { 'flotilla.io/gpu-model': '(a+)+$' }));
  assert.is(r.status, 422);
  assert.match(r.json.message, /^Pod "hostile" is invalid: metadata\.annotations\["flotilla\.io\/gpu-model"\]: unsupported pattern "\(a\+\)\+\$": groups "\( \)" are not supported at offset 0/);
  assert.is((await call('GET', `${PODS}/hostile`)).status, 404, 'nothing was stored');
  assert.is((await call('POST', PODS, plainPod('fine', {}, { 'flotilla.io/gpu-model': 'A100|H100|RTX 40[0-9]0' }))).status, 201);
});

test('os.name is accepted for linux and windows (windows pods wait for a windows node), nothing else', async () => {
  assert.is((await call('POST', PODS, plainPod('os-linux', { os: { name: 'linux' } }))).status, 201);
  assert.is((await call('POST', PODS, plainPod('os-windows', { os: { name: 'windows' } }))).status, 201);
  assert.is((await call('POST', PODS, plainPod('os-mac', { os: { name: 'darwin' } }))).status, 422);
});

test.run();
