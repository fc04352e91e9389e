// Load on one real `flotilla server` process over HTTPS, as its defaults serve it: C concurrent clients (each its
// own keep-alive TLS connection, under U user tokens, all connected first: connectSeconds) for D seconds, each
// sending at once again what was answered (3 of 4 reads of an object, 1 of 4 creates, whose events go to every
// watch), while W watches stay open (spread over the same users, under the per-client cap). A client answered 429 waits the Retry-After it
// was given, as client-go does. The load runs in a worker thread; this thread meanwhile reads one object again
// and again over one connection of its own (the admin token) and times each answer: the "plain GET".
// Each run measures that GET without load, then under load; R runs alternate so that a slow phase of the
// machine hits both. Figures are medians over the runs; loadedToIdleP99 is their ratio. The server must
// stay up (readyz 200 after each run, no exit), answer no 5xx, and keep every watch open until the end.
// Usage: node dist/bench/api-load.js [--clients 1000] [--watches 500] [--users 50] [--seconds 15] [--runs 3]
// Last line: {"bench":"api-load","clients":..,"watches":..,"seconds":..,"runs":..,"idle":{"p50Ms","p99Ms","gets"},
//   "loaded":{"p50Ms","p99Ms","gets","refused429"},"loadedToIdleP99":..,"load":{"connectSeconds","connectFailed",
//   "requests","ok","tooManyRequests","errors5xx","otherStatus","failed","requestsPerSec","watchesOpen",
//   "watchesRefused","watchesEndedEarly","watchLines"},
//   "serverAlive":true,"serverPeakRssMiB":..}
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import https from 'node:https';
import { randomUUID } from 'node:crypto';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import { ServerProcess } from '../test/support/server-process.js';
import { ApiClient } from '../client/client.js';
import { USER_TOKENS_PATH } from '../server/tokens/user-tokens.js';
import type { CreatedUserToken } from '../server/tokens/user-tokens.js';
import { numberArg } from './args.js';

const LOAD_NAMESPACE = 'load';
/** The objects the clients read (and the probe: the first). */
const READ_OBJECTS = 20;
/** A request not answered within this counts as failed (the load is bounded in time). */
const REQUEST_LIMIT_MS = 30_000;

interface LoadInput { url: string; ca: string; tokens: string[]; clients: number; watches: number; seconds: number }
interface LoadResult {
  /** How long the clients took to connect (a TLS handshake and one read each); how many could not. */
  connectSeconds: number; connectFailed: number;
  requests: number; ok: number; tooManyRequests: number; errors5xx: number; otherStatus: number; failed: number; requestsPerSec: number;
  watchesOpen: number; watchesRefused: number; watchesEndedEarly: number; watchLines: number;
}

/** One request over `agent`; resolves with its status once the body is read, or 0 when it failed or took too long. */
function send(agent: https.Agent, url: string, token: string, method: string, path: string, body?: string): Promise<{ status: number; retryAfterS: number }> {
  return new Promise((resolve) => {
    const req = https.request(`${url}${path}`, {
      method, agent, timeout: REQUEST_LIMIT_MS,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) } : {}) },
    }, (res) => {
      res.resume();
      res.once('end', () => resolve({ status: res.statusCode ?? 0, retryAfterS: Number(res.headers['retry-after'] ?? 0) }));
      res.once('error', () => resolve({ status: 0, retryAfterS: 0 }));
    });
    req.once('timeout', () => req.destroy(new Error('timed out')));
    req.once('error', () => resolve({ status: 0, retryAfterS: 0 }));
    req.end(body);
  });
}

const objectPath = (i: number) => `/api/v1/namespaces/${LOAD_NAMESPACE}/configmaps/read-${i}`;

/** The worker: opens the watches, then runs the clients until the deadline, then closes the watches. */
async function runLoad(input: LoadInput): Promise<LoadResult> {
  const r: LoadResult = { connectSeconds: 0, connectFailed: 0, requests: 0, ok: 0, tooManyRequests: 0, errors5xx: 0, otherStatus: 0, failed: 0, requestsPerSec: 0, watchesOpen: 0, watchesRefused: 0, watchesEndedEarly: 0, watchLines: 0 };
  let stopping = false;
  const watchRequests: ReturnType<typeof https.request>[] = [];
  await Promise.all(Array.from({ length: input.watches }, (_, w) => new Promise<void>((resolve) => {
    const req = https.request(`${input.url}/api/v1/namespaces/${LOAD_NAMESPACE}/configmaps?watch=true&resourceVersion=0`, {
      ca: input.ca, agent: false, headers: { authorization: `Bearer ${input.tokens[w % input.tokens.length]}` },
    }, (res) => {
      if (res.statusCode !== 200) {
        r.watchesRefused++;
        res.resume();
        return resolve();
      }
      r.watchesOpen++;
      res.on('data', (d: Buffer) => { for (let at = d.indexOf(10); at >= 0; at = d.indexOf(10, at + 1)) r.watchLines++; });
      res.once('close', () => { if (!stopping) r.watchesEndedEarly++; });
      resolve();
    });
    req.once('error', () => { if (!stopping) r.watchesEndedEarly++; resolve(); });
    req.end();
    watchRequests.push(req);
  })));
  // Every client connects first (its TLS handshake, with one read): the load then comes from 1,000 open
  // connections at once, not from a queue of handshakes.
  const connecting = performance.now();
  const connections = await Promise.all(Array.from({ length: input.clients }, async (_, c) => {
    const agent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: input.ca });
    const token = input.tokens[c % input.tokens.length]!;
    const { status } = await send(agent, input.url, token, 'GET', objectPath(c % READ_OBJECTS));
    if (status === 0) r.connectFailed++;
    return { agent, token };
  }));
  r.connectSeconds = Number(((performance.now() - connecting) / 1000).toFixed(1));
  parentPort!.postMessage({ type: 'ready' });
  const started = performance.now();
  const deadline = Date.now() + input.seconds * 1000;
  await Promise.all(connections.map(async ({ agent, token }, c) => {
    for (let i = 0; Date.now() < deadline; i++) {
      const write = i % 4 === 3;
      const { status, retryAfterS } = write
        ? await send(agent, input.url, token, 'POST', `/api/v1/namespaces/${LOAD_NAMESPACE}/configmaps`, JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `c${c}-${i}-${randomUUID().slice(0, 8)}` }, data: { client: String(c) } }))
        : await send(agent, input.url, token, 'GET', objectPath((c + i) % READ_OBJECTS));
      r.requests++;
      if (status >= 200 && status < 300) r.ok++;
      else if (status === 429) r.tooManyRequests++;
      else if (status >= 500) r.errors5xx++;
      else if (status === 0) r.failed++;
      else r.otherStatus++;
      if (status === 429) await new Promise((wake) => setTimeout(wake, Math.max(1, retryAfterS) * 1000));
    }
    agent.destroy();
  }));
  r.requestsPerSec = Math.round(r.requests / ((performance.now() - started) / 1000));
  stopping = true;
  for (const req of watchRequests) req.destroy();
  return r;
}

interface Latencies { p50Ms: number; p99Ms: number; gets: number }

function percentiles(samples: number[]): Latencies {
  const sorted = [...samples].sort((a, b) => a - b);
  const pct = (p: number) => Number((sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ?? 0).toFixed(2));
  return { p50Ms: pct(0.5), p99Ms: pct(0.99), gets: sorted.length };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

async function main(): Promise<void> {
  const clients = numberArg('--clients', 1000);
  const watches = numberArg('--watches', 500);
  const users = numberArg('--users', 50);
  const seconds = numberArg('--seconds', 15);
  const runs = numberArg('--runs', 3);
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-load-'));
  const server = new ServerProcess(join(dir, 'data'), '127.0.0.1');
  try {
    await server.start();
    const admin = new ApiClient(server.url, server.token, { tls: server.tls, timeoutMs: REQUEST_LIMIT_MS });
    await admin.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: LOAD_NAMESPACE } });
    for (let i = 0; i < READ_OBJECTS; i++) await admin.request('POST', `/api/v1/namespaces/${LOAD_NAMESPACE}/configmaps`, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `read-${i}` }, data: { i: String(i) } });
    const tokens: string[] = [];
    for (let u = 0; u < users; u++) tokens.push((await admin.request<CreatedUserToken>('POST', USER_TOKENS_PATH, { user: `load-${u}`, groups: ['system:masters'] })).token);
    admin.close();
    const probeAgent = new https.Agent({ keepAlive: true, maxSockets: 1, ca: server.ca });
    /** Times the plain GET until `until` resolves (or `count` answers); 429s are counted, not timed. */
    const probe = async (until: Promise<unknown> | undefined, count: number): Promise<{ served: number[]; refused: number }> => {
      let over = false;
      void until?.then(() => { over = true; });
      const served: number[] = [];
      let refused = 0;
      while (until ? !over : served.length < count) {
        const t0 = performance.now();
        const { status } = await send(probeAgent, server.url, server.token, 'GET', objectPath(0));
        if (status === 200) served.push(performance.now() - t0);
        else if (status === 429) refused++;
        else throw new Error(`the plain GET answered ${status}`);
      }
      return { served, refused };
    };
    const idle: Latencies[] = [];
    const loaded: (Latencies & { refused429: number })[] = [];
    const loads: LoadResult[] = [];
    let serverAlive = true;
    for (let run = 0; run < runs; run++) {
      idle.push(percentiles((await probe(undefined, 500)).served));
      const worker = new Worker(new URL(import.meta.url), { workerData: { url: server.url, ca: server.ca, tokens, clients, watches, seconds } satisfies LoadInput });
      const ready = new Promise<void>((resolve) => worker.on('message', (m: { type: string }) => { if (m.type === 'ready') resolve(); }));
      const done = new Promise<LoadResult>((resolve, reject) => {
        worker.on('message', (m: { type: string; result?: LoadResult }) => { if (m.type === 'done') resolve(m.result!); });
        worker.once('error', reject);
      });
      await ready;
      const underLoad = await probe(done, 0);
      loads.push(await done);
      await worker.terminate();
      loaded.push({ ...percentiles(underLoad.served), refused429: underLoad.refused });
      const ready200 = (await send(probeAgent, server.url, server.token, 'GET', '/readyz')).status === 200;
      serverAlive &&= ready200 && server.child?.exitCode === null && server.child.signalCode === null;
    }
    probeAgent.destroy();
    const peakRssKiB = Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${server.child!.pid}/status`, 'utf8'))?.[1] ?? 0);
    const pick = <T extends object>(rows: T[], key: keyof T): T => [...rows].sort((a, b) => Number(a[key]) - Number(b[key]))[rows.length >> 1]!;
    const loadMedian = pick(loads, 'requestsPerSec');
    const idleMedian = { p50Ms: median(idle.map((l) => l.p50Ms)), p99Ms: median(idle.map((l) => l.p99Ms)), gets: median(idle.map((l) => l.gets)) };
    const loadedMedian = { p50Ms: median(loaded.map((l) => l.p50Ms)), p99Ms: median(loaded.map((l) => l.p99Ms)), gets: median(loaded.map((l) => l.gets)), refused429: median(loaded.map((l) => l.refused429)) };
    console.log(JSON.stringify({
      bench: 'api-load', clients, watches, users, seconds, runs,
      idle: idleMedian, loaded: loadedMedian, loadedToIdleP99: Number((loadedMedian.p99Ms / Math.max(0.01, idleMedian.p99Ms)).toFixed(2)),
      idleP99Runs: idle.map((l) => l.p99Ms), loadedP99Runs: loaded.map((l) => l.p99Ms),
      load: loadMedian, errors5xxAllRuns: loads.reduce((n, l) => n + l.errors5xx, 0), watchesEndedEarlyAllRuns: loads.reduce((n, l) => n + l.watchesEndedEarly, 0),
      serverAlive, serverPeakRssMiB: Math.round(peakRssKiB / 1024),
    }));
  } finally {
    await server.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

// The same file is the worker that makes the load (runLoad) and the main thread that measures (main).
if (!isMainThread) {
  parentPort!.postMessage({ type: 'done', result: await runLoad(workerData as LoadInput) });
} else {
  await main();
}
