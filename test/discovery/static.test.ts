import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Advertisement } from '../../discovery/advertisement.js';
import { advertisementDocument, createStaticDiscovery, DISCOVERY_PATH } from '../../discovery/static.js';
import { ad, discoveryContract, ids, watchPeers } from './contract.js';
import { eventually } from '../support/eventually.js';
import { deadUrl } from '../support/server-process.js';
import { stopAfterEach } from '../support/set-up.js';

/**
 * A loopback HTTP server standing in for the API servers of several processes: `/slot-K` + DISCOVERY_PATH
 * answers the advertisement put in slot K, or 404 while the slot is empty; `/garbage` answers invalid JSON.
 */
async function fakeApiServers(slots: number) {
  const docs: (Advertisement | undefined)[] = Array.from({ length: slots }, () => undefined);
  const server: Server = createServer((req, res) => {
    const m = /^\/slot-(\d+)(\/.*)$/.exec(req.url ?? '');
    if (req.url === `/garbage${DISCOVERY_PATH}`) { res.writeHead(200).end('{"clusterId": 7'); return; }
    const doc = m && m[2] === DISCOVERY_PATH ? docs[Number(m[1])] : undefined;
    if (!doc) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-type': 'application/json' }).end(advertisementDocument(doc));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    docs,
    urls: docs.map((_, k) => `${base}/slot-${k}`),
    garbageUrl: `${base}/garbage`,
    close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }),
  };
}

discoveryContract('static', async () => {
  const fake = await fakeApiServers(6);
  const browser = createStaticDiscovery({ urls: [...fake.urls, deadUrl], refreshMs: 150, timeoutMs: 1000 });
  return {
    browser,
    waitMs: 10_000,
    async advertise(advertisement, signal) {
      const done = browser.advertise(advertisement, signal);
      const slot = fake.docs.indexOf(undefined);
      if (slot < 0) throw new Error('fake API servers: every slot is taken');
      fake.docs[slot] = advertisement;
      try {
        await done;
      } finally {
        fake.docs[slot] = undefined;
      }
    },
    close: fake.close,
  };
}).run();

const stopLater = stopAfterEach(test);

test('unreachable, failing and invalid URLs yield no peer and a warning naming the URL', async () => {
  const fake = await fakeApiServers(1);
  stopLater(fake.close);
  const dead = deadUrl;
  const warnings: string[] = [];
  fake.docs[0] = ad('alpha', 'server', 's1');
  const browser = createStaticDiscovery({
    urls: [fake.urls[0]!, dead, fake.garbageUrl, `${fake.urls[0]!}/../slot-9`],
    refreshMs: 100, timeoutMs: 1000, onWarning: (m) => warnings.push(m),
  });
  const w = watchPeers(browser, {});
  stopLater(w.stop);
  assert.equal(ids(await w.until((p) => p.length === 1, 10_000, 'the one valid peer is seen')), ['alpha/server/s1']);
  assert.equal(w.latest()[0]!.addresses, ['127.0.0.1']);
  await w.stop();
  await fake.close();
  assert.ok(warnings.some((m) => m.includes(dead) && /ECONNREFUSED/.test(m)), warnings.join('\n'));
  assert.ok(warnings.some((m) => m.includes('/garbage') && /not JSON/.test(m)), warnings.join('\n'));
  assert.ok(warnings.some((m) => m.includes('/slot-9') && /404/.test(m)), warnings.join('\n'));
});

test('a document with a bad field is refused with that field named', async () => {
  const warnings: string[] = [];
  const browser = createStaticDiscovery({
    urls: ['http://192.0.2.1:1'],
    refreshMs: 100,
    fetchDocument: async () => ({ ...ad('alpha', 'server', 's1'), secretToken: 'x' }),
    onWarning: (m) => warnings.push(m),
  });
  const controller = new AbortController();
  const done = browser.browse({}, () => assert.unreachable('an invalid document must not become a peer'), controller.signal);
  stopLater(() => controller.abort());
  await eventually('the refusal warning', () => warnings.length >= 1);
  controller.abort();
  await done;
  assert.ok(warnings.length >= 1);
  assert.match(warnings[0]!, /advertisement\.secretToken: unknown field/);
});

test('two URLs reaching the same process give one peer', async () => {
  const browser = createStaticDiscovery({
    urls: ['http://10.0.0.5:6443', 'http://server-a.lan:6443'],
    refreshMs: 100,
    fetchDocument: async () => ad('alpha', 'server', 's1'),
  });
  const w = watchPeers(browser, { clusterId: 'alpha' });
  stopLater(w.stop);
  const peers = await w.until((p) => p.length > 0, 10_000, 'the server is seen');
  await w.stop();
  assert.equal(ids(peers), ['alpha/server/s1']);
});

test('the URL list is checked when the discovery is created', () => {
  assert.throws(() => createStaticDiscovery({ urls: ['not a url'] }), /urls\[0\] "not a url" is not a URL/);
  assert.throws(() => createStaticDiscovery({ urls: ['http://a:1', 'udp://b:2'] }), /urls\[1\].*http or https/);
  assert.throws(() => createStaticDiscovery({ urls: [], refreshMs: 0 }), /refreshMs/);
});

test.run();
