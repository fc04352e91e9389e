// The agent's cluster DNS against a real server: Services and EndpointSlices made through the API are answered
// over UDP by the agent's DNS server, follow changes, and are still answered after the server is killed. And whom
// a node's DNS answers, and where it serves when pods are on Docker's default bridge (`flotilla up`).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FakeRuntime } from '../../../node-agent/runtime/fake.js';
import { RealServer, type TestAgent } from '../real-server.js';
import { eventually } from '../../support/eventually.js';
import { ask } from './dns-client.js';
import { ClusterDns, defaultBridgeDns, interfaceAddresses, nodeDnsClients } from '../../../node-agent/network/cluster-dns.js';
import { formatCidr, parseCidr, parseNetworkSettings, type NetworkSettings } from '../../../api-types/network.js';
import type { NetworkInterfaceInfo } from 'node:os';
import pino from 'pino';
import type { NodeApi } from '../../../node-agent/api-client.js';
import type { ServiceView } from '../../../node-agent/network/service-cache.js';
import type { Service } from '../../../api-types/index.js';
import { readNetworkSettings } from '../../../node-agent/run.js';

const service = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec });

test('Services and EndpointSlices from the API are answered, changes followed, and served while the API is gone', async () => {
  const real = new RealServer();
  let agent: TestAgent | undefined;
  try {
    await real.start();
    await real.client.request('POST', '/api/v1/namespaces/default/services', service('web', { clusterIP: '10.43.0.50', ports: [{ name: 'http', port: 80 }] }));
    await real.client.request('POST', '/api/v1/namespaces/default/services', service('db', { clusterIP: 'None', ports: [{ name: 'pg', port: 5432 }] }));
    await real.client.request('POST', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: 'db-abc', namespace: 'default', labels: { 'kubernetes.io/service-name': 'db' } },
      addressType: 'IPv4', endpoints: [{ addresses: ['10.42.0.7'], hostname: 'db-0', conditions: { ready: true } }], ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }],
    });
    agent = real.startAgent('dns-node', new FakeRuntime(), { dns: { address: '127.0.0.1', port: 0 } });
    const info = await agent.info;
    const port = await eventually('the DNS server listening', () => info.dns?.port);
    const a = (name: string) => ask(port, name, 'A').then((r) => (r.answers ?? []).map((x) => ('data' in x ? x.data : undefined)));
    assert.equal(await eventually('web answered', async () => { const l = await a('web.default.svc.cluster.local'); return l.length ? l : undefined; }), ['10.43.0.50']);
    assert.equal(await a('db-0.db.default.svc.cluster.local'), ['10.42.0.7']);

    await real.client.request('POST', '/api/v1/namespaces/default/services', service('late', { clusterIP: '10.43.0.51', ports: [{ port: 80 }] }));
    await eventually('a new Service answered', async () => (await a('late.default.svc.cluster.local'))[0] === '10.43.0.51');

    await real.kill();
    // No server: the last view is served, from memory.
    assert.equal(await a('web.default.svc.cluster.local'), ['10.43.0.50']);
    assert.equal(await a('late.default.svc.cluster.local'), ['10.43.0.51']);
    assert.equal(await a('db.default.svc.cluster.local'), ['10.42.0.7']);
    assert.is((await ask(port, 'gone.default.svc.cluster.local', 'A')).rcode, 'NXDOMAIN');
  } finally {
    await agent?.stop();
    await real.close();
  }
});

test('the network settings: read again until a server answers (a missing ConfigMap: the defaults), undefined once stopped', async () => {
  const log = pino({ level: 'silent' });
  const retry = { retrySeconds: 0.01, retryMaxSeconds: 0.02 };
  let calls = 0;
  const flaky = { getConfigMap: async () => { if (++calls < 3) throw new Error('no server'); return { data: { clusterDomain: 'example.internal' } }; } } as unknown as NodeApi;
  const read = await readNetworkSettings(flaky, log, retry, new AbortController().signal);
  assert.is(read?.clusterDomain, 'example.internal');
  assert.is(calls, 3);
  const missing = { getConfigMap: async () => undefined } as unknown as NodeApi;
  assert.equal(await readNetworkSettings(missing, log, retry, new AbortController().signal), parseNetworkSettings(undefined));
  const stop = new AbortController();
  const down = { getConfigMap: async () => { stop.abort(); throw new Error('no server'); } } as unknown as NodeApi;
  assert.is(await readNetworkSettings(down, log, retry, stop.signal), undefined);
});

test('cluster DNS serves the default domain until the settings are read, then theirs', async () => {
  const web: Service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'default' }, spec: { clusterIP: '10.43.0.50', ports: [{ port: 80 }] } };
  const view: ServiceView = { services: () => [web], slicesOf: () => [], onChange: () => () => {} };
  let settle!: (s: NetworkSettings) => void;
  const dns = new ClusterDns({ view, settings: new Promise((resolve) => { settle = resolve; }), address: '127.0.0.1', port: 0, log: pino({ level: 'silent' }) });
  const stop = new AbortController();
  const running = dns.run(stop.signal);
  try {
    await dns.ready;
    const port = dns.port!;
    const a = async (name: string) => (await ask(port, name, 'A')).answers!.map((x) => ('data' in x ? x.data : undefined));
    assert.equal(await a('web.default.svc.cluster.local'), ['10.43.0.50']);
    settle(parseNetworkSettings({ clusterDomain: 'example.internal' }));
    assert.equal(await eventually('the new domain served', async () => { const l = await a('web.default.svc.example.internal'); return l.length ? l : undefined; }), ['10.43.0.50']);
    assert.is(dns.resolvConf({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' }, spec: { containers: [] } }).searches[0], 'default.svc.example.internal');
  } finally {
    stop.abort();
    await running;
  }
});

test('a node answers its pods, itself and the extra networks; the rest of its LAN is refused', () => {
  const iface = (address: string, family: 'IPv4' | 'IPv6'): NetworkInterfaceInfo => ({ address, family, netmask: '', mac: '', internal: false, cidr: null } as NetworkInterfaceInfo);
  const clients = nodeDnsClients(parseCidr('10.42.0.0/16'), [parseCidr('172.17.0.0/16')], {
    eth0: [iface('192.168.1.20', 'IPv4'), iface('fe80::1', 'IPv6')], lo: [iface('127.0.0.1', 'IPv4')],
  });
  for (const ok of ['10.42.3.7', '192.168.1.20', 'fe80::1', '127.0.0.1', '127.1.2.3', '::1', '172.17.0.2']) assert.ok(clients.allows(ok), ok);
  for (const no of ['192.168.1.21', '10.43.0.10', '8.8.8.8', 'fe80::2', '172.18.0.2']) assert.not.ok(clients.allows(no), no);
});

test('the default bridge: its IPAM gateway, else the address of its interface in its subnet; nothing known, no DNS', async () => {
  const asked: string[] = [];
  const addresses = async (name: string) => { asked.push(name); return name === 'docker0' ? ['10.9.9.9', '172.17.0.1'] : []; };
  const withGateway = await defaultBridgeDns({ IPAM: { Config: [{ Subnet: '172.17.0.0/16', Gateway: '172.17.0.1' }] } }, addresses);
  assert.equal(withGateway && [withGateway.address, withGateway.clients.map(formatCidr)], ['172.17.0.1', ['172.17.0.0/16']]);
  assert.equal(asked, []);
  // Docker 20.10's default bridge: no Gateway in its IPAM config.
  const docker2010 = await defaultBridgeDns({ IPAM: { Config: [{ Subnet: '172.17.0.0/16' }] }, Options: { 'com.docker.network.bridge.name': 'docker0' } }, addresses);
  assert.equal(docker2010 && [docker2010.address, docker2010.clients.map(formatCidr)], ['172.17.0.1', ['172.17.0.0/16']]);
  // IPv6 subnets are skipped; an interface without an address in the subnet gives nothing.
  assert.is(await defaultBridgeDns({ IPAM: { Config: [{ Subnet: 'fd00::/64', Gateway: 'fd00::1' }, { Subnet: '192.168.5.0/24' }] }, Options: { 'com.docker.network.bridge.name': 'docker0' } }, addresses), undefined);
  assert.is(await defaultBridgeDns({}, addresses), undefined);
});

test('interface addresses from ip -j: IPv4 addresses of a down interface too; none when ip fails', async () => {
  const json = JSON.stringify([{ ifname: 'docker0', flags: ['NO-CARRIER', 'UP'], operstate: 'DOWN', addr_info: [{ family: 'inet', local: '172.17.0.1', prefixlen: 16 }] }]);
  assert.equal(await interfaceAddresses('docker0', async (cmd, args) => {
    assert.equal([cmd, ...args], ['ip', '-j', '-4', 'addr', 'show', 'dev', 'docker0']);
    return { code: 0, stdout: json, stderr: '' };
  }), ['172.17.0.1']);
  assert.equal(await interfaceAddresses('nope', async () => ({ code: 1, stdout: '', stderr: 'Device "nope" does not exist.' })), []);
  assert.equal(await interfaceAddresses('x', async () => { throw new Error('ip: not found'); }), []);
});

test.run();
