// Pods' resolv.conf as the kubelet decides it (pkg/kubelet/network/dns), and what Docker is given for it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseResolvConf, podResolvConf, type ResolvConf } from '../../../node-agent/network/pod-dns.js';
import { sandboxDns } from '../../../node-agent/runtime/docker.js';
import { validateObject } from '../../../api-types/index.js';
import type { Pod } from '../../../api-types/index.js';

const host: ResolvConf = parseResolvConf([
  '# written by the LAN',
  'nameserver 192.168.1.1',
  'nameserver 192.168.1.2 ; second',
  'search lan example.org',
  'options timeout:2 attempts:3',
].join('\n'));
const cluster = { nameserver: '192.168.1.20', clusterDomain: 'cluster.local' };
const pod = (spec: Partial<Pod['spec']>): Pod => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'shop' }, spec: { containers: [{ name: 'c', image: 'i' }], ...spec } });

test('resolv.conf text: nameservers, the last search/domain line, options; comments dropped', () => {
  assert.equal(host, { nameservers: ['192.168.1.1', '192.168.1.2'], searches: ['lan', 'example.org'], options: ['timeout:2', 'attempts:3'] });
  assert.equal(parseResolvConf('search a b\ndomain c\n').searches, ['c']);
});

test('ClusterFirst (the default): the node DNS address, cluster search list then the host searches, ndots:5', () => {
  const expected = { nameservers: ['192.168.1.20'], searches: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'lan', 'example.org'], options: ['ndots:5'] };
  assert.equal(podResolvConf(pod({}), host, cluster), expected);
  assert.equal(podResolvConf(pod({ dnsPolicy: 'ClusterFirst' }), host, cluster), expected);
  assert.equal(podResolvConf(pod({ dnsPolicy: 'ClusterFirstWithHostNet', hostNetwork: true }), host, cluster), expected);
});

test("Default, and ClusterFirst on the host network: the host's resolv.conf", () => {
  assert.equal(podResolvConf(pod({ dnsPolicy: 'Default' }), host, cluster), host);
  assert.equal(podResolvConf(pod({ dnsPolicy: 'ClusterFirst', hostNetwork: true }), host, cluster), host);
});

test('None: only dnsConfig; dnsConfig merges without duplicates, options by name with the pod winning', () => {
  assert.equal(podResolvConf(pod({ dnsPolicy: 'None', dnsConfig: { nameservers: ['1.1.1.1'], searches: ['x.test'], options: [{ name: 'ndots', value: '2' }, { name: 'edns0' }] } }), host, cluster),
    { nameservers: ['1.1.1.1'], searches: ['x.test'], options: ['ndots:2', 'edns0'] });
  assert.equal(podResolvConf(pod({ dnsConfig: { nameservers: ['192.168.1.20', '9.9.9.9'], searches: ['svc.cluster.local', 'extra.test'], options: [{ name: 'ndots', value: '1' }, { name: 'single-request' }] } }), host, cluster), {
    nameservers: ['192.168.1.20', '9.9.9.9'],
    searches: ['shop.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'lan', 'example.org', 'extra.test'],
    options: ['ndots:1', 'single-request'],
  });
  assert.equal(podResolvConf(pod({ dnsPolicy: 'Default', dnsConfig: { options: [{ name: 'timeout', value: '5' }] } }), host, cluster).options, ['timeout:5', 'attempts:3']);
});

test('limits: 3 nameservers, 32 search paths', () => {
  const many = { nameservers: ['1.0.0.1', '1.0.0.2', '1.0.0.3', '1.0.0.4'], searches: Array.from({ length: 40 }, (_, i) => `s${i}.test`), options: [] };
  const conf = podResolvConf(pod({ dnsPolicy: 'Default' }), many, cluster);
  assert.is(conf.nameservers.length, 3);
  assert.is(conf.searches.length, 32);
});

test('Docker: Dns, DnsSearch, DnsOptions of the sandbox; nothing without nameservers (the engine decides)', () => {
  assert.equal(sandboxDns({ dns: { nameservers: ['192.168.1.20'], searches: ['a.test'], options: ['ndots:5'] } }), { Dns: ['192.168.1.20'], DnsSearch: ['a.test'], DnsOptions: ['ndots:5'] });
  assert.equal(sandboxDns({}), {});
  assert.equal(sandboxDns({ dns: { nameservers: [], searches: ['a'], options: [] } }), {});
});

test('validation: dnsPolicy None needs a nameserver; at most 3, IP addresses; search domains are domains', () => {
  const errors = (spec: Partial<Pod['spec']>): string => {
    const r = validateObject(pod(spec));
    return r.ok ? '' : r.issues.map((i) => `${i.path}: ${i.message}`).join('; ');
  };
  assert.is(errors({ dnsPolicy: 'None', dnsConfig: { nameservers: ['1.1.1.1'] } }), '');
  assert.match(errors({ dnsPolicy: 'None' }), 'spec.dnsConfig.nameservers: must provide at least one DNS nameserver when `dnsPolicy` is None');
  assert.match(errors({ dnsConfig: { nameservers: ['1.1.1.1', '1.1.1.2', '1.1.1.3', '1.1.1.4'] } }), 'must not have more than 3 nameservers');
  assert.match(errors({ dnsConfig: { nameservers: ['dns.google'] } }), 'spec.dnsConfig.nameservers[0]: must be an IP address');
  assert.match(errors({ dnsConfig: { searches: ['Not A Domain'] } }), 'spec.dnsConfig.searches[0]: must be a DNS domain');
  assert.is(errors({ dnsConfig: { searches: ['trailing.dot.'] }, enableServiceLinks: false }), '');
});

test.run();
