// "Repaired at leader start": the allocation rows (server/network/allocator.ts) must match what the objects
// hold. The state machine keeps them in step in every transaction, so drift means a defect or state written by
// an older version; the new leader looks once, logs what it finds, and fixes it through the write path:
// - a row whose owner is gone (or is another object now) is deleted (precondition: the row's resourceVersion);
// - a value an object holds without a row gets its row back (409 if another object holds it: logged, left);
// - a Service that should have a ClusterIP and has none, or a Node without a podCIDR, is written once again
//   unchanged, and the state machine allocates for it as for any write.
import type { Logger } from 'pino';
import type { Node, Service } from '../../api-types/index.js';
import type { ObjectService } from '../objects/service.js';
import { StoreError } from '../store/types.js';
import type { StoredObject } from '../store/types.js';
import { ALLOCATIONS, allocationRow, heldBy } from './allocator.js';
import type { AllocationOwner, PoolName } from './allocator.js';
import { resources } from '../controllers/cluster-objects.js';

export interface RepairReport {
  released: string[];
  restored: string[];
  allocated: string[];
  conflicts: string[];
}

export async function repairAllocations(objects: ObjectService, log: Pick<Logger, 'warn' | 'error'>): Promise<RepairReport> {
  const report: RepairReport = { released: [], restored: [], allocated: [], conflicts: [] };
  // One synchronous read of everything: a consistent view (applies happen between awaits only).
  const services = objects.list(resources.services).items;
  const nodes = objects.list(resources.nodes).items;
  const rows = objects.list(ALLOCATIONS).items.filter((r) => r.kind === 'Allocation');
  const wanted = new Map<string, { pool: PoolName; key: string; owner: AllocationOwner }>();
  const add = (resource: string, o: StoredObject) => {
    for (const h of heldBy(resource, o)) {
      wanted.set(`${h.pool}/${h.key}`, { ...h, owner: { resource, namespace: o.metadata.namespace ?? '', name: o.metadata.name, uid: o.metadata.uid ?? '' } });
    }
  };
  for (const s of services) add('services', s);
  for (const n of nodes) add('nodes', n);

  for (const row of rows) {
    const id = `${row.metadata.namespace}/${row.metadata.name}`;
    const owner = row.spec as AllocationOwner | undefined;
    if (wanted.get(id)?.owner.uid === owner?.uid) { wanted.delete(id); continue; }
    try {
      await objects.delete(ALLOCATIONS, row.metadata.namespace, row.metadata.name, { preconditions: { resourceVersion: row.metadata.resourceVersion ?? '' } });
      report.released.push(id);
    } catch (err) {
      if (!(err instanceof StoreError && (err.failure.code === 404 || err.failure.code === 409))) throw err;
    }
  }
  for (const [id, w] of wanted) {
    try {
      await objects.restoreAllocation(allocationRow(w.pool, w.key, w.owner));
      report.restored.push(id);
    } catch (err) {
      if (!(err instanceof StoreError && err.failure.code === 409)) throw err;
      report.conflicts.push(`${id} (${w.owner.resource} ${w.owner.namespace ? `${w.owner.namespace}/` : ''}${w.owner.name})`);
    }
  }
  const lacking = [
    ...services.filter((s: Service) => s.spec?.type !== 'ExternalName' && !s.spec?.clusterIP).map((s) => ({ r: resources.services, o: s })),
    ...nodes.filter((n: Node) => !n.spec?.podCIDR).map((n) => ({ r: resources.nodes, o: n })),
  ];
  for (const { r, o } of lacking) {
    try {
      const written: StoredObject = await objects.patch(r, o.metadata.namespace, o.metadata.name, {});
      if (heldBy(r === resources.nodes ? 'nodes' : 'services', written).length === 0) continue;
      report.allocated.push(`${r.plural} ${o.metadata.namespace ? `${o.metadata.namespace}/` : ''}${o.metadata.name}`);
    } catch (err) {
      if (!(err instanceof StoreError && err.failure.code < 500)) throw err;
      log.warn({ err: err.message, object: o.metadata.name }, 'allocation repair: could not allocate for an object');
    }
  }
  if (report.released.length + report.restored.length > 0) log.warn(report, 'allocation rows did not match the objects; fixed');
  if (report.conflicts.length > 0) log.error({ conflicts: report.conflicts }, 'allocation repair: values held by two objects; left as they are');
  return report;
}
