// Throughput and added latency of the agent's Ingress router (node-agent/ingress/router.ts) for small responses.
// The backend (a node:http server answering "ok") and the router (one Node thread: one core at most, a table with
// one Ingress to one endpoint) run in child processes of their own; this process is the load generator, whose work
// is not counted. Per run, side by side, the same requests go through the router and straight to the backend (and
// through nginx as a reverse proxy to the same backend, when `nginx` is installed):
//   throughput  --connections C keep-alive connections (default 32), each sending its next request when the last
//               is answered, for --seconds S (default 5): requests per second of the proxy's own CPU time (what one
//               core sustains: routerRpsPerCore) and of wall time;
//   latency     an open loop at a fixed --rate R requests/s (default 1000) for --seconds S: p50 and p99; the added
//               p99 is the proxy's minus the direct one (routerAddedP99Ms).
// --runs N (default 3) alternates the phases N times; medians are reported.
// Goal: >= 5,000 requests/s per core, added p99 <= 2 ms.
// Usage: node dist/bench/ingress.js [--seconds S] [--connections C] [--rate R] [--runs N]
import { fork, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { IngressRouter } from '../node-agent/ingress/router.js';
import { RouteTable } from '../node-agent/ingress/routes.js';
import { ingressOf, pathTo, serviceFor } from '../test/ingress/backends.js';
import { median, numberArg } from './args.js';

const seconds = numberArg('--seconds', 5);
const connections = numberArg('--connections', 32);
const rate = numberArg('--rate', 1000);
const runs = numberArg('--runs', 3);
const HOST = 'bench.test';
const BACKEND_ADDRESS = '127.0.0.20';

async function serveBackend(): Promise<void> {
  const server = http.createServer({ keepAliveTimeout: 60_000 }, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
    res.end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, BACKEND_ADDRESS, resolve));
  process.send?.({ port: (server.address() as net.AddressInfo).port });
  process.on('message', () => process.exit(0));
}

async function serveRouter(backendPort: number): Promise<void> {
  const router = new IngressRouter(pino({ level: 'silent' }));
  const { service, slice } = serviceFor('backend', [{ address: BACKEND_ADDRESS, port: backendPort }]);
  router.setTable(RouteTable.build({
    ingresses: [ingressOf('bench', { rules: [{ host: HOST, http: { paths: [pathTo('backend', '/', 'Prefix')] } }] })],
    classes: [{ apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'flotilla' }, spec: { controller: 'flotilla.io/ingress' } }],
    services: [service], slicesOf: () => [slice], controller: 'flotilla.io/ingress',
  }, new Map()));
  const { httpPort } = await router.listen({ host: '127.0.0.1', httpPort: 0 });
  process.send?.({ port: httpPort });
  process.on('message', () => { void router.close().then(() => process.exit(0)); });
}

const ticksPerS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / ticksPerS;
}

/** Where requests go: the router, the backend itself, or nginx. */
interface Target { address: string; port: number }

function once(agent: http.Agent, to: Target): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: to.address, port: to.port, path: '/bench', headers: { host: HOST }, agent }, (res) => {
      res.on('data', () => {});
      res.on('end', () => (res.statusCode === 200 ? resolve() : reject(new Error(`status ${res.statusCode}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

/** Closed loop: `connections` requests outstanding for `seconds`; answered per second of `pid`'s CPU and of wall time. */
async function throughput(to: Target, pid: number | undefined): Promise<{ perCore: number; wall: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  let answered = 0;
  let failed = 0;
  const before = pid !== undefined ? cpuSeconds(pid) : 0;
  const started = performance.now();
  const until = started + seconds * 1000;
  await Promise.all(Array.from({ length: connections }, async () => {
    while (performance.now() < until) {
      try { await once(agent, to); answered++; } catch { failed++; }
    }
  }));
  const wallS = (performance.now() - started) / 1000;
  const cpu = pid !== undefined ? cpuSeconds(pid) - before : 0;
  agent.destroy();
  if (failed > 0) throw new Error(`${failed} requests failed during the throughput phase`);
  return { perCore: pid !== undefined ? Math.round(answered / Math.max(cpu, 1e-9)) : 0, wall: Math.round(answered / wallS) };
}

/** Open loop at `rate` requests/s for `seconds`: the latency percentiles, in ms. */
async function latency(to: Target): Promise<{ p50: number; p99: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const samples: number[] = [];
  const pending = new Set<Promise<void>>();
  const started = performance.now();
  let sent = 0;
  const total = rate * seconds;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
    for (; sent < due; sent++) {
      const t0 = performance.now();
      const p = once(agent, to).then(() => { samples.push(performance.now() - t0); }).finally(() => pending.delete(p));
      pending.add(p);
    }
    await new Promise((r) => setTimeout(r, 1));
  }
  await Promise.all(pending);
  agent.destroy();
  samples.sort((a, b) => a - b);
  const at = (q: number): number => Math.round(samples[Math.min(samples.length - 1, Math.floor(q * samples.length))]! * 1000) / 1000;
  return { p50: at(0.5), p99: at(0.99) };
}

/** nginx as a reverse proxy to the backend (one process, one worker, keep-alive upstream), when installed. */
function startNginx(backendPort: number): { child: ChildProcess; port: number; dir: string } | undefined {
  if (spawnSync('nginx', ['-v']).status !== 0) return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-bench-nginx-'));
  const port = 20000 + Math.floor(Math.random() * 20000);
  writeFileSync(join(dir, 'nginx.conf'), `
daemon off; master_process off; worker_processes 1; error_log stderr error; pid ${dir}/nginx.pid;
events { worker_connections 4096; }
http {
  access_log off; client_body_temp_path ${dir}/body; proxy_temp_path ${dir}/proxy; fastcgi_temp_path ${dir}/fcgi; uwsgi_temp_path ${dir}/uwsgi; scgi_temp_path ${dir}/scgi;
  upstream backend { server ${BACKEND_ADDRESS}:${backendPort}; keepalive 64; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://backend; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_set_header Host $host; proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; proxy_set_header X-Forwarded-Proto $scheme;
    }
  }
}
`);
  const child = spawn('nginx', ['-p', dir, '-c', join(dir, 'nginx.conf')], { stdio: ['ignore', 'ignore', 'inherit'] });
  return { child, port, dir };
}

function forked(args: string[]): Promise<{ child: ChildProcess; port: number }> {
  const child = fork(new URL(import.meta.url).pathname, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    child.once('message', (m: { port: number }) => resolve({ child, port: m.port }));
    child.once('exit', (code) => reject(new Error(`${args[0]} exited (${code})`)));
  });
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  const exited = new Promise((r) => child.once('exit', r));
  if (child.connected) child.send('stop'); else child.kill('SIGTERM');
  await exited;
}

const round = (x: number): number => Math.round(x * 1000) / 1000;

async function main(): Promise<void> {
  const backend = await forked(['--serve-backend']);
  const router = await forked(['--serve-router', String(backend.port)]);
  const nginx = startNginx(backend.port);
  try {
    if (nginx) {
      const up = performance.now();
      for (;;) {
        try { await once(new http.Agent(), { address: '127.0.0.1', port: nginx.port }); break; } catch (err) {
          if (performance.now() - up > 5000) throw new Error(`nginx did not answer within 5 s: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    }
    const r = { t: [] as { perCore: number; wall: number }[], l: [] as { p50: number; p99: number }[] };
    const d = { t: [] as { perCore: number; wall: number }[], l: [] as { p50: number; p99: number }[] };
    const n = { t: [] as { perCore: number; wall: number }[], l: [] as { p50: number; p99: number }[] };
    const viaRouter = { address: '127.0.0.1', port: router.port };
    const direct = { address: BACKEND_ADDRESS, port: backend.port };
    const viaNginx = nginx ? { address: '127.0.0.1', port: nginx.port } : undefined;
    for (let i = 0; i < runs; i++) {
      r.t.push(await throughput(viaRouter, router.child.pid));
      d.t.push(await throughput(direct, backend.child.pid));
      if (nginx && viaNginx) n.t.push(await throughput(viaNginx, nginx.child.pid));
      r.l.push(await latency(viaRouter));
      d.l.push(await latency(direct));
      if (viaNginx) n.l.push(await latency(viaNginx));
    }
    const directP99 = median(d.l.map((x) => x.p99));
    const figures = (x: typeof r) => ({
      rpsPerCore: median(x.t.map((t) => t.perCore)), rpsWall: median(x.t.map((t) => t.wall)),
      p50Ms: median(x.l.map((l) => l.p50)), p99Ms: median(x.l.map((l) => l.p99)), addedP99Ms: round(median(x.l.map((l) => l.p99)) - directP99),
    });
    const rf = figures(r);
    console.log(JSON.stringify({
      bench: 'ingress', runs, seconds, connections, rate,
      routerRpsPerCore: rf.rpsPerCore, routerRpsWall: rf.rpsWall, routerP50Ms: rf.p50Ms, routerP99Ms: rf.p99Ms, routerAddedP99Ms: rf.addedP99Ms,
      directRpsWall: median(d.t.map((t) => t.wall)), directBackendRpsPerCore: median(d.t.map((t) => t.perCore)), directP50Ms: median(d.l.map((l) => l.p50)), directP99Ms: directP99,
      nginx: nginx ? figures(n) : null,
      goalRpsPerCore: 5000, goalAddedP99Ms: 2,
    }));
  } finally {
    if (nginx) { nginx.child.kill('SIGQUIT'); await new Promise((res) => nginx.child.once('exit', res)); rmSync(nginx.dir, { recursive: true, force: true }); }
    await stop(router.child);
    await stop(backend.child);
  }
}

if (process.argv.includes('--serve-backend')) await serveBackend();
else if (process.argv.includes('--serve-router')) await serveRouter(Number(process.argv[process.argv.indexOf('--serve-router') + 1]));
else await main();
