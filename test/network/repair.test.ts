// The leader-start check of the allocation rows against the objects (server/network/repair.ts), on a real
// SQLite store behind ObjectService; the drift is made by writing rows past the state machine's object path.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { rowCrc } from '../../server/store/sqlite-check.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import { ObjectService, resourceKey } from '../../server/objects/service.js';
import { ALLOCATIONS, ALLOCATIONS_RESOURCE, allocationRow } from '../../server/network/allocator.js';
import { repairAllocations } from '../../server/network/repair.js';
import { resourceOfKind } from '../../api-types/index.js';
import type { Service } from '../../api-types/index.js';

const services = resourceOfKind('Service');
const namespaces = resourceOfKind('Namespace');
const quiet = { warn: () => {}, error: () => {} };

function rows(objects: ObjectService): string[] {
  return objects.list(ALLOCATIONS).items.filter((r) => r.kind === 'Allocation')
    .map((r) => `${r.metadata.namespace} ${r.metadata.name} ${(r.spec as { name: string }).name}`).sort();
}

test('the internal resource names the rows the state machine writes', () => {
  assert.is(resourceKey(ALLOCATIONS), ALLOCATIONS_RESOURCE);
});

test('an orphan row is released, a missing row restored, a Service without a ClusterIP allocated; a clean state is left alone', async () => {
  const store = new SqliteStore({ path: ':memory:' });
  try {
    const proposer = new LocalProposer(store);
    const objects = new ObjectService(store, proposer);
    await objects.create(namespaces, undefined, { metadata: { name: 'default' } });
    const web = await objects.create(services, 'default', { metadata: { name: 'web' }, spec: { ports: [{ port: 80 }] } });
    const ip = web.spec!.clusterIP!;
    assert.equal(rows(objects), [`service-ips ${ip} web`]);
    assert.equal(await repairAllocations(objects, quiet), { released: [], restored: [], allocated: [], conflicts: [] });

    // Drift, written into the SQLite rows as an older version (or a defect) would leave them: web's row gone, a
    // row for a Service that never existed, a Service without an address.
    // Rows with their checksum (server/store/sqlite-check.ts), as the store writes them: drift, not damage.
    const put = (resource: string, ns: string, name: string, body: unknown) => {
      const text = JSON.stringify(body);
      store.db.prepare('INSERT OR REPLACE INTO objects (resource, namespace, name, body, crc) VALUES (?, ?, ?, ?, ?)').run(resource, ns, name, text, rowCrc([resource, ns, name, text]));
    };
    store.db.prepare('DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?').run(ALLOCATIONS_RESOURCE, 'service-ips', ip);
    put(ALLOCATIONS_RESOURCE, 'service-ips', '10.43.0.77', allocationRow('service-ips', '10.43.0.77', { resource: 'services', namespace: 'default', name: 'ghost', uid: 'no-such-uid' }));
    const old: Service = { apiVersion: 'v1', kind: 'Service', metadata: { name: 'old', namespace: 'default', uid: 'u-old', resourceVersion: '1' }, spec: { type: 'ClusterIP', ports: [{ port: 80, protocol: 'TCP', targetPort: 80 }] } };
    put('services', 'default', 'old', old);

    const report = await repairAllocations(objects, quiet);
    assert.equal(report.released, ['service-ips/10.43.0.77']);
    assert.equal(report.restored, [`service-ips/${ip}`]);
    assert.equal(report.allocated, ['services default/old']);
    const repaired = objects.get(services, 'default', 'old')!.spec!.clusterIP!;
    assert.match(repaired, /^10\.43\./);
    assert.ok(rows(objects).includes(`service-ips ${repaired} old`));
    assert.equal(rows(objects).filter((r) => r.includes(' web')), [`service-ips ${ip} web`]);
    assert.not.ok(rows(objects).some((r) => r.includes('ghost')));
    assert.equal(await repairAllocations(objects, quiet), { released: [], restored: [], allocated: [], conflicts: [] });
  } finally {
    store.close();
  }
});

test.run();
