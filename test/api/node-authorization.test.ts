// Attacks by one node on the rest of the cluster, replayed over real HTTP against an API server (createApp on
// SQLite, listening on a port) with two node identities, system:node:n1 and system:node:n2. Each attack is
// refused with 403 and a message naming what is wrong, and whatever it aimed at is unchanged afterwards; what
// the node may do still works, so the refusals are not a blanket ban.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { serve } from '@hono/node-server';
import { createApp } from '../../server/api/app.js';
import { identity, MASTERS_GROUP, NODE_GROUP, staticTokens } from '../../server/api/middleware/auth.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import { ObjectService, TOKENS_SECRET } from '../../server/objects/service.js';
import { heartbeatRoutes } from '../../server/api/routes/node-leases.js';
import { metricsRoutes } from '../../server/api/routes/metrics.js';
import { NodeHeartbeats } from '../../server/cluster/node-heartbeats.js';
import { InMemoryMetrics } from '../../server/controllers/pod-metrics.js';
import { runAgent } from '../../node-agent/agent.js';
import { ApiClient, NodeApi } from '../../node-agent/api-client.js';
import { buildNodeObject } from '../../node-agent/node-object.js';
import { hollowInventory } from '../../node-agent/hollow.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';

const ADMIN = 'admin-token-0123456789';
const N1 = 'n1-token-0123456789';
const N2 = 'n2-token-0123456789';
const N4 = 'n4-token-0123456789';

let dir = '';
let store: SqliteStore | undefined;
let server: ReturnType<typeof serve> | undefined;
let url = '';

interface Answer { status: number; json: any } // eslint-disable-line @typescript-eslint/no-explicit-any

async function call(token: string, method: string, path: string, body?: unknown, contentType = method === 'PATCH' ? 'application/merge-patch+json' : 'application/json'): Promise<Answer> {
  const res = await fetch(`${url}${path}`, {
    method, headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': contentType } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, json };
}
const admin = (method: string, path: string, body?: unknown) => call(ADMIN, method, path, body);
const n1 = (method: string, path: string, body?: unknown) => call(N1, method, path, body);

async function must(answer: Promise<Answer>, status = 200): Promise<any> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const a = await answer;
  assert.is(a.status, status, JSON.stringify(a.json));
  return a.json;
}

/** Asserts a 403 Forbidden Status whose message matches `message`. */
async function refused(answer: Promise<Answer>, message: RegExp): Promise<void> {
  const a = await answer;
  assert.is(a.status, 403, `expected 403, got ${a.status}: ${JSON.stringify(a.json)}`);
  assert.is(a.json.kind, 'Status');
  assert.is(a.json.reason, 'Forbidden');
  assert.match(a.json.message, message);
}

/** What the admin reads at `path` now, to compare before and after an attack. */
const snapshot = async (path: string) => JSON.stringify(await must(admin('GET', path)));

const podSpec = (secret: string) => ({
  containers: [{ name: 'main', image: 'flotilla/testbox:latest', env: [{ name: 'S', valueFrom: { secretKeyRef: { name: secret, key: 'k' } } }] }],
});
const node = (name: string) => ({
  apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name } },
  status: { addresses: [{ type: 'InternalIP', address: `10.0.0.${name.slice(1)}` }] },
});
const secret = (namespace: string, name: string) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, data: { k: Buffer.from(`${name}-value`).toString('base64') } });
const event = (name: string, about: Record<string, string>) => ({
  apiVersion: 'v1', kind: 'Event', metadata: { name, namespace: 'default' }, involvedObject: about, reason: 'Started', message: 'm', type: 'Normal',
});

setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-nodeauthz-'));
  store = new SqliteStore({ path: join(dir, 'state.db') });
  const app = createApp({
    objects: new ObjectService(store, new LocalProposer(store)), readBarrier: async () => {},
    authenticate: staticTokens({
      [ADMIN]: identity('admin', [MASTERS_GROUP]),
      [N1]: identity('system:node:n1', [NODE_GROUP]),
      [N2]: identity('system:node:n2', [NODE_GROUP]),
      [N4]: identity('system:node:n4', [NODE_GROUP]),
    }),
    version: { flotilla: '0.1.0', gitVersion: 'v0.1.0' }, readiness: () => [],
    // The in-memory lease and usage routes, as server/run.ts mounts them.
    extraRoutes: [heartbeatRoutes(new NodeHeartbeats(), () => {}), metricsRoutes(new InMemoryMetrics(), () => {})],
  });
  server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 });
  await new Promise<void>((resolve) => server!.once('listening', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  for (const name of ['default', 'kube-system', 'kube-node-lease']) {
    await must(admin('POST', '/api/v1/namespaces', { metadata: { name } }), 201);
    await must(admin('POST', `/api/v1/namespaces/${name}/serviceaccounts`, { metadata: { name: 'default' } }), 201);
  }
  // Each node registers itself, as its agent does.
  await must(n1('POST', '/api/v1/nodes', node('n1')), 201);
  await must(call(N2, 'POST', '/api/v1/nodes', node('n2')), 201);
  for (const [ns, name] of [['default', 's1'], ['default', 's2'], [TOKENS_SECRET.namespace, TOKENS_SECRET.name], ['kube-system', 'flotilla-agent-n2'], ['kube-system', 'flotilla-agent-n1']] as const) {
    await must(admin('POST', `/api/v1/namespaces/${ns}/secrets`, secret(ns, name)), 201);
  }
  await must(admin('POST', '/api/v1/namespaces/default/pods', { metadata: { name: 'p1' }, spec: { ...podSpec('s1'), nodeName: 'n1' } }), 201);
  await must(admin('POST', '/api/v1/namespaces/default/pods', { metadata: { name: 'p2' }, spec: { ...podSpec('s2'), nodeName: 'n2' } }), 201);
  // A pod bound to n1 that names the credentials does not make them readable.
  await must(admin('POST', '/api/v1/namespaces/kube-system/pods', { metadata: { name: 'lure' }, spec: { ...podSpec(TOKENS_SECRET.name), nodeName: 'n1', volumes: [{ name: 'v', secret: { secretName: 'flotilla-agent-n2' } }], containers: podSpec(TOKENS_SECRET.name).containers } }), 201);
}, async () => {
  await new Promise<void>((resolve) => { if (server) server.close(() => resolve()); else resolve(); });
  store?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('n1 reads the Secret of its own pod, not the Secret of n2\'s pod, and lists no Secrets', async () => {
  const own = await must(n1('GET', '/api/v1/namespaces/default/secrets/s1'));
  assert.is(Buffer.from(own.data.k, 'base64').toString(), 's1-value');
  await refused(n1('GET', '/api/v1/namespaces/default/secrets/s2'),
    /^secrets "s2" is forbidden: User "system:node:n1" cannot get resource "secrets" in API group "" in the namespace "default": no relationship found between node 'n1' and this object$/);
  await refused(n1('GET', '/api/v1/namespaces/default/secrets'), /cannot list resource "secrets"/);
  await refused(n1('GET', '/api/v1/secrets?watch=true'), /cannot watch resource "secrets"/);
});

test('n1 reads neither the token Secret nor any agent credentials Secret, even when its own pod names them', async () => {
  for (const name of [TOKENS_SECRET.name, 'flotilla-agent-n2', 'flotilla-agent-n1']) {
    await refused(n1('GET', `/api/v1/namespaces/kube-system/secrets/${name}`), new RegExp(`^secrets "${name}" is forbidden: .*node 'n1' may not read credentials$`));
  }
  const before = await snapshot('/api/v1/namespaces/kube-system/secrets/flotilla-agent-n2');
  await refused(n1('PUT', '/api/v1/namespaces/kube-system/secrets/flotilla-agent-n2', secret('kube-system', 'flotilla-agent-n2')), /cannot update resource "secrets"/);
  await refused(n1('POST', '/api/v1/namespaces/kube-system/secrets', secret('kube-system', 'flotilla-agent-n3')), /cannot create resource "secrets"/);
  assert.is(await snapshot('/api/v1/namespaces/kube-system/secrets/flotilla-agent-n2'), before);
  assert.is((await admin('GET', '/api/v1/namespaces/kube-system/secrets/flotilla-agent-n3')).status, 404);
});

test('n1 cannot write Node n2, its status or its address, nor delete it', async () => {
  const before = await snapshot('/api/v1/nodes/n2');
  const n2 = await must(admin('GET', '/api/v1/nodes/n2'));
  await refused(n1('PUT', '/api/v1/nodes/n2', { ...n2, metadata: { ...n2.metadata, labels: { gpu: 'yes' } } }), /^nodes "n2" is forbidden: node "n1" cannot modify node "n2"$/);
  await refused(n1('PATCH', '/api/v1/nodes/n2', { metadata: { labels: { gpu: 'yes' } } }), /node "n1" cannot modify node "n2"/);
  await refused(n1('PATCH', '/api/v1/nodes/n2/status', { status: { addresses: [{ type: 'InternalIP', address: '10.9.9.9' }] } }), /node "n1" cannot modify node "n2"/);
  await refused(n1('PUT', '/api/v1/nodes/n2/status', { ...n2, status: { addresses: [{ type: 'InternalIP', address: '10.9.9.9' }] } }), /node "n1" cannot modify node "n2"/);
  await refused(n1('DELETE', '/api/v1/nodes/n2'), /cannot delete resource "nodes"/);
  await refused(n1('DELETE', '/api/v1/nodes/n1'), /cannot delete resource "nodes"/);
  assert.is(await snapshot('/api/v1/nodes/n2'), before);
  // Its own address it may change.
  const moved = await must(n1('PATCH', '/api/v1/nodes/n1/status', { status: { addresses: [{ type: 'InternalIP', address: '10.0.1.1' }] } }));
  assert.equal(moved.status.addresses, [{ type: 'InternalIP', address: '10.0.1.1' }]);
});

test('n1 cannot create another Node', async () => {
  await refused(n1('POST', '/api/v1/nodes', node('n3')), /^nodes "n3" is forbidden: node "n1" cannot modify node "n3"$/);
  assert.is((await admin('GET', '/api/v1/nodes/n3')).status, 404);
});

test('n1 cannot delete, or rewrite the status of, a pod bound to n2; it can for its own', async () => {
  const before = await snapshot('/api/v1/namespaces/default/pods/p2');
  const p2 = await must(admin('GET', '/api/v1/namespaces/default/pods/p2'));
  await refused(n1('DELETE', '/api/v1/namespaces/default/pods/p2'), /^pods "p2" is forbidden: node "n1" can only delete pods with spec.nodeName set to itself$/);
  await refused(n1('PUT', '/api/v1/namespaces/default/pods/p2/status', { ...p2, status: { phase: 'Failed' } }), /^pods "p2" is forbidden: node "n1" can only update pod status for pods with spec.nodeName set to itself$/);
  await refused(n1('PATCH', '/api/v1/namespaces/default/pods/p2/status', { status: { phase: 'Failed' } }), /can only update pod status for pods with spec.nodeName set to itself/);
  await refused(n1('PATCH', '/api/v1/namespaces/default/pods/p1', { spec: { nodeName: 'n2' } }), /cannot patch resource "pods"/);
  await refused(n1('POST', '/api/v1/namespaces/default/pods', { metadata: { name: 'mirror' }, spec: { ...podSpec('s2'), nodeName: 'n1' } }), /cannot create resource "pods"/);
  assert.is(await snapshot('/api/v1/namespaces/default/pods/p2'), before);
  assert.is((await admin('GET', '/api/v1/namespaces/default/pods/mirror')).status, 404);
  const p1 = await must(n1('PATCH', '/api/v1/namespaces/default/pods/p1/status', { status: { phase: 'Running' } }));
  assert.is(p1.status.phase, 'Running');
});

test('n1 cannot write events about n2 or n2\'s pods, nor turn its own event into one', async () => {
  const about = (kind: string, name: string): Record<string, string> => (kind === 'Pod' ? { kind, name, namespace: 'default' } : { kind, name });
  for (const [kind, name] of [['Pod', 'p2'], ['Node', 'n2'], ['Pod', 'nowhere']] as const) {
    await refused(n1('POST', '/api/v1/namespaces/default/events', event(`x-${name}`, about(kind, name))),
      new RegExp(`^events "x-${name}" is forbidden: node "n1" can only write events about itself and the pods bound to it$`));
    assert.is((await admin('GET', `/api/v1/namespaces/default/events/x-${name}`)).status, 404);
  }
  await must(admin('POST', '/api/v1/namespaces/default/events', event('by-n2', about('Pod', 'p2'))), 201);
  const before = await snapshot('/api/v1/namespaces/default/events/by-n2');
  await refused(n1('PATCH', '/api/v1/namespaces/default/events/by-n2', { count: 7 }), /can only write events about itself and the pods bound to it/);
  assert.is(await snapshot('/api/v1/namespaces/default/events/by-n2'), before);
  await must(n1('POST', '/api/v1/namespaces/default/events', event('mine', about('Pod', 'p1'))), 201);
  await must(n1('POST', '/api/v1/namespaces/default/events', event('mine-node', about('Node', 'n1'))), 201);
  await must(n1('PATCH', '/api/v1/namespaces/default/events/mine', { count: 2 }));
  const mine = await snapshot('/api/v1/namespaces/default/events/mine');
  await refused(n1('PATCH', '/api/v1/namespaces/default/events/mine', { involvedObject: { name: 'p2' } }), /can only write events about itself and the pods bound to it/);
  assert.is(await snapshot('/api/v1/namespaces/default/events/mine'), mine);
  await refused(n1('GET', '/api/v1/namespaces/default/events'), /cannot list resource "events"/);
});

test('n1 cannot label itself node-restriction.kubernetes.io/..., nor drop the taints and cordon the admin put on it', async () => {
  await must(admin('PATCH', '/api/v1/nodes/n1', { metadata: { labels: { 'node-restriction.kubernetes.io/zone': 'secure' } }, spec: { unschedulable: true, taints: [{ key: 'dedicated', value: 'ml', effect: 'NoSchedule' }] } }));
  const before = await snapshot('/api/v1/nodes/n1');
  await refused(n1('PATCH', '/api/v1/nodes/n1', { metadata: { labels: { 'node-restriction.kubernetes.io/x': 'y' } } }),
    /^nodes "n1" is forbidden: node "n1" is not allowed to modify labels: node-restriction.kubernetes.io\/x$/);
  await refused(n1('PATCH', '/api/v1/nodes/n1', { metadata: { labels: { 'node-restriction.kubernetes.io/zone': null } } }), /not allowed to modify labels: node-restriction.kubernetes.io\/zone/);
  await refused(n1('PATCH', '/api/v1/nodes/n1', { metadata: { labels: { 'team.node-restriction.kubernetes.io/x': 'y' } } }), /not allowed to modify labels/);
  await refused(n1('PATCH', '/api/v1/nodes/n1', { spec: { taints: null } }), /^nodes "n1" is forbidden: node "n1" is not allowed to modify taints$/);
  await refused(n1('PATCH', '/api/v1/nodes/n1', { spec: { taints: [{ key: 'dedicated', value: 'ml', effect: 'NoSchedule' }, { key: 'x', effect: 'NoExecute' }] } }), /not allowed to modify taints/);
  await refused(n1('PATCH', '/api/v1/nodes/n1', { spec: { unschedulable: false } }), /not allowed to modify spec.unschedulable/);
  await refused(n1('PATCH', '/api/v1/nodes/n1', { spec: { podCIDR: '10.42.9.0/24' } }), /not allowed to modify spec.podCIDR/);
  await refused(n1('PATCH', '/api/v1/nodes/n1', { metadata: { annotations: { 'flotilla.io/eviction-at': '2030-01-01T00:00:00Z' } } }), /not allowed to modify annotations: flotilla.io\/eviction-at/);
  const current = await must(admin('GET', '/api/v1/nodes/n1'));
  await refused(n1('PUT', '/api/v1/nodes/n1', { ...current, spec: {} }), /not allowed to modify taints/);
  assert.is(await snapshot('/api/v1/nodes/n1'), before);
  // Other labels are its own to set, with the admin's taints and labels kept as they are.
  const relabelled = await must(n1('PATCH', '/api/v1/nodes/n1', { metadata: { labels: { 'flotilla.io/pi.model': '5' } } }));
  assert.is(relabelled.metadata.labels['flotilla.io/pi.model'], '5');
  assert.is(relabelled.metadata.labels['node-restriction.kubernetes.io/zone'], 'secure');
});

test('a node registers itself without restricted labels or a pod CIDR of its choosing; taints it may bring', async () => {
  await refused(call(N2, 'POST', '/api/v1/nodes', { ...node('n2x') }), /node "n2" cannot modify node "n2x"/);
  await must(admin('DELETE', '/api/v1/nodes/n2'));
  await refused(call(N2, 'POST', '/api/v1/nodes', { ...node('n2'), metadata: { name: 'n2', labels: { 'node-restriction.kubernetes.io/x': 'y' } } }), /not allowed to set labels: node-restriction.kubernetes.io\/x/);
  await refused(call(N2, 'POST', '/api/v1/nodes', { ...node('n2'), spec: { podCIDR: '10.42.1.0/24' } }), /not allowed to set spec.podCIDR/);
  assert.is((await admin('GET', '/api/v1/nodes/n2')).status, 404);
  const back = await must(call(N2, 'POST', '/api/v1/nodes', { ...node('n2'), spec: { taints: [{ key: 'starting', effect: 'NoSchedule' }] } }), 201);
  assert.equal(back.spec.taints, [{ key: 'starting', effect: 'NoSchedule' }]);
});

test('n1 renews only its own lease and reports only its own usage; other kinds and paths are refused', async () => {
  await refused(n1('PUT', '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/n2', { spec: { holderIdentity: 'n2' } }), /can only access the node lease with the same name/);
  await refused(n1('PUT', '/apis/metrics.flotilla.io/v1/nodes/n2/usage', {}), /can only report the usage of its own node/);
  await refused(n1('POST', '/apis/apps/v1/namespaces/default/deployments', {}), /cannot create resource "deployments" in API group "apps"/);
  await refused(n1('GET', '/apis/flotilla.io/v1/jointokens'), /cannot list resource "jointokens"/);
  await refused(n1('GET', '/metrics'), /cannot get path "\/metrics"/);
  assert.is((await n1('GET', '/api/v1/pods?fieldSelector=spec.nodeName%3Dn1')).status, 200);
  assert.is((await n1('GET', '/api/v1/nodes')).status, 200);
});

test('n1 reporting over-long strings in its own status (GPU model, driver, kernel version) gets 422 naming the field; nothing changes', async () => {
  const gpu = { index: 0, uuid: 'GPU-n1-0', vendor: 'nvidia', model: 'NVIDIA A100-SXM4-80GB', memory: '80Gi', health: 'Healthy' };
  await must(n1('PATCH', '/api/v1/nodes/n1/status', { status: { gpus: [gpu] } }));
  const before = await snapshot('/api/v1/nodes/n1');
  for (const [status, field] of [
    [{ gpus: [{ ...gpu, model: 'M'.repeat(257) }] }, 'status.gpus[0].model'],
    [{ gpus: [{ ...gpu, driver: '5'.repeat(1000) }] }, 'status.gpus[0].driver'],
    [{ nodeInfo: { kernelVersion: '6'.repeat(257) } }, 'status.nodeInfo.kernelVersion'],
  ] as const) {
    const a = await n1('PATCH', '/api/v1/nodes/n1/status', { status });
    assert.is(a.status, 422, JSON.stringify(a.json));
    assert.is(a.json.reason, 'Invalid');
    const cause = a.json.details.causes.find((c: { field: string }) => c.field === field);
    assert.ok(cause, `${field} named: ${JSON.stringify(a.json.details.causes)}`);
    assert.match(cause.message, /must be no more than 256 characters/);
  }
  assert.is(await snapshot('/api/v1/nodes/n1'), before);
  // 256 characters is within the bound.
  const ok = await must(n1('PATCH', '/api/v1/nodes/n1/status', { status: { gpus: [{ ...gpu, model: 'M'.repeat(256) }] } }));
  assert.is(ok.status.gpus[0].model.length, 256);
});

test('the agent of node n4, holding only its system:node:n4 identity, registers, runs a pod with its Secret, reports and deletes it', async () => {
  const ac = new AbortController();
  const client = new ApiClient(url, N4, { timeoutMs: 10_000 });
  const runtime = new FakeRuntime({ images: ['flotilla/testbox:latest'] });
  const agentDir = mkdtempSync(join(tmpdir(), 'flotilla-nodeauthz-agent-'));
  const done = runAgent(ac.signal, {
    clusterId: 'test-cluster', nodeName: 'n4', api: new NodeApi(client), runtime, dataDir: agentDir,
    events: [{ type: 'Warning', reason: 'Preflight-clock', message: 'the clock is not synchronised' }],
    node: () => buildNodeObject({ nodeName: 'n4', inventory: hollowInventory('n4'), address: '127.0.0.1', port: 1, containerRuntimeVersion: 'fake', readySince: new Date() }),
    heartbeatSeconds: 0.3, nodeStatusSeconds: 0.6, usageSeconds: 0.5, retrySeconds: 0.1, retryMaxSeconds: 0.5, podWorkers: { resyncMs: 300 },
  });
  try {
    await eventually('Node n4 registered and Ready', async () => (await admin('GET', '/api/v1/nodes/n4')).json?.status?.conditions?.some((c: { type: string; status: string }) => c.type === 'Ready' && c.status === 'True'));
    await must(admin('POST', '/api/v1/namespaces/default/secrets', secret('default', 's4')), 201);
    await must(admin('POST', '/api/v1/namespaces/default/pods', { metadata: { name: 'p4' }, spec: { ...podSpec('s4'), nodeName: 'n4', terminationGracePeriodSeconds: 1 } }), 201);
    // Running needs the Secret: a container whose env names a missing Secret does not start.
    await eventually('p4 Running on n4', async () => (await admin('GET', '/api/v1/namespaces/default/pods/p4')).json?.status?.phase === 'Running');
    const events = await must(admin('GET', '/api/v1/namespaces/default/events'));
    const about = (kind: string, name: string) => events.items.some((e: { involvedObject: { kind: string; name: string } }) => e.involvedObject.kind === kind && e.involvedObject.name === name);
    assert.ok(about('Node', 'n4'), 'the agent posted its preflight event');
    assert.ok(about('Pod', 'p4'), 'the agent posted events about its pod');
    await must(admin('DELETE', '/api/v1/namespaces/default/pods/p4'));
    await eventually('p4 removed by its agent', async () => (await admin('GET', '/api/v1/namespaces/default/pods/p4')).status === 404);
  } finally {
    ac.abort();
    await done;
    client.close();
    rmSync(agentDir, { recursive: true, force: true });
  }
});

test.run();
