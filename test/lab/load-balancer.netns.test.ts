// LoadBalancer Services on the lab LAN: four hosts on one switch, the server and agent lb-a on h1, agents lb-b
// and lb-c on h2 and h3 (pod network, nftables service proxy, announcer: as `flotilla agent` runs), and h4 a
// client machine with no agent.
// - without any AddressPool (k3s ServiceLB style) a LoadBalancer Service lists the Ready nodes' addresses in
//   status.loadBalancer.ingress and answers there; with externalTrafficPolicy Local only the node with the
//   endpoint is listed, and the backend sees the client's own address;
// - with a pool, a Service gets 10.90.0.240 and answers on it from the client; SIGKILL the announcing agent, and
//   later cut the next announcer's cable: each time another node answers again (the time is printed; only the
//   eventual answer is asserted). Throughout, a sampler checks that at most one node holds the address on an
//   interface and that the client's neighbour entry moves from MAC to MAC without ever going back;
// - bad input: a pool overlapping another is refused naming both; an address some other LAN host already holds
//   is not taken (event AddressInUse on the Service, no node holds it).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PodNetworkLab, BOUND_MS } from './pod-network-lab.js';
import type { LabProcess } from './lab.js';
import { eventually } from '../support/eventually.js';

const SUBNET = '10.90.0';
const POOL = `${SUBNET}.240-${SUBNET}.250`;
const ADDRESS = `${SUBNET}.240`;
const TAKEN = `${SUBNET}.245`;
const CLIENT = 4;
const NODES = [{ name: 'lb-a', host: 1 }, { name: 'lb-b', host: 2 }, { name: 'lb-c', host: 3 }];
/** GET /cgi-bin/who answers the pod's name and the client address busybox httpd saw (REMOTE_ADDR). */
const WEB = ['sh', '-c', 'mkdir -p /www/cgi-bin && printf "#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \\$(hostname) \\$REMOTE_ADDR\\n" > /www/cgi-bin/who '
  + '&& chmod +x /www/cgi-bin/who && exec httpd -f -p 0.0.0.0:8080 -h /www'];

let cluster: PodNetworkLab | undefined;
let sampler: Sampler | undefined;
/** The hosts that announced ADDRESS, in order: the first, then one per failover. */
const announcers: number[] = [];
test.after(async () => {
  await sampler?.stop();
  await cluster?.destroy();
});

const lab = () => cluster!.lab;
const nodeHost = (name: string) => NODES.find((n) => n.name === name)!.host;

/** One GET from the client machine: the body; throws saying why when nothing answered within `limitS`. */
async function get(url: string, limitS = 2): Promise<string> {
  const r = await lab().exec(CLIENT, 'curl', ['-sS', '-m', String(limitS), url], { timeoutMs: limitS * 1000 + 5000 });
  if (r.code !== 0 || !r.stdout.trim()) throw new Error(`GET ${url}: curl exit ${r.code}: ${r.stderr.trim()}${r.stdout.trim()}`);
  return r.stdout.trim();
}

function service(name: string, app: string, extra: Record<string, unknown> = {}, annotations?: Record<string, string>, port = 80) {
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { name, ...(annotations ? { annotations } : {}) },
    spec: { type: 'LoadBalancer', selector: { app }, ports: [{ name: 'http', port, targetPort: 8080 }], ...extra },
  };
}

async function serviceObject(name: string): Promise<{ metadata: { annotations?: Record<string, string> }; spec: { loadBalancerIP?: string }; status?: { loadBalancer?: { ingress?: { ip: string }[] } } }> {
  const r = await cluster!.api('GET', `/api/v1/namespaces/default/services/${name}`);
  assert.is(r.code, 200, JSON.stringify(r.json));
  return r.json as never;
}

const ingressOf = async (name: string) => ((await serviceObject(name)).status?.loadBalancer?.ingress ?? []).map((i) => i.ip).sort();
const announcerOf = async (name: string) => (await serviceObject(name)).metadata.annotations?.['flotilla.io/load-balancer-node'];

/** The hosts (of `hosts`) holding `address` on eth0 now. */
async function holders(address: string, hosts: readonly number[]): Promise<number[]> {
  const found = await Promise.all(hosts.map(async (h) => {
    const r = await lab().exec(h, 'ip', ['-o', '-4', 'addr', 'show', 'dev', 'eth0']);
    return r.stdout.includes(` ${address}/32 `) ? h : undefined;
  }));
  return found.filter((h): h is number => h !== undefined);
}

/**
 * Watches, from the kernel's own notifications (`ip monitor` in each host, started once), every addition and
 * removal of ADDRESS on the node hosts and every change of the client's neighbour entry for it. Records each
 * moment two hosts held it at once, and the sequence of distinct MACs the client's entry went through.
 */
class Sampler {
  readonly overlaps: string[] = [];
  readonly macs: string[] = [];
  events = 0;
  readonly #holding = new Set<number>();
  readonly #monitors: LabProcess[] = [];

  constructor() {
    for (const n of NODES) this.#watch(lab().spawn(n.host, 'ip', ['monitor', 'address']), (line) => this.#address(n.host, line));
    this.#watch(lab().spawn(CLIENT, 'ip', ['monitor', 'neigh']), (line) => this.#neighbour(line));
  }

  #watch(monitor: LabProcess, onLine: (line: string) => void): void {
    this.#monitors.push(monitor);
    let pending = '';
    monitor.stdout!.setEncoding('utf8').on('data', (d: string) => {
      const lines = (pending + d).split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    });
  }

  #address(host: number, line: string): void {
    if (!line.includes(` ${ADDRESS}/32 `)) return;
    this.events++;
    if (line.startsWith('Deleted')) this.#holding.delete(host);
    else this.#holding.add(host);
    if (this.#holding.size > 1) this.overlaps.push(`${new Date().toISOString()} held by h${[...this.#holding].join(', h')}`);
  }

  #neighbour(line: string): void {
    const mac = new RegExp(`^${ADDRESS.replace(/\./g, '\\.')} .*lladdr (\\S+)`).exec(line)?.[1];
    if (!mac) return;
    this.events++;
    if (this.macs[this.macs.length - 1] !== mac) this.macs.push(mac);
  }

  /** Takes in what holds before the first notification: the holders now and the client's entry now. */
  async seed(): Promise<this> {
    for (const h of await holders(ADDRESS, NODES.map((n) => n.host))) this.#holding.add(h);
    const mac = /lladdr (\S+)/.exec((await lab().exec(CLIENT, 'ip', ['neigh', 'show', ADDRESS])).stdout)?.[1];
    if (mac && this.macs[0] !== mac) this.macs.unshift(mac);
    return this;
  }

  async stop(): Promise<void> {
    for (const m of this.#monitors) if (m.exitCode === null && m.signalCode === null) m.kill('SIGTERM');
    await Promise.all(this.#monitors.map((m) => m.exited()));
  }
}

/**
 * The milliseconds from now until ADDRESS is on another node than `gone`'s host only and answers the client
 * (GETs every ~100 ms); and the new announcer.
 */
async function msUntilMoved(what: string, gone: number): Promise<{ ms: number; host: number }> {
  const from = Date.now();
  const host = await eventually(what, async () => {
    const held = await holders(ADDRESS, NODES.map((n) => n.host));
    if (held.length !== 1 || held[0] === gone) return undefined;
    await get(`http://${ADDRESS}/cgi-bin/who`, 1);
    return held[0];
  }, { limitMs: 60_000, everyMs: 100 });
  return { ms: Date.now() - from, host };
}

async function macOf(host: number): Promise<string> {
  const r = await lab().exec(host, 'ip', ['-j', 'link', 'show', 'eth0']);
  return (JSON.parse(r.stdout) as { address: string }[])[0]!.address;
}

/** Waits until the announcer `node` renewed its speaker lease in the last second (it is a candidate again). */
async function speaking(node: string): Promise<void> {
  await eventually(`${node} renewing its speaker lease`, async () => {
    const r = await cluster!.api('GET', `/apis/coordination.k8s.io/v1/namespaces/flotilla-lb-speakers/leases/${node}`);
    const at = (r.json.spec as { renewTime?: string } | undefined)?.renewTime;
    return r.code === 200 && at && Date.now() - Date.parse(at) < 1_000 ? true : undefined;
  }, { limitMs: BOUND_MS, everyMs: 200 });
}

test('without an AddressPool a LoadBalancer answers on the nodes\' addresses; Local only where its endpoint is, keeping the client address', async () => {
  cluster = await PodNetworkLab.start({ hosts: 4, prefix: `fl-lb${process.pid % 100000}`, subnet: SUBNET });
  for (const n of NODES) await cluster.startAgent(n.host, n.name);
  for (const n of NODES) {
    const metadata = { name: `web-${n.name}`, labels: { app: `web-${n.name}` } };
    await cluster.create({
      apiVersion: 'v1', kind: 'Pod', metadata,
      spec: { nodeName: n.name, terminationGracePeriodSeconds: 0, containers: [{ name: 'c', image: 'flotilla/testbox:latest', command: WEB, readinessProbe: { httpGet: { path: '/cgi-bin/who', port: 8080 }, periodSeconds: 1 } }] },
    });
  }
  await cluster.create(service('everywhere', 'web-lb-a'));
  // On node addresses two Services cannot share a port.
  await cluster.create(service('local', 'web-lb-b', { externalTrafficPolicy: 'Local' }, undefined, 81));
  try {
    await nodeAddressServices();
  } finally {
    // Gone before the pool comes: they would take its first addresses.
    for (const name of ['everywhere', 'local']) assert.is((await cluster.api('DELETE', `/api/v1/namespaces/default/services/${name}`)).code, 200);
  }
});

/** The checks of the first test, on its two Services (Cluster: everywhere; Local: local, its endpoint on lb-b). */
async function nodeAddressServices(): Promise<void> {
  await cluster!.waitEndpoints('default', 'everywhere', 1);
  await cluster!.waitEndpoints('default', 'local', 1);
  const addresses = NODES.map((n) => lab().host(n.host).address).sort();
  await eventually('the Cluster Service listing every node', async () => (JSON.stringify(await ingressOf('everywhere')) === JSON.stringify(addresses) ? true : undefined), { limitMs: BOUND_MS, everyMs: 300 });
  await eventually('the Local Service listing lb-b only', async () => (JSON.stringify(await ingressOf('local')) === JSON.stringify([lab().host(2).address]) ? true : undefined), { limitMs: BOUND_MS, everyMs: 300 });
  for (const address of addresses) {
    const body = await eventually(`everywhere answering on ${address}`, () => get(`http://${address}/cgi-bin/who`), { limitMs: BOUND_MS, everyMs: 300 }).catch(async (err: Error) => {
      const host = NODES.find((n) => lab().host(n.host).address === address)!.host;
      throw new Error(`${err.message}\nrules of h${host}:\n${(await lab().exec(host, 'nft', ['list', 'table', 'inet', 'flotilla'])).stdout}`);
    });
    assert.match(body, /^web-lb-a /, body);
  }
  const local = await eventually('local answering on lb-b', () => get(`http://${lab().host(2).address}:81/cgi-bin/who`), { limitMs: BOUND_MS, everyMs: 300 });
  assert.is(local, `web-lb-b ${lab().host(CLIENT).address}`, 'Local keeps the client source address');
  const printed = await cluster!.cli(CLIENT, ['get', 'svc', 'local']);
  assert.match(printed.stdout, new RegExp(`local\\s+LoadBalancer\\s+\\S+\\s+${lab().host(2).address.replace(/\./g, '\\.')}\\s+81:\\d+/TCP`), printed.stdout);
}

test('with a pool, the Service gets an address that answers from the client machine; an overlapping pool is refused', async () => {
  // lb-a (the server and the backend) never announces: the failovers below move between lb-b and lb-c.
  assert.is((await cluster!.api('PATCH', '/api/v1/nodes/lb-a', { metadata: { labels: { 'node.kubernetes.io/exclude-from-external-load-balancers': '' } } })).code, 200);
  await cluster!.create({ apiVersion: 'flotilla.io/v1', kind: 'AddressPool', metadata: { name: 'lan' }, spec: { addresses: [POOL] } });
  const overlap = await cluster!.api('POST', '/apis/flotilla.io/v1/addresspools', { apiVersion: 'flotilla.io/v1', kind: 'AddressPool', metadata: { name: 'other' }, spec: { addresses: [`${SUBNET}.248/29`] } });
  assert.is(overlap.code, 422);
  assert.match(String(overlap.json.message), /overlaps 10\.90\.0\.240-10\.90\.0\.250 of AddressPool "lan"/);

  await cluster!.create(service('web', 'web-lb-a'));
  await eventually('web given the first pool address', async () => (JSON.stringify(await ingressOf('web')) === JSON.stringify([ADDRESS]) ? true : undefined), { limitMs: BOUND_MS, everyMs: 200 });
  const body = await eventually('web answering on its pool address', () => get(`http://${ADDRESS}/cgi-bin/who`), { limitMs: BOUND_MS, everyMs: 200 });
  assert.match(body, /^web-lb-a /);
  const printed = await cluster!.cli(CLIENT, ['get', 'svc', 'web']);
  assert.match(printed.stdout, /web\s+LoadBalancer\s+\S+\s+10\.90\.0\.240\s+80:\d+\/TCP/, printed.stdout);
  const announcer = await announcerOf('web');
  assert.ok(announcer === 'lb-b' || announcer === 'lb-c', `announced by ${announcer}`);
  assert.equal(await holders(ADDRESS, [1, 2, 3]), [nodeHost(announcer!)]);
  announcers.push(nodeHost(announcer!));
  sampler = await new Sampler().seed();
});

test('SIGKILL of the announcing agent: another node answers for the address', async () => {
  const first = (await announcerOf('web'))!;
  const agent = cluster!.agents.get(first)!;
  agent.kill('SIGKILL');
  await agent.exited();
  // Until its address lapses the dead agent's node still answers (its rules stay in the kernel): what counts is
  // another node holding the address and answering.
  const { ms, host } = await msUntilMoved('web answering from another node after the SIGKILL', nodeHost(first));
  const next = await announcerOf('web');
  console.log(`load balancer failover after SIGKILL of ${first}'s agent: ${ms} ms until h${host} held the address and answered the client`);
  assert.ok(next !== first && next !== undefined && nodeHost(next) === host, `announced by ${next}`);
  announcers.push(host);
  // The killed agent comes back; it is a candidate again, not the announcer.
  await cluster!.startAgent(nodeHost(first), first);
  await speaking(first);
  assert.is(await announcerOf('web'), next);
});

test('cutting the announcer\'s cable: another node answers for the address', async () => {
  const current = (await announcerOf('web'))!;
  const host = nodeHost(current);
  lab().cut(host);
  try {
    // Another node holding it (and the cut one not) means the cut node fenced itself: nobody could tell it to go.
    const moved = await msUntilMoved('web answering from another node after the cut', host);
    const next = await announcerOf('web');
    console.log(`load balancer failover after cutting ${current}'s link: ${moved.ms} ms until h${moved.host} held the address and answered the client`);
    assert.ok(next !== current && next !== undefined && nodeHost(next) === moved.host, `announced by ${next}`);
    announcers.push(moved.host);
  } finally {
    lab().heal(host);
  }
  await sampler!.stop();
  assert.equal(sampler!.overlaps, [], 'never two holders at once');
  // The client's entry went through the announcers' MACs in order, once each: no flapping between two holders.
  const expected = await Promise.all(announcers.map(macOf));
  assert.equal(sampler!.macs, expected, `neighbour entry ${sampler!.macs.join(' -> ')}, announcers h${announcers.join(' -> h')}`);
  console.log(`neighbour entry of ${ADDRESS} on the client: ${sampler!.macs.join(' -> ')} (${sampler!.events} kernel notifications watched)`);
});

test('an address another LAN host already holds is not taken: event AddressInUse', async () => {
  assert.is((await lab().exec(CLIENT, 'ip', ['addr', 'add', `${TAKEN}/24`, 'dev', 'eth0'])).code, 0);
  await cluster!.create(service('taken', 'web-lb-a', {}, { 'flotilla.io/load-balancer-ips': TAKEN }));
  assert.equal(await ingressOf('taken'), [TAKEN]);
  const event = await eventually('an AddressInUse event on taken', async () => {
    const r = await cluster!.api('GET', '/api/v1/namespaces/default/events');
    return (r.json.items as { reason?: string; message?: string; involvedObject?: { kind?: string; name?: string } }[])
      .find((e) => e.reason === 'AddressInUse' && e.involvedObject?.kind === 'Service' && e.involvedObject.name === 'taken');
  }, { limitMs: BOUND_MS, everyMs: 300 });
  assert.match(event.message ?? '', /10\.90\.0\.245/);
  assert.equal(await holders(TAKEN, [1, 2, 3]), []);
});

test.run();
