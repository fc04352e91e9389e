import { test } from 'uvu';
import * as assert from 'uvu/assert';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import type { AddressInfo } from 'node:net';
import { ApiClient, ApiClientError, serverList, type ClientTls } from '../../client/client.js';
import { SERVER_GROUP, certificateInfo } from '../../client/pki.js';
import { ClusterCa } from '../../server/pki/ca.js';
import { deadUrl } from '../support/server-process.js';
import { stopAfterEach } from '../support/set-up.js';

const stopLater = stopAfterEach(test);

let caPromise: Promise<ClusterCa> | undefined;
const testCa = () => (caPromise ??= ClusterCa.create('client tests'));

/**
 * An HTTPS server with a certificate of `ca` (the test CA by default) that answers `status` and `body` to
 * everything, asks for client certificates, and records the common name of the one each request came with.
 */
async function answering(body: unknown, status = 200, ca?: ClusterCa): Promise<{ url: string; close: () => Promise<void>; hits: () => number; clients: (string | undefined)[] }> {
  let hits = 0;
  const clients: (string | undefined)[] = [];
  const cert = await (ca ?? await testCa()).issue({ commonName: 'flotilla:server:1', organizations: [SERVER_GROUP], altNames: ['127.0.0.1'] }, { usage: 'server' });
  const srv = https.createServer({ cert: cert.certPem, key: cert.keyPem, requestCert: true, rejectUnauthorized: false }, (req, res) => {
    hits++;
    const peer = (req.socket as TLSSocket).getPeerX509Certificate();
    clients.push(peer ? certificateInfo(peer).commonName : undefined);
    res.statusCode = status;
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(body));
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const close = () => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); });
  stopLater(close);
  return { url: `https://127.0.0.1:${(srv.address() as AddressInfo).port}`, close, hits: () => hits, clients };
}

const tlsOf = async (): Promise<ClientTls> => ({ ca: (await testCa()).certPem });

test('a request that cannot reach its server moves the client to the next one', async () => {
  const live = await answering({ ok: true });
  const client = new ApiClient(serverList([deadUrl, live.url]), 't', { tls: await tlsOf(), timeoutMs: 2000 });
  stopLater(() => client.close());
  try {
    await client.request('GET', '/version');
    assert.unreachable('the dead server answered');
  } catch (err) {
    assert.ok(err instanceof ApiClientError && err.code === 0 && err.reason === 'Unreachable', String(err));
  }
  assert.is(client.server, live.url);
  assert.equal(await client.request('GET', '/version'), { ok: true });
  assert.is(live.hits(), 1);
  client.close();
  await live.close();
});

test('serverList refuses bad URLs; a Status error keeps the server', async () => {
  assert.throws(() => serverList([]), /no server URL/);
  assert.throws(() => serverList(['not a url']), /invalid server URL/);
  const failing = await answering({ kind: 'Status', code: 404, reason: 'NotFound', message: 'pods "x" not found' }, 404);
  const other = await answering({});
  const client = new ApiClient(serverList([failing.url, other.url]), undefined, { tls: await tlsOf() });
  stopLater(() => client.close());
  try {
    await client.request('GET', '/api/v1/namespaces/default/pods/x');
    assert.unreachable();
  } catch (err) {
    assert.ok(err instanceof ApiClientError && err.code === 404 && /not found/.test(err.message));
  }
  assert.is(client.server, failing.url, 'an answer, even an error, means the server is alive');
  client.close();
});

test('an https server is verified against the CA given only: another CA\'s server and a client without a CA are refused before anything is sent', async () => {
  const impostor = await answering({ stolen: true }, 200, await ClusterCa.create('impostor'));
  const client = new ApiClient(impostor.url, 'secret-token', { tls: await tlsOf(), timeoutMs: 2000 });
  stopLater(() => client.close());
  const err = await client.request('GET', '/version').then(() => assert.unreachable('the impostor was trusted'), (e: ApiClientError) => e) as ApiClientError;
  assert.match(err.message, /^the server at https:\/\/127\.0\.0\.1:\d+ presents a certificate the cluster CA did not issue \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\): wrong CA, or a man in the middle; nothing was sent$/);
  const noCa = new ApiClient(impostor.url, 'secret-token');
  const refused = await noCa.request('GET', '/version').then(() => assert.unreachable('no CA, yet it talked'), (e: ApiClientError) => e) as ApiClientError;
  assert.is(refused.reason, 'BadConfig');
  assert.match(refused.message, /no cluster CA to verify this https server with/);
  assert.is(impostor.hits(), 0, 'no request reached the impostor');
});

test('the client certificate comes from identity, read for each new connection: a renewed certificate is used without a new client', async () => {
  const ca = await testCa();
  const server = await answering({ ok: true });
  let current: { certPem: string; keyPem: string } | undefined = await ca.issue({ commonName: 'first' }, { usage: 'client' });
  const client = new ApiClient(server.url, undefined, { tls: { ca: ca.certPem, identity: () => current } });
  stopLater(() => client.close());
  await client.request('GET', '/a');
  await client.request('GET', '/b');
  current = await ca.issue({ commonName: 'renewed' }, { usage: 'client' });
  await client.request('GET', '/c');
  current = undefined;
  await client.request('GET', '/d');
  assert.equal(server.clients, ['first', 'first', 'renewed', undefined]);
});

test.run();
