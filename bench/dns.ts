// Throughput and footprint of the agent's DNS server (node-agent/network/dns.ts) on one core.
// The server runs alone in a child process (one Node thread: one core at most) with a zone of --services N
// Services (default 1000: three in four with a ClusterIP and two named ports, one in four headless with 3
// endpoints) on loopback; this process sends UDP queries with --window W of them outstanding (default 64) for
// --seconds S (default 5) per phase: a mix of ClusterIP A, headless A, SRV, PTR, and the NXDOMAIN misses of
// search-path expansion that pods make most. Two phases, alternated --runs R times (default 3), medians reported:
//   distinct  --distinct D different questions in turn (default 60000: no message is asked twice within 60000,
//             and past one round of names each comes back in another letter case), the honest figure;
//   repeated  --repeated P different questions in turn (default 2000), the same messages again and again.
// Per phase: answers per second of the server's own CPU time (what one core sustains; the load generator's work
// is not counted: dnsQps, dnsQpsRepeated) and of wall time; and the server's RSS at the end (dnsRssMiB).
// Goal: >= 20,000 queries/s on one core.
// Usage: node dist/bench/dns.js [--services N] [--seconds S] [--window W] [--distinct D] [--repeated P] [--runs R]
import { fork } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import packet from 'dns-packet';
import type { EndpointSlice, Service } from '../api-types/index.js';
import { parseCidr } from '../api-types/network.js';
import { DnsClients, startDnsServer } from '../node-agent/network/dns.js';
import type { ServiceView } from '../node-agent/network/service-cache.js';
import { median, numberArg } from './args.js';

const serviceCount = numberArg('--services', 1000);
const seconds = numberArg('--seconds', 5);
const window = numberArg('--window', 64);
const distinct = numberArg('--distinct', 60000);
const repeated = numberArg('--repeated', 2000);
const runs = numberArg('--runs', 3);

const ip = (base: number, n: number): string => `10.${base}.${(n >> 8) & 255}.${n & 255}`;

function fixture(n: number): { services: Service[]; slices: EndpointSlice[] } {
  const services: Service[] = [];
  const slices: EndpointSlice[] = [];
  for (let i = 0; i < n; i++) {
    const name = `svc-${i}`;
    const headless = i % 4 === 3;
    services.push({
      apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: `ns-${i % 10}` },
      spec: { clusterIP: headless ? 'None' : ip(43, i + 10), ports: [{ name: 'http', port: 80, protocol: 'TCP' }, { name: 'metrics', port: 9090, protocol: 'TCP' }] },
    });
    if (headless) {
      slices.push({
        apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: { name: `${name}-x`, namespace: `ns-${i % 10}`, labels: { 'kubernetes.io/service-name': name } },
        addressType: 'IPv4', endpoints: [0, 1, 2].map((k) => ({ addresses: [ip(42, i * 3 + k + 10)], hostname: `${name}-${k}`, conditions: { ready: true } })),
        ports: [{ name: 'http', port: 80, protocol: 'TCP' }],
      });
    }
  }
  return { services, slices };
}

async function serve(): Promise<void> {
  const { services, slices } = fixture(serviceCount);
  const view: ServiceView = {
    services: () => services,
    slicesOf: (ns, name) => slices.filter((s) => s.metadata.namespace === ns && s.metadata.labels?.['kubernetes.io/service-name'] === name),
    onChange: () => () => {},
  };
  const server = await startDnsServer({
    host: '127.0.0.1', port: 0, view, upstreams: [], clients: new DnsClients([parseCidr('127.0.0.0/8')], []),
    zone: { domain: 'cluster.local', reverseNetworks: [parseCidr('10.42.0.0/16'), parseCidr('10.43.0.0/16')] },
  });
  process.send?.({ port: server.port });
  process.on('message', () => { void server.close().then(() => process.exit(0)); });
}

const ticksPerS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
function usage(pid: number): { rssMB: number; cpuS: number } {
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssMB: Math.round((rssKb / 1024) * 10) / 10, cpuS: (Number(fields[11]) + Number(fields[12])) / ticksPerS };
}

/**
 * `count` different questions: per Service its A, the search-path miss a pod makes first (svc.ns.svc.<zone> under
 * the pod's own search domain: NXDOMAIN), its SRV and its ClusterIP's PTR; past one round of the Services the
 * names are asked again with a different letter case, which the server must treat as different questions.
 */
function queries(services: number, count: number): Buffer[] {
  const out: Buffer[] = [];
  const q = (name: string, type: 'A' | 'SRV' | 'PTR') => packet.encode({ type: 'query', id: 0, flags: packet.RECURSION_DESIRED, questions: [{ name, type, class: 'IN' }] });
  for (let round = 0; out.length < count; round++) {
    const shape = (name: string) => [...name].map((c, k) => (((round >> (k % 16)) & 1) ? c.toUpperCase() : c)).join('');
    for (let i = 0; i < services && out.length < count; i++) {
      const fqdn = shape(`svc-${i}.ns-${i % 10}.svc.cluster.local`);
      out.push(q(fqdn, 'A'));
      out.push(q(`${fqdn}.ns-${i % 10}.svc.cluster.local`, 'A'));
      out.push(q(`_http._tcp.${fqdn}`, 'SRV'));
      if (i % 4 !== 3) out.push(q(`${[...ip(43, i + 10).split('.')].reverse().join('.')}.in-addr.arpa`, 'PTR'));
    }
  }
  return out.slice(0, count);
}

/** One phase: `list` asked in turn for `seconds`; answers per second of the server's CPU time and of wall time. */
async function load(port: number, pid: number, list: Buffer[]): Promise<{ perCore: number; wall: number; rssMiB: number }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
  let sent = 0;
  let answered = 0;
  let next = 0;
  let running = true;
  const send = (): void => {
    const msg = list[next++ % list.length]!;
    msg.writeUInt16BE(sent++ & 0xffff, 0);
    socket.send(msg, port, '127.0.0.1');
  };
  // Lost datagrams (a full socket buffer) would stall a fixed window: the window is topped up on a timer too.
  socket.on('message', () => {
    answered++;
    if (running) send();
  });
  const before = usage(pid);
  const started = process.hrtime.bigint();
  for (let i = 0; i < window; i++) send();
  const topUp = setInterval(() => { for (let i = sent - answered; i < window; i++) send(); }, 50);
  await new Promise((r) => setTimeout(r, seconds * 1000));
  running = false;
  clearInterval(topUp);
  const wallS = Number(process.hrtime.bigint() - started) / 1e9;
  const after = usage(pid);
  socket.close();
  return { perCore: Math.round(answered / Math.max(after.cpuS - before.cpuS, 1e-9)), wall: Math.round(answered / wallS), rssMiB: after.rssMB };
}


async function measure(port: number, pid: number): Promise<Record<string, unknown>> {
  const distinctList = queries(serviceCount, distinct);
  const repeatedList = queries(serviceCount, repeated);
  const d: Array<Awaited<ReturnType<typeof load>>> = [];
  const r: Array<Awaited<ReturnType<typeof load>>> = [];
  for (let i = 0; i < runs; i++) {
    d.push(await load(port, pid, distinctList));
    r.push(await load(port, pid, repeatedList));
  }
  const dnsQps = median(d.map((x) => x.perCore));
  const dnsQpsRepeated = median(r.map((x) => x.perCore));
  return {
    bench: 'dns', services: serviceCount, distinct, repeated, seconds, window, runs,
    dnsQps, dnsQpsRepeated, distinctToRepeated: Math.round((dnsQps / dnsQpsRepeated) * 100) / 100,
    dnsQpsWall: median(d.map((x) => x.wall)), dnsQpsRepeatedWall: median(r.map((x) => x.wall)),
    dnsRssMiB: Math.max(...d.map((x) => x.rssMiB), ...r.map((x) => x.rssMiB)),
    goalQpsPerCore: 20000,
  };
}

if (process.argv.includes('--serve')) {
  await serve();
} else {
  const child = fork(new URL(import.meta.url).pathname, ['--serve', '--services', String(serviceCount)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { port: number }) => resolve(m.port));
      child.once('exit', (code) => reject(new Error(`the DNS server process exited (${code})`)));
    });
    const result = await measure(port, child.pid!);
    console.log(JSON.stringify(result));
  } finally {
    child.send('stop');
    await new Promise((r) => child.once('exit', r));
  }
}
