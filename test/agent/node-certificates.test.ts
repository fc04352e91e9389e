// Node certificates end to end: agents (FakeRuntime, in this process) against a real `flotilla server` process
// over HTTPS. An agent joins with a join token and from then on authenticates with its certificate only, so an
// expired join token leaves it Ready; a second machine with a taken node name is refused naming
// `flotilla node replace`, and registers after it; deleting a Node revokes its certificate; a certificate is
// renewed with the clock 400 days on while requests go on; logs and exec through the API reach the agent over
// mutual TLS, and a node's certificate cannot call another node's agent endpoint.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import https from 'node:https';
import tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ANNOTATION_NODE_KEY, NODE_CERTIFICATES_PATH, type Node } from '../../api-types/index.js';
import { JOIN_TOKENS_PATH } from '../../server/tokens/join-tokens.js';
import { ApiClient, ApiClientError } from '../../client/client.js';
import { certificateInfo, createCsr, newKeyPair } from '../../client/pki.js';
import { parseClusterToken } from '../../client/tokens.js';
import { NODE_KEY_FILE, NODE_PKI_DIR } from '../../node-agent/identity.js';
import { NODE_CERT_FILE } from '../../node-agent/node-certificate.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { eventually } from '../support/eventually.js';
import { runCli } from '../support/server-process.js';
import { setUp, stopAfterEach } from '../support/set-up.js';
import { FAST_AGENT_TUNING, RealServer, appPod, type TestAgent } from './real-server.js';

const DAY_MS = 86_400_000;
const APP = 'fake/app';
const srv = new RealServer();
const stopLater = stopAfterEach(test);
let caPem = '';

setUp(test, async () => {
  await srv.start();
  caPem = srv.server.ca;
}, () => srv.close());

/** Commands run in any container of this suite: a refused call must run none. */
let execsRan = 0;

function runtime(): FakeRuntime {
  const rt = new FakeRuntime();
  rt.setBehaviour(APP, { output: ['hello from fake'], exec: (cmd) => { execsRan++; return { exitCode: 0, stdout: `ran ${cmd.join(' ')}\n`, stderr: '' }; } });
  return rt;
}

async function joinToken(ttlSeconds?: number): Promise<{ id: string; token: string; expires?: string }> {
  return srv.client.request('POST', JOIN_TOKENS_PATH, ttlSeconds === undefined ? {} : { ttlSeconds });
}

function agent(nodeName: string, dataDir: string, token: string, opts: { now?: () => number } = {}): TestAgent {
  const a = srv.startAgent(nodeName, runtime(), {
    dataDir: join(srv.dir, dataDir), token,
    tuning: { ...FAST_AGENT_TUNING, certificateCheckSeconds: 0.2, ...(opts.now ? { now: opts.now } : {}) },
  });
  // An agent a server refused has ended already, with the refusal the test looks at.
  stopLater(() => a.stop().catch(() => undefined));
  return a;
}

/** The certificate and key a machine's agent keeps. */
function machineCertificate(dataDir: string): { certPem: string; keyPem: string } {
  const dir = join(srv.dir, dataDir, NODE_PKI_DIR);
  return { certPem: readFileSync(join(dir, NODE_CERT_FILE), 'utf8'), keyPem: readFileSync(join(dir, NODE_KEY_FILE), 'utf8') };
}

function asMachine(dataDir: string): ApiClient {
  const client = new ApiClient(srv.server.url, undefined, { tls: { ca: caPem, identity: () => machineCertificate(dataDir) } });
  stopLater(() => client.close());
  return client;
}

async function status(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
    return { code: 200, message: '' };
  } catch (err) {
    if (err instanceof ApiClientError) return { code: err.code, message: err.message };
    throw err;
  }
}

async function nodeReady(name: string): Promise<Node> {
  return eventually(`node ${name} Ready`, async () => {
    const n = await srv.client.request<Node>('GET', `/api/v1/nodes/${name}`).catch(() => undefined);
    return n?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ? n : undefined;
  });
}

async function leaseRenewedAfter(name: string, after: number): Promise<void> {
  await eventually(`lease of ${name} renewed after ${new Date(after).toISOString()}`, async () => {
    const l = await srv.client.request<{ spec: { renewTime: string } }>('GET', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${name}`).catch(() => undefined);
    return l && Date.parse(l.spec.renewTime) > after ? true : undefined;
  });
}

test('a join token only bootstraps: the agent gets system:node:N and stays Ready after the token expires; a new join with it is refused', async () => {
  const token = await joinToken(3);
  const a = agent('cert-a', 'machine-a', token.token);
  await a.ready;
  const node = await nodeReady('cert-a');
  const { certPem } = machineCertificate('machine-a');
  const info = certificateInfo(certPem);
  assert.is(info.commonName, 'system:node:cert-a');
  assert.equal(info.organizations, ['system:nodes']);
  assert.match(new X509Certificate(certPem).subjectAltName ?? '', /IP Address:127\.0\.0\.1/);
  assert.match(new X509Certificate(certPem).subjectAltName ?? '', /DNS:cert-a/);
  assert.is(statSync(join(srv.dir, 'machine-a', NODE_PKI_DIR, NODE_KEY_FILE)).mode & 0o777, 0o600);
  assert.is(node.metadata.annotations?.[ANNOTATION_NODE_KEY], `sha256:${info.publicKeySha256}`);
  const secret = await status(srv.client.request('GET', '/api/v1/namespaces/kube-system/secrets/flotilla-agent-cert-a'));
  assert.is(secret.code, 404, 'agent endpoint credentials are not in the Secret store');

  const expires = Date.parse(token.expires!);
  await eventually('join token expired', async () => {
    const { items } = await srv.client.request<{ items: { id: string; expired: boolean }[] }>('GET', JOIN_TOKENS_PATH);
    return items.find((t) => t.id === token.id)?.expired ? true : undefined;
  });
  await leaseRenewedAfter('cert-a', expires);
  await nodeReady('cert-a');
  // A restart uses the kept certificate: the expired token is not needed.
  await a.stop();
  const again = agent('cert-a', 'machine-a', token.token);
  await again.ready;
  await leaseRenewedAfter('cert-a', Date.now());

  const late = agent('cert-late', 'machine-late', token.token);
  let refusal = '';
  await late.ready.catch((err: Error) => { refusal = err.message; });
  assert.match(refusal, /the server refused a certificate for node "cert-late": .*invalid bearer token/);
  assert.is((await status(srv.client.request('GET', '/api/v1/nodes/cert-late'))).code, 404, 'no Node was made with the expired token');
  assert.not.ok(existsSync(join(srv.dir, 'machine-late', NODE_PKI_DIR, NODE_CERT_FILE)));
});

test('a second machine with a taken node name is refused, naming flotilla node replace; after it, it registers', async () => {
  const token = (await joinToken()).token;
  const first = agent('cert-b', 'machine-b1', token);
  await first.ready;
  const before = await nodeReady('cert-b');

  const second = agent('cert-b', 'machine-b2', token);
  let refusal = '';
  await second.ready.catch((err: Error) => { refusal = err.message; });
  assert.match(refusal, /node "cert-b" is bound to another machine's key .*run "flotilla node replace cert-b"/);
  const after = await srv.client.request<Node>('GET', '/api/v1/nodes/cert-b');
  assert.is(after.metadata.annotations?.[ANNOTATION_NODE_KEY], before.metadata.annotations?.[ANNOTATION_NODE_KEY], 'the Node is still the first machine\'s');
  assert.not.ok(existsSync(join(srv.dir, 'machine-b2', NODE_PKI_DIR, NODE_CERT_FILE)), 'the second machine got no certificate');
  assert.is((await status(asMachine('machine-b1').request('GET', '/api/v1/nodes/cert-b'))).code, 200, 'the first machine still authenticates');

  await first.stop();
  const replaced = runCli(['node', 'replace', 'cert-b'], cliEnv());
  assert.is(replaced.code, 0, replaced.stderr);
  assert.match(replaced.stdout, /node\/cert-b deleted/);
  assert.is((await status(asMachine('machine-b1').request('GET', '/api/v1/nodes'))).code, 401, 'the replaced machine\'s certificate authenticates nobody');

  const third = agent('cert-b', 'machine-b2', token);
  await third.ready;
  const now = await nodeReady('cert-b');
  const key = `sha256:${certificateInfo(machineCertificate('machine-b2').certPem).publicKeySha256}`;
  assert.is(now.metadata.annotations?.[ANNOTATION_NODE_KEY], key);
});

test('deleting a Node revokes its certificate: 401 from then on', async () => {
  const a = agent('cert-c', 'machine-c', (await joinToken()).token);
  await a.ready;
  await nodeReady('cert-c');
  const client = asMachine('machine-c');
  assert.is((await status(client.request('GET', '/api/v1/nodes/cert-c'))).code, 200);
  await a.stop();
  await srv.client.request('DELETE', '/api/v1/nodes/cert-c');
  const refused = await status(client.request('GET', '/api/v1/nodes/cert-c'));
  assert.is(refused.code, 401);
  const rewrite = await status(client.request('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'cert-c' } }));
  assert.is(rewrite.code, 401);
  assert.is((await status(srv.client.request('GET', '/api/v1/nodes/cert-c'))).code, 404, 'the revoked certificate made no Node');
});

test('with the clock 400 days on, the certificate is renewed without a restart and requests go on', async () => {
  let offset = 0;
  const a = agent('cert-d', 'machine-d', (await joinToken()).token, { now: () => Date.now() + offset });
  await a.ready;
  await nodeReady('cert-d');
  const original = certificateInfo(machineCertificate('machine-d').certPem);
  offset = 400 * DAY_MS;
  const renewed = await eventually('certificate renewed', () => {
    const info = certificateInfo(machineCertificate('machine-d').certPem);
    return info.serialNumber !== original.serialNumber ? info : undefined;
  });
  assert.is(renewed.publicKeySha256, original.publicKeySha256, 'renewed for the same key');
  assert.ok(renewed.notAfter >= original.notAfter);
  await leaseRenewedAfter('cert-d', Date.now());
  // The endpoint serves the renewed certificate: exec through the API verifies it against node cert-d's key.
  await srv.createPod(appPod('renewed', 'cert-d', APP));
  await srv.podReady('renewed');
  const ran = await srv.client.request<{ exitCode: number; stdout: string }>('POST', '/api/v1/namespaces/default/pods/renewed/exec', { command: ['echo', 'hi'] });
  assert.equal(ran, { exitCode: 0, stdout: 'ran echo hi\n', stderr: '' });
  const served = await servedCertificate(await agentPort('cert-d'));
  assert.is(served.serialNumber.toUpperCase(), renewed.serialNumber, 'the endpoint took the renewed certificate');
  await srv.deletePod('renewed');
});

test('logs and exec go through the API over mutual TLS; a node certificate cannot call another node\'s agent', async () => {
  const token = (await joinToken()).token;
  const target = agent('cert-e', 'machine-e', token);
  const other = agent('cert-f', 'machine-f', token);
  await Promise.all([target.ready, other.ready]);
  await srv.createPod(appPod('web', 'cert-e', APP));
  await srv.podReady('web');
  const log = await srv.client.request<unknown>('GET', '/api/v1/namespaces/default/pods/web/log').catch((err: unknown) => err);
  assert.not.instance(log, ApiClientError);
  const ran = await srv.client.request<{ stdout: string }>('POST', '/api/v1/namespaces/default/pods/web/exec', { command: ['id'] });
  assert.is(ran.stdout, 'ran id\n');

  const port = await agentPort('cert-e');
  const before = execsRan;
  const asOtherNode = await agentCall(port, machineCertificate('machine-f'));
  assert.is(asOtherNode.status, 403);
  assert.match(asOtherNode.body, /CN=system:node:cert-f is not one/);
  const bare = await agentCall(port, undefined).then((a) => `answered ${a.status}`, (err: NodeJS.ErrnoException) => err.code ?? err.message);
  assert.not.match(bare, /^answered/, 'a client without a certificate got an answer');
  assert.is(execsRan, before, 'no refused call ran anything in the container');
  // Through the API, node cert-f may not exec into cert-e's pods either (the authorizer's rule; 403).
  const viaApi = await status(asMachine('machine-f').request('POST', '/api/v1/namespaces/default/pods/web/exec', { command: ['id'] }));
  assert.is(viaApi.code, 403);
  await srv.deletePod('web');
});

test('the CSR route: names are checked, a node renews only its own name, a name held without a Node is released by node replace', async () => {
  const { token } = await joinToken();
  const credential = parseClusterToken(token).credential;
  const asJoinToken = new ApiClient(srv.server.url, credential, { tls: srv.server.tls });
  stopLater(() => asJoinToken.close());
  const csr = async () => createCsr(await newKeyPair(), { commonName: 'whatever', altNames: ['10.1.2.3', 'evil.example'] });
  const bad = await status(asJoinToken.request('POST', NODE_CERTIFICATES_PATH, { nodeName: 'Not_A_Name', csr: await csr() }));
  assert.is(bad.code, 400);
  assert.match(bad.message, /nodeName: "Not_A_Name" must consist of lowercase alphanumeric characters/);
  assert.is((await status(asJoinToken.request('POST', NODE_CERTIFICATES_PATH, { nodeName: 'cert-g', csr: 'junk' }))).code, 400);

  const first = await asJoinToken.request<{ certificate: string; ca: string }>('POST', NODE_CERTIFICATES_PATH, { nodeName: 'cert-g', csr: await csr() });
  assert.is(first.ca, caPem);
  const info = certificateInfo(first.certificate);
  assert.is(info.commonName, 'system:node:cert-g');
  assert.equal(info.organizations, ['system:nodes']);
  // Only the CSR's addresses and the node name: a DNS name the CSR asks for is not granted.
  assert.is(new X509Certificate(first.certificate).subjectAltName, 'IP Address:10.1.2.3, DNS:cert-g');

  const taken = await status(asJoinToken.request('POST', NODE_CERTIFICATES_PATH, { nodeName: 'cert-g', csr: await csr() }));
  assert.is(taken.code, 409);
  assert.match(taken.message, /run "flotilla node replace cert-g"/);

  // A node asks for its own name only (renewal), never for another.
  const a = agent('cert-h', 'machine-h', token);
  await a.ready;
  const other = await status(asMachine('machine-h').request('POST', NODE_CERTIFICATES_PATH, { nodeName: 'cert-g', csr: await csr() }));
  assert.is(other.code, 403);
  assert.match(other.message, /node "cert-h" may renew only its own certificate, not one for node "cert-g"/);

  const released = runCli(['node', 'replace', 'cert-g'], cliEnv());
  assert.is(released.code, 0, released.stderr);
  assert.match(released.stdout, /node\/cert-g: the name is released/);
  assert.is((await status(asJoinToken.request('POST', NODE_CERTIFICATES_PATH, { nodeName: 'cert-g', csr: await csr() }))).code, 200, 'another machine may take the name now');
  const nothing = runCli(['node', 'replace', 'cert-g-none'], cliEnv());
  assert.is(nothing.code, 1);
  assert.match(nothing.stderr, /nodes "cert-g-none" not found, and no machine holds the name: nothing to replace/);
});

function cliEnv(): Record<string, string> {
  return { ...srv.server.cliEnv, FLOTILLA_CONFIG: join(srv.dir, 'no-config') };
}

async function agentPort(node: string): Promise<number> {
  const n = await srv.client.request<Node>('GET', `/api/v1/nodes/${node}`);
  return n.status!.daemonEndpoints!.kubeletEndpoint!.Port;
}

function agentCall(port: number, client: { certPem: string; keyPem: string } | undefined): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const body = JSON.stringify({ command: ['id'] });
    const req = https.request({
      host: '127.0.0.1', port, path: '/v1/pods/default/web/exec', method: 'POST', agent: false, ca: caPem, servername: 'cert-e',
      headers: { 'content-type': 'application/json', 'content-length': String(body.length) },
      ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** The certificate an agent endpoint serves (from the handshake; the endpoint refuses the connection after it). */
function servedCertificate(port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca: caPem, checkServerIdentity: () => undefined }, () => {
      resolve(socket.getPeerX509Certificate()!);
      socket.destroy();
    });
    socket.on('error', reject);
  });
}

test.run();
