// The discovery contract over real multicast, plus what only mDNS does (interface choice, address changes).
// Sockets cannot change namespace, so the suite re-runs itself inside host h1 of a private lab
// (reRunInLabHost); the outer process only builds and removes the lab.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { createMdnsDiscovery } from '../../discovery/mdns.js';
import { reRunInLabHost } from '../lab/lab.js';
import { ad, discoveryContract, watchPeers } from './contract.js';

if (!(await reRunInLabHost(import.meta.url, { hosts: 1, prefix: 'fl-disc-mdns' }))) {
  // A TTL far above waitMs: a withdrawn peer can only vanish in time through its goodbye.
  const options = { interface: 'eth0', ttlSeconds: 60, maxQueryIntervalMs: 2000, addressPollMs: 300 };
  discoveryContract('mdns', async () => {
    const discovery = createMdnsDiscovery(options);
    return { browser: discovery, advertise: discovery.advertise, waitMs: 5000, close: async () => {} };
  }).run();

  const test = suite('mdns only');

  test('an interface can be chosen by address as well as by name', async () => {
    const stop = new AbortController();
    const advertising = createMdnsDiscovery({ ...options, interface: '10.77.0.1' }).advertise(ad('alpha', 'server', 's1'), stop.signal);
    const w = watchPeers(createMdnsDiscovery(options), { clusterId: 'alpha' });
    const peers = await w.until((p) => p.length === 1, 5000, 'the server is seen');
    assert.equal(peers[0]!.addresses, ['10.77.0.1']);
    stop.abort();
    await advertising;
    await w.stop();
  });

  test('an interface that is not there is refused, listing the ones that are', () => {
    assert.throws(() => createMdnsDiscovery({ interface: 'wlan7' }), /interface "wlan7" is neither.*present: lo 127\.0\.0\.1, eth0 10\.77\.0\.1/);
    assert.throws(() => createMdnsDiscovery({ interface: '10.9.9.9' }), /no interface has the address 10\.9\.9\.9/);
    assert.throws(() => createMdnsDiscovery({ ttlSeconds: 0 }), /ttlSeconds 0/);
  });

  test('address changes are re-announced: browsers see the new address set', async () => {
    const stop = new AbortController();
    const advertising = createMdnsDiscovery(options).advertise(ad('alpha', 'agent', 'n1'), stop.signal);
    const w = watchPeers(createMdnsDiscovery(options), {});
    await w.until((p) => p[0]?.addresses.join() === '10.77.0.1', 5000, 'the agent is seen at its first address');
    execFileSync('ip', ['addr', 'add', '10.77.0.21/24', 'dev', 'eth0']);
    try {
      await w.until((p) => p[0]?.addresses.join() === '10.77.0.1,10.77.0.21', 5000, 'the added address is announced');
    } finally {
      execFileSync('ip', ['addr', 'del', '10.77.0.21/24', 'dev', 'eth0']);
    }
    await w.until((p) => p[0]?.addresses.join() === '10.77.0.1', 5000, 'the removed address is withdrawn');
    stop.abort();
    await advertising;
    await w.stop();
  });

  test.run();
}
