// The cluster PKI over real TLS sockets: a serving certificate verified against the pinned CA, a client
// certificate from a CSR verified by the server, and the refusals (another CA, a forged request, a wrong key).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import https from 'node:https';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { ClusterCa, CA_KEY_FILE, PKI_DIR } from '../../server/pki/ca.js';
import { caHash, certificateInfo, createCsr, importKeyPair, issuedBy, newKeyPair, privateKeyPem, verifyCaSignature } from '../../client/pki.js';

async function withServer(ca: ClusterCa, fn: (port: number) => Promise<void>): Promise<void> {
  const serving = await ca.issue({ commonName: 'server', altNames: ['127.0.0.1', 'localhost'] }, { usage: 'server' });
  const server = https.createServer({ cert: serving.certPem, key: serving.keyPem, ca: ca.certPem, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, (req, res) => {
    const socket = req.socket as TLSSocket;
    const peer = socket.getPeerCertificate();
    res.end(JSON.stringify({ authorized: socket.authorized, cn: peer.subject?.CN ?? null, protocol: socket.getProtocol() }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    await fn((server.address() as AddressInfo).port);
  } finally {
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
}

function get(port: number, options: https.RequestOptions): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port, path: '/', agent: false, ...options }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => { text += c; });
      res.on('end', () => resolve(JSON.parse(text) as Record<string, unknown>));
    });
    req.on('error', reject);
  });
}

test('a serving certificate verifies against the CA; a client certificate signed from a CSR names its holder', async () => {
  const ca = await ClusterCa.create('test');
  const keys = await newKeyPair();
  const csr = await createCsr(keys, { commonName: 'system:node:evil', organizations: ['system:masters'] });
  // The CA names the holder; what the request asks for is ignored.
  const certPem = await ca.signCsr(csr, { commonName: 'system:node:pi-1', organizations: ['system:nodes'] }, { usage: 'client' });
  const info = certificateInfo(certPem);
  assert.is(info.commonName, 'system:node:pi-1');
  assert.equal(info.organizations, ['system:nodes']);
  assert.ok(issuedBy(certPem, ca.certPem));
  await withServer(ca, async (port) => {
    const answer = await get(port, { ca: ca.certPem, cert: certPem, key: await privateKeyPem(keys.privateKey) });
    assert.equal(answer, { authorized: true, cn: 'system:node:pi-1', protocol: 'TLSv1.3' });
    const anonymous = await get(port, { ca: ca.certPem });
    assert.is(anonymous.authorized, false);
  });
});

test('a client pinned to one CA refuses a server of another CA', async () => {
  const ca = await ClusterCa.create('ours');
  const other = await ClusterCa.create('theirs');
  await withServer(other, async (port) => {
    const err = await get(port, { ca: ca.certPem }).then(() => undefined, (e: NodeJS.ErrnoException) => e);
    assert.ok(err, 'the handshake must fail');
    assert.match(String(err.code), /UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|UNABLE_TO_GET_ISSUER/);
  });
  const stranger = await other.issue({ commonName: 'system:node:x' }, { usage: 'client' });
  assert.not.ok(issuedBy(stranger.certPem, ca.certPem));
});

test('a certificate is valid only between its dates', async () => {
  const ca = await ClusterCa.create('clock');
  const { certPem } = await ca.issue({ commonName: 'c' }, { usage: 'client', days: 1 });
  assert.ok(issuedBy(certPem, ca.certPem));
  assert.not.ok(issuedBy(certPem, ca.certPem, Date.now() + 2 * 86_400_000));
});

test('signCsr refuses a request whose signature does not match its key', async () => {
  const ca = await ClusterCa.create('csr');
  const csr = await createCsr(await newKeyPair(), { commonName: 'x' });
  const body = csr.split('\n').filter((l) => !l.startsWith('-----')).join('');
  const der = Buffer.from(body, 'base64');
  der[der.length - 5] = der[der.length - 5]! ^ 0xff;
  const forged = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`;
  const err = await ca.signCsr(forged, { commonName: 'x' }, { usage: 'client' }).then(() => undefined, (e: Error) => e);
  assert.ok(err);
  await ca.signCsr('garbage', { commonName: 'x' }, { usage: 'client' }).then(() => assert.unreachable('garbage accepted'), (e: Error) => assert.match(e.message, /certificate request/));
});

test('save and load keep the CA; a key of another CA is refused; the CA signs proofs the pinned certificate verifies', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-pki-'));
  try {
    assert.is(await ClusterCa.load(dir), undefined);
    const ca = await ClusterCa.create('disk');
    ca.save(dir);
    assert.is(statSync(join(dir, PKI_DIR, CA_KEY_FILE)).mode & 0o777, 0o600);
    const again = await ClusterCa.load(dir);
    assert.is(again?.hash, ca.hash);
    assert.is(again?.hash, caHash(ca.certPem));
    assert.throws(() => ca.save(dir), /EEXIST/);
    const other = await ClusterCa.create('other');
    await ClusterCa.fromPem(ca.certPem, other.keyPem).then(() => assert.unreachable('mismatched key accepted'), (e: Error) => assert.match(e.message, /does not belong/));
    const signature = await ca.sign('nonce-1');
    assert.ok(await verifyCaSignature(ca.certPem, 'nonce-1', signature));
    assert.not.ok(await verifyCaSignature(ca.certPem, 'nonce-2', signature));
    assert.not.ok(await verifyCaSignature(other.certPem, 'nonce-1', signature));
    const keys = await importKeyPair(ca.keyPem);
    assert.is(keys.privateKey.type, 'private');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
