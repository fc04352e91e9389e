import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeTxt, encodeTxt, instanceLabel, matchesFilter, parseAdvertisement } from '../../discovery/advertisement.js';
import { ad } from './contract.js';

test('TXT strings round-trip, also as the byte strings a DNS decoder returns', () => {
  const a = ad('alpha', 'agent', 'pi-4.kitchen');
  assert.equal(decodeTxt(encodeTxt(a)), a);
  assert.equal(decodeTxt(encodeTxt(a).map((s) => Buffer.from(s))), a);
  for (const s of encodeTxt({ ...a, apiUrl: `https://h:1/${'p'.repeat(180)}` })) assert.ok(Buffer.byteLength(s) <= 255, s);
});

test('TXT without the layout version or with a missing key is refused', () => {
  const txt = encodeTxt(ad('alpha', 'server', 's1'));
  assert.throws(() => decodeTxt(txt.filter((s) => !s.startsWith('v='))), /version null is not 1/);
  assert.throws(() => decodeTxt(txt.filter((s) => !s.startsWith('fp='))), /advertisement\.fingerprint: expected a string/);
  assert.throws(() => decodeTxt(['v=2', ...txt.slice(1)]), /version "2"/);
});

test('parseAdvertisement names the field that is wrong', () => {
  const good = ad('alpha', 'server', 's1');
  assert.throws(() => parseAdvertisement(null), /expected an object, got null/);
  assert.throws(() => parseAdvertisement([]), /got an array/);
  assert.throws(() => parseAdvertisement({ ...good, id: '-x' }), /advertisement\.id/);
  assert.throws(() => parseAdvertisement({ ...good, id: 'x'.repeat(64) }), /advertisement\.id/);
  assert.throws(() => parseAdvertisement({ ...good, apiUrl: 'https://u:p@h:1' }), /credentials/);
  assert.throws(() => parseAdvertisement({ ...good, apiUrl: `https://h/${'a'.repeat(200)}` }), /longer than 200/);
  assert.throws(() => parseAdvertisement({ ...good, extra: 1 }), /advertisement\.extra: unknown field/);
  assert.equal(parseAdvertisement(good), good);
});

test('instance labels are single DNS labels, readable, and differ across clusters for the same id', () => {
  const long = ad('alpha', 'agent', `node.${'a'.repeat(58)}`);
  const label = instanceLabel(long);
  assert.ok(label.length <= 63 && !label.includes('.'), label);
  assert.ok(label.startsWith('node-aaa'), label);
  assert.is.not(instanceLabel(ad('alpha', 'server', 's1')), instanceLabel(ad('beta', 'server', 's1')));
  assert.is.not(instanceLabel(ad('alpha', 'server', 's1')), instanceLabel(ad('alpha', 'agent', 's1')));
});

test('filters match on the fields they name only', () => {
  const a = ad('alpha', 'agent', 'n1');
  assert.ok(matchesFilter(a, {}));
  assert.ok(matchesFilter(a, { clusterId: 'alpha', role: 'agent' }));
  assert.not.ok(matchesFilter(a, { clusterId: 'beta' }));
  assert.not.ok(matchesFilter(a, { clusterId: 'alpha', role: 'server' }));
});

test.run();
