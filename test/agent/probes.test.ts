// Container probes against real sockets: httpGet and tcpSocket ports given by number or by the name of one of the
// container's ports, as Kubernetes resolves them; an unknown name fails the probe with the kubelet's message; HTTP
// answers the kubelet takes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { probeOnce, type ProbeTarget } from '../../node-agent/probes.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';

let server: http.Server | undefined;
let port = 0;
test.before(async () => {
  server = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});
test.after(async () => { await new Promise((resolve) => server?.close(resolve)); });

const target = (): ProbeTarget => ({ runtime: new FakeRuntime(), containerId: 'c1', podIP: '127.0.0.1', ports: [{ name: 'metrics', containerPort: 1 }, { name: 'http', containerPort: port }] });

test('an httpGet probe on a named port reaches the containerPort of that name', async () => {
  const r = await probeOnce({ httpGet: { path: '/healthz', port: 'http' } }, target());
  assert.ok(r.ok, r.message);
  assert.is(r.message, 'HTTP GET /healthz on port http: 200');
});

test('a tcpSocket probe on a named port, and on a port number', async () => {
  assert.ok((await probeOnce({ tcpSocket: { port: 'http' } }, target())).ok);
  assert.ok((await probeOnce({ tcpSocket: { port } }, target())).ok);
});

test('an httpGet probe takes an answer whose header lines end in a bare LF, as the kubelet does', async () => {
  const bare = net.createServer((socket) => socket.once('data', () => socket.end('HTTP/1.0 200 OK\nContent-Type: text/plain\n\nok\n')));
  await new Promise<void>((resolve) => bare.listen(0, '127.0.0.1', resolve));
  try {
    const r = await probeOnce({ httpGet: { path: '/', port: (bare.address() as AddressInfo).port } }, target());
    assert.ok(r.ok, r.message);
  } finally {
    await new Promise((resolve) => bare.close(resolve));
  }
});

test('a port name no container port has fails the probe naming it', async () => {
  const r = await probeOnce({ httpGet: { path: '/', port: 'web' } }, target());
  assert.equal(r, { ok: false, message: 'port web not found' });
});

test.run();
