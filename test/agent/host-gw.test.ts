// The pure core of the pod network (node-agent/network/host-gw.ts): routes wanted from the Node list, the
// changes from the kernel's routes, nodes not on a directly connected subnet, the bridge network spec by engine
// version, and which iptables holds Docker's rules.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ROUTE_PROTOCOL,
  bridgeNetworkSpec,
  chainRules,
  desiredRoutes,
  iptablesOfDocker,
  offLinkNodes,
  planRouteChanges,
  podCidrOf,
  type NetworkNode,
} from '../../node-agent/network/host-gw.js';

const node = (name: string, podCIDR?: string, address?: string): NetworkNode => ({
  metadata: { name },
  ...(podCIDR ? { spec: { podCIDR } } : {}),
  ...(address ? { status: { addresses: [{ type: 'Hostname', address: name }, { type: 'InternalIP', address }] } } : {}),
});

test('every other node with a podCIDR and an InternalIP gets a route via that address', () => {
  const routes = desiredRoutes('a', [node('a', '10.42.1.0/24', '192.168.1.10'), node('b', '10.42.2.0/24', '192.168.1.11'), node('c', undefined, '192.168.1.12'), node('d', '10.42.4.0/24')]);
  assert.equal([...routes], [['10.42.2.0/24', '192.168.1.11']]);
});

test('podCIDRs\' first IPv4 entry wins over podCIDR', () => {
  assert.is(podCidrOf({ metadata: { name: 'x' }, spec: { podCIDR: '10.42.9.0/24', podCIDRs: ['fd00::/64', '10.42.3.0/24'] } }), '10.42.3.0/24');
  assert.is(podCidrOf({ metadata: { name: 'x' }, spec: { podCIDR: 'nonsense' } }), undefined);
});

test('route changes: missing and moved routes are replaced, ours that no node has are removed, others are left alone', () => {
  const desired = new Map([['10.42.2.0/24', '192.168.1.11'], ['10.42.3.0/24', '192.168.1.12']]);
  const changes = planRouteChanges(desired, [
    { dst: '10.42.2.0/24', gateway: '192.168.1.11', protocol: String(ROUTE_PROTOCOL) },
    { dst: '10.42.3.0/24', gateway: '192.168.1.99', protocol: String(ROUTE_PROTOCOL) },
    { dst: '10.42.5.0/24', gateway: '192.168.1.15', protocol: String(ROUTE_PROTOCOL) },
    { dst: '10.42.6.0/24', gateway: '192.168.1.16', protocol: 'static' },
  ]);
  assert.equal(changes, { replace: [{ dst: '10.42.3.0/24', gateway: '192.168.1.12' }], remove: ['10.42.5.0/24'] });
  assert.equal(planRouteChanges(desired, [
    { dst: '10.42.2.0/24', gateway: '192.168.1.11', protocol: ROUTE_PROTOCOL },
    { dst: '10.42.3.0/24', gateway: '192.168.1.12', protocol: ROUTE_PROTOCOL },
  ]), { replace: [], remove: [] }, 'converged: nothing to do');
});

test('a node whose address is on no directly connected subnet is named', () => {
  const routes = new Map([['10.42.2.0/24', '192.168.1.11'], ['10.42.3.0/24', '192.168.2.12']]);
  assert.equal(offLinkNodes(routes, [{ address: '127.0.0.1', prefixLength: 8 }, { address: '192.168.1.10', prefixLength: 24 }]), [{ cidr: '10.42.3.0/24', gateway: '192.168.2.12' }]);
});

test('the bridge network: gateway .1, Docker masquerade off, direct routing allowed only where the engine knows the option', () => {
  const old = bridgeNetworkSpec('10.42.1.0/24', '20.10.24+dfsg1');
  assert.equal(old, {
    name: 'flotilla-pods-10.42.1.0-24', bridge: 'fl0a2a0100-24', subnet: '10.42.1.0/24', gateway: '10.42.1.1',
    options: { 'com.docker.network.bridge.name': 'fl0a2a0100-24', 'com.docker.network.bridge.enable_ip_masquerade': 'false' },
  });
  assert.ok(old.bridge.length <= 15);
  assert.is(bridgeNetworkSpec('10.42.1.0/24', '28.1.1').options['com.docker.network.bridge.gateway_mode_ipv4'], 'nat-unprotected');
  assert.throws(() => bridgeNetworkSpec('10.42.1/24', '28.1.1'), /not an IPv4 CIDR/);
  assert.is(bridgeNetworkSpec('192.168.255.0/24', '20.10.0').bridge, 'flc0a8ff00-24');
});

test('masquerade only for what leaves the cluster CIDR; forwarding accepted to and from it', () => {
  const rules = chainRules('10.42.0.0/16', '10.42.1.0/24');
  assert.equal(rules.masquerade, [['-s', '10.42.1.0/24', '!', '-d', '10.42.0.0/16', '-m', 'comment', '--comment', 'flotilla pods leaving the cluster CIDR', '-j', 'MASQUERADE']]);
  assert.equal(rules.forward.map((r) => r.slice(0, 2)), [['-s', '10.42.0.0/16'], ['-d', '10.42.0.0/16']]);
});

test('the iptables used is the one holding Docker\'s chains, never both', () => {
  const docker = '-P INPUT ACCEPT\n-P FORWARD DROP\n-N DOCKER\n-N DOCKER-USER\n-A FORWARD -j DOCKER-USER\n';
  const bare = '-P INPUT ACCEPT\n-P FORWARD ACCEPT\n-P OUTPUT ACCEPT\n';
  assert.is(iptablesOfDocker(bare, docker), 'iptables-nft');
  assert.is(iptablesOfDocker(docker, bare), 'iptables-legacy');
  assert.is(iptablesOfDocker(docker, undefined), 'iptables-legacy');
  assert.is(iptablesOfDocker(undefined, bare), 'iptables');
});

test.run();
