// authorization.k8s.io/v1 access reviews through the real app: SelfSubjectAccessReview and
// SelfSubjectRulesReview answer what the policy would decide for the caller (in JSON, and in the protobuf
// envelope kubectl sends: testdata/*.pb are kubectl v1.32's own request bodies), SubjectAccessReview the same
// for a named user, and only for whoever may create subjectaccessreviews.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { createApp } from '../../server/api/app.js';
import { MASTERS_GROUP, identity, staticTokens } from '../../server/api/middleware/auth.js';
import { decodeReview } from '../../server/auth/access-review.js';
import { MemoryStore } from '../../server/store/memory-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import { ObjectService } from '../../server/objects/service.js';

const store = new MemoryStore();
const objects = new ObjectService(store, new LocalProposer(store));
const app = createApp({
  objects, readBarrier: async () => {}, readiness: () => [],
  authenticate: staticTokens({ 'token-admin': identity('admin', [MASTERS_GROUP]), 'token-ann': identity('ann', ['testers']), 'token-bob': identity('bob', []) }),
  version: { flotilla: 'test', gitVersion: 'vtest' },
});
const AUTHZ = '/apis/authorization.k8s.io/v1';

async function post(who: string, path: string, body: unknown, contentType = 'application/json'): Promise<{ status: number; json: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await app.request(path, {
    method: 'POST', headers: { authorization: `Bearer token-${who}`, 'content-type': contentType },
    body: body instanceof Uint8Array ? Buffer.from(body) : JSON.stringify(body),
  });
  return { status: res.status, json: await res.json() };
}
const review = (resourceAttributes: Record<string, string>) => ({ apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes } });
const fixture = (name: string) => new Uint8Array(readFileSync(`test/rbac/testdata/${name}.pb`));

test.before(async () => {
  for (const name of ['team']) assert.is((await post('admin', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } })).status, 201);
  const r = await post('admin', '/apis/rbac.authorization.k8s.io/v1/namespaces/team/rolebindings', {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'testers-edit', namespace: 'team' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
    subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'testers' }],
  });
  assert.is(r.status, 201, JSON.stringify(r.json));
});

test('kubectl\'s protobuf bodies decode to the reviews they ask', () => {
  assert.equal(decodeReview(fixture('selfsubjectaccessreviews'), 'SelfSubjectAccessReview'), {
    spec: { resourceAttributes: { namespace: 'team', verb: 'create', resource: 'pods', subresource: 'exec' } },
  });
  assert.equal(decodeReview(fixture('selfsubjectrulesreviews'), 'SelfSubjectRulesReview'), { spec: { namespace: 'team' } });
  assert.throws(() => decodeReview(new Uint8Array([1, 2, 3, 4, 5]), 'SelfSubjectAccessReview'), /not in Kubernetes' protobuf envelope/);
  const cut = fixture('selfsubjectaccessreviews').subarray(0, 60);
  assert.throws(() => decodeReview(cut, 'SelfSubjectAccessReview'), /not valid protobuf: .*runs past the end/);
});

test('SelfSubjectAccessReview: the policy\'s answer for the caller, in JSON and in protobuf', async () => {
  const ask = async (who: string, attrs: Record<string, string>) => {
    const r = await post(who, `${AUTHZ}/selfsubjectaccessreviews`, review(attrs));
    assert.is(r.status, 201, JSON.stringify(r.json));
    assert.is(r.json.kind, 'SelfSubjectAccessReview');
    return r.json.status.allowed as boolean;
  };
  assert.is(await ask('ann', { verb: 'create', resource: 'pods', subresource: 'exec', namespace: 'team' }), true, 'edit may exec');
  assert.is(await ask('ann', { verb: 'update', group: 'apps', resource: 'deployments', subresource: 'scale', namespace: 'team' }), true);
  assert.is(await ask('ann', { verb: 'create', resource: 'pods', subresource: 'exec', namespace: 'default' }), false, 'only in team');
  assert.is(await ask('ann', { verb: 'create', group: 'rbac.authorization.k8s.io', resource: 'rolebindings', namespace: 'team' }), false, 'edit may not bind');
  assert.is(await ask('bob', { verb: 'get', resource: 'pods', namespace: 'team' }), false);
  assert.is(await ask('admin', { verb: 'delete', resource: 'nodes' }), true);
  const pb = await post('ann', `${AUTHZ}/selfsubjectaccessreviews`, fixture('selfsubjectaccessreviews'), 'application/vnd.kubernetes.protobuf');
  assert.is(pb.status, 201, JSON.stringify(pb.json));
  assert.is(pb.json.status.allowed, true, 'the protobuf question is the same one: create pods/exec in team');
  assert.is((await post('bob', `${AUTHZ}/selfsubjectaccessreviews`, fixture('selfsubjectaccessreviews'), 'application/vnd.kubernetes.protobuf')).json.status.allowed, false);
  const nonResource = await post('bob', `${AUTHZ}/selfsubjectaccessreviews`, { spec: { nonResourceAttributes: { path: '/version', verb: 'get' } } });
  assert.is(nonResource.json.status.allowed, true, 'system:public-info-viewer lets everyone read /version');
});

test('bad reviews are refused, naming what is wrong', async () => {
  const both = await post('ann', `${AUTHZ}/selfsubjectaccessreviews`, { spec: { resourceAttributes: { verb: 'get' }, nonResourceAttributes: { path: '/x', verb: 'get' } } });
  assert.is(both.status, 422);
  assert.match(both.json.message, /exactly one of nonResourceAttributes or resourceAttributes/);
  const unknown = await post('ann', `${AUTHZ}/selfsubjectaccessreviews`, { spec: { resourceAttributes: { verb: 'get', colour: 'red' } } });
  assert.is(unknown.status, 400);
  assert.match(unknown.json.message, /spec\.resourceAttributes/);
  const broken = await app.request(`${AUTHZ}/selfsubjectaccessreviews`, { method: 'POST', headers: { authorization: 'Bearer token-ann', 'content-type': 'application/json' }, body: '{' });
  assert.is(broken.status, 400);
  const noNamespace = await post('ann', `${AUTHZ}/selfsubjectrulesreviews`, { spec: {} });
  assert.is(noNamespace.status, 422);
  assert.match(noNamespace.json.message, /spec\.namespace/);
});

test('SelfSubjectRulesReview lists the caller\'s rules in the namespace; the superuser holds every rule', async () => {
  const ann = await post('ann', `${AUTHZ}/selfsubjectrulesreviews`, fixture('selfsubjectrulesreviews'), 'application/vnd.kubernetes.protobuf');
  assert.is(ann.status, 201, JSON.stringify(ann.json));
  const rules = ann.json.status.resourceRules as { verbs: string[]; apiGroups: string[]; resources: string[] }[];
  assert.ok(rules.some((r) => r.resources.includes('pods/exec') && r.verbs.includes('create')), JSON.stringify(rules));
  assert.ok(rules.some((r) => r.resources.includes('selfsubjectaccessreviews')), 'system:basic-user applies everywhere');
  assert.is(ann.json.status.incomplete, false);
  const other = await post('ann', `${AUTHZ}/selfsubjectrulesreviews`, { spec: { namespace: 'default' } });
  assert.not.ok((other.json.status.resourceRules as { resources: string[] }[]).some((r) => r.resources.includes('pods/exec')), 'no edit rules outside team');
  const admin = await post('admin', `${AUTHZ}/selfsubjectrulesreviews`, { spec: { namespace: 'team' } });
  assert.equal(admin.json.status.resourceRules, [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }]);
});

test('SubjectAccessReview answers for the named user, and only for whoever may create subjectaccessreviews', async () => {
  const body = { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user: 'carol', groups: ['testers'], resourceAttributes: { verb: 'delete', resource: 'configmaps', namespace: 'team' } } };
  const byAdmin = await post('admin', `${AUTHZ}/subjectaccessreviews`, body);
  assert.is(byAdmin.status, 201, JSON.stringify(byAdmin.json));
  assert.is(byAdmin.json.status.allowed, true, 'carol is a tester, and testers edit team');
  assert.is((await post('admin', `${AUTHZ}/subjectaccessreviews`, { spec: { ...body.spec, groups: [] } })).json.status.allowed, false);
  const byAnn = await post('ann', `${AUTHZ}/subjectaccessreviews`, body);
  assert.is(byAnn.status, 403);
  assert.match(byAnn.json.message, /User "ann" cannot create resource "subjectaccessreviews" in API group "authorization.k8s.io"/);
  assert.is((await post('admin', `${AUTHZ}/subjectaccessreviews`, { spec: { resourceAttributes: { verb: 'get', resource: 'pods' } } })).status, 422, 'no user and no group');
});

test.run();
