// RBAC through the real app: the built-in roles (cluster-admin, admin, edit, view, system:discovery,
// system:basic-user, system:node-bootstrapper) and custom Roles and ClusterRoles, bound by RoleBindings and
// ClusterRoleBindings to users and groups, allowed and forbidden, subresources (pods/exec, pods/log,
// deployments/scale) and non-resource URLs included. A request the policy allows is anything but 403 (the object
// may not exist: 404); a refused one is 403 with Kubernetes' message.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createApp } from '../../server/api/app.js';
import { BOOTSTRAPPERS_GROUP, MASTERS_GROUP, identity, staticTokens } from '../../server/api/middleware/auth.js';
import { MemoryStore } from '../../server/store/memory-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import { ObjectService } from '../../server/objects/service.js';

const store = new MemoryStore();
const objects = new ObjectService(store, new LocalProposer(store));
const USERS = {
  admin: identity('admin', [MASTERS_GROUP]),
  viewer: identity('viewer', []),
  editor: identity('editor', ['editors']),
  nsadmin: identity('nsadmin', []),
  reader: identity('reader', []),
  ops: identity('ops', []),
  nobody: identity('nobody', []),
  joiner: identity('system:bootstrap:abc123', [BOOTSTRAPPERS_GROUP]),
} as const;
type User = keyof typeof USERS;
const app = createApp({
  objects, readBarrier: async () => {}, readiness: () => [],
  authenticate: staticTokens(Object.fromEntries(Object.entries(USERS).map(([k, v]) => [`token-${k}`, v]))),
  version: { flotilla: 'test', gitVersion: 'vtest' },
});

async function call(user: User, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await app.request(path, {
    method, headers: { authorization: `Bearer token-${user}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let json: unknown;
  try { json = text ? JSON.parse(text) : undefined; } catch { json = text; }
  return { status: res.status, json };
}

const RBAC = '/apis/rbac.authorization.k8s.io/v1';
const rbacRef = (kind: string, name: string) => ({ apiGroup: 'rbac.authorization.k8s.io', kind, name });
const user = (name: string) => ({ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name });

async function setUp(): Promise<void> {
  const made = async (path: string, body: unknown) => {
    const r = await call('admin', 'POST', path, body);
    assert.is(r.status, 201, JSON.stringify(r.json));
  };
  for (const name of ['team', 'other']) await made('/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  await made(`${RBAC}/namespaces/team/rolebindings`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'viewers', namespace: 'team' }, roleRef: rbacRef('ClusterRole', 'view'), subjects: [user('viewer')] });
  await made(`${RBAC}/namespaces/team/rolebindings`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'admins', namespace: 'team' }, roleRef: rbacRef('ClusterRole', 'admin'), subjects: [user('nsadmin')] });
  await made(`${RBAC}/clusterrolebindings`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'editors' }, roleRef: rbacRef('ClusterRole', 'edit'), subjects: [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'editors' }] });
  await made(`${RBAC}/namespaces/team/roles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'pod-reader', namespace: 'team' },
    rules: [{ apiGroups: [''], resources: ['pods'], resourceNames: ['web'], verbs: ['get'] }, { apiGroups: [''], resources: ['pods/log'], verbs: ['get'] }],
  });
  await made(`${RBAC}/namespaces/team/rolebindings`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'readers', namespace: 'team' }, roleRef: rbacRef('Role', 'pod-reader'), subjects: [user('reader')] });
  await made(`${RBAC}/clusterroles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'ops' },
    rules: [{ nonResourceURLs: ['/metrics', '/cluster/v1/*'], verbs: ['get'] }, { apiGroups: ['apps'], resources: ['deployments/scale'], verbs: ['get', 'update'] }],
  });
  await made(`${RBAC}/clusterrolebindings`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'ops' }, roleRef: rbacRef('ClusterRole', 'ops'), subjects: [user('ops')] });
}

const P = (ns: string, rest = '') => `/api/v1/namespaces/${ns}/pods${rest}`;
const D = (ns: string, rest = '') => `/apis/apps/v1/namespaces/${ns}/deployments${rest}`;

/** [user, method, path, allowed]. */
const MATRIX: [User, string, string, boolean][] = [
  // cluster-admin (system:masters)
  ['admin', 'GET', '/api/v1/nodes', true],
  ['admin', 'DELETE', P('other', '/x'), true],
  ['admin', 'GET', '/metrics', true],
  // view, bound in team
  ['viewer', 'GET', P('team'), true],
  ['viewer', 'GET', P('team', '/web'), true],
  ['viewer', 'GET', P('team', '/web/log'), true],
  ['viewer', 'GET', P('team', '/web/exec'), false],
  ['viewer', 'POST', P('team'), false],
  ['viewer', 'DELETE', P('team', '/web'), false],
  ['viewer', 'GET', D('team', '/d/scale'), true],
  ['viewer', 'PUT', D('team', '/d/scale'), false],
  ['viewer', 'GET', '/api/v1/namespaces/team/secrets', false],
  ['viewer', 'GET', P('other'), false],
  ['viewer', 'GET', '/api/v1/nodes', false],
  ['viewer', 'GET', `${RBAC}/namespaces/team/roles`, false],
  // edit, bound cluster-wide to the group editors
  ['editor', 'POST', P('other'), true],
  ['editor', 'POST', P('team', '/web/exec'), true],
  ['editor', 'PUT', D('other', '/d/scale'), true],
  ['editor', 'GET', '/api/v1/namespaces/other/secrets', true],
  ['editor', 'GET', `${RBAC}/namespaces/team/rolebindings`, false],
  ['editor', 'DELETE', '/api/v1/namespaces/team', false],
  ['editor', 'GET', '/api/v1/nodes', false],
  // admin, bound in team
  ['nsadmin', 'GET', `${RBAC}/namespaces/team/roles`, true],
  ['nsadmin', 'DELETE', P('team', '/web'), true],
  ['nsadmin', 'GET', `${RBAC}/namespaces/other/roles`, false],
  ['nsadmin', 'GET', `${RBAC}/clusterroles`, false],
  // a custom Role: one pod by name, and every pod's log
  ['reader', 'GET', P('team', '/web'), true],
  ['reader', 'GET', P('team', '/db'), false],
  ['reader', 'GET', P('team'), false],
  ['reader', 'GET', P('team', '/db/log'), true],
  ['reader', 'GET', P('other', '/web'), false],
  // a custom ClusterRole: non-resource URLs, one with a trailing *, and a subresource alone
  ['ops', 'GET', '/metrics', true],
  ['ops', 'GET', '/cluster/v1/backup', true],
  ['ops', 'GET', '/cluster/status', false],
  ['ops', 'GET', D('team', '/d/scale'), true],
  ['ops', 'GET', D('team', '/d'), false],
  // system:discovery, system:basic-user: every authenticated identity
  ['nobody', 'GET', '/api', true],
  ['nobody', 'GET', '/apis/apps/v1', true],
  ['nobody', 'GET', '/metrics', false],
  ['nobody', 'GET', P('team'), false],
  ['nobody', 'POST', '/apis/flotilla.io/v1/usertokens', false],
  // system:node-bootstrapper, bound to the join tokens' group
  ['joiner', 'POST', '/apis/flotilla.io/v1/nodecertificates', true],
  ['joiner', 'GET', '/api/v1/nodes', false],
];

test('the matrix: built-in and custom roles, allowed and forbidden', async () => {
  await setUp();
  assert.ok(MATRIX.length >= 40);
  const wrong: string[] = [];
  for (const [who, method, path, allowed] of MATRIX) {
    const r = await call(who, method, path, method === 'POST' || method === 'PUT' ? {} : undefined);
    if ((r.status !== 403) !== allowed) wrong.push(`${who} ${method} ${path}: ${r.status} ${JSON.stringify(r.json)}`);
  }
  assert.equal(wrong, []);
});

test('a refusal is Kubernetes\' Forbidden Status, for a resource and for a path', async () => {
  const r = await call('viewer', 'GET', P('other', '/x'));
  assert.is(r.status, 403);
  assert.equal({ kind: r.json.kind, reason: r.json.reason, code: r.json.code }, { kind: 'Status', reason: 'Forbidden', code: 403 });
  assert.is(r.json.message, 'pods "x" is forbidden: User "viewer" cannot get resource "pods" in API group "" in the namespace "other"');
  const sub = await call('viewer', 'POST', P('team', '/web/exec'), {});
  assert.is(sub.json.message, 'pods "web" is forbidden: User "viewer" cannot create resource "pods/exec" in API group "" in the namespace "team"');
  const scale = await call('viewer', 'PUT', D('team', '/d/scale'), {});
  assert.is(scale.json.message, 'deployments.apps "d" is forbidden: User "viewer" cannot update resource "deployments/scale" in API group "apps" in the namespace "team"');
  const path = await call('nobody', 'GET', '/metrics');
  assert.is(path.json.message, 'forbidden: User "nobody" cannot get path "/metrics"');
});

test('a ClusterRole labelled aggregate-to-view adds its rules to view (and so to edit and admin); deleting it takes them away', async () => {
  const secrets = '/api/v1/namespaces/team/secrets';
  assert.is((await call('viewer', 'GET', secrets)).status, 403);
  const made = await call('admin', 'POST', `${RBAC}/clusterroles`, {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'secret-viewer', labels: { 'rbac.authorization.k8s.io/aggregate-to-view': 'true' } },
    rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['list'] }],
  });
  assert.is(made.status, 201, JSON.stringify(made.json));
  assert.is((await call('viewer', 'GET', secrets)).status, 200);
  assert.is((await call('nsadmin', 'GET', secrets)).status, 200, 'admin aggregates edit, which aggregates view');
  assert.is((await call('admin', 'DELETE', `${RBAC}/clusterroles/secret-viewer`)).status, 200);
  assert.is((await call('viewer', 'GET', secrets)).status, 403);
});

test('a binding removed takes its grants away at once', async () => {
  assert.is((await call('reader', 'GET', P('team', '/web'))).status !== 403, true);
  assert.is((await call('admin', 'DELETE', `${RBAC}/namespaces/team/rolebindings/readers`)).status, 200);
  assert.is((await call('reader', 'GET', P('team', '/web'))).status, 403);
});

test('RBAC objects are validated as Kubernetes validates them', async () => {
  const bad = async (path: string, body: unknown, message: RegExp) => {
    const r = await call('admin', 'POST', path, body);
    assert.is(r.status, 422, JSON.stringify(r.json));
    assert.match(r.json.message, message);
  };
  await bad(`${RBAC}/namespaces/team/roles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'r', namespace: 'team' }, rules: [{ nonResourceURLs: ['/x'], verbs: ['get'] }] }, /namespaced rules cannot apply to non-resource URLs/);
  await bad(`${RBAC}/clusterroles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'r' }, rules: [{ resources: ['pods'], verbs: ['get'] }] }, /resource rules must supply at least one api group/);
  await bad(`${RBAC}/clusterroles`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'r' }, rules: [{ apiGroups: [''], resources: ['pods'], verbs: [] }] }, /verbs must contain at least one value/);
  await bad(`${RBAC}/clusterrolebindings`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'b' }, roleRef: rbacRef('Role', 'x'), subjects: [user('u')] }, /roleRef\.kind/);
  await bad(`${RBAC}/clusterrolebindings`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'b' }, roleRef: rbacRef('ClusterRole', 'x'), subjects: [{ kind: 'ServiceAccount', name: 'sa' }] }, /subjects\[0\]\.namespace/);
});

test.run();
