import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Hono } from 'hono';
import pino from 'pino';
import { createApp } from '../../server/api/app.js';
import { BOOTSTRAPPERS_GROUP, identity, MASTERS_GROUP, staticTokens } from '../../server/api/middleware/auth.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import { ObjectService } from '../../server/objects/service.js';

const TOKEN = 'test-token-0123456789';
const NODE_TOKEN = 'node-token-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'flotilla-api-'));
const store = new SqliteStore({ path: join(dir, 'state.db'), historyWindow: 50 });
const proposer = new LocalProposer(store);
for (const name of ['default', 'other', 'kube-system']) {
  await proposer.propose({ op: 'create', resource: 'namespaces', uid: randomUUID(), now: new Date().toISOString(), object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } });
  // What the serviceaccount controller makes in every namespace: pods are admitted only with their account.
  await proposer.propose({ op: 'create', resource: 'serviceaccounts', uid: randomUUID(), now: new Date().toISOString(), object: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: name } } });
}
const app = createApp({
  objects: new ObjectService(store, proposer, () => new Date('2026-02-03T04:05:06Z')), readBarrier: async () => {},
  authenticate: staticTokens({ [TOKEN]: identity('admin', [MASTERS_GROUP]), [NODE_TOKEN]: identity('system:bootstrap:pi', [BOOTSTRAPPERS_GROUP]) }),
  version: { flotilla: '0.1.0', gitVersion: 'v0.1.0' }, readiness: () => [], maxBodyBytes: 64 * 1024,
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<{ status: number; json: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await app.request(path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}), ...headers },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, json };
}

const pod = (name: string, labels: Record<string, string> = {}, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, labels },
  spec: { containers: [{ name: 'main', image: 'flotilla/testbox:latest', resources: { limits: { cpu: '250m', memory: '64Mi' } } }], ...extra },
});
const deployment = (name: string, replicas: number) => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name },
  spec: { replicas, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'web', image: 'flotilla/testbox:latest' }] } } },
});

test('/readyz answers as Kubernetes does: "ok", or every check with the reason of each failed one and 503', async () => {
  let checks = [{ name: 'raft-leader' }, { name: 'bootstrap', failure: 'not in the state yet: secret kube-system/flotilla-tokens' }];
  const probed = createApp({
    objects: new ObjectService(store, proposer, () => new Date()), readBarrier: async () => {}, authenticate: staticTokens({}),
    version: { flotilla: '0.1.0', gitVersion: 'v0.1.0' }, readiness: async () => checks,
  });
  const failing = await probed.request('/readyz');
  assert.is(failing.status, 503);
  assert.is(await failing.text(), '[+]raft-leader ok\n[-]bootstrap failed: not in the state yet: secret kube-system/flotilla-tokens\nreadyz check failed\n');
  checks = [{ name: 'raft-leader' }, { name: 'bootstrap' }];
  const ready = await probed.request('/readyz');
  assert.is(ready.status, 200);
  assert.is(await ready.text(), 'ok');
  assert.is(await (await probed.request('/readyz?verbose')).text(), '[+]raft-leader ok\n[+]bootstrap ok\nreadyz check passed\n');
});

test('health and version are public; everything else needs the bearer token', async () => {
  assert.is((await app.request('/healthz')).status, 200);
  assert.is((await app.request('/readyz')).status, 200);
  assert.is((await app.request('/version')).status, 200);
  const anon = await app.request('/api/v1/namespaces/default/pods');
  assert.is(anon.status, 401);
  const body = await anon.json() as { kind: string; reason: string };
  assert.is(body.kind, 'Status');
  assert.is(body.reason, 'Unauthorized');
  assert.is((await call('GET', '/api/v1/namespaces/default/pods', undefined, { authorization: 'Bearer wrong-token' })).status, 401);
  assert.is((await call('GET', '/metrics', undefined, { authorization: '' })).status, 401);
});

test('create, get, list, replace, merge-patch and delete a pod', async () => {
  const created = await call('POST', '/api/v1/namespaces/default/pods', pod('web-1', { app: 'web' }));
  assert.is(created.status, 201);
  assert.is(created.json.metadata.namespace, 'default');
  assert.ok(created.json.metadata.uid);
  assert.is(created.json.metadata.creationTimestamp, '2026-02-03T04:05:06.000Z');
  assert.is(created.json.spec.restartPolicy, 'Always', 'defaults are applied');
  const got = await call('GET', '/api/v1/namespaces/default/pods/web-1');
  assert.equal(got.json, created.json);
  const listed = await call('GET', '/api/v1/namespaces/default/pods');
  assert.is(listed.json.kind, 'PodList');
  assert.ok(listed.json.items.some((p: { metadata: { name: string } }) => p.metadata.name === 'web-1'));
  const replaced = await call('PUT', '/api/v1/namespaces/default/pods/web-1', { ...got.json, metadata: { ...got.json.metadata, labels: { app: 'web', tier: 'front' } } });
  assert.is(replaced.status, 200);
  assert.is(replaced.json.metadata.labels.tier, 'front');
  const patched = await call('PATCH', '/api/v1/namespaces/default/pods/web-1', { metadata: { labels: { tier: null, extra: 'yes' } } }, { 'content-type': 'application/merge-patch+json' });
  assert.is(patched.status, 200);
  assert.equal(patched.json.metadata.labels, { app: 'web', extra: 'yes' });
  const deleted = await call('DELETE', '/api/v1/namespaces/default/pods/web-1');
  assert.is(deleted.status, 200);
  assert.is((await call('GET', '/api/v1/namespaces/default/pods/web-1')).status, 404);
});

test('a write with a stale resourceVersion is 409 Conflict as a Status object', async () => {
  const created = (await call('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'cfg' }, data: { a: '1' } })).json;
  const fresh = await call('PUT', '/api/v1/namespaces/default/configmaps/cfg', { ...created, data: { a: '2' } });
  assert.is(fresh.status, 200);
  const stale = await call('PUT', '/api/v1/namespaces/default/configmaps/cfg', { ...created, data: { a: '3' } });
  assert.is(stale.status, 409);
  assert.is(stale.json.kind, 'Status');
  assert.is(stale.json.reason, 'Conflict');
  assert.is((await call('GET', '/api/v1/namespaces/default/configmaps/cfg')).json.data.a, '2');
});

test('invalid objects are 422 with the JSON path of every problem; unknown fields are refused, not dropped', async () => {
  const bad = await call('POST', '/api/v1/namespaces/default/pods', pod('bad', {}, { containers: [{ name: 'x', image: 'i', resources: { limits: { memory: '12XYZ' } } }], bogusField: 1 }));
  assert.is(bad.status, 422);
  assert.is(bad.json.reason, 'Invalid');
  const fields = bad.json.details.causes.map((c: { field: string }) => c.field);
  assert.ok(fields.includes('spec.containers[0].resources.limits.memory'), fields.join(','));
  assert.ok(fields.some((f: string) => f.startsWith('spec')  && /bogusField/.test(f + JSON.stringify(bad.json.details.causes))), JSON.stringify(bad.json.details.causes));
  assert.is((await call('GET', '/api/v1/namespaces/default/pods/bad')).status, 404, 'nothing was stored');
});

test('malformed JSON is 400, a wrong kind for the path is 400, a body over the limit is 413', async () => {
  const malformed = await call('POST', '/api/v1/namespaces/default/pods', '{"apiVersion": "v1", ');
  assert.is(malformed.status, 400);
  assert.match(malformed.json.message, /not valid JSON/);
  const wrongKind = await call('POST', '/api/v1/namespaces/default/pods', deployment('d', 1));
  assert.is(wrongKind.status, 400);
  const huge = await call('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'huge' }, data: { a: 'x'.repeat(100 * 1024) } });
  assert.is(huge.status, 413);
  assert.is(huge.json.reason, 'RequestEntityTooLarge');
});

test('unknown resources and namespaces are 404; creating in a missing namespace is refused', async () => {
  assert.is((await call('GET', '/api/v1/namespaces/default/widgets')).status, 404);
  assert.is((await call('GET', '/apis/nope/v1/things')).status, 404);
  const missingNs = await call('POST', '/api/v1/namespaces/ghost/pods', pod('p'));
  assert.is(missingNs.status, 404);
  assert.match(missingNs.json.message, /namespaces "ghost" not found/);
});

test('label and field selectors filter lists; a bad selector is 400', async () => {
  await call('POST', '/api/v1/namespaces/other/pods', pod('a', { app: 'x', tier: 'db' }));
  await call('POST', '/api/v1/namespaces/other/pods', pod('b', { app: 'y' }, { nodeName: 'node-1' }));
  const names = async (q: string) => (await call('GET', `/api/v1/namespaces/other/pods?${q}`)).json.items.map((p: { metadata: { name: string } }) => p.metadata.name);
  assert.equal(await names('labelSelector=app%3Dx'), ['a']);
  assert.equal(await names('labelSelector=app%20in%20(x,y),!tier'), ['b']);
  assert.equal(await names('fieldSelector=spec.nodeName%3Dnode-1'), ['b']);
  assert.equal(await names('fieldSelector=spec.nodeName%3D'), ['a'], 'an empty nodeName selects unbound pods');
  assert.equal(await names('fieldSelector=metadata.name!%3Da'), ['b']);
  assert.is((await call('GET', '/api/v1/namespaces/other/pods?labelSelector=app%20in%20(')).status, 400);
  assert.is((await call('GET', '/api/v1/namespaces/other/pods?fieldSelector=spec.bogus%3D1')).status, 400);
  const all = await call('GET', '/api/v1/pods?labelSelector=app%3Dy');
  assert.equal(all.json.items.map((p: { metadata: { namespace: string } }) => p.metadata.namespace), ['other']);
});

test('watch streams newline-delimited events from a resourceVersion', async () => {
  const start = (await call('GET', '/api/v1/namespaces/default/configmaps')).json.metadata.resourceVersion;
  const res = await app.request(`/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=${start}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.is(res.status, 200);
  const reader = res.body!.getReader();
  await call('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'w1' }, data: {} });
  await call('DELETE', '/api/v1/namespaces/default/configmaps/w1');
  let text = '';
  while (text.split('\n').filter(Boolean).length < 2) {
    const { value, done } = await reader.read();
    if (done) break;
    text += new TextDecoder().decode(value);
  }
  await reader.cancel();
  const events = text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { type: string; object: { metadata: { name: string } } });
  assert.equal(events.map((e) => `${e.type} ${e.object.metadata.name}`), ['ADDED w1', 'DELETED w1']);
});

test('a watch from a revision older than the history window gets a 410 Expired ERROR event', async () => {
  for (let i = 0; i < 60; i++) await call('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `fill-${i}` } });
  const res = await app.request('/api/v1/namespaces/default/configmaps?watch=true&resourceVersion=1', { headers: { authorization: `Bearer ${TOKEN}` } });
  const line = JSON.parse((await res.text()).trim()) as { type: string; object: { code: number; reason: string } };
  assert.is(line.type, 'ERROR');
  assert.is(line.object.code, 410);
  assert.is(line.object.reason, 'Expired');
});

test('scale and status subresources of a Deployment', async () => {
  assert.is((await call('POST', '/apis/apps/v1/namespaces/default/deployments', deployment('web', 2))).status, 201);
  const scale = await call('GET', '/apis/apps/v1/namespaces/default/deployments/web/scale');
  assert.is(scale.json.kind, 'Scale');
  assert.is(scale.json.spec.replicas, 2);
  const scaled = await call('PATCH', '/apis/apps/v1/namespaces/default/deployments/web/scale', { spec: { replicas: 5 } }, { 'content-type': 'application/merge-patch+json' });
  assert.is(scaled.json.spec.replicas, 5);
  assert.is((await call('PATCH', '/apis/apps/v1/namespaces/default/deployments/web/scale', { spec: { replicas: -1 } })).status, 422);
  const d = (await call('GET', '/apis/apps/v1/namespaces/default/deployments/web')).json;
  assert.is(d.spec.replicas, 5);
  assert.is(d.metadata.generation, 2);
  const st = await call('PUT', '/apis/apps/v1/namespaces/default/deployments/web/status', { ...d, status: { replicas: 5, readyReplicas: 3 } });
  assert.is(st.status, 200);
  assert.is(st.json.status.readyReplicas, 3);
  assert.is(st.json.metadata.generation, 2);
  const ignored = await call('PUT', '/apis/apps/v1/namespaces/default/deployments/web', { ...st.json, status: { replicas: 0 } });
  assert.is(ignored.json.status.readyReplicas, 3, 'the main resource does not write status');
});

test('binding assigns a node once, with the scheduler annotations', async () => {
  await call('POST', '/api/v1/namespaces/default/pods', pod('gpu-job'));
  const bind = await call('POST', '/api/v1/namespaces/default/pods/gpu-job/binding', { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'gpu-job', annotations: { 'flotilla.io/assigned-gpus': 'GPU-1' } }, target: { kind: 'Node', name: 'node-a' } });
  assert.is(bind.status, 201);
  const p = (await call('GET', '/api/v1/namespaces/default/pods/gpu-job')).json;
  assert.is(p.spec.nodeName, 'node-a');
  assert.is(p.metadata.annotations['flotilla.io/assigned-gpus'], 'GPU-1');
  const again = await call('POST', '/api/v1/namespaces/default/pods/gpu-job/binding', { target: { name: 'node-b' } });
  assert.is(again.status, 409);
});

test('cluster-scoped resources, /metrics and /openapi.json', async () => {
  const node = await call('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'pi-1', labels: { 'kubernetes.io/arch': 'arm64' } } });
  assert.is(node.status, 201);
  assert.is(node.json.metadata.namespace, undefined);
  assert.is((await call('GET', '/api/v1/nodes/pi-1')).status, 200);
  assert.is((await call('GET', '/api/v1/namespaces/default')).json.kind, 'Namespace');
  const metrics = await call('GET', '/metrics');
  assert.match(String(metrics.json), /flotilla_http_requests_total/);
  assert.match(String(metrics.json), /flotilla_store_revision \d+/);
  const openapi = await call('GET', '/openapi.json');
  assert.ok(openapi.json.paths['/api/v1/namespaces/{namespace}/pods/{name}']);
  assert.ok(openapi.json.paths['/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale']);
});

test('a join token only asks for a node certificate: it reads nothing and writes nothing else', async () => {
  const asNode = (method: string, path: string, body?: unknown) => call(method, path, body, { authorization: `Bearer ${NODE_TOKEN}` });
  for (const [method, path, body] of [
    ['GET', '/api/v1/namespaces/default/pods'],
    ['GET', '/api/v1/namespaces/kube-system/secrets'],
    ['POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'pi-9' } }],
    ['POST', '/api/v1/namespaces/default/events', { apiVersion: 'v1', kind: 'Event', metadata: { name: 'e1' }, involvedObject: { kind: 'Node', name: 'pi-9' }, reason: 'Started', message: 'm', type: 'Normal' }],
    ['POST', '/apis/apps/v1/namespaces/default/deployments', deployment('sneaky', 1)],
    ['POST', '/api/v1/namespaces/kube-system/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'flotilla-agent-pi-9' }, data: {} }],
    ['DELETE', '/api/v1/namespaces/default'],
  ] as [string, string, unknown?][]) {
    const answer = await asNode(method, path, body);
    assert.is(answer.status, 403, `${method} ${path}: ${JSON.stringify(answer.json)}`);
    assert.match(answer.json.message, /a join token may only ask for a node certificate|forbidden/);
  }
  assert.is((await call('GET', '/api/v1/nodes/pi-9')).status, 404);
  assert.is((await call('GET', '/api/v1/namespaces/kube-system/secrets/flotilla-agent-pi-9')).status, 404);
});

test('an internal error is answered with an id only; the log has the id and the detail', async () => {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'error' }, { write: (line: string) => { lines.push(JSON.parse(line) as Record<string, unknown>); } });
  const broken = new Hono();
  broken.get('/broken', () => { throw new Error('state.db: secret detail of the server'); });
  const failing = createApp({
    objects: new ObjectService(store, proposer, () => new Date()), readBarrier: async () => {}, authenticate: staticTokens({ [TOKEN]: identity('admin', [MASTERS_GROUP]) }),
    version: { flotilla: '0.1.0', gitVersion: 'v0.1.0' }, readiness: () => [], extraRoutes: [broken], log,
  });
  const res = await failing.request('/broken', { headers: { authorization: `Bearer ${TOKEN}` } });
  assert.is(res.status, 500);
  const text = await res.text();
  assert.not.match(text, /secret detail|state\.db/);
  const status = JSON.parse(text) as { reason: string; message: string };
  assert.is(status.reason, 'InternalError');
  const id = /^Internal error occurred: error id ([0-9a-f-]{36})$/.exec(status.message)?.[1];
  assert.ok(id, status.message);
  const logged = lines.find((l) => l.errorId === id) as { err?: { message?: string } } | undefined;
  assert.match(String(logged?.err?.message), /secret detail of the server/);
});

test.after(() => { store.close(); rmSync(dir, { recursive: true, force: true }); });
test.run();
