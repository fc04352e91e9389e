// The choice of the node announcing each LoadBalancer pool address (server/network/load-balancer-choice.ts) and
// the address arithmetic of the pools (server/network/load-balancer-pools.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chooseAnnouncers } from '../../server/network/load-balancer-choice.js';
import { canonicalAddress, formatRange, parseAddressRange, poolIndexSpace, poolSize, rangesOverlap } from '../../server/network/load-balancer-pools.js';

const NODES = ['n1', 'n2', 'n3'];

test('an announcer that may still serve its address keeps it, even when the spread is uneven', () => {
  const chosen = chooseAnnouncers([
    { address: '10.0.0.1', eligible: NODES, current: 'n1' },
    { address: '10.0.0.2', eligible: NODES, current: 'n1' },
  ]);
  assert.is(chosen.get('10.0.0.1'), 'n1');
  assert.is(chosen.get('10.0.0.2'), 'n1');
});

test('addresses without an announcer spread over the eligible nodes, fewest addresses first', () => {
  const inputs = Array.from({ length: 6 }, (_, i) => ({ address: `10.0.0.${i + 1}`, eligible: NODES }));
  const chosen = chooseAnnouncers(inputs);
  const load = new Map<string, number>();
  for (const node of chosen.values()) load.set(node!, (load.get(node!) ?? 0) + 1);
  assert.equal([...load.values()], [2, 2, 2]);
});

test('an announcer no longer eligible loses its address to the least loaded eligible node', () => {
  const chosen = chooseAnnouncers([
    { address: '10.0.0.1', eligible: ['n2', 'n3'], current: 'n1' },
    { address: '10.0.0.2', eligible: ['n2', 'n3'], current: 'n2' },
  ]);
  assert.is(chosen.get('10.0.0.1'), 'n3');
  assert.is(chosen.get('10.0.0.2'), 'n2');
});

test('no eligible node: no announcer', () => {
  assert.is(chooseAnnouncers([{ address: '10.0.0.1', eligible: [], current: 'n1' }]).get('10.0.0.1'), undefined);
});

test('the choice is a function of its inputs: the order they come in changes nothing', () => {
  const inputs = Array.from({ length: 20 }, (_, i) => ({ address: `10.0.${i}.1`, eligible: i % 3 === 0 ? ['n2'] : NODES, ...(i % 4 === 0 ? { current: 'n1' } : {}) }));
  const once = chooseAnnouncers(inputs);
  const reversed = chooseAnnouncers([...inputs].reverse());
  assert.equal([...once.entries()].sort(), [...reversed.entries()].sort());
});

test('ranges: FIRST-LAST, the short IPv4 form, CIDRs and single addresses of both families, written canonically', () => {
  assert.is(formatRange(parseAddressRange('192.168.1.240-192.168.1.250')), '192.168.1.240-192.168.1.250');
  assert.is(formatRange(parseAddressRange('192.168.1.240-250')), '192.168.1.240-192.168.1.250');
  assert.is(formatRange(parseAddressRange('192.168.1.240/30')), '192.168.1.240-192.168.1.243');
  assert.is(formatRange(parseAddressRange('10.0.0.7')), '10.0.0.7');
  assert.is(formatRange(parseAddressRange('FD00:0:0:0:0:0:0:10/124')), 'fd00::10-fd00::1f');
  assert.is(formatRange(parseAddressRange('2001:db8::1-2001:db8::0:2')), '2001:db8::1-2001:db8::2');
  assert.is(canonicalAddress('2001:0db8:0000:0000:0001:0000:0000:0001'), '2001:db8::1:0:0:1');
  assert.is(canonicalAddress('::ffff:192.168.1.1'), '::ffff:c0a8:101');
  assert.is(canonicalAddress('1.2.3'), undefined);
});

test('bad ranges say what is wrong', () => {
  assert.throws(() => parseAddressRange('10.0.0.1/33'), /longer than an IPv4 address/);
  assert.throws(() => parseAddressRange('10.0.0.1/24'), /host bits are set: the network is 10\.0\.0\.0\/24/);
  assert.throws(() => parseAddressRange('10.0.0.1-fd00::1'), /both ends of a range must be of one family/);
  assert.throws(() => parseAddressRange('10.0.0.9-10.0.0.1'), /ends \(10\.0\.0\.1\) before it starts/);
  assert.throws(() => parseAddressRange('lan'), /not an IPv4 or IPv6 address/);
});

test('overlap is per family; pool sizes and the dynamic index space (capped per range)', () => {
  assert.ok(rangesOverlap(parseAddressRange('10.0.0.0/29'), parseAddressRange('10.0.0.7-10.0.0.9')));
  assert.not.ok(rangesOverlap(parseAddressRange('10.0.0.0/29'), parseAddressRange('10.0.0.8-10.0.0.9')));
  assert.not.ok(rangesOverlap(parseAddressRange('0.0.0.1'), parseAddressRange('::1')));
  const pool = { name: 'p', autoAssign: true, ranges: ['10.0.0.1-10.0.0.2', 'fd00::/64'] };
  assert.equal(poolSize(pool), { 4: 2, 6: Number.MAX_SAFE_INTEGER });
  const space = poolIndexSpace(pool);
  assert.is(space.size, 2 + 65_536);
  assert.equal([space.key(0), space.key(1), space.key(2), space.key(3)], ['10.0.0.1', '10.0.0.2', 'fd00::', 'fd00::1']);
});

test.run();
