// Service account tokens: signing and verification (expiry, audience, tampering, another cluster's key), the
// TokenRequest subresource, and the API authenticating its tokens as system:serviceaccount:NS:NAME.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { randomUUID } from 'node:crypto';
import { resourceOfKind } from '../../api-types/index.js';
import { ClusterCa } from '../../server/pki/ca.js';
import { ServiceAccountTokens, API_AUDIENCES, SERVICE_ACCOUNT_ISSUER } from '../../server/tokens/service-account-tokens.js';
import { authenticateServiceAccountToken } from '../../server/tokens/token-requests.js';
import { createApp } from '../../server/api/app.js';
import { MASTERS_GROUP, NODE_GROUP, identity, staticTokens, type Identity } from '../../server/api/middleware/auth.js';
import { ObjectService } from '../../server/objects/service.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { LocalProposer } from '../../server/store/proposer.js';

const caA = await ClusterCa.create('a');
const caB = await ClusterCa.create('b');
const signer = ServiceAccountTokens.fromClusterCa(caA.keyPem);
const NOW = Date.parse('2026-06-01T00:00:00Z');
const subject = { namespace: 'ns', serviceAccount: { name: 'builder', uid: 'u-1' }, audiences: API_AUDIENCES, expirationSeconds: 3600 };

test('the key is the cluster\'s: every member derives the same one from the CA key, another cluster another', () => {
  assert.is(ServiceAccountTokens.fromClusterCa(caA.keyPem).keyId, signer.keyId);
  assert.is.not(ServiceAccountTokens.fromClusterCa(caB.keyPem).keyId, signer.keyId);
});

test('a token carries Kubernetes\' claims and verifies until it expires', () => {
  const { token, claims } = signer.issue({ ...subject, pod: { name: 'p', uid: 'pu' } }, NOW);
  const [header] = token.split('.');
  assert.equal(JSON.parse(Buffer.from(header!, 'base64url').toString()), { alg: 'ES256', kid: signer.keyId });
  assert.equal({ iss: claims.iss, sub: claims.sub, aud: claims.aud, exp: claims.exp - claims.iat, nbf: claims.nbf === claims.iat }, {
    iss: SERVICE_ACCOUNT_ISSUER, sub: 'system:serviceaccount:ns:builder', aud: [...API_AUDIENCES], exp: 3600, nbf: true,
  });
  assert.equal(claims['kubernetes.io'], { namespace: 'ns', serviceaccount: { name: 'builder', uid: 'u-1' }, pod: { name: 'p', uid: 'pu' } });
  assert.ok(signer.verify(token, NOW + 3_599_000));
  assert.ok(signer.verify(token, NOW + 3_659_000), 'within the minute of leeway');
  assert.is(signer.verify(token, NOW + 3_661_000), undefined, 'expired');
  assert.is(signer.verify(token, NOW - 61_000), undefined, 'not yet valid');
});

test('a token for another audience, signed by another cluster, or altered is refused', () => {
  const { token } = signer.issue({ ...subject, audiences: ['vault'] }, NOW);
  assert.is(signer.verify(token, NOW), undefined);
  assert.ok(signer.verify(token, NOW, ['vault']));
  const foreign = ServiceAccountTokens.fromClusterCa(caB.keyPem).issue(subject, NOW).token;
  assert.is(signer.verify(foreign, NOW), undefined);
  const good = signer.issue(subject, NOW).token;
  const [h, p, s] = good.split('.') as [string, string, string];
  const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
  claims['kubernetes.io'].serviceaccount.name = 'admin';
  claims.sub = 'system:serviceaccount:ns:admin';
  assert.is(signer.verify(`${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`, NOW), undefined);
  assert.is(signer.verify('not.a.jwt', NOW), undefined);
  assert.is(signer.verify('opaque-token', NOW), undefined);
});

// ---- through the API ------------------------------------------------------------------------------------

const ADMIN = 'admin-token-0123456789';
const store = new SqliteStore({ path: ':memory:' });
const proposer = new LocalProposer(store);
for (const name of ['default', 'other']) {
  await proposer.propose({ op: 'create', resource: 'namespaces', uid: randomUUID(), now: new Date().toISOString(), object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name } } });
  await proposer.propose({ op: 'create', resource: 'serviceaccounts', uid: randomUUID(), now: new Date().toISOString(), object: { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: name } } });
}
const objects = new ObjectService(store, proposer);
const admins = staticTokens({ [ADMIN]: identity('admin', [MASTERS_GROUP]) });
const nodeIdentity = (n: string): Identity => identity(`system:node:${n}`, [NODE_GROUP]);
const app = createApp({
  objects, readBarrier: async () => {}, serviceAccountTokens: signer,
  authenticate: ({ token }) => {
    if (token === undefined) return undefined;
    if (token.startsWith('node:')) return nodeIdentity(token.slice(5));
    const sa = authenticateServiceAccountToken(objects, signer, token, Date.now());
    return admins({ token }) ?? (sa ? identity(sa.name, sa.groups) : undefined);
  },
  version: { flotilla: '0.1.0', gitVersion: 'v0.1.0' }, readiness: () => [],
});

async function call(token: string, method: string, path: string, body?: unknown): Promise<{ status: number; json: any }> { // eslint-disable-line @typescript-eslint/no-explicit-any
  const res = await app.request(path, { method, headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  return { status: res.status, json: await res.json() };
}
const tokenPath = (ns: string, name: string) => `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`;
/** The body `kubectl create token` sends. */
const kubectlBody = (spec: Record<string, unknown> = {}) => ({
  kind: 'TokenRequest', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null }, spec: { audiences: null, ...spec }, status: { token: '', expirationTimestamp: null },
});

test('kubectl create token\'s request gets a TokenRequest whose token authenticates as the account, with no rights yet', async () => {
  const res = await call(ADMIN, 'POST', tokenPath('default', 'default'), kubectlBody());
  assert.is(res.status, 201, JSON.stringify(res.json));
  assert.is(res.json.kind, 'TokenRequest');
  assert.equal(res.json.spec.audiences, [...API_AUDIENCES]);
  assert.is(res.json.spec.expirationSeconds, 3600);
  const token = res.json.status.token as string;
  const lifetime = Date.parse(res.json.status.expirationTimestamp) - Date.now();
  assert.ok(lifetime > 3_500_000 && lifetime <= 3_600_000, String(lifetime));

  const who = await call(token, 'POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews', { kind: 'SelfSubjectReview', apiVersion: 'authentication.k8s.io/v1' });
  assert.is(who.status, 201);
  assert.equal(who.json.status.userInfo, { username: 'system:serviceaccount:default:default', groups: ['system:serviceaccounts', 'system:serviceaccounts:default', 'system:authenticated'] });
  const pods = await call(token, 'GET', '/api/v1/namespaces/default/pods');
  assert.is(pods.status, 403);
  assert.is(pods.json.message, 'pods is forbidden: User "system:serviceaccount:default:default" cannot list resource "pods" in API group "" in the namespace "default"');
  assert.is((await call(token, 'GET', '/api')).status, 200, 'discovery is every authenticated user\'s');

  await call(ADMIN, 'DELETE', '/api/v1/namespaces/default/serviceaccounts/default');
  assert.is((await call(token, 'GET', '/api')).status, 401, 'the account is gone: its tokens with it');
  await objects.create(resourceOfKind('ServiceAccount'), 'default', { metadata: { name: 'default' } });
  assert.is((await call(token, 'GET', '/api')).status, 401, 'an account of the same name made again is another account');
});

test('a bound token lives while its pod does; the request is checked as Kubernetes checks it', async () => {
  const pod = await objects.create(resourceOfKind('Pod'), 'other', { metadata: { name: 'web' }, spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'flotilla/testbox:latest' }] } });
  const bound = (ref: Record<string, unknown>) => kubectlBody({ boundObjectRef: { kind: 'Pod', apiVersion: 'v1', ...ref }, expirationSeconds: 600 });
  const res = await call(ADMIN, 'POST', tokenPath('other', 'default'), bound({ name: 'web', uid: pod.metadata.uid }));
  assert.is(res.status, 201, JSON.stringify(res.json));
  const token = res.json.status.token as string;
  assert.is((await call(token, 'GET', '/api')).status, 200);

  assert.is((await call(ADMIN, 'POST', tokenPath('other', 'default'), bound({ name: 'web', uid: 'another' }))).status, 409);
  assert.is((await call(ADMIN, 'POST', tokenPath('other', 'default'), bound({ name: 'nope' }))).status, 404);
  assert.is((await call(ADMIN, 'POST', tokenPath('other', 'default'), kubectlBody({ expirationSeconds: 60 }))).json.message,
    'TokenRequest "default" is invalid: spec.expirationSeconds: may not specify a duration less than 10 minutes');
  assert.is((await call(ADMIN, 'POST', tokenPath('other', 'default'), bound({ name: 'web', kind: 'Secret' }))).status, 422);
  assert.is((await call(ADMIN, 'POST', tokenPath('other', 'ghost'), kubectlBody())).status, 404);

  // Nodes: only tokens bound to their own pods, of the account those pods run as.
  assert.is((await call('node:n1', 'POST', tokenPath('other', 'default'), bound({ name: 'web' }))).status, 201);
  const elsewhere = await call('node:n2', 'POST', tokenPath('other', 'default'), bound({ name: 'web' }));
  assert.is(elsewhere.status, 403);
  assert.match(elsewhere.json.message, /no relationship found between node 'n2' and this object/);
  const unbound = await call('node:n1', 'POST', tokenPath('other', 'default'), kubectlBody());
  assert.is(unbound.status, 403);
  assert.match(unbound.json.message, /node requested token not bound to a pod/);

  await objects.delete(resourceOfKind('Pod'), 'other', 'web', { gracePeriodSeconds: 0 });
  assert.is((await call(token, 'GET', '/api')).status, 401, 'the pod is gone: its token with it');
});

test.run();
