// The attacks TLS with a pinned CA closes, replayed over real TLS on loopback against a real server
// (server/run.ts in this process) and impostors beside it: a man in the middle with another CA gets no secret
// from an agent or a joining server; a forged or relayed proof of the CA key is refused; a weak cluster secret
// is refused; no plain-HTTP API answers; the cluster secret is no peer credential any more.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import https from 'node:https';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import pino from 'pino';
import { run, type ServerInfo } from '../../server/run.js';
import { run as runAgent } from '../../node-agent/run.js';
import { hollowInventory } from '../../node-agent/hollow.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { ClusterCa, type IssuedCertificate } from '../../server/pki/ca.js';
import { PROOF_PATH, certificateSha256, proofData, verifyServer, type ProofAnswer } from '../../discovery/locate.js';
import { CA_CERTS_PATH, formatClusterToken, parseClusterToken } from '../../client/tokens.js';
import { pinnedFetch } from '../../client/client.js';
import { runCli } from '../support/server-process.js';
import { eventually } from '../support/eventually.js';
import { FlotillaProcess } from '../e2e/cluster.js';
import { startInProcessServer, type InProcessServer } from '../support/in-process-server.js';
import { setUp, stopAfterEach } from '../support/set-up.js';

let dir!: string;
let server: InProcessServer | undefined;
let info!: ServerInfo;
let ca!: ClusterCa;
let fetch!: ReturnType<typeof pinnedFetch>;
setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-tls-'));
  server = await startInProcessServer(join(dir, 'data'));
  info = server.info;
  ca = (await ClusterCa.load(join(dir, 'data')))!;
  fetch = pinnedFetch({ ca: info.caPem });
}, async () => {
  fetch?.close();
  await server?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});
const stopLater = stopAfterEach(test);

interface Seen { method: string; path: string; headers: http.IncomingHttpHeaders; body: string }

/**
 * An HTTPS server on loopback with `cert`, logging every request it receives (and every TLS handshake that
 * failed); `answer` decides the response.
 */
async function impostor(cert: IssuedCertificate, answer: (req: Seen, res: http.ServerResponse) => void | Promise<void>): Promise<{ url: string; seen: Seen[]; failedHandshakes: () => number }> {
  const seen: Seen[] = [];
  let failed = 0;
  const srv = https.createServer({ cert: cert.certPem, key: cert.keyPem }, (req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => { body += d; });
    req.on('end', () => {
      const r = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body };
      seen.push(r);
      void answer(r, res);
    });
  });
  srv.on('tlsClientError', () => { failed++; });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  stopLater(() => new Promise<void>((r) => { srv.closeAllConnections(); srv.close(() => r()); }));
  return { url: `https://127.0.0.1:${(srv.address() as AddressInfo).port}`, seen, failedHandshakes: () => failed };
}

async function joinToken(): Promise<string> {
  const res = await fetch(`${info.url}/apis/flotilla.io/v1/jointokens`, { method: 'POST', headers: { authorization: `Bearer ${info.adminToken!}`, 'content-type': 'application/json' }, body: '{}' });
  assert.is(res.status, 201);
  return ((await res.json()) as { token: string }).token;
}

/** The error `p` rejects with; fails the test when it resolves. */
function refusal(p: Promise<unknown>, what: string): Promise<Error> {
  return p.then(() => assert.unreachable(what), (e: Error) => e) as Promise<Error>;
}

const clusterSecret = () => readFileSync(join(dir, 'data', 'cluster-secret'), 'utf8').trim();

/** Nothing that went to `seen` carries a credential: no Authorization header, no token or secret text anywhere. */
function assertNoSecret(seen: Seen[], secrets: string[]): void {
  for (const r of seen) {
    assert.is(r.headers.authorization, undefined, `${r.method} ${r.path} carried an Authorization header`);
    const text = JSON.stringify(r);
    for (const s of secrets) assert.not.ok(text.includes(s), `${r.method} ${r.path} carried a secret`);
  }
}

test('an agent whose token pins our CA sends nothing secret to a server with another CA: it stops at /cacerts, naming both hashes', async () => {
  const other = await ClusterCa.create('the man in the middle');
  const mitm = await impostor(await other.issue({ commonName: 'mitm', altNames: ['127.0.0.1'] }, { usage: 'server' }), (r, res) => {
    if (r.path === CA_CERTS_PATH) { res.end(other.certPem); return; }
    res.statusCode = 200;
    res.end('{}');
  });
  const token = await joinToken();
  const agentDir = join(dir, 'agent-mitm');
  const err = await refusal(runAgent(new AbortController().signal, {
    server: mitm.url, token, dataDir: agentDir, nodeName: 'victim', listenHost: '127.0.0.1', listenPort: 0,
    runtime: new FakeRuntime(), inventory: hollowInventory('victim'), findings: [], log: pino({ level: 'silent' }), tuning: { retrySeconds: 0.1, retryMaxSeconds: 0.2 },
  }), 'the agent ran against the impostor');
  assert.is(err.message, `the server at ${mitm.url} presents CA sha256:${other.hash}, the token pins sha256:${info.caHash}: wrong cluster or a man in the middle`);
  assert.equal(mitm.seen.map((r) => `${r.method} ${r.path}`), [`GET ${CA_CERTS_PATH}`]);
  assertNoSecret(mitm.seen, [parseClusterToken(token).credential, parseClusterToken(token).credential.split('.')[2]!]);
  assert.not.ok(existsSync(join(agentDir, 'ca.crt')), 'no CA was pinned');
});

test('an impostor that relays our CA at /cacerts but cannot present a certificate of it gets no request at all', async () => {
  const other = await ClusterCa.create('relaying impostor');
  const relay = await impostor(await other.issue({ commonName: 'relay', altNames: ['127.0.0.1'] }, { usage: 'server' }), (r, res) => {
    res.end(r.path === CA_CERTS_PATH ? info.caPem : '{}');
  });
  const token = await joinToken();
  const ac = new AbortController();
  const done = runAgent(ac.signal, {
    server: relay.url, token, dataDir: join(dir, 'agent-relay'), nodeName: 'victim-2', listenHost: '127.0.0.1', listenPort: 0,
    runtime: new FakeRuntime(), inventory: hollowInventory('victim-2'), findings: [], log: pino({ level: 'silent' }), tuning: { retrySeconds: 0.1, retryMaxSeconds: 0.2 },
  });
  stopLater(async () => { ac.abort(); await done.catch(() => {}); });
  // The CA checks out, so the agent pins it; every connection after that fails verification before any byte of HTTP.
  await eventually('the agent tried to register over TLS verified against the pinned CA', () => relay.failedHandshakes() >= 2);
  ac.abort();
  await done;
  assert.equal(relay.seen.map((r) => `${r.method} ${r.path}`), [`GET ${CA_CERTS_PATH}`]);
  assertNoSecret(relay.seen, [parseClusterToken(token).credential]);
});

test('a server joining with a server token sends its cluster secret to no server with another CA', async () => {
  const other = await ClusterCa.create('the man in the middle');
  const mitm = await impostor(await other.issue({ commonName: 'mitm', altNames: ['127.0.0.1'] }, { usage: 'server' }), (r, res) => {
    res.end(r.path === CA_CERTS_PATH ? other.certPem : '{}');
  });
  const serverToken = info.serverToken;
  const joiner = join(dir, 'joiner-mitm');
  const err = await refusal(run(new AbortController().signal, { dataDir: joiner, host: '127.0.0.1', port: 0, mdns: false, join: mitm.url, token: serverToken })
    , 'the server joined the impostor');
  assert.is(err.message, `the server at ${mitm.url} presents CA sha256:${other.hash}, the token pins sha256:${info.caHash}: wrong cluster or a man in the middle`);
  assert.equal(mitm.seen.map((r) => `${r.method} ${r.path}`), [`GET ${CA_CERTS_PATH}`]);
  assertNoSecret(mitm.seen, [clusterSecret()]);
  assert.not.ok(existsSync(join(joiner, 'pki', 'ca.key')), 'no CA was received');
  assert.not.ok(existsSync(join(joiner, 'cluster.json')), 'no member was made');
});

test('a forged proof is refused: the right nonce signed with another key; an answer relayed from the real server over another TLS channel', async () => {
  // A certificate our CA really issued (a node's, say) lets a TLS handshake pass; it does not give the CA's key.
  const leaf = await ca.issue({ commonName: 'system:node:stolen', altNames: ['127.0.0.1'] }, { usage: 'server+client' });
  const { webcrypto } = await import('node:crypto');
  const { importKeyPair, PKI_ALGORITHM } = await import('../../client/pki.js');
  const leafKeys = await importKeyPair(leaf.keyPem);
  const forger = await impostor(leaf, async (r, res) => {
    const q = new URL(r.path, 'https://x').searchParams;
    const data = proofData(info.clusterId, 'agent-join', q.get('cert-sha256')!, q.get('nonce')!);
    const signature = Buffer.from(await webcrypto.subtle.sign(PKI_ALGORITHM, leafKeys.privateKey, Buffer.from(data))).toString('base64url');
    const answer: ProofAnswer = { clusterId: info.clusterId, purpose: 'agent-join', nonce: q.get('nonce')!, certSha256: q.get('cert-sha256')!, ca: info.caPem, signature };
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify(answer));
  });
  const pin = { caHash: info.caHash };
  const wrongKey = await refusal(verifyServer(forger.url, pin, { purpose: 'agent-join' }), 'a signature by another key passed');
  assert.is(wrongKey.message, `proof does not match: this server does not hold the key of CA sha256:${info.caHash}`);

  // A relay asks the real server as its client and passes the answer on: verbatim (the real server refuses to sign
  // for the relay's certificate), or asking for the real server's certificate (the answer names another channel).
  const realCert = readFileSync(join(dir, 'data', 'pki', 'server.crt'), 'utf8');
  for (const rewrite of [false, true]) {
    const relay = await impostor(leaf, async (r, res) => {
      const path = rewrite ? r.path.replace(/cert-sha256=[0-9a-f]+/, `cert-sha256=${certificateSha256(realCert)}`) : r.path;
      const upstream = await fetch(`${info.url}${path}`);
      res.statusCode = upstream.status;
      res.end(await upstream.text());
    });
    const relayed = await refusal(verifyServer(relay.url, pin, { purpose: 'agent-join' }), 'a relayed proof passed');
    if (rewrite) assert.match(relayed.message, /^the proof is for another TLS certificate \(sha256:[0-9a-f]{64}\) than this connection's \(sha256:[0-9a-f]{64}\): a relayed answer$/);
    else assert.match(relayed.message, /^answered 400 to the proof request: .*not the certificate this server presents/);
    assert.ok(relay.seen.every((r) => r.path.startsWith(PROOF_PATH)), 'the relay was asked for a proof only');
  }
});

test('a token with a wrong CA hash is refused by the CLI agent naming both hashes; one without a hash is refused with the fix', async () => {
  const token = await joinToken();
  const wrong = formatClusterToken('ab'.repeat(32), parseClusterToken(token).credential);
  // The server runs in this process: the CLI is spawned without blocking it (runCli would).
  const agent = async (tokenText: string, data: string) => {
    const p = new FlotillaProcess(['agent', '--server', info.url, '--token', tokenText, '--data', join(dir, data), '--listen', '127.0.0.1:0', '--simulate', '1']);
    stopLater(() => p.kill('SIGKILL'));
    const code = await eventually('the agent exits', () => (p.alive ? undefined : { code: p.child.exitCode }), { detail: () => p.output });
    return { code: code.code, output: p.output };
  };
  const r = await agent(wrong, 'cli-agent');
  assert.is(r.code, 1, r.output);
  assert.match(r.output, new RegExp(`the server at ${info.url} presents CA sha256:${info.caHash}, the token pins sha256:(ab){32}: wrong cluster or a man in the middle`));
  const bare = await agent(parseClusterToken(token).credential, 'cli-agent-bare');
  assert.is(bare.code, 1, bare.output);
  assert.match(bare.output, /the token carries no cluster CA hash \(expected FLT1<64 hex>::<credential>\): use the full token that "flotilla token create" prints/);
});

test('a weak --token for --cluster-init is refused before anything is made, naming how to make a good one', () => {
  const data = join(dir, 'weak');
  const r = runCli(['server', '--data', data, '--listen', '127.0.0.1:0', '--cluster-init', '--token', 'letmein-letmein-letmein-letmein-1', '--no-mdns'], {});
  assert.is(r.code, 1, r.stdout + r.stderr);
  assert.match(r.stderr, /the cluster secret \(--token\) is too weak: it needs at least 32 characters of some variety \(at least 12 different ones\); make a good one with: openssl rand -base64 32/);
  assert.not.ok(existsSync(join(data, 'cluster.json')), 'no cluster was formed');
  assert.not.ok(existsSync(join(data, 'pki', 'ca.key')), 'no CA was made');
});

test('no plain-HTTP API answers on the API port; TLS below 1.2 is refused', async () => {
  const port = new URL(info.url).port;
  const plain = await new Promise<string>((resolve) => {
    const req = http.get(`http://127.0.0.1:${port}/readyz`, (res) => resolve(`answered ${res.statusCode}`));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(`failed: ${e.code ?? e.message}`));
  });
  assert.match(plain, /^failed: (ECONNRESET|HPE_INVALID_CONSTANT|.*)$/);
  assert.not.match(plain, /^answered/);
  const old = await new Promise<string>((resolve) => {
    const req = https.get(`${info.url}/readyz`, { ca: info.caPem, maxVersion: 'TLSv1.1', minVersion: 'TLSv1' }, (res) => resolve(`answered ${res.statusCode}`));
    req.on('error', (e: NodeJS.ErrnoException) => resolve(`failed: ${e.code ?? e.message}`));
  });
  assert.match(old, /^failed: /);
  const ok = await fetch(`${info.url}/readyz`);
  assert.is(ok.status, 200, 'the same port answers over TLS');
});

test('the cluster secret is no peer credential: Raft and membership calls take a server certificate; the CA goes only to the secret', async () => {
  const secret = clusterSecret();
  const asSecret = await fetch(`${info.url}/raft/v1/messages`, { method: 'POST', headers: { authorization: `Bearer ${secret}`, 'content-type': 'application/json' }, body: '[]' });
  assert.is(asSecret.status, 401, 'the secret is not a bearer token of the API');
  // A certificate of our CA that is not a server's (a node's) is no peer either.
  const nodeCert = await ca.issue({ commonName: 'system:node:pi', organizations: ['system:nodes'] }, { usage: 'client' });
  const asNode = pinnedFetch({ ca: info.caPem, identity: () => nodeCert });
  stopLater(() => asNode.close());
  assert.is((await asNode(`${info.url}/raft/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' })).status, 401);
  // A server certificate of another CA does not verify at the TLS layer: no identity.
  const other = await ClusterCa.create('other');
  const foreign = pinnedFetch({ ca: info.caPem, identity: () => undefined });
  const foreignServer = await other.issue({ commonName: 'flotilla:server:1', organizations: ['flotilla:servers'] }, { usage: 'server+client' });
  const asForeign = pinnedFetch({ ca: info.caPem, identity: () => foreignServer });
  stopLater(() => { foreign.close(); asForeign.close(); });
  assert.is((await asForeign(`${info.url}/raft/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' })).status, 401);
  // Our own server certificate is a peer.
  const serving = { certPem: readFileSync(join(dir, 'data', 'pki', 'server.crt'), 'utf8'), keyPem: readFileSync(join(dir, 'data', 'pki', 'server.key'), 'utf8') };
  const asServer = pinnedFetch({ ca: info.caPem, identity: () => serving });
  stopLater(() => asServer.close());
  assert.is((await asServer(`${info.url}/cluster/status`)).status, 200);
  assert.is((await asServer(`${info.url}/raft/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '[]' })).status, 204);

  const noSecret = await foreign(`${info.url}/cluster/v1/ca`);
  assert.is(noSecret.status, 401);
  assert.not.match(await noSecret.text(), /PRIVATE KEY/);
  const wrongSecret = await foreign(`${info.url}/cluster/v1/ca`, { headers: { authorization: `Bearer ${secret}x` } });
  assert.is(wrongSecret.status, 401);
  const withSecret = await foreign(`${info.url}/cluster/v1/ca`, { headers: { authorization: `Bearer ${secret}` } });
  assert.is(withSecret.status, 200);
  assert.is(((await withSecret.json()) as { certPem: string }).certPem, info.caPem);
});

test.run();
