// The pod network across machines, on the multi-host lab with one dockerd per host and real `flotilla agent`s:
// - every pod sandbox is on the node's bridge network, its pod IP from the node's podCIDR (status.podIP(s));
// - a pod on h1 reaches a pod on h2 by pod IP, and h2's pod sees h1's pod IP as the source (no masquerade
//   between pods);
// - a pod reaching outside the cluster CIDR (a server on h3's own address) is masqueraded to its node's address;
// - a Node whose address is behind a router gets no route, and the agent says so (Warning Event with the fix,
//   log line);
// - routes converge when a node joins (h3) and go when its Node is deleted.
// The servers allocate the podCIDRs (spec.podCIDR).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { PodNetworkLab, type PodView } from './pod-network-lab.js';
import { eventually } from '../support/eventually.js';

const SUBNET = '10.83.0';
/** Each node's podCIDR as the servers allocated it, and the addresses in it as a pattern. */
const CIDRS: Record<string, string> = {};
const inCidr = (cidr: string) => new RegExp(`^${cidr.replace(/\.0\/24$/, '').replace(/\./g, '\\.')}\\.\\d+$`);
// The server pod answers GET /cgi-bin/ip with the address the connection came from (busybox httpd's REMOTE_ADDR).
const WHO_CALLS = ['sh', '-c', 'mkdir -p /www/cgi-bin && printf "#!/bin/sh\\necho Content-Type: text/plain\\necho\\necho \\$REMOTE_ADDR\\n" > /www/cgi-bin/ip '
  + '&& chmod +x /www/cgi-bin/ip && exec httpd -f -p 0.0.0.0:8080 -h /www'];
const IDLE = ['sleep', '3600'];
/** An HTTP GET by busybox nc (this busybox's wget crashes on user-defined Docker networks); the body's last line. */
const get = (address: string, port: number, path: string) => ['sh', '-c', `printf 'GET ${path} HTTP/1.0\\r\\n\\r\\n' | nc -w 3 ${address} ${port} | tail -n 1`];

let cluster: PodNetworkLab | undefined;
test.after(async () => { await cluster?.destroy(); });

let client: PodView;
let server: PodView;

test('pods on two machines get IPs from their node\'s podCIDR', async () => {
  cluster = await PodNetworkLab.start({ hosts: 3, prefix: `fl-pn${process.pid % 100000}`, subnet: SUBNET });
  // Docker 20.10 sets the FORWARD policy to DROP where it turned forwarding on itself; the lab's namespaces
  // forward already, so the hosts get it as such a machine has it: pod traffic must pass on the agent's rules.
  for (const h of [1, 2, 3]) assert.is((await cluster.lab.exec(h, 'iptables', ['-w', '-P', 'FORWARD', 'DROP'])).code, 0);
  await cluster.startAgent(1, 'pn-a');
  await cluster.startAgent(2, 'pn-b');
  CIDRS['pn-a'] = await cluster.podCidr('pn-a');
  CIDRS['pn-b'] = await cluster.podCidr('pn-b');
  assert.is.not(CIDRS['pn-a'], CIDRS['pn-b']);
  [client, server] = await Promise.all([cluster.runPod('client', 'pn-a', IDLE), cluster.runPod('server', 'pn-b', WHO_CALLS)]);
  assert.match(client.status!.podIP!, inCidr(CIDRS['pn-a']));
  assert.match(server.status!.podIP!, inCidr(CIDRS['pn-b']));
  assert.equal(server.status!.podIPs, [{ ip: server.status!.podIP! }]);
  const network = await cluster.lab.docker(2, ['network', 'inspect', '-f', '{{json .Options}} {{range .IPAM.Config}}{{.Gateway}}{{end}}', `flotilla-pods-${CIDRS['pn-b'].replace('/', '-')}`]);
  assert.is(network.code, 0, network.stderr);
  assert.match(network.stdout, /"com.docker.network.bridge.enable_ip_masquerade":"false"/);
  assert.ok(network.stdout.trim().endsWith(` ${CIDRS['pn-b'].replace(/0\/24$/, '1')}`), `gateway .1: ${network.stdout}`);
});

test('each node routes the other node\'s podCIDR via its address', async () => {
  await eventually('routes on both nodes', async () => {
    const [a, b] = await Promise.all([cluster!.routes(1), cluster!.routes(2)]);
    return a.join() === `${CIDRS['pn-b']} via ${SUBNET}.2` && b.join() === `${CIDRS['pn-a']} via ${SUBNET}.1` ? true : undefined;
  }, { limitMs: 60_000, everyMs: 200 });
});

test('a pod reaches a pod on another machine by pod IP, and the other side sees its pod IP as the source', async () => {
  const r = await eventually('an answer across machines', async () => {
    const got = await cluster!.execInPod(1, 'client', get(server.status!.podIP!, 8080, '/cgi-bin/ip'));
    return got.code === 0 && got.stdout.trim() ? got : undefined;
  }, { limitMs: 30_000, everyMs: 500 });
  assert.is(r.stdout.trim(), client.status!.podIP, `the server pod saw ${r.stdout.trim()}`);
});

test('a pod reaching outside the cluster CIDR is masqueraded to its node\'s address', async () => {
  // h3 has no agent yet: its own address is outside the cluster CIDR, as the internet would be.
  const outside = cluster!.lab.spawn(3, process.execPath, ['-e', `require('node:http').createServer((q, s) => s.end(q.socket.remoteAddress.replace(/^::ffff:/, ''))).listen(8081, '${SUBNET}.3', () => console.log('listening'))`]);
  await outside.waitFor(/listening/, 10_000);
  const r = await eventually('an answer from outside', async () => {
    const got = await cluster!.execInPod(1, 'client', get(`${SUBNET}.3`, 8081, '/'));
    return got.code === 0 && got.stdout.trim() ? got : undefined;
  }, { limitMs: 30_000, everyMs: 500 });
  assert.is(r.stdout.trim(), `${SUBNET}.1`);
  outside.kill('SIGTERM');
});

test('a node whose address is not on this node\'s segment gets no route, and the agent says so with the fix', async () => {
  // A Node registered by hand with an address behind a router (no agent runs it): its podCIDR comes from the servers.
  assert.is((await cluster!.api('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'pn-far' } })).code, 201);
  const far = await cluster!.api('GET', '/api/v1/nodes/pn-far');
  const put = await cluster!.api('PUT', '/api/v1/nodes/pn-far/status', { ...far.json, status: { addresses: [{ type: 'InternalIP', address: '192.168.77.9' }] } });
  assert.is(put.code, 200, JSON.stringify(put.json));
  const farCidr = await cluster!.podCidr('pn-far');
  const event = await eventually('a PodNetworkNotOnLink event from pn-a', async () => {
    const events = await cluster!.api('GET', '/api/v1/namespaces/default/events');
    return ((events.json.items ?? []) as { reason?: string; message?: string; involvedObject?: { name?: string } }[])
      .find((e) => e.reason === 'PodNetworkNotOnLink' && e.involvedObject?.name === 'pn-a');
  }, { limitMs: 60_000, everyMs: 200 });
  assert.match(event.message ?? '', `no route to pods ${farCidr}: their node's address 192.168.77.9 is not on a subnet this node is directly connected to`);
  assert.match(event.message ?? '', 'Fix: put the nodes on one Ethernet segment');
  assert.match(cluster!.agents.get('pn-a')!.output(), /host-gw routing needs every node on one L2 segment/);
  assert.not.ok((await cluster!.routes(1)).some((r) => r.startsWith(farCidr)), 'no route via an address that is not on-link');
  assert.is((await cluster!.api('DELETE', '/api/v1/nodes/pn-far')).code, 200);
});

test('routes converge when a node joins and go when its Node is deleted', async () => {
  const agent = await cluster!.startAgent(3, 'pn-c');
  CIDRS['pn-c'] = await cluster!.podCidr('pn-c');
  const expected = [`${CIDRS['pn-b']} via ${SUBNET}.2`, `${CIDRS['pn-c']} via ${SUBNET}.3`].sort();
  await eventually('h1 routes to pn-b and pn-c', async () => ((await cluster!.routes(1)).join() === expected.join() ? true : undefined), { limitMs: 60_000, everyMs: 200 });
  const c = await cluster!.runPod('server-c', 'pn-c', WHO_CALLS);
  const r = await eventually('an answer from the new node', async () => {
    const got = await cluster!.execInPod(1, 'client', get(c.status!.podIP!, 8080, '/cgi-bin/ip'));
    return got.code === 0 && got.stdout.trim() ? got : undefined;
  }, { limitMs: 30_000, everyMs: 500 });
  assert.is(r.stdout.trim(), client.status!.podIP);

  agent.kill('SIGTERM');
  await agent.exited();
  assert.is((await cluster!.api('DELETE', '/api/v1/nodes/pn-c')).code, 200);
  await eventually('h1 and h2 drop the route to pn-c', async () => {
    const [a, b] = await Promise.all([cluster!.routes(1), cluster!.routes(2)]);
    return a.join() === `${CIDRS['pn-b']} via ${SUBNET}.2` && b.join() === `${CIDRS['pn-a']} via ${SUBNET}.1` ? true : undefined;
  }, { limitMs: 60_000, everyMs: 200 });
  assert.not.match(cluster!.agents.get('pn-a')!.output(), /pod network sync failed/);
});

test.run();
