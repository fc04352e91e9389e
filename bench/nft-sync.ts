// The Service data path's costs, in network namespaces of its own (root and `ip netns` needed): a "node"
// namespace and one "pod" namespace behind a veth, with S Services x E endpoints programmed by the agent's
// nftables backend (node-agent/network/nft-ruleset.ts + nft-applier.ts).
// - full: compile + `nft -f` of the whole ruleset into a node with none (the first sync of an agent), R runs;
// - change: one endpoint removed from, then added back to, one Service (a difference sent as one transaction to
//   the long-lived `nft -i` the agent keeps), R runs each, with one compiler kept across them as the agent keeps
//   it; split into compile (the ruleset compiler), diff (the transaction text) and nft (its cache listing and the
//   kernel's commit);
// - latency, both against the same to the pod's own address, through a ClusterIP (DNAT chosen among E
//   endpoints, with all S Services in the maps): the p50 of a new TCP connection plus its first byte back
//   (what the nat chains cost, once per connection), and the p50 of one request/response round trip on a kept
//   connection (what every further request through a Service pays: conntrack's established path).
// Wall times swing with the machine's load; the CPU times beside them (this process' for compile and diff; the
// nft processes': from the kernel's count of reaped children for the full syncs, and of the `nft -i` process for the
// changes, as a mean over the runs) much less.
// Usage: node dist/bench/nft-sync.js [--services 5000] [--endpoints 3] [--runs 5] [--connections 2000] [--requests 20000]
// Last line: one JSON object (medians); nftFullSync5000Ms, nftOneChangeMs and clusterIpAddedP50Us are the keys
// bench/network.ts reserves for these figures (clusterIpAddedP50Us: per request on a kept connection).
import { execFile, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { parseCidr } from '../api-types/index.js';
import { NftApplier, NftShell, commandRunner, commandStarter, transaction, type RunCommand, type SendTransaction, type StartCommand } from '../node-agent/network/nft-applier.js';
import { RulesetCompiler, type CompiledRuleset } from '../node-agent/network/nft-ruleset.js';
import { StaticServiceSource, serviceObject, sliceObject } from '../test/agent/network/service-objects.js';
import { median, numberArg } from './args.js';

const services = numberArg('--services', 5000);
const endpoints = numberArg('--endpoints', 3);
const runs = numberArg('--runs', 5);
const connections = numberArg('--connections', 2000);
const requests = numberArg('--requests', 20000);

const NODE = `fpb${process.pid}n`;
const POD = `fpb${process.pid}p`;
const POD_IP = '10.42.0.2';
const execFileAsync = promisify(execFile);

function sh(...args: string[]): void {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
}

const round = (x: number): number => Math.round(x * 100) / 100;
function ip(base: number, n: number): string {
  const v = base + n;
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}
const SERVICE_BASE = (10 << 24) + (43 << 16) + 10;
const POD_BASE = (10 << 24) + (42 << 16) + 10;

/** Connects `count` times in turn to host:port (waiting for the byte the server sends first); prints the p50 in microseconds. */
const CONNECT_LATENCY = `
const [host, port, count] = process.argv.slice(1);
const net = require('node:net');
const once = () => new Promise((resolve, reject) => {
  const t0 = process.hrtime.bigint();
  const s = net.connect({ host, port: Number(port) });
  s.once('data', () => { s.destroy(); resolve(Number(process.hrtime.bigint() - t0) / 1000); });
  s.on('error', reject);
});
(async () => {
  const xs = [];
  for (let i = 0; i < Number(count); i++) xs.push(await once());
  xs.sort((a, b) => a - b);
  console.log(xs[Math.floor(xs.length / 2)]);
})();`;

/** One connection to host:port, then `count` round trips of one byte each (the server echoes); prints the p50 in microseconds. */
const REQUEST_LATENCY = `
const [host, port, count] = process.argv.slice(1);
const s = require('node:net').connect({ host, port: Number(port), noDelay: true });
const xs = []; let t0 = 0n; let greeted = false;
const ask = () => { t0 = process.hrtime.bigint(); s.write('p'); };
s.on('data', () => {
  if (greeted) xs.push(Number(process.hrtime.bigint() - t0) / 1000);
  greeted = true;
  if (xs.length < Number(count)) return ask();
  s.destroy();
  xs.sort((a, b) => a - b);
  console.log(xs[Math.floor(xs.length / 2)]);
});
s.on('error', (e) => { console.error(e.message); process.exit(1); });`;

const cleanUp = (): void => { for (const ns of [NODE, POD]) spawnSync('ip', ['netns', 'del', ns]); };
process.on('exit', cleanUp);

cleanUp();
for (const ns of [NODE, POD]) { sh('ip', 'netns', 'add', ns); sh('ip', '-n', ns, 'link', 'set', 'lo', 'up'); }
sh('ip', '-n', NODE, 'link', 'add', 'veth0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', POD);
sh('ip', '-n', NODE, 'addr', 'add', '10.42.0.1/24', 'dev', 'veth0');
sh('ip', '-n', NODE, 'link', 'set', 'veth0', 'up');
sh('ip', '-n', POD, 'addr', 'add', `${POD_IP}/24`, 'dev', 'eth0');
sh('ip', '-n', POD, 'link', 'set', 'eth0', 'up');
sh('ip', '-n', POD, 'route', 'add', 'default', 'via', '10.42.0.1');
sh('ip', '-n', NODE, 'route', 'add', 'default', 'dev', 'veth0');
// The pod answers on its own address and on the addresses the Services' endpoints use (all local to it).
sh('ip', '-n', POD, 'addr', 'add', '10.42.0.0/16', 'dev', 'lo');
sh('ip', '-n', NODE, 'route', 'add', '10.42.0.0/16', 'via', POD_IP);
const listener = execFileAsync('ip', ['netns', 'exec', POD, process.execPath, '-e',
  "require('node:net').createServer((s) => { s.setNoDelay(true); s.on('error', () => {}); s.on('data', (d) => s.write(d)); s.write('x'); }).listen(8080)"]).catch(() => undefined);

const source = new StaticServiceSource();
for (let i = 0; i < services; i++) {
  const name = `s${i}`;
  source.putService(serviceObject('default', name, { clusterIP: ip(SERVICE_BASE, i), ports: [{ name: 'http', port: 80, targetPort: 8080 }] }));
  source.putSlice(sliceObject('default', `${name}-x`, name, [{ name: 'http', port: 8080 }],
    Array.from({ length: endpoints }, (_, e) => ({ ip: ip(POD_BASE, i * endpoints + e), nodeName: 'node-a' }))));
}
const facts = { nodeName: 'node-a', clusterCIDR: parseCidr('10.42.0.0/16') };
const inNode = commandRunner(NODE);
/** Time spent in nft processes since the last reset. */
let nftMs = 0;
const run: RunCommand = async (cmd, args, input) => {
  const t0 = performance.now();
  try {
    return await inNode(cmd, args, input);
  } finally {
    if (cmd === 'nft') nftMs += performance.now() - t0;
  }
};

const startInNode = commandStarter(NODE);
/** The `nft -i` process of the changes. */
let shellPid = 0;
const start: StartCommand = (cmd, args, env) => {
  const child = startInNode(cmd, args, env);
  shellPid = child.pid ?? 0;
  return child;
};
const shell = new NftShell(start);
const send: SendTransaction = async (t) => {
  const t0 = performance.now();
  try {
    return await shell.send(t);
  } finally {
    nftMs += performance.now() - t0;
  }
};

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
/** CPU milliseconds (user + system) from /proc/PID/stat: of `pid` itself, or of the reaped child processes of this one. */
function cpuMsOf(pid: number | 'self'): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const [user, system] = pid === 'self' ? [fields[13], fields[14]] : [fields[11], fields[12]];
  return (Number(user) + Number(system)) * 1000 / CLOCK_TICKS;
}
const childrenCpuMs = (): number => cpuMsOf('self');
const cpuMs = (since: NodeJS.CpuUsage): number => { const u = process.cpuUsage(since); return (u.user + u.system) / 1000; };

interface Sample { totalMs: number; compileMs: number; compileCpuMs: number; nftMs: number }
const full: Sample[] = [];
let compiler = new RulesetCompiler();
let applier = new NftApplier(run, send);
let applied: CompiledRuleset | undefined;
const children = childrenCpuMs();
for (let r = 0; r < runs; r++) {
  compiler = new RulesetCompiler();
  applier = new NftApplier(run, send);
  nftMs = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  applied = compiler.compile(source, facts);
  const t1 = performance.now();
  const compileCpuMs = cpuMs(c0);
  await applier.apply(applied);
  full.push({ totalMs: performance.now() - t0, compileMs: t1 - t0, compileCpuMs, nftMs });
}
const fullNftCpuMs = (childrenCpuMs() - children) / runs;

const change: Array<Sample & { diffMs: number; diffCpuMs: number }> = [];
// The shell is started before the changes are timed: nft's start is paid once, not by a change.
await shell.send('');
const shellCpu = cpuMsOf(shellPid);
const victim = 'default/s17-x';
const victimService = 'default/s17';
const original = source.slices.get(victim)!;
for (let r = 0; r < runs * 2; r++) {
  source.putSlice(r % 2 === 0 ? { ...original, endpoints: original.endpoints.slice(1) } : original);
  nftMs = 0;
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  // As the agent compiles after a change: told which Service changed (the service cache says so).
  const next = compiler.compile(source, facts, new Map([[victimService, source.svcs.get(victimService)]]));
  const t1 = performance.now();
  const compileCpuMs = cpuMs(c0);
  // The applier computes the same transaction; timed here on its own for the breakdown.
  const c1 = process.cpuUsage();
  transaction(applied!, next);
  const t2 = performance.now();
  const diffCpuMs = cpuMs(c1);
  if (!await applier.apply(next)) throw new Error('the change did not reach the kernel');
  const t3 = performance.now();
  applied = next;
  change.push({ totalMs: t1 - t0 + (t3 - t2), compileMs: t1 - t0, compileCpuMs, diffMs: t2 - t1, diffCpuMs, nftMs });
}
const changeNftCpuMs = (cpuMsOf(shellPid) - shellCpu) / change.length;
shell.close();

await new Promise((resolve) => setTimeout(resolve, 300));
const p50 = async (program: string, host: string, port: number, count: number): Promise<number> =>
  Number((await execFileAsync('ip', ['netns', 'exec', NODE, process.execPath, '-e', program, host, String(port), String(count)])).stdout.trim());
const clusterIP = ip(SERVICE_BASE, services - 1);
const latency: Array<{ connectDirectUs: number; connectClusterIpUs: number; requestDirectUs: number; requestClusterIpUs: number }> = [];
for (let r = 0; r < 3; r++) {
  latency.push({
    connectDirectUs: await p50(CONNECT_LATENCY, POD_IP, 8080, connections), connectClusterIpUs: await p50(CONNECT_LATENCY, clusterIP, 80, connections),
    requestDirectUs: await p50(REQUEST_LATENCY, POD_IP, 8080, requests), requestClusterIpUs: await p50(REQUEST_LATENCY, clusterIP, 80, requests),
  });
}

spawnSync('ip', ['netns', 'pids', POD], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).forEach((pid) => process.kill(Number(pid)));
await listener;
cleanUp();
const m = <T>(xs: T[], f: (x: T) => number): number => round(median(xs.map(f)));
const fullSyncMs = m(full, (f) => f.totalMs);
const changeSyncMs = m(change, (c) => c.totalMs);
const connectAddedP50Us = m(latency, (l) => l.connectClusterIpUs - l.connectDirectUs);
const requestAddedP50Us = m(latency, (l) => l.requestClusterIpUs - l.requestDirectUs);
console.log(JSON.stringify({
  bench: 'nft-sync', services, endpoints, runs,
  fullSyncMs, fullCompileMs: m(full, (f) => f.compileMs), fullNftMs: m(full, (f) => f.nftMs),
  fullCompileCpuMs: m(full, (f) => f.compileCpuMs), fullNftCpuMs: round(fullNftCpuMs),
  changeSyncMs, changeCompileMs: m(change, (c) => c.compileMs), changeDiffMs: m(change, (c) => c.diffMs), changeNftMs: m(change, (c) => c.nftMs),
  changeCompileCpuMs: m(change, (c) => c.compileCpuMs), changeDiffCpuMs: m(change, (c) => c.diffCpuMs), changeNftCpuMs: round(changeNftCpuMs),
  changeRunsMs: change.map((c) => round(c.totalMs)),
  connectP50DirectUs: m(latency, (l) => l.connectDirectUs), connectP50ClusterIpUs: m(latency, (l) => l.connectClusterIpUs), addedP50Us: connectAddedP50Us,
  requestP50DirectUs: m(latency, (l) => l.requestDirectUs), requestP50ClusterIpUs: m(latency, (l) => l.requestClusterIpUs), requestAddedP50Us,
  nftFullSync5000Ms: services === 5000 ? fullSyncMs : null, nftOneChangeMs: services === 5000 ? changeSyncMs : null, clusterIpAddedP50Us: requestAddedP50Us,
  goals: { fullSyncMs: 2000, changeSyncMs: 50, addedP50Us: 10, requestAddedP50Us: 10 },
}));
