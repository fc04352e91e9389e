// What applying a command decides, once, for every store: create, update and delete (with graceful deletion and
// finalizers, server/store/deletion.ts), preconditions, server-owned metadata, generation, unchanged writes and
// the watch events they make; Services' and Nodes' addresses and ports (server/network/allocator.ts). A store only keeps the rows (StateTable) and publishes the events.
import { canonicalJson, specChanged } from '../../api-types/index.js';
import { addedFinalizers, isRemovedByUpdate, planDeletion } from './deletion.js';
import { holdsAllocations, planAllocations, releaseAllocations } from '../network/allocator.js';
import type { AppliedCommand, ApplyResult, Command, Failure, ResourceKey, StatusDetails, StoredObject, WatchEvent } from './types.js';

/** How many revisions a proposal id is remembered for (AppliedCommand): far longer than any proposal is retried. */
const PROPOSAL_MEMORY = 50_000;

/**
 * The rows a state machine reads and writes: objects by resource, namespace ('' for cluster-scoped) and name,
 * and the proposal ids applied recently. `get` returns a copy the caller may keep.
 */
export interface StateTable {
  get(resource: ResourceKey, namespace: string, name: string): StoredObject | undefined;
  put(resource: ResourceKey, namespace: string, name: string, object: StoredObject): void;
  remove(resource: ResourceKey, namespace: string, name: string): void;
  hasApplied(proposalId: string): boolean;
  rememberApplied(proposalId: string, revision: number): void;
  /** Forgets the ids applied before `revision`. */
  forgetAppliedBefore(revision: number): void;
}

/**
 * Applies `batch` to `table`, whose last applied revision is `revision`. Revisions must increase (checked before
 * anything is written). Results and events depend only on the table and the commands, never on the clock, so
 * every replica that applies the same commands agrees. Returns the new revision.
 */
export function applyBatch(table: StateTable, revision: number, batch: readonly AppliedCommand[]): { results: ApplyResult[]; events: WatchEvent[]; revision: number } {
  let last = revision;
  for (const { revision: r } of batch) {
    if (r <= last) throw new Error(`revision ${r} is not after ${last}`);
    last = r;
  }
  const results: ApplyResult[] = [];
  const events: WatchEvent[] = [];
  let current = revision;
  for (const { command, revision: r, proposalId } of batch) {
    let result: ApplyResult;
    if (proposalId !== undefined && table.hasApplied(proposalId)) {
      result = { ok: false, failure: { code: 409, reason: 'AlreadyApplied', message: `proposal ${proposalId} was applied before` } };
    } else {
      if (proposalId !== undefined) table.rememberApplied(proposalId, r);
      result = applyCommand(table, command, r);
    }
    // Depends only on revisions, so every replica forgets the same ids at the same point.
    if (Math.floor(r / PROPOSAL_MEMORY) > Math.floor(current / PROPOSAL_MEMORY)) table.forgetAppliedBefore(r - PROPOSAL_MEMORY);
    results.push(result);
    if (result.ok && !result.unchanged) {
      events.push({ revision: r, resource: command.resource, namespace: result.object.metadata.namespace ?? '', type: result.type, object: result.object });
    }
    current = r;
  }
  return { results, events, revision: current };
}

/** Applies one command at `revision`. */
function applyCommand(table: StateTable, command: Command, revision: number): ApplyResult {
  switch (command.op) {
    case 'create': return create(table, command, revision);
    case 'update': return update(table, command, revision);
    case 'delete': return remove(table, command, revision);
  }
}

function create(table: StateTable, c: Extract<Command, { op: 'create' }>, revision: number): ApplyResult {
  const ns = c.object.metadata.namespace ?? '';
  const name = c.object.metadata.name;
  if (table.get(c.resource, ns, name)) return fail(409, 'AlreadyExists', `${kindOf(c.resource)} "${name}" already exists`, c.resource, name);
  const object: StoredObject = {
    ...c.object,
    metadata: {
      ...c.object.metadata,
      uid: c.uid,
      creationTimestamp: c.now,
      generation: 1,
      resourceVersion: String(revision),
    },
  };
  delete object.metadata.deletionTimestamp;
  delete object.metadata.deletionGracePeriodSeconds;
  if (holdsAllocations(c.resource)) {
    const plan = planAllocations(table, c.resource, undefined, object);
    if (!plan.ok) return { ok: false, failure: plan.failure };
    table.put(c.resource, ns, name, plan.object);
    plan.commit();
    return { ok: true, type: 'ADDED', object: plan.object };
  }
  table.put(c.resource, ns, name, object);
  return { ok: true, type: 'ADDED', object };
}

function update(table: StateTable, c: Extract<Command, { op: 'update' }>, revision: number): ApplyResult {
  const ns = c.object.metadata.namespace ?? '';
  const name = c.object.metadata.name;
  const current = table.get(c.resource, ns, name);
  if (!current) return fail(404, 'NotFound', `${kindOf(c.resource)} "${name}" not found`, c.resource, name);
  const wanted = c.object.metadata.resourceVersion;
  if (wanted && wanted !== current.metadata.resourceVersion) {
    return fail(409, 'Conflict', `Operation cannot be fulfilled on ${c.resource} "${name}": the object has been modified; please apply your changes to the latest version and try again`, c.resource, name);
  }
  if (c.object.metadata.uid && c.object.metadata.uid !== current.metadata.uid) {
    return fail(409, 'Conflict', `Precondition failed on ${c.resource} "${name}": uid ${c.object.metadata.uid} does not match ${current.metadata.uid}`, c.resource, name);
  }
  let object: StoredObject;
  if (c.subresource === 'status') {
    object = { ...current, status: c.object.status };
    if (c.object.status === undefined) delete object.status;
  } else {
    object = { ...c.object };
    if ('status' in current) object.status = current.status; else delete object.status;
  }
  // Server-owned metadata never comes from the client.
  object.metadata = {
    ...(c.subresource === 'status' ? current.metadata : c.object.metadata),
    uid: current.metadata.uid,
    creationTimestamp: current.metadata.creationTimestamp,
    generation: (current.metadata.generation ?? 1) + (specChanged(current, object) ? 1 : 0),
    resourceVersion: String(revision),
  };
  for (const field of ['deletionTimestamp', 'deletionGracePeriodSeconds'] as const) {
    if (current.metadata[field] !== undefined) object.metadata[field] = current.metadata[field] as never;
    else delete object.metadata[field];
  }
  const causes = addedFinalizers(current, object).map((a) => ({ field: a.field, message: `Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers ${JSON.stringify(a.added)}` }));
  if (causes.length > 0) {
    return fail(422, 'Invalid', `${kindOf(c.resource)} "${name}" is invalid: ${causes.map((x) => `${x.field}: ${x.message}`).join('; ')}`, c.resource, name, causes);
  }
  if (isRemovedByUpdate(current, object)) {
    table.remove(c.resource, ns, name);
    if (holdsAllocations(c.resource)) releaseAllocations(table, c.resource, current);
    return { ok: true, type: 'DELETED', object };
  }
  if (holdsAllocations(c.resource)) {
    const plan = planAllocations(table, c.resource, current, object);
    if (!plan.ok) return { ok: false, failure: plan.failure };
    // The generation follows the spec as written, assigned fields included (a write that leaves out the
    // ClusterIP it has changes nothing).
    plan.object.metadata = { ...plan.object.metadata, generation: (current.metadata.generation ?? 1) + (specChanged(current, plan.object) ? 1 : 0) };
    const result = put(table, c.resource, current, plan.object);
    if (result.ok && !result.unchanged) plan.commit();
    return result;
  }
  return put(table, c.resource, current, object);
}

/** Writes `object` over `current`; writing the same content again changes nothing (no revision, no event). */
function put(table: StateTable, resource: ResourceKey, current: StoredObject, object: StoredObject): ApplyResult {
  if (canonicalJson({ ...object, metadata: { ...object.metadata, resourceVersion: '' } }) === canonicalJson({ ...current, metadata: { ...current.metadata, resourceVersion: '' } })) {
    return { ok: true, type: 'MODIFIED', object: current, unchanged: true };
  }
  table.put(resource, current.metadata.namespace ?? '', current.metadata.name, object);
  return { ok: true, type: 'MODIFIED', object };
}

function remove(table: StateTable, c: Extract<Command, { op: 'delete' }>, revision: number): ApplyResult {
  const current = table.get(c.resource, c.namespace, c.name);
  if (!current) return fail(404, 'NotFound', `${kindOf(c.resource)} "${c.name}" not found`, c.resource, c.name);
  const pre = c.preconditions;
  if (pre?.uid && pre.uid !== current.metadata.uid) return fail(409, 'Conflict', `Precondition failed: UID in precondition: ${pre.uid}, UID in object meta: ${current.metadata.uid}`, c.resource, c.name);
  if (pre?.resourceVersion && pre.resourceVersion !== current.metadata.resourceVersion) return fail(409, 'Conflict', `Precondition failed: ResourceVersion in precondition: ${pre.resourceVersion}, ResourceVersion in object meta: ${current.metadata.resourceVersion}`, c.resource, c.name);
  const plan = c.now === undefined ? { remove: true as const } : planDeletion(current, { now: c.now, gracePeriodSeconds: c.gracePeriodSeconds, propagationPolicy: c.propagationPolicy });
  if (!plan.remove) return put(table, c.resource, current, { ...plan.object, metadata: { ...plan.object.metadata, resourceVersion: String(revision) } });
  table.remove(c.resource, c.namespace, c.name);
  if (holdsAllocations(c.resource)) releaseAllocations(table, c.resource, current);
  return { ok: true, type: 'DELETED', object: current };
}

function kindOf(resource: ResourceKey): string {
  return resource.split('.')[0] ?? resource;
}

function fail(code: number, reason: string, message: string, resource: ResourceKey, name: string, causes?: StatusDetails['causes']): ApplyResult {
  const [kind, group] = resource.split('.', 2) as [string, string | undefined];
  const failure: Failure = { code, reason, message, details: { name, kind, ...(group ? { group } : {}), ...(causes ? { causes } : {}) } };
  return { ok: false, failure };
}
