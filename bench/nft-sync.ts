// The Service data path's costs, in network namespaces of its own (root and `ip netns` needed): a "node"
// namespace and one "pod" namespace behind a veth, with S Services x E endpoints programmed by the agent's
// nftables backend (node-agent/network/nft-ruleset.ts + nft-applier.ts).
// - full: compile + `nft -f` of the whole ruleset into a node with none (the first sync of an agent), R runs;
// - change: one endpoint removed from, then added back to, one Service (a delta transaction), R runs each;
// - latency: the added p50 time of a new TCP connection plus one round trip through a ClusterIP (DNAT chosen
//   among E endpoints, with all S Services in the maps) against the same to the pod's own address.
// Usage: node dist/bench/nft-sync.js [--services 5000] [--endpoints 3] [--runs 5] [--connections 2000]
// Last line: one JSON object (medians).
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { parseCidr } from '../api-types/index.js';
import { NftApplier, commandRunner } from '../node-agent/network/nft-applier.js';
import { compileRuleset } from '../node-agent/network/nft-ruleset.js';
import { StaticServiceSource, serviceObject, sliceObject } from '../test/agent/network/service-objects.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const services = flag('services', 5000);
const endpoints = flag('endpoints', 3);
const runs = flag('runs', 5);
const connections = flag('connections', 2000);

const NODE = `fpb${process.pid}n`;
const POD = `fpb${process.pid}p`;
const POD_IP = '10.42.0.2';
const execFileAsync = promisify(execFile);

function sh(...args: string[]): void {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number): number => Math.round(x * 100) / 100;
function ip(base: number, n: number): string {
  const v = base + n;
  return `${v >>> 24}.${(v >>> 16) & 255}.${(v >>> 8) & 255}.${v & 255}`;
}
const SERVICE_BASE = (10 << 24) + (43 << 16) + 10;
const POD_BASE = (10 << 24) + (42 << 16) + 10;

/** Connects `count` times in turn to host:port (one line back each); prints the p50 in microseconds. */
const LATENCY = `
const [host, port, count] = process.argv.slice(1);
const net = require('node:net');
const once = () => new Promise((resolve, reject) => {
  const t0 = process.hrtime.bigint();
  const s = net.connect({ host, port: Number(port) });
  s.on('data', () => { s.destroy(); resolve(Number(process.hrtime.bigint() - t0) / 1000); });
  s.on('error', reject);
});
(async () => {
  const xs = [];
  for (let i = 0; i < Number(count); i++) xs.push(await once());
  xs.sort((a, b) => a - b);
  console.log(xs[Math.floor(xs.length / 2)]);
})();`;

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
  "require('node:net').createServer((s) => { s.on('error', () => {}); s.end('x'); }).listen(8080)"]).catch(() => undefined);

const source = new StaticServiceSource();
for (let i = 0; i < services; i++) {
  const name = `s${i}`;
  source.putService(serviceObject('default', name, { clusterIP: ip(SERVICE_BASE, i), ports: [{ name: 'http', port: 80, targetPort: 8080 }] }));
  source.putSlice(sliceObject('default', `${name}-x`, name, [{ name: 'http', port: 8080 }],
    Array.from({ length: endpoints }, (_, e) => ({ ip: ip(POD_BASE, i * endpoints + e), nodeName: 'node-a' }))));
}
const facts = { nodeName: 'node-a', clusterCIDR: parseCidr('10.42.0.0/16') };
const run = commandRunner(NODE);

const full: Array<{ compileMs: number; applyMs: number; totalMs: number }> = [];
let applier = new NftApplier(run);
let ruleBytes = 0;
for (let r = 0; r < runs; r++) {
  applier = new NftApplier(run);
  const t0 = performance.now();
  const compiled = compileRuleset(source, facts);
  const t1 = performance.now();
  await applier.apply(compiled);
  const t2 = performance.now();
  ruleBytes = compiled.text.length;
  full.push({ compileMs: t1 - t0, applyMs: t2 - t1, totalMs: t2 - t0 });
}

const change: number[] = [];
const victim = 'default/s17-x';
const original = source.slices.get(victim)!;
for (let r = 0; r < runs * 2; r++) {
  source.putSlice(r % 2 === 0 ? { ...original, endpoints: original.endpoints.slice(1) } : original);
  const t0 = performance.now();
  if (!await applier.apply(compileRuleset(source, facts))) throw new Error('the change did not reach the kernel');
  change.push(performance.now() - t0);
}

await new Promise((resolve) => setTimeout(resolve, 300));
const p50 = async (host: string, port: number): Promise<number> =>
  Number((await execFileAsync('ip', ['netns', 'exec', NODE, process.execPath, '-e', LATENCY, host, String(port), String(connections)])).stdout.trim());
const latency: Array<{ directUs: number; clusterIpUs: number }> = [];
for (let r = 0; r < 3; r++) latency.push({ directUs: await p50(POD_IP, 8080), clusterIpUs: await p50(ip(SERVICE_BASE, services - 1), 80) });

spawnSync('ip', ['netns', 'pids', POD], { encoding: 'utf8' }).stdout.split('\n').filter(Boolean).forEach((pid) => process.kill(Number(pid)));
await listener;
cleanUp();
const added = latency.map((l) => l.clusterIpUs - l.directUs);
console.log(JSON.stringify({
  bench: 'nft-sync', services, endpoints, runs, ruleBytes,
  fullSyncMs: round(median(full.map((f) => f.totalMs))), fullCompileMs: round(median(full.map((f) => f.compileMs))), fullApplyMs: round(median(full.map((f) => f.applyMs))),
  changeSyncMs: round(median(change)), changeRunsMs: change.map(round),
  connectP50DirectUs: round(median(latency.map((l) => l.directUs))), connectP50ClusterIpUs: round(median(latency.map((l) => l.clusterIpUs))),
  addedP50Us: round(median(added)), goals: { fullSyncMs: 2000, changeSyncMs: 50, addedP50Us: 10 },
}));
