// What one stolen node credential can do to the rest of the cluster, replayed over HTTPS against a real
// `flotilla server` process with the credentials a real agent holds: node certificates for n1 and n2, got
// through the CSR route with a join token, exactly as node-agent/node-certificate.ts gets them. Every attack by
// n1 on what is n2's (or the cluster's) is refused with 403 and a message saying why, and its target is
// unchanged afterwards; what n1 may do with its own objects still works, so the refusals are not a blanket ban.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NODE_CERTIFICATES_PATH } from '../../api-types/index.js';
import { ApiClient, ApiClientError } from '../../client/client.js';
import { createCsr, newKeyPair, privateKeyPem } from '../../client/pki.js';
import { parseClusterToken } from '../../client/tokens.js';
import { TOKENS_SECRET } from '../../server/objects/service.js';
import { JOIN_TOKENS_PATH } from '../../server/tokens/join-tokens.js';
import { setUp } from '../support/set-up.js';
import { RealServer } from '../agent/real-server.js';

const srv = new RealServer();
const clients: ApiClient[] = [];
let joinToken = '';
let n1!: ApiClient;

setUp(test, async () => {
  await srv.start();
  joinToken = parseClusterToken((await srv.client.request<{ token: string }>('POST', JOIN_TOKENS_PATH, {})).token).credential;
  n1 = await nodeClient('n1');
  const n2 = await nodeClient('n2');
  for (const [client, name] of [[n1, 'n1'], [n2, 'n2']] as const) {
    await client.request('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name }, status: { addresses: [{ type: 'InternalIP', address: `10.9.0.${name.slice(1)}` }] } });
  }
  for (const name of ['n1', 'n2']) {
    await srv.client.request('POST', '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: `s-${name}` }, data: { k: Buffer.from(name).toString('base64') } });
    await srv.client.request('POST', '/api/v1/namespaces/default/pods', {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: `p-${name}` },
      spec: { nodeName: name, containers: [{ name: 'main', image: 'flotilla/testbox:latest', env: [{ name: 'S', valueFrom: { secretKeyRef: { name: `s-${name}`, key: 'k' } } }] }] },
    });
  }
}, async () => {
  for (const c of clients) c.close();
  await srv.close();
});

/** A client holding node `name`'s certificate (a fresh key, a CSR signed through the join token). */
async function nodeClient(name: string): Promise<ApiClient> {
  const keys = await newKeyPair();
  const bootstrap = new ApiClient(srv.server.url, joinToken, { tls: srv.server.tls, timeoutMs: 10_000 });
  clients.push(bootstrap);
  const { certificate } = await bootstrap.request<{ certificate: string }>('POST', NODE_CERTIFICATES_PATH, { nodeName: name, csr: await createCsr(keys, { commonName: `system:node:${name}`, altNames: ['127.0.0.1'] }) });
  const identity = { certPem: certificate, keyPem: await privateKeyPem(keys.privateKey) };
  const client = new ApiClient(srv.server.url, undefined, { tls: { ...srv.server.tls, identity: () => identity }, timeoutMs: 10_000 });
  clients.push(client);
  return client;
}

async function refused(call: Promise<unknown>, code: number, message: RegExp): Promise<void> {
  const err = await call.then(() => undefined, (e: unknown) => e);
  assert.ok(err instanceof ApiClientError, `expected a ${code}, the call was accepted`);
  assert.is(err.code, code, err.message);
  assert.match(err.message, message);
}

const asAdmin = (path: string) => srv.client.request('GET', path).then((o) => JSON.stringify(o));

test('n1 reads the Secret its own pod uses, and neither n2\'s pod\'s Secret, nor the token Secret, nor a list of Secrets', async () => {
  assert.ok(await n1.request('GET', '/api/v1/namespaces/default/secrets/s-n1'));
  await refused(n1.request('GET', '/api/v1/namespaces/default/secrets/s-n2'), 403, /no relationship found between node 'n1' and this object/);
  await refused(n1.request('GET', `/api/v1/namespaces/${TOKENS_SECRET.namespace}/secrets/${TOKENS_SECRET.name}`), 403, /forbidden/);
  await refused(n1.request('GET', '/api/v1/namespaces/default/secrets'), 403, /cannot list resource "secrets"/);
  await refused(n1.request('GET', '/api/v1/secrets'), 403, /cannot list resource "secrets"/);
});

test('n1 cannot rewrite Node n2 (labels, its address) nor create a Node n3', async () => {
  const before = await asAdmin('/api/v1/nodes/n2');
  await refused(n1.request('PATCH', '/api/v1/nodes/n2', { metadata: { labels: { stolen: 'yes' } } }, { contentType: 'application/merge-patch+json' }), 403, /node "n1" cannot modify node "n2"/);
  await refused(n1.request('PATCH', '/api/v1/nodes/n2/status', { status: { addresses: [{ type: 'InternalIP', address: '10.9.9.9' }] } }, { contentType: 'application/merge-patch+json' }), 403, /node "n1" cannot modify node "n2"/);
  assert.is(await asAdmin('/api/v1/nodes/n2'), before, 'Node n2 is unchanged');
  await refused(n1.request('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n3' } }), 403, /n3/);
  await refused(srv.client.request('GET', '/api/v1/nodes/n3'), 404, /not found/);
});

test('n1 cannot delete n2\'s pod nor rewrite its status; its own pod\'s status it reports', async () => {
  const before = await asAdmin('/api/v1/namespaces/default/pods/p-n2');
  await refused(n1.request('DELETE', '/api/v1/namespaces/default/pods/p-n2'), 403, /can only delete pods with spec.nodeName set to itself/);
  await refused(n1.request('PATCH', '/api/v1/namespaces/default/pods/p-n2/status', { status: { phase: 'Failed' } }, { contentType: 'application/merge-patch+json' }), 403, /can only update pod status for pods with spec.nodeName set to itself/);
  assert.is(await asAdmin('/api/v1/namespaces/default/pods/p-n2'), before, 'pod p-n2 is unchanged');
  const own = await n1.request<{ status?: { message?: string } }>('PATCH', '/api/v1/namespaces/default/pods/p-n1/status', { status: { message: 'reported by n1' } }, { contentType: 'application/merge-patch+json' });
  assert.is(own.status?.message, 'reported by n1');
});

test('n1 cannot get a certificate for n2, nor create workloads; a join token reads nothing', async () => {
  const keys = await newKeyPair();
  await refused(n1.request('POST', NODE_CERTIFICATES_PATH, { nodeName: 'n2', csr: await createCsr(keys, { commonName: 'system:node:n2' }) }), 403, /may renew only its own certificate/);
  await refused(n1.request('POST', '/apis/apps/v1/namespaces/default/deployments', { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'x' } }), 403, /cannot create resource "deployments"/);
  const bootstrap = clients[0]!;
  await refused(bootstrap.request('GET', '/api/v1/namespaces/default/secrets/s-n1'), 403, /is forbidden: User "system:bootstrap:[a-z0-9]+" cannot /);
  await refused(bootstrap.request('GET', '/api/v1/nodes'), 403, /is forbidden: User "system:bootstrap:[a-z0-9]+" cannot /);
});

test('deleting Node n1 revokes its certificate: the next request gets 401', async () => {
  await srv.client.request('DELETE', '/api/v1/nodes/n1');
  await refused(n1.request('GET', '/api/v1/nodes/n2'), 401, /names no known identity/);
});

test.run();
