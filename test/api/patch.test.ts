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
import { jsonPatch, patchMetaOf, strategicMergePatch } from '../../server/api/patch.js';

const TOKEN = 'patch-token-0123456789';
const dir = mkdtempSync(join(tmpdir(), 'flotilla-patch-'));
const store = new SqliteStore({ path: join(dir, 'state.db'), historyWindow: 50 });
const proposer = new LocalProposer(store);
await proposer.propose({ op: 'create', resource: 'namespaces', uid: randomUUID(), now: new Date().toISOString(), object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } } });
const app = createApp({
  objects: new ObjectService(store, proposer), readBarrier: async () => {},
  authenticate: staticTokens({ [TOKEN]: identity('admin', [MASTERS_GROUP]) }),
  version: { flotilla: '0.1.0', gitVersion: 'v0.1.0' }, readiness: () => [], maxBodyBytes: 64 * 1024,
});

async function call(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; json: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await app.request(path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { 'content-type': contentType } : {}) },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try { json = JSON.parse(text); } catch { json = text; }
  return { status: res.status, json };
}

const DEPLOYMENTS = '/apis/apps/v1/namespaces/default/deployments';
const deployment = (name: string) => ({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, finalizers: ['example.com/a', 'example.com/b'] },
  spec: {
    replicas: 1, selector: { matchLabels: { app: name } },
    template: {
      metadata: { labels: { app: name } },
      spec: {
        containers: [
          { name: 'web', image: 'flotilla/testbox:1', ports: [{ containerPort: 80 }, { containerPort: 443 }], env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }], volumeMounts: [{ name: 'data', mountPath: '/data' }] },
          { name: 'side', image: 'flotilla/testbox:1' },
        ],
        volumes: [{ name: 'data', emptyDir: {} }],
        tolerations: [{ key: 'a', operator: 'Exists' }],
      },
    },
  },
});
const podSpec = (o: any) => o.spec.template.spec; // eslint-disable-line @typescript-eslint/no-explicit-any
const smp = (doc: unknown, patch: unknown) => strategicMergePatch(doc, patch, patchMetaOf('Deployment'));

test('strategic merge: containers merge by name, ports by containerPort, env by name, volumeMounts by mountPath', () => {
  const out = smp(deployment('d'), { spec: { template: { spec: { containers: [{ name: 'web', image: 'flotilla/testbox:2', ports: [{ containerPort: 8080 }], env: [{ name: 'B', value: 'two' }], volumeMounts: [{ mountPath: '/data', readOnly: true }] }] } } } });
  const [web, side] = podSpec(out).containers;
  assert.is(web.image, 'flotilla/testbox:2');
  assert.equal(web.ports.map((p: { containerPort: number }) => p.containerPort), [80, 443, 8080]);
  assert.equal(web.env, [{ name: 'A', value: '1' }, { name: 'B', value: 'two' }]);
  assert.equal(web.volumeMounts, [{ name: 'data', mountPath: '/data', readOnly: true }]);
  assert.is(side.name, 'side', 'a container the patch does not name stays');
});

test('strategic merge: a list without a merge strategy (tolerations) is replaced; null deletes a field', () => {
  const out = smp(deployment('d'), { spec: { replicas: null, template: { spec: { tolerations: [{ key: 'b', operator: 'Exists' }] } } } });
  assert.equal(podSpec(out).tolerations, [{ key: 'b', operator: 'Exists' }]);
  assert.is((out as { spec: { replicas?: number } }).spec.replicas, undefined);
});

test('strategic merge: $patch delete removes a list element by key, $patch replace replaces a list or a map', () => {
  const deleted = smp(deployment('d'), { spec: { template: { spec: { containers: [{ name: 'side', $patch: 'delete' }] } } } });
  assert.equal(podSpec(deleted).containers.map((c: { name: string }) => c.name), ['web']);
  const replaced = smp(deployment('d'), { spec: { template: { spec: { containers: [{ name: 'only', image: 'x' }, { $patch: 'replace' }] } } } });
  assert.equal(podSpec(replaced).containers, [{ name: 'only', image: 'x' }]);
  const map = smp(deployment('d'), { spec: { selector: { $patch: 'replace', matchLabels: { other: 'x' } } } }) as { spec: { selector: unknown } };
  assert.equal(map.spec.selector, { matchLabels: { other: 'x' } });
});

test('strategic merge: $deleteFromPrimitiveList and set-like merge of finalizers; $setElementOrder orders by merge key', () => {
  const out = smp(deployment('d'), { metadata: { '$deleteFromPrimitiveList/finalizers': ['example.com/a'], finalizers: ['example.com/c', 'example.com/b'] } }) as { metadata: { finalizers: string[] } };
  assert.equal(out.metadata.finalizers, ['example.com/b', 'example.com/c']);
  const ordered = smp(deployment('d'), { spec: { template: { spec: { '$setElementOrder/containers': [{ name: 'side' }, { name: 'web' }] } } } });
  assert.equal(podSpec(ordered).containers.map((c: { name: string }) => c.name), ['side', 'web']);
});

test('strategic merge: $retainKeys clears what it does not list; a patch key outside it is 422, a missing merge key 400', () => {
  const out = smp(deployment('d'), { spec: { template: { spec: { volumes: [{ name: 'data', $retainKeys: ['name', 'hostPath'], hostPath: { path: '/srv' } }] } } } });
  assert.equal(podSpec(out).volumes, [{ name: 'data', hostPath: { path: '/srv' } }]);
  assert.throws(() => smp(deployment('d'), { spec: { $retainKeys: ['replicas'], paused: true } }), (e: { failure: { code: number } }) => e.failure.code === 422);
  assert.throws(() => smp(deployment('d'), { spec: { template: { spec: { containers: [{ image: 'x' }] } } } }), (e: { failure: { code: number; message: string } }) => e.failure.code === 400 && /merge key: name/.test(e.failure.message));
});

test('JSON patch: add, replace, remove, move, copy with escaped pointers; a failed test is 422, a bad op 400', () => {
  const doc = { metadata: { annotations: { 'a/b': '1' } }, list: [1, 2] };
  const out = jsonPatch(doc, [
    { op: 'add', path: '/list/-', value: 3 }, { op: 'replace', path: '/metadata/annotations/a~1b', value: '2' },
    { op: 'copy', from: '/list', path: '/copy' }, { op: 'move', from: '/copy/0', path: '/first' }, { op: 'remove', path: '/list/0' },
    { op: 'test', path: '/first', value: 1 },
  ]);
  assert.equal(out, { metadata: { annotations: { 'a/b': '2' } }, list: [2, 3], copy: [2, 3], first: 1 });
  assert.equal(doc.list, [1, 2], 'the document given is not changed');
  assert.throws(() => jsonPatch(doc, [{ op: 'test', path: '/list/0', value: 9 }]), (e: { failure: { code: number } }) => e.failure.code === 422);
  assert.throws(() => jsonPatch(doc, [{ op: 'remove', path: '/nope/x' }]), (e: { failure: { code: number } }) => e.failure.code === 422);
  assert.throws(() => jsonPatch(doc, [{ op: 'frobnicate', path: '/x' }]), (e: { failure: { code: number } }) => e.failure.code === 400);
  assert.throws(() => jsonPatch(doc, { op: 'add' }), (e: { failure: { code: number } }) => e.failure.code === 400);
});

test('PATCH through the API: each Content-Type its format; the result is validated; an unknown type is 415', async () => {
  assert.is((await call('POST', DEPLOYMENTS, deployment('web'))).status, 201);
  const strategic = await call('PATCH', `${DEPLOYMENTS}/web`, { spec: { template: { spec: { containers: [{ name: 'web', image: 'flotilla/testbox:2' }] } } } }, 'application/strategic-merge-patch+json');
  assert.is(strategic.status, 200, JSON.stringify(strategic.json));
  assert.equal(podSpec(strategic.json).containers.map((c: { name: string; image: string }) => `${c.name}=${c.image}`), ['web=flotilla/testbox:2', 'side=flotilla/testbox:1']);
  const merge = await call('PATCH', `${DEPLOYMENTS}/web`, { spec: { template: { spec: { containers: [{ name: 'web', image: 'flotilla/testbox:3' }] } } } }, 'application/merge-patch+json');
  assert.equal(podSpec(merge.json).containers.map((c: { name: string }) => c.name), ['web'], 'a merge patch replaces lists');
  const json = await call('PATCH', `${DEPLOYMENTS}/web`, [{ op: 'replace', path: '/spec/replicas', value: 3 }], 'application/json-patch+json');
  assert.is(json.status, 200, JSON.stringify(json.json));
  assert.is(json.json.spec.replicas, 3);
  const bad = await call('PATCH', `${DEPLOYMENTS}/web`, [{ op: 'replace', path: '/spec/replicas', value: 'many' }], 'application/json-patch+json');
  assert.is(bad.status, 422);
  assert.match(bad.json.message, /spec\.replicas/);
  const unknownField = await call('PATCH', `${DEPLOYMENTS}/web`, { spec: { replicaz: 2 } }, 'application/strategic-merge-patch+json');
  assert.is(unknownField.status, 422, 'an unknown field is refused, not stored');
  const unknown = await call('PATCH', `${DEPLOYMENTS}/web`, { spec: {} }, 'text/plain');
  assert.is(unknown.status, 415);
  assert.match(unknown.json.message, /application\/strategic-merge-patch\+json/);
});

test('a protobuf body is 415 (the server reads JSON and YAML), and nothing is created', async () => {
  const res = await call('POST', '/api/v1/namespaces/default/configmaps', 'k8s\u0000\n\u0002v1', 'application/vnd.kubernetes.protobuf');
  assert.is(res.status, 415);
  assert.is(res.json.reason, 'UnsupportedMediaType');
  assert.match(res.json.message, /accepted media types include: application\/json, application\/yaml/);
});

test('a JSON patch that sets an older resourceVersion is 409; one without is applied to the newest object', async () => {
  const current = (await call('GET', `${DEPLOYMENTS}/web`)).json;
  await call('PATCH', `${DEPLOYMENTS}/web`, { metadata: { labels: { moved: 'on' } } }, 'application/merge-patch+json');
  const stale = await call('PATCH', `${DEPLOYMENTS}/web`, [{ op: 'replace', path: '/metadata/resourceVersion', value: current.metadata.resourceVersion }, { op: 'replace', path: '/spec/replicas', value: 5 }], 'application/json-patch+json');
  assert.is(stale.status, 409);
  const fresh = await call('PATCH', `${DEPLOYMENTS}/web`, [{ op: 'replace', path: '/spec/replicas', value: 5 }], 'application/json-patch+json');
  assert.is(fresh.status, 200);
  assert.is(fresh.json.metadata.labels.moved, 'on');
});

test('dryRun=All: create, replace, patch and delete answer as the write would, and store nothing', async () => {
  const before = store.revision();
  const created = await call('POST', `${DEPLOYMENTS}?dryRun=All`, deployment('dry'));
  assert.is(created.status, 201);
  assert.is(created.json.metadata.name, 'dry');
  assert.ok(created.json.metadata.uid, 'server-owned fields are filled in as a real create would');
  assert.is((await call('GET', `${DEPLOYMENTS}/dry`)).status, 404);
  const invalidCreate = await call('POST', `${DEPLOYMENTS}?dryRun=All`, { ...deployment('dry'), spec: { replicas: -1 } });
  assert.is(invalidCreate.status, 422, 'a dry run is validated');
  const patched = await call('PATCH', `${DEPLOYMENTS}/web?dryRun=All`, { spec: { replicas: 9 } }, 'application/strategic-merge-patch+json');
  assert.is(patched.json.spec.replicas, 9);
  const current = (await call('GET', `${DEPLOYMENTS}/web`)).json;
  assert.is(current.spec.replicas, 5);
  const replaced = await call('PUT', `${DEPLOYMENTS}/web?dryRun=All`, { ...current, spec: { ...current.spec, replicas: 7 } });
  assert.is(replaced.status, 200);
  assert.is(replaced.json.spec.replicas, 7);
  const deleted = await call('DELETE', `${DEPLOYMENTS}/web?dryRun=All`);
  assert.is(deleted.status, 200);
  const after = (await call('GET', `${DEPLOYMENTS}/web`)).json;
  assert.is(after.spec.replicas, 5);
  assert.is(after.metadata.deletionTimestamp, undefined);
  assert.is(store.revision(), before, 'no revision was used');
  const wrong = await call('DELETE', `${DEPLOYMENTS}/web?dryRun=Some`);
  assert.is(wrong.status, 400);
  assert.is(wrong.json.message, 'dryRun: Unsupported value: "Some": supported values: "All"');
  assert.is((await call('GET', `${DEPLOYMENTS}/web`)).status, 200);
});

test.after(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
