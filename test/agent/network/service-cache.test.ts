// The agent's ServiceCache against a real server over HTTP: what it lists and watches, by key, and the
// coalescing of change notifications (a burst of writes is one notification, an unchanged relist none), and the
// Services each notification names.
import pino from 'pino';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NodeApi } from '../../../node-agent/api-client.js';
import { ServiceCache, type ChangedServices } from '../../../node-agent/network/service-cache.js';
import { eventually } from '../../support/eventually.js';
import { RealServer } from '../real-server.js';
import { serviceObject, sliceObject } from './service-objects.js';

/** The cache's coalescing window: long enough that the eight writes below, sent at once, land in one window even
 * on a loaded machine (a burst is the changes within the window after its first). */
const BURST_MS = 2_000;

test('the cache follows Services and EndpointSlices, and a burst of changes is one notification', async () => {
  const srv = new RealServer();
  const stop = new AbortController();
  let done: Promise<void> = Promise.resolve();
  try {
    await srv.start();
    const cache = new ServiceCache(new NodeApi(srv.client), { log: pino({ level: 'silent' }), coalesceMs: BURST_MS, retrySeconds: 0.1 });
    let notified = 0;
    const named = new Set<string>();
    let last: ChangedServices | undefined;
    cache.onChange((changed) => {
      notified++;
      last = changed;
      for (const key of changed?.keys() ?? []) named.add(key);
    });
    done = cache.run(stop.signal);
    await cache.synced;
    const before = notified;
    // Ten writes in quick succession: Services in two namespaces and their slices.
    await srv.client.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'other' } }).catch(() => undefined);
    const writes = [];
    for (const ns of ['default', 'other']) {
      for (const i of [1, 2]) {
        writes.push(srv.client.request('POST', `/api/v1/namespaces/${ns}/services`, serviceObject(ns, `s${i}`, { clusterIP: `10.43.${ns === 'default' ? 1 : 2}.${i}`, ports: [{ port: 80 }] })));
        writes.push(srv.client.request('POST', `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`, sliceObject(ns, `s${i}-a`, `s${i}`, [{ port: 80 }], [{ ip: `10.42.0.${i}` }])));
      }
    }
    await Promise.all(writes);
    await eventually('all four Services seen', () => cache.services().filter((s) => s.metadata.name?.startsWith('s')).length === 4);
    await eventually('the slices by their service', () => cache.slicesOf('other', 's2').map((s) => s.metadata.name).join() === 's2-a');
    assert.equal(cache.slicesOf('default', 's1').map((s) => s.endpoints[0]!.addresses[0]), ['10.42.0.1']);
    const keys = ['default/s1', 'default/s2', 'other/s1', 'other/s2'];
    await eventually('every written Service named as changed', () => keys.every((key) => named.has(key)));
    assert.ok(notified - before <= 2, `a burst of 8 writes gave ${notified - before} notifications`);

    const after = notified;
    await srv.client.request('DELETE', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/s1-a');
    await eventually('the deleted slice gone', () => cache.slicesOf('default', 's1').length === 0);
    await eventually('one more notification', () => notified === after + 1);
    assert.equal([...last!.keys()], ['default/s1'], 'the Service whose slice went');
    assert.is(last!.get('default/s1'), cache.services().find((s) => s.metadata.namespace === 'default' && s.metadata.name === 's1'), 'as it is now');

    const later = notified;
    await srv.client.request('DELETE', '/api/v1/namespaces/other/services/s2');
    await eventually('the deleted Service gone', () => !cache.services().some((s) => s.metadata.namespace === 'other' && s.metadata.name === 's2'));
    await eventually('its notification', () => notified === later + 1);
    assert.equal([...last!.entries()], [['other/s2', undefined]], 'a gone Service is named without an object');
  } finally {
    stop.abort();
    await done;
    await srv.close();
  }
});

test.run();
