// The Service data path in a real kernel: a "node" network namespace with a pod bridge (three pod namespaces,
// each running a TCP and a UDP listener that answer with their name and the address they see) and a LAN link to
// a "client" namespace. Services and EndpointSlices are written to a real server over HTTP; the agent's service
// cache watches them and the service proxy programs the node namespace with nft, as a node agent does (only the
// namespace differs: `ip netns exec`). Every name carries the process id; everything is removed in after().
//
//   client 192.168.77.2 --lan0-- node (192.168.77.1, cbr0 10.42.1.1/24) --cbr0-- p1 .11, p2 .12, p3 .13
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import pino from 'pino';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { parseCidr, type EndpointSlice, type Service } from '../../../api-types/index.js';
import { ApiClientError, NodeApi } from '../../../node-agent/api-client.js';
import { IptablesBackend } from '../../../node-agent/network/iptables-ruleset.js';
import { NftApplier, NftApplyError, NftShell, commandRunner, commandStarter } from '../../../node-agent/network/nft-applier.js';
import { RulesetCompiler, compileRuleset } from '../../../node-agent/network/nft-ruleset.js';
import { ServiceCache } from '../../../node-agent/network/service-cache.js';
import { NftBackend, runServiceProxy } from '../../../node-agent/network/service-proxy.js';
import { eventually } from '../../support/eventually.js';
import { RealServer } from '../real-server.js';
import { StaticServiceSource, serviceObject, sliceObject, type SliceEndpointInput } from './service-objects.js';

const execFileAsync = promisify(execFile);
const P = `fp${process.pid}`;
const NODE_NS = `${P}n`;
const CLIENT_NS = `${P}c`;
const PODS = [1, 2, 3].map((i) => ({ name: `p${i}`, ns: `${P}p${i}`, ip: `10.42.1.1${i}` }));
const NODE_NAME = 'node-a';
const NODE_LAN = '192.168.77.1';
const NODE_BRIDGE = '10.42.1.1';
const CLIENT_IP = '192.168.77.2';

function sh(...args: string[]): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr || r.error?.message}`);
  return r.stdout;
}

/** TCP: one line "NAME REMOTE-ADDRESS" per connection; UDP: the same per datagram. */
const LISTENER = `
const [name] = process.argv.slice(1);
const net = require('node:net'); const dgram = require('node:dgram');
net.createServer((s) => { s.on('error', () => {}); s.end(name + ' ' + s.remoteAddress + '\\n'); }).listen(8080, () => {
  const u = dgram.createSocket('udp4');
  u.on('message', (m, r) => u.send(name + ' ' + r.address, r.port, r.address));
  u.bind(5353, () => console.log('listening'));
});`;

/** Connects COUNT times in turn (or until killed when COUNT is 0), one JSON line per try: {t, answer} or {t, error}. */
const TCP_PROBE = `
const [host, port, count] = process.argv.slice(1);
const net = require('node:net');
const once = () => new Promise((resolve) => {
  const s = net.connect({ host, port: Number(port) }); let data = '';
  const t = setTimeout(() => { s.destroy(); resolve({ error: 'timeout' }); }, 2000);
  s.on('data', (d) => { data += d; });
  s.on('end', () => { clearTimeout(t); resolve({ answer: data.trim() }); });
  s.on('error', (e) => { clearTimeout(t); resolve({ error: e.code || e.message }); });
});
(async () => { for (let i = 0; Number(count) === 0 || i < Number(count); i++) console.log(JSON.stringify({ t: Date.now(), ...(await once()) })); })();`;

/** One datagram from source port SPORT, the answer or "timeout". */
const UDP_PROBE = `
const [host, port, sport] = process.argv.slice(1);
const u = require('node:dgram').createSocket('udp4');
const t = setTimeout(() => { console.log('timeout'); u.close(); }, 2000);
u.on('message', (m) => { clearTimeout(t); console.log(String(m)); u.close(); });
u.bind(Number(sport), () => u.send('hi', Number(port), host));`;

interface Try { t: number; answer?: string; error?: string }

let lastProbe: Try[] = [];
/** For failure messages: what the last probe saw, and the node's table. */
const seen = (): string => `last probe: ${JSON.stringify(names(lastProbe))}; ruleset: ${spawnSync('ip', ['netns', 'exec', NODE_NS, 'nft', 'list', 'table', 'inet', 'flotilla'], { encoding: 'utf8' }).stdout}`;

/** Runs in a namespace without blocking this process (the proxy under test runs in it). */
async function inNs(ns: string, ...args: string[]): Promise<string> {
  return (await execFileAsync('ip', ['netns', 'exec', ns, ...args], { encoding: 'utf8' })).stdout;
}

async function probe(ns: string, host: string, port: number, count: number): Promise<Try[]> {
  return lastProbe = (await inNs(ns, process.execPath, '-e', TCP_PROBE, host, String(port), String(count))).trim().split('\n').map((l) => JSON.parse(l) as Try).map((t) => ({ ...t, ...(t.answer ? { answer: t.answer.replace('::ffff:', '') } : {}) }));
}

const names = (tries: Try[]): string[] => [...new Set(tries.map((t) => t.answer?.split(' ')[0] ?? `error:${t.error}`))].sort();

const test = suite('service proxy in network namespaces');
const listeners: ChildProcess[] = [];
const srv = new RealServer();
const stop = new AbortController();
let proxyDone: Promise<unknown> = Promise.resolve();
let syncs = 0;
/** The nft -i processes tests start, ended in after(). */
const shells: NftShell[] = [];

function cleanUp(): void {
  for (const l of listeners) l.kill('SIGKILL');
  for (const ns of [NODE_NS, CLIENT_NS, ...PODS.map((p) => p.ns)]) spawnSync('ip', ['netns', 'del', ns]);
}

test.before(async () => {
  cleanUp();
  for (const ns of [NODE_NS, CLIENT_NS, ...PODS.map((p) => p.ns)]) {
    sh('ip', 'netns', 'add', ns);
    sh('ip', '-n', ns, 'link', 'set', 'lo', 'up');
  }
  sh('ip', '-n', NODE_NS, 'link', 'add', 'cbr0', 'type', 'bridge');
  sh('ip', '-n', NODE_NS, 'addr', 'add', `${NODE_BRIDGE}/24`, 'dev', 'cbr0');
  sh('ip', '-n', NODE_NS, 'link', 'set', 'cbr0', 'up');
  for (const [i, p] of PODS.entries()) {
    sh('ip', '-n', NODE_NS, 'link', 'add', `vp${i + 1}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', p.ns);
    sh('ip', '-n', NODE_NS, 'link', 'set', `vp${i + 1}`, 'master', 'cbr0', 'up');
    // Hairpin mode, as the CNI bridge plugin and kubelet set it: a pod's own traffic, DNATed back to it, leaves
    // by the bridge port it came in on (bridge netfilter is on in this kernel).
    sh('ip', '-n', NODE_NS, 'link', 'set', `vp${i + 1}`, 'type', 'bridge_slave', 'hairpin', 'on');
    sh('ip', '-n', p.ns, 'addr', 'add', `${p.ip}/24`, 'dev', 'eth0');
    sh('ip', '-n', p.ns, 'link', 'set', 'eth0', 'up');
    sh('ip', '-n', p.ns, 'route', 'add', 'default', 'via', NODE_BRIDGE);
  }
  sh('ip', '-n', NODE_NS, 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', CLIENT_NS);
  sh('ip', '-n', NODE_NS, 'addr', 'add', `${NODE_LAN}/24`, 'dev', 'lan0');
  sh('ip', '-n', NODE_NS, 'link', 'set', 'lan0', 'up');
  sh('ip', '-n', CLIENT_NS, 'addr', 'add', `${CLIENT_IP}/24`, 'dev', 'eth0');
  sh('ip', '-n', CLIENT_NS, 'link', 'set', 'eth0', 'up');
  sh('ip', '-n', CLIENT_NS, 'route', 'add', 'default', 'via', NODE_LAN);
  // A node has a default route: ClusterIPs without endpoints must be rejected, not unroutable.
  sh('ip', '-n', NODE_NS, 'route', 'add', 'default', 'via', CLIENT_IP);
  sh('ip', 'netns', 'exec', NODE_NS, 'sysctl', '-qw', 'net.ipv4.ip_forward=1');
  for (const p of PODS) {
    const l = spawn('ip', ['netns', 'exec', p.ns, process.execPath, '-e', LISTENER, p.name], { stdio: ['ignore', 'pipe', 'inherit'] });
    listeners.push(l);
    await new Promise<void>((resolve, reject) => {
      l.stdout!.on('data', (d: Buffer) => { if (String(d).includes('listening')) resolve(); });
      l.on('exit', (code) => reject(new Error(`listener ${p.name} exited ${code}`)));
    });
  }

  await srv.start();
  const api = new NodeApi(srv.client);
  const log = pino({ level: 'silent' });
  const cache = new ServiceCache(api, { log, retrySeconds: 0.1, retryMaxSeconds: 0.5 });
  const cacheDone = cache.run(stop.signal);
  proxyDone = Promise.all([cacheDone, runServiceProxy(stop.signal, {
    view: cache, synced: cache.synced, backend: new NftBackend(commandRunner(NODE_NS), commandStarter(NODE_NS)), log, retrySeconds: 0.1, retryMaxSeconds: 0.5,
    facts: { nodeName: NODE_NAME, clusterCIDR: parseCidr('10.42.0.0/16') },
    onSynced: (changed) => { if (changed) syncs++; },
  })]);
});

test.after(async () => {
  for (const sh of shells) sh.close();
  stop.abort();
  await proxyDone.catch(() => {});
  await srv.close();
  cleanUp();
});

async function put(path: string, body: Service | EndpointSlice): Promise<void> {
  const { namespace = 'default', name = '' } = body.metadata;
  const base = `${path}/namespaces/${namespace}/${body.kind === 'Service' ? 'services' : 'endpointslices'}`;
  try {
    const current = await srv.client.request<{ metadata: { resourceVersion: string } }>('GET', `${base}/${name}`);
    await srv.client.request('PUT', `${base}/${name}`, { ...body, metadata: { ...body.metadata, resourceVersion: current.metadata.resourceVersion } });
  } catch (err) {
    if (!(err instanceof ApiClientError && err.code === 404)) throw err;
    await srv.client.request('POST', base, body);
  }
}

const putService = (ns: string, name: string, spec: Record<string, unknown>) => put('/api/v1', serviceObject(ns, name, spec));
const putSlice = (ns: string, svc: string, ports: Array<{ name?: string; port: number; protocol?: string }>, endpoints: SliceEndpointInput[]) =>
  put('/apis/discovery.k8s.io/v1', sliceObject(ns, `${svc}-x`, svc, ports, endpoints));
const allPods = (nodeName = NODE_NAME): SliceEndpointInput[] => PODS.map((p) => ({ ip: p.ip, nodeName }));

test('a ClusterIP reaches all 3 backends, from the LAN (masqueraded) and from the node itself', async () => {
  await putService('default', 'web', { clusterIP: '10.43.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] });
  await putSlice('default', 'web', [{ name: 'http', port: 8080 }], allPods());
  await eventually('the ClusterIP answered by p1, p2 and p3 from the client', async () => {
    const tries = await probe(CLIENT_NS, '10.43.0.10', 80, 30);
    return names(tries).join() === 'p1,p2,p3' && tries;
  }, { detail: seen }).then((tries) => {
    for (const t of tries) assert.is(t.answer!.split(' ')[1], NODE_BRIDGE, 'traffic from outside the cluster CIDR is masqueraded');
  });
  assert.equal(names(await probe(NODE_NS, '10.43.0.10', 80, 30)), ['p1', 'p2', 'p3']);
});

test('hairpin: a pod reaching its own Service through the ClusterIP is answered by itself (masqueraded)', async () => {
  const tries = await eventually('p1 answering p1 through the ClusterIP', async () => {
    const t = await probe(PODS[0]!.ns, '10.43.0.10', 80, 30);
    return t.some((x) => x.answer?.startsWith('p1 ')) && t;
  }, { detail: seen });
  assert.equal(tries.filter((t) => t.error), [], 'no connection fails');
  for (const t of tries.filter((x) => x.answer?.startsWith('p1 '))) assert.is(t.answer, `p1 ${NODE_BRIDGE}`);
});

test('sessionAffinity ClientIP pins a client to one endpoint', async () => {
  await putService('default', 'sticky', { clusterIP: '10.43.0.11', ports: [{ port: 80, targetPort: 8080 }], sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } } });
  await putSlice('default', 'sticky', [{ port: 8080 }], allPods());
  await eventually('the sticky ClusterIP answering', async () => (await probe(CLIENT_NS, '10.43.0.11', 80, 1))[0]!.answer, { detail: seen });
  const pinned = names(await probe(CLIENT_NS, '10.43.0.11', 80, 30));
  assert.is(pinned.length, 1, 'one endpoint for all 30 connections');
  assert.match(pinned[0]!, /^p[123]$/);
});

test('a Service without endpoints rejects at once instead of blackholing', async () => {
  await putService('default', 'empty', { clusterIP: '10.43.0.12', ports: [{ port: 80, targetPort: 8080 }] });
  const tries = await eventually('connections to the empty Service refused', async () => {
    const t = await probe(CLIENT_NS, '10.43.0.12', 80, 3);
    return t.every((x) => x.error === 'ECONNREFUSED') && t;
  }, { detail: seen });
  assert.is(tries.length, 3);
});

test('a removed endpoint stops receiving traffic, and no connection fails across the sync', async () => {
  const loop = spawn('ip', ['netns', 'exec', CLIENT_NS, process.execPath, '-e', TCP_PROBE, '10.43.0.10', '80', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  listeners.push(loop);
  let out = '';
  loop.stdout!.on('data', (d: Buffer) => { out += String(d); });
  const lines = (): Try[] => out.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Try);
  try {
    await eventually('20 connections before the change', () => lines().length >= 20);
    const before = syncs;
    await putSlice('default', 'web', [{ name: 'http', port: 8080 }], allPods().slice(0, 2));
    await eventually('the sync of the change', () => syncs > before);
    const synced = Date.now();
    await eventually('40 connections after the sync', () => lines().filter((t) => t.t > synced).length >= 40);
    loop.kill('SIGKILL');
    const all = lines();
    assert.equal(all.filter((t) => t.error), [], 'no connection failed');
    assert.equal(names(all.filter((t) => t.t > synced)), ['p1', 'p2'], 'after the sync only p1 and p2 answer');
  } finally {
    loop.kill('SIGKILL');
  }
});

test('a NodePort answers on every address of the node, from the LAN and from the node', async () => {
  await putService('default', 'np', { type: 'NodePort', clusterIP: '10.43.0.13', ports: [{ port: 80, targetPort: 8080, nodePort: 30080 }] });
  await putSlice('default', 'np', [{ port: 8080 }], allPods());
  const fromLan = await eventually('the NodePort answering on the LAN address', async () => {
    const t = await probe(CLIENT_NS, NODE_LAN, 30080, 20);
    return names(t).join() === 'p1,p2,p3' && t;
  }, { detail: seen });
  for (const t of fromLan) assert.is.not(t.answer!.split(' ')[1], CLIENT_IP, 'externalTrafficPolicy Cluster masquerades');
  assert.equal(names(await probe(NODE_NS, NODE_BRIDGE, 30080, 20)), ['p1', 'p2', 'p3']);
  assert.equal(names(await probe(NODE_NS, NODE_LAN, 30080, 20)), ['p1', 'p2', 'p3']);
});

test('externalTrafficPolicy Local keeps the client source and uses only this node\'s endpoints', async () => {
  await putService('default', 'local', { type: 'NodePort', clusterIP: '10.43.0.14', externalTrafficPolicy: 'Local', ports: [{ port: 80, targetPort: 8080, nodePort: 30081 }] });
  await putSlice('default', 'local', [{ port: 8080 }], [{ ip: PODS[0]!.ip, nodeName: NODE_NAME }, { ip: PODS[1]!.ip, nodeName: 'node-b' }]);
  const tries = await eventually('the Local NodePort answering', async () => {
    const t = await probe(CLIENT_NS, NODE_LAN, 30081, 10);
    return t.every((x) => x.answer) && t;
  }, { detail: seen });
  assert.equal([...new Set(tries.map((t) => t.answer))], [`p1 ${CLIENT_IP}`]);
});

test('UDP: conntrack entries of a removed endpoint are deleted, so the same client flow moves on', async () => {
  await putService('default', 'dns', { clusterIP: '10.43.0.53', ports: [{ port: 53, targetPort: 5353, protocol: 'UDP' }] });
  await putSlice('default', 'dns', [{ port: 5353, protocol: 'UDP' }], [{ ip: PODS[2]!.ip, nodeName: NODE_NAME }]);
  const udp = async () => (await inNs(CLIENT_NS, process.execPath, '-e', UDP_PROBE, '10.43.0.53', '53', '40053')).trim();
  await eventually('p3 answering the UDP flow', async () => (await udp()).startsWith('p3 '), { detail: seen });
  const before = syncs;
  await putSlice('default', 'dns', [{ port: 5353, protocol: 'UDP' }], [{ ip: PODS[1]!.ip, nodeName: NODE_NAME }]);
  await eventually('the sync of the change', () => syncs > before);
  // The same source port: without the deletion, the existing conntrack entry would keep it on p3.
  assert.match(await udp(), /^p2 /);
});

test('changes sent as differences leave the kernel with exactly the table a full replacement gives', async () => {
  const [deltaNs, fullNs] = [`${P}x`, `${P}y`];
  try {
    for (const ns of [deltaNs, fullNs]) sh('ip', 'netns', 'add', ns);
    const facts = { nodeName: NODE_NAME, clusterCIDR: parseCidr('10.42.0.0/16') };
    const source = new StaticServiceSource();
    const sent: string[] = [];
    const inDelta = commandRunner(deltaNs);
    const shell = new NftShell(commandStarter(deltaNs));
    shells.push(shell);
    const compiler = new RulesetCompiler();
    // As the agent sends them: differences to a long-lived nft -i, a whole table to nft -f.
    const incremental = new NftApplier((cmd, args, input) => { if (cmd === 'nft') sent.push(input ?? ''); return inDelta(cmd, args, input); },
      (t) => { sent.push(t); return shell.send(t); });
    // The table as nft lists it, its objects sorted (chains added later are listed after the others).
    const list = (ns: string) => sh('ip', 'netns', 'exec', ns, 'nft', 'list', 'table', 'inet', 'flotilla')
      .trim().split('\n').slice(1, -1).join('\n').split('\n\n').map((b) => b.trim()).sort().join('\n\n');
    const b = (spec: Record<string, unknown>) => serviceObject('default', 'b', { type: 'NodePort', clusterIP: '10.43.1.2', ...spec });
    const bPorts = [{ name: 'http', port: 80, nodePort: 30090 }, { name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }];
    const bSlice = (endpoints: SliceEndpointInput[]) => sliceObject('default', 'b-x', 'b', [{ name: 'http', port: 8080 }, { name: 'dns', port: 5353, protocol: 'UDP' }], endpoints);
    const steps: Array<[string, () => void]> = [
      ['a ClusterIP Service', () => source.putService(serviceObject('default', 'a', { clusterIP: '10.43.1.1', ports: [{ port: 80 }] }))],
      ['its endpoints', () => source.putSlice(sliceObject('default', 'a-x', 'a', [{ port: 80 }], allPods()))],
      ['a NodePort with affinity', () => {
        source.putService(b({ sessionAffinity: 'ClientIP', ports: bPorts }));
        source.putSlice(bSlice(allPods()));
      }],
      ['an endpoint less', () => source.putSlice(sliceObject('default', 'a-x', 'a', [{ port: 80 }], allPods().slice(1)))],
      ['an endpoint more', () => source.putSlice(sliceObject('default', 'a-x', 'a', [{ port: 80 }], allPods()))],
      ['Local policy and another timeout', () => source.putService(b({ externalTrafficPolicy: 'Local', sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } }, ports: bPorts }))],
      ['no local endpoint left', () => source.putSlice(bSlice(allPods('node-b')))],
      ['no affinity, external IPs', () => source.putService(b({ externalIPs: ['192.168.77.50'], ports: bPorts }))],
      ['no endpoints', () => source.deleteSlice('default/a-x')],
      ['no endpoints for the NodePort', () => source.deleteSlice('default/b-x')],
      ['a Service gone', () => source.svcs.delete('default/b')],
      ['endpoints again', () => source.putSlice(sliceObject('default', 'a-x', 'a', [{ port: 80 }], allPods().slice(0, 1)))],
    ];
    // The compiler is told that both Services changed, as the service cache would say (a or b or neither did).
    const changed = () => new Map(['default/a', 'default/b'].map((k) => [k, source.svcs.get(k)]));
    for (const [i, [what, change]] of steps.entries()) {
      change();
      const next = compiler.compile(source, facts, i > 0 ? changed() : undefined);
      sent.length = 0;
      assert.ok(await incremental.apply(next), `${what}: a change`);
      if (i > 0) assert.equal(sent.map((t) => t.includes('delete table')), [false], `${what}: one transaction, a difference`);
      assert.is(await incremental.apply(compiler.compile(source, facts, changed())), false, `${what}: the same input again sends nothing`);
      await new NftApplier(commandRunner(fullNs)).apply(next);
      assert.fixture(list(deltaNs), list(fullNs), `after: ${what}`);
    }
  } finally {
    for (const ns of [deltaNs, fullNs]) spawnSync('ip', ['netns', 'del', ns]);
  }
});

test('nft -i: a transaction after its process died goes to a new one; one nft refuses gets nft\'s message', async () => {
  const ns = `${P}s`;
  try {
    sh('ip', 'netns', 'add', ns);
    const children: ChildProcess[] = [];
    const start = commandStarter(ns);
    const shell = new NftShell((cmd, args, env) => { const child = start(cmd, args, env); children.push(child); return child; });
    shells.push(shell);
    assert.equal(await shell.send('add table inet t\n'), { code: 0, stdout: '', stderr: '' });
    children[0]!.kill('SIGKILL');
    await eventually('the first nft -i gone', () => children[0]!.exitCode !== null || children[0]!.signalCode !== null);
    assert.is((await shell.send('add chain inet t c {\n\tcounter\n}\n')).code, 0);
    assert.is(children.length, 2, 'a second process');
    const refused = await shell.send('add chain inet t d\nadd rule inet t nosuch counter\n');
    assert.is(refused.code, 1);
    assert.match(refused.stderr, /No such file or directory/);
    assert.is((await shell.send('add chain inet t e\n')).code, 0, 'and the next one is taken');
    assert.equal(sh('ip', 'netns', 'exec', ns, 'nft', 'list', 'table', 'inet', 't').match(/chain \w/g), ['chain c', 'chain e'], 'the refused transaction left nothing');
  } finally {
    spawnSync('ip', ['netns', 'del', ns]);
  }
});

test('a ruleset the kernel refuses leaves the one in force untouched (one transaction)', async () => {
  // This test programs the node itself: the proxy stops first.
  stop.abort();
  await proxyDone;
  const source = new StaticServiceSource();
  source.putService(serviceObject('default', 'web', { clusterIP: '10.43.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }));
  source.putSlice(sliceObject('default', 'web-x', 'web', [{ name: 'http', port: 8080 }], allPods()));
  const facts = { nodeName: NODE_NAME, clusterCIDR: parseCidr('10.42.0.0/16') };
  const run = commandRunner(NODE_NS);
  const sent: string[] = [];
  const shell = new NftShell(commandStarter(NODE_NS));
  shells.push(shell);
  const applier = new NftApplier((cmd, args, input) => { if (cmd === 'nft') sent.push(input ?? ''); return run(cmd, args, input); },
    (t) => { sent.push(t); return shell.send(t); });
  const good = compileRuleset(source, facts);
  assert.ok(await applier.apply(good));
  const inForce = sh('ip', 'netns', 'exec', NODE_NS, 'nft', 'list', 'table', 'inet', 'flotilla');
  // A change (the ClusterIP moved) with one more chain that only the kernel refuses (a nat hook before
  // conntrack): nft sends the whole transaction and the kernel turns it down, the difference and then the
  // whole table.
  source.putService(serviceObject('default', 'web', { clusterIP: '10.43.0.99', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }));
  const moved = compileRuleset(source, facts);
  const bad = { services: new Map([...moved.services].map(([key, rules]) => [key, { ...rules, chains: new Map([...rules.chains, ['broken', ['type nat hook prerouting priority -400; policy accept;']]]) }])) };
  sent.length = 0;
  try {
    await applier.apply(bad);
    assert.unreachable('the broken ruleset was accepted');
  } catch (err) {
    assert.instance(err, NftApplyError);
    assert.match((err as Error).message, /Operation not supported/);
  }
  assert.equal(sent.map((t) => t.includes('delete table')), [false, true], 'the difference first, then the whole table');
  assert.is(sh('ip', 'netns', 'exec', NODE_NS, 'nft', 'list', 'table', 'inet', 'flotilla'), inForce, 'the table is as before');
  assert.equal(names(await probe(CLIENT_NS, '10.43.0.10', 80, 20)), ['p1', 'p2', 'p3'], 'and still serves');
  assert.is(await applier.apply(good), false, 'the same ruleset again is not sent');
});

test('where nft is absent: the iptables-restore backend serves the same Services', async () => {
  // After the atomicity test: the proxy is stopped; the node's nftables table goes, iptables rules replace it.
  sh('ip', 'netns', 'exec', NODE_NS, 'nft', 'delete', 'table', 'inet', 'flotilla');
  const source = new StaticServiceSource();
  const facts = { nodeName: NODE_NAME, clusterCIDR: parseCidr('10.42.0.0/16') };
  source.putService(serviceObject('default', 'web', { clusterIP: '10.43.0.10', ports: [{ name: 'http', port: 80, targetPort: 8080 }] }));
  source.putSlice(sliceObject('default', 'web-x', 'web', [{ name: 'http', port: 8080 }], allPods()));
  source.putService(serviceObject('default', 'sticky', { clusterIP: '10.43.0.11', sessionAffinity: 'ClientIP', ports: [{ port: 80, targetPort: 8080 }] }));
  source.putSlice(sliceObject('default', 'sticky-x', 'sticky', [{ port: 8080 }], allPods()));
  source.putService(serviceObject('default', 'empty', { clusterIP: '10.43.0.12', ports: [{ port: 80, targetPort: 8080 }] }));
  source.putService(serviceObject('default', 'local', { type: 'NodePort', clusterIP: '10.43.0.14', externalTrafficPolicy: 'Local', ports: [{ port: 80, targetPort: 8080, nodePort: 30081 }] }));
  source.putSlice(sliceObject('default', 'local-x', 'local', [{ port: 8080 }], [{ ip: PODS[0]!.ip, nodeName: NODE_NAME }, { ip: PODS[1]!.ip, nodeName: 'node-b' }]));
  const backend = new IptablesBackend(commandRunner(NODE_NS));
  try {
    assert.ok(await backend.sync(source, facts));
    assert.is(await backend.sync(source, facts), false, 'unchanged rules are not sent');
    assert.equal(names(await probe(CLIENT_NS, '10.43.0.10', 80, 30)), ['p1', 'p2', 'p3'], 'the ClusterIP reaches all 3 backends');
    assert.is(names(await probe(CLIENT_NS, '10.43.0.11', 80, 20)).length, 1, 'affinity pins');
    assert.equal(names(await probe(CLIENT_NS, '10.43.0.12', 80, 2)), ['error:ECONNREFUSED'], 'no endpoints: rejected');
    assert.equal([...new Set((await probe(CLIENT_NS, NODE_LAN, 30081, 10)).map((t) => t.answer))], [`p1 ${CLIENT_IP}`], 'Local keeps the source');
    assert.equal(names(await probe(PODS[0]!.ns, '10.43.0.10', 80, 30)).includes('p1'), true, 'hairpin');
    source.putSlice(sliceObject('default', 'web-x', 'web', [{ name: 'http', port: 8080 }], allPods().slice(0, 2)));
    source.svcs.delete('default/sticky');
    source.deleteSlice('default/sticky-x');
    assert.ok(await backend.sync(source, facts));
    assert.equal(names(await probe(CLIENT_NS, '10.43.0.10', 80, 30)), ['p1', 'p2'], 'a removed endpoint gets nothing');
    const chains = sh('ip', 'netns', 'exec', NODE_NS, 'iptables-save', '-t', 'nat').split('\n').filter((l) => l.startsWith(':FLOTILLA-SEP-')).length;
    assert.is(chains, 2 + 2, 'the chains of the removed endpoint and of the removed Service are gone (web 2, local 2)');
  } finally {
    spawnSync('ip', ['netns', 'exec', NODE_NS, 'iptables', '-t', 'nat', '-F']);
  }
});

test.run();
