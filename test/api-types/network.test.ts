import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DEFAULT_NETWORK_SETTINGS_DATA, cidrContains, cidrSize, cidrsOverlap, formatCidr, formatIPv4, kubernetesServiceIP, networkSettingsData,
  nthAddress, nthSubnet, parseCidr, parseIPv4, parseNetworkSettings, parsePortRange, subnetCount,
} from '../../api-types/index.js';

test('IPv4 addresses parse to 32-bit numbers and back; anything else is undefined', () => {
  assert.is(parseIPv4('10.43.0.1'), 10 * 2 ** 24 + 43 * 2 ** 16 + 1);
  assert.is(parseIPv4('255.255.255.255'), 2 ** 32 - 1);
  assert.is(formatIPv4(parseIPv4('192.168.1.20')!), '192.168.1.20');
  for (const bad of ['', '10.43.0', '10.43.0.256', '10.43.0.01', '10.43.0.1.2', 'a.b.c.d', '::1', ' 10.0.0.1']) assert.is(parseIPv4(bad), undefined, bad);
});

test('CIDRs: parse, size, contains, nth address and subnet', () => {
  const c = parseCidr('10.42.0.0/16');
  assert.is(formatCidr(c), '10.42.0.0/16');
  assert.is(cidrSize(c), 65536);
  assert.ok(cidrContains(c, parseIPv4('10.42.255.255')!));
  assert.not.ok(cidrContains(c, parseIPv4('10.43.0.0')!));
  assert.is(formatIPv4(nthAddress(c, 1)), '10.42.0.1');
  assert.throws(() => nthAddress(c, 65536), /outside 10.42.0.0\/16/);
  assert.is(formatCidr(nthSubnet(c, 24, 3)), '10.42.3.0/24');
  assert.is(subnetCount(c, 24), 256);
  assert.is(subnetCount(parseCidr('10.42.0.0/24'), 16), 0);
  assert.ok(cidrsOverlap(c, parseCidr('10.42.7.0/24')));
  assert.not.ok(cidrsOverlap(c, parseCidr('10.43.0.0/16')));
  assert.throws(() => parseCidr('10.42.1.0/16'), /host bits set: the network is 10.42.0.0\/16/);
  for (const bad of ['10.42.0.0', '10.42.0.0/33', '10.42.0/16', 'x/8']) assert.throws(() => parseCidr(bad), /not an IPv4 CIDR/, bad);
});

test('port ranges', () => {
  assert.equal(parsePortRange('30000-32767'), { min: 30000, max: 32767 });
  for (const bad of ['30000', '0-10', '20-10', '1-65536']) assert.throws(() => parsePortRange(bad), /not a port range/, bad);
});

test('settings: defaults for missing keys, a round trip through the ConfigMap data, the kubernetes Service address', () => {
  const s = parseNetworkSettings(undefined);
  assert.equal(networkSettingsData(s), { ...DEFAULT_NETWORK_SETTINGS_DATA });
  assert.equal(DEFAULT_NETWORK_SETTINGS_DATA, {
    clusterCIDR: '10.42.0.0/16', serviceCIDR: '10.43.0.0/16', nodePortRange: '30000-32767', clusterDomain: 'cluster.local', clusterDNS: 'node',
  });
  assert.is(kubernetesServiceIP(s), '10.43.0.1');
  const custom = parseNetworkSettings({ serviceCIDR: '10.96.0.0/12', nodePortRange: '31000-31010' });
  assert.is(kubernetesServiceIP(custom), '10.96.0.1');
  assert.equal(parseNetworkSettings(networkSettingsData(custom)), custom);
});

test('settings: each bad value is refused naming its key', () => {
  const cases: [Record<string, string>, RegExp][] = [
    [{ clusterCIDR: '10.42.0.0' }, /clusterCIDR: "10.42.0.0" is not an IPv4 CIDR/],
    [{ serviceCIDR: '10.42.0.0/20' }, /clusterCIDR 10.42.0.0\/16 and serviceCIDR 10.42.0.0\/20 overlap/],
    [{ clusterCIDR: '10.42.0.0/25' }, /clusterCIDR: 10.42.0.0\/25 is smaller than one \/24 podCIDR/],
    [{ nodePortRange: '32767-30000' }, /nodePortRange: "32767-30000" is not a port range/],
    [{ clusterDomain: 'Cluster Local' }, /clusterDomain/],
    [{ clusterDNS: 'somewhere' }, /clusterDNS: must be "node" or an IPv4 address/],
  ];
  for (const [data, message] of cases) assert.throws(() => parseNetworkSettings(data), message, JSON.stringify(data));
});

test.run();
