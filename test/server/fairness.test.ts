// Fair under load: the in-flight limits (read-only and mutating apart, long-running requests not counted, a
// share kept for nodes, cluster members exempt), the watch caps, the request timeout (on the app, in process),
// and the socket timeouts of the real HTTPS server (slow headers, a handshake never made, idle keep-alive).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import type { Hono } from 'hono';
import { createApp } from '../../server/api/app.js';
import { identity, MASTERS_GROUP, NODE_GROUP, SERVER_GROUP, staticTokens } from '../../server/api/middleware/auth.js';
import { DEFAULT_SERVING_LIMITS, type ServingLimits } from '../../server/api/serving-limits.js';
import { TOO_MANY_REQUESTS } from '../../server/api/middleware/max-in-flight.js';
import { TIMEOUT_MESSAGE } from '../../server/api/middleware/request-timeout.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { LocalProposer, type Proposer } from '../../server/store/proposer.js';
import { ObjectService } from '../../server/objects/service.js';
import { eventually } from '../support/eventually.js';
import { startInProcessServer } from '../support/in-process-server.js';
import { runCli } from '../support/server-process.js';
import { pinnedFetch } from '../../client/client.js';

const TOKENS = { admin: 'admin-token-0123456789', alice: 'alice-token-0123456789', node: 'node-token-0123456789', peer: 'peer-token-0123456789' } as const;
type Caller = keyof typeof TOKENS;

const dir = mkdtempSync(join(tmpdir(), 'flotilla-fairness-'));
const store = new SqliteStore({ path: join(dir, 'state.db'), historyWindow: 1000 });
const local = new LocalProposer(store);
await local.propose({ op: 'create', resource: 'namespaces', uid: randomUUID(), now: new Date().toISOString(), object: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'default' } } });

/** A promise that stays pending until open() is called; `waiting` counts the calls that waited on it. */
function gate(): { wait: () => Promise<void>; open: () => void; waiting: number } {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => { open = resolve; });
  const g = { wait: () => { g.waiting++; return opened; }, open, waiting: 0 };
  return g;
}

/** An app over the shared store with these limits; reads wait for `readBarrier`, writes go through `proposer`. */
function appWith(limits: Partial<ServingLimits>, opts: { readBarrier?: () => Promise<void>; proposer?: Proposer; objects?: ObjectService } = {}): { app: Hono; objects: ObjectService } {
  const objects = opts.objects ?? new ObjectService(store, opts.proposer ?? local, () => new Date());
  const app = createApp({
    objects, readBarrier: opts.readBarrier ?? (async () => {}),
    authenticate: staticTokens({
      [TOKENS.admin]: identity('admin', [MASTERS_GROUP]), [TOKENS.alice]: identity('alice', [MASTERS_GROUP]),
      [TOKENS.node]: identity('system:node:pi', [NODE_GROUP]), [TOKENS.peer]: identity('flotilla:server:2', [SERVER_GROUP]),
    }),
    version: { flotilla: '0.1.0', gitVersion: 'v0.1.0' }, readiness: () => [], servingLimits: { ...DEFAULT_SERVING_LIMITS, ...limits },
  });
  return { app, objects };
}

function call(app: Hono, who: Caller, method: string, path: string, body?: unknown): Promise<Response> {
  return Promise.resolve(app.request(path, {
    method, headers: { authorization: `Bearer ${TOKENS[who]}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  }));
}

const configMap = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { k: 'v' } });
const CONFIGMAPS = '/api/v1/namespaces/default/configmaps';

async function assertTooManyRequests(res: Response, message: string): Promise<void> {
  assert.is(res.status, 429);
  assert.is(res.headers.get('retry-after'), '1');
  assert.equal(await res.json(), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', code: 429, message, reason: 'TooManyRequests', details: { retryAfterSeconds: 1 } });
}

async function metricValue(app: Hono, line: string): Promise<number> {
  const text = await (await call(app, 'admin', 'GET', '/metrics')).text();
  const found = text.split('\n').find((l) => l.startsWith(`${line} `));
  return found === undefined ? 0 : Number(found.slice(line.length + 1));
}

test('read-only requests over the limit get 429 with Retry-After and a TooManyRequests Status; mutating, long-running, node (reserved) and member requests still pass', async () => {
  const reads = gate();
  // A limit of 4 keeps 1 for nodes: users get 3.
  const { app } = appWith({ maxRequestsInFlight: 4 }, { readBarrier: reads.wait });
  const held = [0, 1, 2].map(() => call(app, 'admin', 'GET', CONFIGMAPS));
  try {
    await eventually('the users\' share of the read-only limit is held', () => reads.waiting === 3);
    await assertTooManyRequests(await call(app, 'alice', 'GET', '/api'), TOO_MANY_REQUESTS);
    assert.is((await call(app, 'admin', 'POST', CONFIGMAPS, configMap('while-reads-are-full'))).status, 201, 'mutating requests have a limit of their own');
    const watch = await call(app, 'admin', 'GET', `${CONFIGMAPS}?watch=true`);
    assert.is(watch.status, 200, 'a watch is long-running: not counted');
    await watch.body?.cancel();
    assert.is((await call(app, 'node', 'GET', '/api')).status, 200, 'a node gets the reserved share');
    const heldByNode = call(app, 'node', 'GET', '/api/v1/nodes');
    await eventually('the node\'s share is held too', () => reads.waiting === 4);
    assert.is((await call(app, 'node', 'GET', '/api')).status, 429, 'the node\'s share is full');
    assert.is((await call(app, 'peer', 'GET', '/api')).status, 200, 'cluster members are exempt');
    reads.open();
    for (const res of await Promise.all([...held, heldByNode])) assert.is(res.status, 200, 'the held requests are served once they can be');
    assert.is((await call(app, 'alice', 'GET', '/api')).status, 200, 'their places are given back');
    assert.ok(await metricValue(app, 'flotilla_dropped_requests_total{request_kind="readOnly"}') >= 2);
    assert.is(await metricValue(app, 'flotilla_current_inflight_requests{request_kind="mutating"}'), 0);
  } finally {
    reads.open();
    await Promise.all(held);
  }
});

test('mutating requests over their limit get 429 while reads are served; nodes keep their share', async () => {
  const writes = gate();
  const gated: Proposer = { propose: async (command) => { await writes.wait(); return local.propose(command); } };
  const { app } = appWith({ maxMutatingRequestsInFlight: 4 }, { proposer: gated });
  const held = [0, 1, 2].map((i) => call(app, 'admin', 'POST', CONFIGMAPS, configMap(`held-${i}`)));
  try {
    await eventually('the users\' share of the mutating limit is held', () => writes.waiting === 3);
    // A create without a body is refused (400) before any write, had it been let through.
    await assertTooManyRequests(await call(app, 'alice', 'POST', CONFIGMAPS), TOO_MANY_REQUESTS);
    assert.is((await call(app, 'alice', 'GET', CONFIGMAPS)).status, 200, 'reads have a limit of their own');
    // Past the limiter the node authorizer decides (403): the node was not refused for load.
    assert.is((await call(app, 'node', 'DELETE', `${CONFIGMAPS}/absent`)).status, 403);
    writes.open();
    for (const res of await Promise.all(held)) assert.is(res.status, 201);
    assert.is((await call(app, 'alice', 'POST', CONFIGMAPS)).status, 400, 'their places are given back');
    assert.ok(await metricValue(app, 'flotilla_dropped_requests_total{request_kind="mutating"}') >= 1);
  } finally {
    writes.open();
    await Promise.all(held);
  }
});

test('watches are capped per client and in total with 429; a watch whose client went away gives its place back', async () => {
  const { app } = appWith({ maxWatches: 3, maxWatchesPerClient: 2 });
  const open: Response[] = [];
  const watch = (who: Caller) => call(app, who, 'GET', `${CONFIGMAPS}?watch=true`);
  try {
    for (let i = 0; i < 2; i++) open.push(await watch('admin'));
    for (const w of open) assert.is(w.status, 200);
    await assertTooManyRequests(await watch('admin'), 'too many watches open for "admin" (the limit per client is 2): close some, or try again later.');
    const alices = await watch('alice');
    open.push(alices);
    assert.is(alices.status, 200);
    await assertTooManyRequests(await watch('alice'), 'too many watches open on this server (the limit is 3), please try again later.');
    assert.is((await call(app, 'admin', 'GET', CONFIGMAPS)).status, 200, 'other requests are not capped');
    await open.shift()!.body!.cancel();
    const again = await eventually('the admin\'s place is given back', async () => {
      const res = await watch('admin');
      if (res.status === 200) return res;
      await res.body?.cancel();
      return undefined;
    });
    open.push(again);
    assert.is(await metricValue(app, 'flotilla_dropped_requests_total{request_kind="watch"}'), 2);
  } finally {
    for (const w of open) await w.body?.cancel().catch(() => {});
  }
});

test('a request whose handler does not answer within the request timeout gets 504 Timeout; a watch outlives it', async () => {
  const reads = gate();
  const { app, objects } = appWith({ requestTimeoutMs: 200 }, { readBarrier: reads.wait });
  // Writes through an app with the default timeout, over the same objects (the watch sees them).
  const { app: writer } = appWith({}, { objects });
  const watch = await call(app, 'admin', 'GET', `${CONFIGMAPS}?watch=true&resourceVersion=${store.revision()}`);
  const reader = watch.body!.getReader();
  try {
    const timedOut = await call(app, 'admin', 'GET', CONFIGMAPS);
    assert.is(timedOut.status, 504);
    assert.equal(await timedOut.json(), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', code: 504, message: TIMEOUT_MESSAGE, reason: 'Timeout', details: {} });
    assert.is((await call(writer, 'admin', 'POST', CONFIGMAPS, configMap('after-the-timeout'))).status, 201);
    let seen = '';
    while (!seen.includes('"after-the-timeout"')) {
      const { done, value } = await reader.read();
      if (done) assert.unreachable('the watch ended');
      seen += new TextDecoder().decode(value);
    }
  } finally {
    reads.open();
    await reader.cancel();
  }
});

test('the HTTPS server cuts slow headers, a handshake never made and idle keep-alive connections, and stays up', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-fairness-server-'));
  const server = await startInProcessServer(dataDir, { servingLimits: { headersTimeoutMs: 500, idleTimeoutMs: 500 } });
  const port = Number(new URL(server.info.url).port);
  const sockets: net.Socket[] = [];
  const closed = (s: net.Socket) => { let done = false; s.once('close', () => { done = true; }); return () => done; };
  try {
    const tlsSocket = async () => {
      const s = tls.connect({ host: '127.0.0.1', port, ca: server.info.caPem });
      sockets.push(s);
      await new Promise<void>((resolve, reject) => { s.once('secureConnect', resolve); s.once('error', reject); });
      return s;
    };
    // Slowloris: a request line and one header, then nothing.
    const slow = await tlsSocket();
    const slowClosed = closed(slow);
    let answer = '';
    slow.on('data', (d: Buffer) => { answer += d; });
    slow.write('GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\n');
    // A TCP connection that never starts TLS.
    const silent = net.connect({ host: '127.0.0.1', port });
    sockets.push(silent);
    const silentClosed = closed(silent);
    silent.on('error', () => { /* reset by the server: what is tested */ });
    // A keep-alive connection after one full request.
    const idle = await tlsSocket();
    const idleClosed = closed(idle);
    let served = '';
    idle.on('data', (d: Buffer) => { served += d; });
    idle.write('GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: keep-alive\r\n\r\n');
    await eventually('the slow sender is cut', () => slowClosed(), { limitMs: 30_000 });
    assert.match(answer, /^HTTP\/1\.1 408 /, 'node answers 408 Request Timeout as it closes');
    await eventually('the connection without a handshake is cut', () => silentClosed(), { limitMs: 30_000 });
    await eventually('the idle keep-alive connection is closed', () => idleClosed(), { limitMs: 30_000 });
    assert.match(served, /^HTTP\/1\.1 200 /, 'the full request was served first');
    const probe = pinnedFetch({ ca: server.info.caPem }, 1);
    try {
      assert.is((await probe(`${server.info.url}/readyz`)).status, 200, 'the server stays up');
    } finally {
      probe.close();
    }
  } finally {
    for (const s of sockets) s.destroy();
    await server.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test('flotilla server refuses bad serving flags, naming the flag', () => {
  const r = runCli(['server', '--data', join(dir, 'never'), '--listen', '127.0.0.1:0', '--max-requests-inflight', 'lots'], {});
  assert.is(r.code, 2);
  assert.match(r.stderr, '--max-requests-inflight must be a non-negative whole number, got "lots"');
  const t = runCli(['server', '--data', join(dir, 'never'), '--listen', '127.0.0.1:0', '--request-timeout', '0s'], {});
  assert.is(t.code, 2);
  assert.match(t.stderr, '--request-timeout must be longer than 0');
});

test.after(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

test.run();
