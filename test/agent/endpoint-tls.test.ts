// The agent endpoint over mutual TLS, against a real endpoint on loopback: it serves with the node certificate,
// admits only certificates of the cluster CA with O flotilla:servers, refuses a client without a certificate (in
// the handshake), one of another CA, and a node's certificate (403), and reaching no container for the refused.
// A renewed certificate serves new connections without a restart.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import https from 'node:https';
import { tmpdir } from 'node:os';
import { X509Certificate } from 'node:crypto';
import pino from 'pino';
import { ClusterCa } from '../../server/pki/ca.js';
import { NODE_GROUP, SERVER_GROUP, createCsr, newKeyPair, nodeCommonName, privateKeyPem } from '../../client/pki.js';
import { startEndpoint, type AgentEndpoint } from '../../node-agent/endpoint.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import type { ContainerRuntime } from '../../node-agent/runtime/types.js';
import type { NodeTlsMaterial } from '../../node-agent/node-certificate.js';

interface Answer { status: number; body: string; peer: X509Certificate }

function call(port: number, ca: string, client: { certPem: string; keyPem: string } | undefined, path: string, method = 'GET', body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1', port, path, method, agent: false, ca, servername: 'n1',
      ...(client ? { cert: client.certPem, key: client.keyPem } : {}),
      ...(body !== undefined ? { headers: { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } } : {}),
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text, peer: (res.socket as import('node:tls').TLSSocket).getPeerX509Certificate()! }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function nodeTls(ca: ClusterCa, nodeName: string): Promise<NodeTlsMaterial> {
  const keys = await newKeyPair();
  const certPem = await ca.signCsr(await createCsr(keys, { commonName: 'ignored' }), { commonName: nodeCommonName(nodeName), organizations: [NODE_GROUP], altNames: ['127.0.0.1', nodeName] }, { usage: 'server+client' });
  return { certPem, keyPem: await privateKeyPem(keys.privateKey), caPem: ca.certPem };
}

/** A runtime that counts what the endpoint asked of it: a refused request must reach nothing. */
function countingRuntime(): { runtime: ContainerRuntime; calls: () => number } {
  const fake = new FakeRuntime();
  let calls = 0;
  const runtime = new Proxy(fake, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (typeof value !== 'function' || (prop !== 'listContainers' && prop !== 'exec' && prop !== 'logs')) return value;
      return (...args: unknown[]) => { calls++; return (value as (...a: unknown[]) => unknown).apply(target, args); };
    },
  });
  return { runtime, calls: () => calls };
}

test('only the servers\' certificates of the cluster CA are admitted; renewal serves new connections', async () => {
  const ca = await ClusterCa.create('endpoint-test');
  const other = await ClusterCa.create('another-cluster');
  const server = await ca.issue({ commonName: 'flotilla:server:1', organizations: [SERVER_GROUP] }, { usage: 'server+client' });
  const foreignServer = await other.issue({ commonName: 'flotilla:server:1', organizations: [SERVER_GROUP] }, { usage: 'server+client' });
  const n2 = await nodeTls(ca, 'n2');
  const { runtime, calls } = countingRuntime();
  let endpoint: AgentEndpoint | undefined;
  try {
    endpoint = await startEndpoint({ runtime, clusterId: 'c1', nodeName: 'n1', dataDir: tmpdir(), tls: await nodeTls(ca, 'n1'), host: '127.0.0.1', port: 0, log: pino({ level: 'silent' }) });
    const execBody = JSON.stringify({ command: ['id'] });
    const port = endpoint.port;

    // No client certificate: the handshake fails, no HTTP answer at all.
    const bare = await call(port, ca.certPem, undefined, '/v1/pods/default/web/exec', 'POST', execBody).then((a) => `answered ${a.status}`, (err: NodeJS.ErrnoException) => err.code ?? err.message);
    assert.not.match(bare, /^answered/, 'a client without a certificate got an answer');
    // A certificate of another CA, even one named as a server: refused in the handshake too.
    const foreign = await call(port, ca.certPem, foreignServer, '/v1/pods/default/web/exec', 'POST', execBody).then((a) => `answered ${a.status}`, (err: NodeJS.ErrnoException) => err.code ?? err.message);
    assert.not.match(foreign, /^answered/, 'a certificate of another CA was admitted');
    // Another node's certificate from the same CA: a node cannot exec through another node's agent.
    const asNode = await call(port, ca.certPem, n2, '/v1/pods/default/web/exec', 'POST', execBody);
    assert.is(asNode.status, 403);
    assert.match(asNode.body, /only the cluster's servers \(certificate O=flotilla:servers\) may call this agent; CN=system:node:n2 is not one/);
    assert.is(calls(), 0, 'a refused request reached the container runtime');

    // A server: admitted (the pod has no containers here, which is the endpoint's own answer), and the endpoint is node n1.
    const asServer = await call(port, ca.certPem, server, '/v1/pods/default/web/exec', 'POST', execBody);
    assert.is(asServer.status, 404);
    assert.match(asServer.body, /pod default\/web has no containers on node n1/);
    assert.ok(calls() > 0);
    assert.match(asServer.peer.subject, /CN=system:node:n1/);

    const renewed = await nodeTls(ca, 'n1');
    endpoint.setCertificate(renewed);
    const after = await call(port, ca.certPem, server, '/v1/pods/default/web/log');
    assert.is(after.status, 404);
    assert.is(after.peer.serialNumber, new X509Certificate(renewed.certPem).serialNumber, 'a new connection is served with the renewed certificate');
  } finally {
    await endpoint?.close();
  }
});

test.run();
