// The Ingress router over real sockets, with fake backends on 127.0.0.x: TLS with SNI per host (the served
// certificate checked per server name), HTTP/2 through ALPN to HTTP/1.1 upstreams, a WebSocket echo, the
// X-Forwarded-* headers, 503 and retries, the annotations, and a table swapped during a 1,000 requests/s run
// without one failed request.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import pino from 'pino';
import type { Ingress } from '../../api-types/index.js';
import { IngressRouter } from '../../node-agent/ingress/router.js';
import { RouteTable, type TlsKeyPair } from '../../node-agent/ingress/routes.js';
import { ClusterCa } from '../../server/pki/ca.js';
import { get, ingressOf, pathTo, readFrame, serviceFor, startBackends, stopBackends, textFrame, type Backend } from './backends.js';

const CLASS = { apiVersion: 'networking.k8s.io/v1' as const, kind: 'IngressClass' as const, metadata: { name: 'flotilla' }, spec: { controller: 'flotilla.io/ingress' } };

/** A table of `ingresses` over Services named after the backends (each backend its own Service) plus `extra` Services. */
function tableOf(ingresses: Ingress[], services: ReturnType<typeof serviceFor>[], keyPairs = new Map<string, TlsKeyPair>()): RouteTable {
  return RouteTable.build({
    ingresses, classes: [CLASS], services: services.map((s) => s.service),
    slicesOf: (_ns, name) => services.filter((s) => s.service.metadata.name === name).map((s) => s.slice), controller: 'flotilla.io/ingress',
  }, keyPairs);
}

interface Fixture { backends: Backend[]; router: IngressRouter; httpPort: number; httpsPort: number; services: ReturnType<typeof serviceFor>[] }

async function withRouter(names: string[], body: (f: Fixture) => Promise<void>): Promise<void> {
  const backends = await startBackends(names, 40);
  const router = new IngressRouter(pino({ level: 'silent' }));
  try {
    const { httpPort, httpsPort } = await router.listen({ host: '127.0.0.1', httpPort: 0, httpsPort: 0 });
    await body({ backends, router, httpPort: httpPort!, httpsPort: httpsPort!, services: backends.map((b) => serviceFor(b.name, [b])) });
  } finally {
    await router.close();
    await stopBackends(backends);
  }
}

function peerCertificate(port: number, servername: string): Promise<tls.PeerCertificate> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, servername, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'] }, () => {
      resolve(s.getPeerCertificate());
      s.end();
    });
    s.on('error', reject);
  });
}

test('TLS: two hosts on one address, each served its own certificate by SNI; a bad key pair leaves the other host alone', async () => {
  const ca = await ClusterCa.create('ingress-test');
  const a = await ca.issue({ commonName: 'a.test', altNames: ['a.test'] }, { usage: 'server' });
  const b = await ca.issue({ commonName: 'b.test', altNames: ['b.test'] }, { usage: 'server' });
  await withRouter(['alpha', 'beta'], async ({ router, httpsPort, services }) => {
    const ing = ingressOf('tls', {
      tls: [{ hosts: ['a.test'], secretName: 'a-tls' }, { hosts: ['b.test'], secretName: 'b-tls' }],
      rules: [{ host: 'a.test', http: { paths: [pathTo('alpha', '/', 'Prefix')] } }, { host: 'b.test', http: { paths: [pathTo('beta', '/', 'Prefix')] } }],
    });
    router.setTable(tableOf([ing], services, new Map([['default/a-tls', { cert: a.certPem, key: a.keyPem }], ['default/b-tls', { cert: b.certPem, key: b.keyPem }]])));
    assert.is((await peerCertificate(httpsPort, 'a.test')).subject.CN, 'a.test');
    assert.is((await peerCertificate(httpsPort, 'b.test')).subject.CN, 'b.test');
    const answer = await new Promise<string>((resolve, reject) => {
      https11(httpsPort, 'b.test', '/x', ca.certPem).then(resolve, reject);
    });
    assert.is(answer, 'beta');
    // b's Secret now holds a's certificate with b's key: no context can be made, b.test falls back, a.test keeps its own.
    router.setTable(tableOf([ing], services, new Map([['default/a-tls', { cert: a.certPem, key: a.keyPem }], ['default/b-tls', { cert: a.certPem, key: b.keyPem }]])));
    assert.is((await peerCertificate(httpsPort, 'a.test')).subject.CN, 'a.test');
    assert.is((await peerCertificate(httpsPort, 'b.test')).subject.CN, 'a.test', 'the fallback certificate');
    assert.is(await https11(httpsPort, 'a.test', '/x', ca.certPem), 'alpha');
  });
});

function https11(port: number, host: string, path: string, ca: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers: { host }, createConnection: () => tls.connect({ host: '127.0.0.1', port, servername: host, ca, ALPNProtocols: ['http/1.1'] }) }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => { body += c.toString(); });
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

test('HTTP/2 by ALPN, proxied to an HTTP/1.1 upstream, with the X-Forwarded headers', async () => {
  const ca = await ClusterCa.create('ingress-h2');
  const a = await ca.issue({ commonName: 'h2.test', altNames: ['h2.test'] }, { usage: 'server' });
  await withRouter(['h2-backend'], async ({ router, httpsPort, services, backends }) => {
    const ing = ingressOf('h2', { tls: [{ hosts: ['h2.test'], secretName: 's' }], rules: [{ host: 'h2.test', http: { paths: [pathTo('h2-backend', '/', 'Prefix')] } }] });
    router.setTable(tableOf([ing], services, new Map([['default/s', { cert: a.certPem, key: a.keyPem }]])));
    const session = http2.connect(`https://h2.test:${httpsPort}`, { ca: ca.certPem, servername: 'h2.test', createConnection: () => tls.connect({ host: '127.0.0.1', port: httpsPort, servername: 'h2.test', ca: ca.certPem, ALPNProtocols: ['h2'] }) });
    try {
      const { status, body, alpn } = await new Promise<{ status: number; body: string; alpn: string }>((resolve, reject) => {
        const req = session.request({ ':path': '/hello?q=1', 'x-forwarded-for': '203.0.113.7' });
        let status = 0;
        let body = '';
        req.on('response', (h) => { status = Number(h[':status']); });
        req.on('data', (c: Buffer) => { body += c.toString(); });
        req.on('end', () => resolve({ status, body, alpn: (session.socket as tls.TLSSocket).alpnProtocol || '' }));
        req.on('error', reject);
        req.end();
      });
      assert.is(alpn, 'h2');
      assert.is(status, 200);
      assert.is(body, 'h2-backend');
      const h = backends[0]!.lastHeaders!;
      assert.is(h['x-forwarded-for'], '203.0.113.7, 127.0.0.1', 'the client address appended');
      assert.is(h['x-forwarded-proto'], 'https');
      assert.is(h['x-forwarded-host'], `h2.test:${httpsPort}`);
      assert.is(h['x-forwarded-port'], String(httpsPort));
      assert.is(h.host, `h2.test:${httpsPort}`);
    } finally {
      session.close();
    }
  });
});

/** A WebSocket opened through the router (`secure`: over TLS with SNI `host`), two text frames sent, the echoes returned. */
async function webSocketEcho(port: number, host: string, secure?: { ca: string }): Promise<string[]> {
  const socket = await new Promise<net.Socket>((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1', port, path: '/ws/chat',
      headers: { host, connection: 'Upgrade', upgrade: 'websocket', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==', 'sec-websocket-version': '13' },
      ...(secure ? { createConnection: () => tls.connect({ host: '127.0.0.1', port, servername: host, ca: secure.ca, ALPNProtocols: ['http/1.1'] }) } : {}),
    });
    req.on('upgrade', (res, s) => {
      assert.is(res.statusCode, 101);
      assert.is(res.headers['sec-websocket-accept'], 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
      resolve(s);
    });
    req.on('response', (res) => reject(new Error(`no upgrade: ${res.statusCode}`)));
    req.on('error', reject);
    req.end();
  });
  try {
    const replies: string[] = [];
    let pending = Buffer.alloc(0);
    const got = new Promise<void>((resolve) => socket.on('data', (c: Buffer) => {
      pending = Buffer.concat([pending, c]);
      for (let f = readFrame(pending); f; f = readFrame(pending)) { pending = pending.subarray(f.length); replies.push(f.text); }
      if (replies.length === 2) resolve();
    }));
    socket.write(textFrame('hello', true));
    socket.write(textFrame('again', true));
    await got;
    return replies;
  } finally {
    socket.destroy();
  }
}

test('WebSocket, plain and over TLS: the upgrade is passed through and text frames echo', async () => {
  const ca = await ClusterCa.create('ingress-wss');
  const c = await ca.issue({ commonName: 'ws.test', altNames: ['ws.test'] }, { usage: 'server' });
  await withRouter(['ws-echo'], async ({ router, httpPort, httpsPort, services }) => {
    const ing = ingressOf('ws', { tls: [{ hosts: ['ws.test'], secretName: 's' }], rules: [{ host: 'ws.test', http: { paths: [pathTo('ws-echo', '/ws', 'Prefix')] } }] },
      undefined, { 'flotilla.io/ssl-redirect': 'false' });
    router.setTable(tableOf([ing], services, new Map([['default/s', { cert: c.certPem, key: c.keyPem }]])));
    assert.equal(await webSocketEcho(httpPort, 'ws.test'), ['ws-echo: hello', 'ws-echo: again']);
    assert.equal(await webSocketEcho(httpsPort, 'ws.test', { ca: ca.certPem }), ['ws-echo: hello', 'ws-echo: again']);
  });
});

test('503 for a missing Service, a missing port and no ready endpoint, while other paths keep working; 404 without a rule', async () => {
  await withRouter(['ok'], async ({ router, httpPort, services, backends }) => {
    const notReady = serviceFor('not-ready', backends, 'default', false);
    const ing = ingressOf('mixed', {
      rules: [{ host: 'm.test', http: { paths: [
        pathTo('ok', '/ok', 'Prefix'), pathTo('absent', '/absent', 'Prefix'), pathTo('not-ready', '/not-ready', 'Prefix'),
        { path: '/no-port', pathType: 'Prefix', backend: { service: { name: 'ok', port: { number: 81 } } } },
      ] } }],
    });
    router.setTable(tableOf([ing], [...services, notReady]));
    assert.is((await get(httpPort, 'm.test', '/ok')).body, 'ok');
    const absent = await get(httpPort, 'm.test', '/absent');
    assert.is(absent.status, 503);
    assert.match(absent.body, /service "default\/absent" not found/);
    assert.match((await get(httpPort, 'm.test', '/no-port')).body, /has no port 81/);
    assert.match((await get(httpPort, 'm.test', '/not-ready')).body, /no ready endpoint/);
    assert.is((await get(httpPort, 'other.test', '/ok')).status, 404);
  });
});

test('round-robin over the endpoints; a refused connection moves an idempotent request to the next endpoint', async () => {
  await withRouter(['one', 'two'], async ({ router, httpPort, backends }) => {
    // A third endpoint whose port refuses: a listener opened and closed again.
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadPort = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    // One slice per endpoint (their ports differ), the refusing one among them.
    const slices = [...backends, { address: '127.0.0.1', port: deadPort }].map((b, i) => {
      const { slice } = serviceFor('pool', [b]);
      return { ...slice, metadata: { ...slice.metadata, name: `pool-${i}` } };
    });
    const pool = serviceFor('pool', backends).service;
    router.setTable(RouteTable.build({
      ingresses: [ingressOf('rr', { rules: [{ http: { paths: [pathTo('pool', '/', 'Prefix')] } }] })], classes: [CLASS], services: [pool],
      slicesOf: () => slices, controller: 'flotilla.io/ingress',
    }, new Map()));
    const seen: string[] = [];
    for (let i = 0; i < 9; i++) {
      const a = await get(httpPort, 'x', '/');
      assert.is(a.status, 200, `request ${i}: ${a.body}`);
      seen.push(a.body);
    }
    assert.equal(new Set(seen), new Set(['one', 'two']));
    assert.ok(seen.filter((s) => s === 'one').length >= 3 && seen.filter((s) => s === 'two').length >= 3, seen.join(','));
    const posts = [];
    for (let i = 0; i < 3; i++) posts.push(await get(httpPort, 'x', '/', { method: 'POST', body: 'data' }));
    assert.ok(posts.some((p) => p.status === 502), 'a POST to the refusing endpoint is not sent again: 502');
  });
});

test('annotations: ssl-redirect, proxy-body-size, proxy-read-timeout', async () => {
  const ca = await ClusterCa.create('ingress-ann');
  const c = await ca.issue({ commonName: 'sec.test', altNames: ['sec.test'] }, { usage: 'server' });
  await withRouter(['app'], async ({ router, httpPort, services }) => {
    const secure = ingressOf('secure', { tls: [{ hosts: ['sec.test'], secretName: 's' }], rules: [{ host: 'sec.test', http: { paths: [pathTo('app', '/', 'Prefix')] } }] });
    const limited = ingressOf('limited', { rules: [{ host: 'lim.test', http: { paths: [pathTo('app', '/', 'Prefix')] } }] }, '2024-01-02T00:00:00Z',
      { 'flotilla.io/proxy-body-size': '10', 'flotilla.io/proxy-read-timeout': '1', 'flotilla.io/ssl-redirect': 'false' });
    router.setTable(tableOf([secure, limited], services, new Map([['default/s', { cert: c.certPem, key: c.keyPem }]])));
    const redirected = await get(httpPort, 'sec.test', '/a?b=1');
    assert.is(redirected.status, 308, 'a host with a certificate redirects plain HTTP by default');
    assert.is(redirected.headers.location, 'https://sec.test/a?b=1');
    assert.is((await get(httpPort, 'lim.test', '/', { method: 'POST', body: '0123456789' })).status, 200);
    assert.is((await get(httpPort, 'lim.test', '/', { method: 'POST', body: '0123456789x' })).status, 413);
    assert.is((await get(httpPort, 'lim.test', '/', { headers: { 'x-delay-ms': '1500' } })).status, 504);
  });
});

test('the table changes during a 1,000 requests/s run (5 s): no request fails, and the new backend answers after the change', async () => {
  await withRouter(['blue', 'green'], async ({ router, httpPort, services }) => {
    const to = (svc: string) => tableOf([ingressOf('live', { rules: [{ host: 'live.test', http: { paths: [pathTo(svc, '/', 'Prefix')] } }] })], services);
    router.setTable(to('blue'));
    const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
    const failures: string[] = [];
    const answers = new Map<string, number>();
    const inFlight = new Set<Promise<void>>();
    const started = Date.now();
    let sent = 0;
    let swaps = 0;
    try {
      // 1,000 requests/s: 10 every 10 ms, for 5 s; the table alternates every 250 ms, slow requests (50 ms) straddle each swap.
      while (Date.now() - started < 5_000 && sent < 5_000) {
        const due = Math.floor((Date.now() - started) / 1000 * 1000);
        while (sent < due) {
          const p = get(httpPort, 'live.test', '/', { agent, headers: sent % 10 === 0 ? { 'x-delay-ms': '50' } : {} })
            .then((a) => { if (a.status !== 200) failures.push(`${a.status} ${a.body}`); else answers.set(a.body, (answers.get(a.body) ?? 0) + 1); },
              (err: Error) => { failures.push(err.message); })
            .finally(() => inFlight.delete(p));
          inFlight.add(p);
          sent++;
        }
        const wantSwaps = Math.floor((Date.now() - started) / 250);
        if (wantSwaps > swaps) { swaps = wantSwaps; router.setTable(to(swaps % 2 === 0 ? 'blue' : 'green')); }
        await new Promise((r) => setTimeout(r, 10));
      }
      await Promise.all(inFlight);
    } finally {
      agent.destroy();
    }
    assert.ok(sent >= 4_000, `${sent} requests sent`);
    assert.equal(failures.slice(0, 5), [], `${failures.length} of ${sent} failed`);
    assert.ok(swaps >= 15, `${swaps} swaps`);
    assert.ok((answers.get('blue') ?? 0) > 0 && (answers.get('green') ?? 0) > 0, JSON.stringify([...answers]));
  });
});

test.run();
