import { allResources, resourceForKind, FINALIZER_DELETE_DEPENDENTS, FINALIZER_ORPHAN_DEPENDENTS } from '../../api-types/index.js';
import type { OwnerReference, ResourceInfo } from '../../api-types/index.js';
import { resourceKey } from '../objects/service.js';
import { StoreError } from '../store/types.js';
import type { StoredObject, WatchEvent } from '../store/types.js';
import type { Controller, ControllerDeps, ReconcileResult } from './controller.js';

/** How soon (clock ms) an owner whose finalization met a conflicting write is looked at again. */
const FINALIZE_RETRY_MS = 1_000;

/** Resources whose objects can have owners. Events, nodes and namespaces never do. */
const ownable: readonly ResourceInfo[] = allResources.filter((r) => !['events', 'nodes', 'namespaces'].includes(r.plural));

/**
 * The garbage collector, as Kubernetes' (metadata.ownerReferences, matched by uid):
 * - Background: an object none of whose owners exists any more is deleted; a reference to a deleted owner is
 *   dropped while other owners remain. Deleting a Deployment thus removes its ReplicaSets, and theirs their pods.
 * - Orphan: an owner being deleted with the `orphan` finalizer has its reference removed from every dependent,
 *   then the finalizer, which lets the store remove the owner. The dependents stay.
 * - Foreground: an owner being deleted with the `foregroundDeletion` finalizer counts as not there for its
 *   dependents, which are deleted (in the foreground themselves when they have dependents); once no dependent
 *   with blockOwnerDeletion is left, the finalizer goes and the owner with it.
 * An object being deleted is never collected again: its own deletion is under way.
 *
 * Keys are "resourceKey|namespace|name". An in-memory index from owner uid to dependent keys, kept by the
 * watches and rebuilt by every resync, finds the dependents of an owner.
 */
export function garbageCollector(deps: ControllerDeps): Controller {
  const dependents = new Map<string, Set<string>>();
  /** The owner references of every indexed dependent, as last seen. */
  const refsOf = new Map<string, readonly OwnerReference[]>();
  /** Indexes `key` under `refs` (none: forgets it); returns the references it no longer has. */
  const index = (key: string, refs: readonly OwnerReference[] | undefined): OwnerReference[] => {
    const before = refsOf.get(key) ?? [];
    const after = refs ?? [];
    const gone = before.filter((b) => !after.some((a) => a.uid === b.uid));
    for (const ref of gone) {
      const set = dependents.get(ref.uid);
      set?.delete(key);
      if (set?.size === 0) dependents.delete(ref.uid);
    }
    for (const ref of after) {
      let set = dependents.get(ref.uid);
      if (!set) dependents.set(ref.uid, set = new Set());
      set.add(key);
    }
    if (after.length > 0) refsOf.set(key, after); else refsOf.delete(key);
    return gone;
  };

  const keysOf = (r: ResourceInfo, e: WatchEvent): string[] => {
    const o = e.object;
    const key = objectKeyOf(r, o);
    const namespace = o.metadata.namespace ?? '';
    if (e.type === 'DELETED') {
      const owners = refsOf.get(key) ?? o.metadata.ownerReferences ?? [];
      index(key, undefined);
      // Its dependents lost an owner; owners deleting in the foreground may have lost their last blocker.
      return [...(dependents.get(o.metadata.uid ?? '') ?? []), ...owners.flatMap((ref) => ownerKeyOf(ref, namespace))];
    }
    const out = ownable.includes(r) ? index(key, o.metadata.ownerReferences).flatMap((ref) => ownerKeyOf(ref, namespace)) : [];
    if (o.metadata.ownerReferences?.length || heldForCollector(o)) out.push(key);
    return out;
  };

  return {
    name: 'garbage-collector',
    watches: allResources.map((r) => ({ resource: r, keys: (e: WatchEvent) => keysOf(r, e) })),
    allKeys() {
      dependents.clear();
      refsOf.clear();
      const keys: string[] = [];
      for (const r of allResources) {
        for (const o of deps.objects.list(r).items) {
          const key = objectKeyOf(r, o);
          if (ownable.includes(r)) index(key, o.metadata.ownerReferences);
          if (o.metadata.ownerReferences?.length || heldForCollector(o)) keys.push(key);
        }
      }
      return keys;
    },
    async reconcile(key) {
      const [rk, namespace, name] = key.split('|') as [string, string, string];
      const r = allResources.find((x) => resourceKey(x) === rk);
      const o = r && deps.objects.get(r, namespace, name);
      if (!r || !o) return;
      try {
        if (o.metadata.deletionTimestamp === undefined) return await collect(r, o);
        const finalizers = o.metadata.finalizers ?? [];
        if (finalizers.includes(FINALIZER_ORPHAN_DEPENDENTS)) return await orphanDependents(r, o);
        if (finalizers.includes(FINALIZER_DELETE_DEPENDENTS)) return await deleteDependents(r, o);
      } catch (err) {
        if (!(err instanceof StoreError && (err.failure.code === 404 || err.failure.code === 409))) throw err;
        // Gone already, or changed meanwhile: a changed dependent comes back through the watch, and an owner
        // being finalized (one of its dependents changed under it) looks again shortly.
        if (o.metadata.deletionTimestamp !== undefined) return { requeueAfterMs: FINALIZE_RETRY_MS };
      }
    },
  };

  /** The objects that have a reference to `owner` (by uid), from the index, read fresh. */
  function dependentsOf(owner: StoredObject): { r: ResourceInfo; o: StoredObject; ref: OwnerReference }[] {
    const out: { r: ResourceInfo; o: StoredObject; ref: OwnerReference }[] = [];
    for (const key of dependents.get(owner.metadata.uid ?? '') ?? []) {
      const [rk, namespace, name] = key.split('|') as [string, string, string];
      const r = ownable.find((x) => resourceKey(x) === rk);
      const o = r && deps.objects.get(r, namespace, name);
      const ref = o?.metadata.ownerReferences?.find((x) => x.uid === owner.metadata.uid);
      if (r && o && ref) out.push({ r, o, ref });
    }
    return out;
  }

  /** A dependent: deleted when no owner is left, its references to deleted owners dropped otherwise. */
  async function collect(r: ResourceInfo, o: StoredObject): Promise<void> {
    const refs = o.metadata.ownerReferences ?? [];
    if (refs.length === 0) return;
    const namespace = o.metadata.namespace ?? '';
    const solid: OwnerReference[] = [];
    let waiting = false;
    for (const ref of refs) {
      const state = ownerState(ref, namespace);
      if (state === 'exists') solid.push(ref);
      if (state === 'deleting-dependents') waiting = true;
    }
    if (solid.length === refs.length) return;
    if (solid.length > 0) {
      await deps.objects.patch(r, namespace, o.metadata.name, { metadata: { ownerReferences: solid, resourceVersion: o.metadata.resourceVersion } });
      return;
    }
    // An owner deleting in the foreground waits for this one's own dependents too.
    const foreground = waiting && (dependents.get(o.metadata.uid ?? '')?.size ?? 0) > 0;
    await deps.objects.delete(r, namespace, o.metadata.name, { preconditions: { uid: o.metadata.uid ?? '' }, ...(foreground ? { propagationPolicy: 'Foreground' as const } : {}) });
  }

  /** Orphan: every dependent loses its reference to the owner; then the owner its finalizer. */
  async function orphanDependents(r: ResourceInfo, owner: StoredObject): Promise<ReconcileResult | void> {
    for (const { r: dr, o } of dependentsOf(owner)) {
      const rest = (o.metadata.ownerReferences ?? []).filter((ref) => ref.uid !== owner.metadata.uid);
      await deps.objects.patch(dr, o.metadata.namespace, o.metadata.name, { metadata: { ownerReferences: rest.length > 0 ? rest : null, resourceVersion: o.metadata.resourceVersion } });
    }
    await removeFinalizer(r, owner, FINALIZER_ORPHAN_DEPENDENTS);
  }

  /** Foreground: the dependents are deleted; the finalizer goes once none with blockOwnerDeletion is left. */
  async function deleteDependents(r: ResourceInfo, owner: StoredObject): Promise<void> {
    for (const { r: dr, o } of dependentsOf(owner)) if (o.metadata.deletionTimestamp === undefined) await collect(dr, o);
    // The rest are on their way out (a pod its agent is stopping, say): their removal wakes this owner again.
    if (dependentsOf(owner).some(({ ref }) => ref.blockOwnerDeletion === true)) return;
    await removeFinalizer(r, owner, FINALIZER_DELETE_DEPENDENTS);
  }

  async function removeFinalizer(r: ResourceInfo, o: StoredObject, finalizer: string): Promise<void> {
    const finalizers = (o.metadata.finalizers ?? []).filter((f) => f !== finalizer);
    await deps.objects.patch(r, o.metadata.namespace, o.metadata.name, { metadata: { finalizers, resourceVersion: o.metadata.resourceVersion } });
  }

  /**
   * Whether the owner a reference names exists (same kind, name and uid), exists but is deleting its
   * dependents first (Foreground), or is gone. An owner of a kind Flotilla does not serve is assumed to exist.
   */
  function ownerState(ref: OwnerReference, namespace: string): 'exists' | 'deleting-dependents' | 'gone' {
    const r = resourceForKind(ref.apiVersion, ref.kind);
    if (!r) return 'exists';
    const owner = deps.objects.get(r, r.namespaced ? namespace : undefined, ref.name);
    if (owner?.metadata.uid !== ref.uid) return 'gone';
    return owner.metadata.deletionTimestamp !== undefined && owner.metadata.finalizers?.includes(FINALIZER_DELETE_DEPENDENTS) ? 'deleting-dependents' : 'exists';
  }
}

/** Being deleted and held by a finalizer this controller removes. */
function heldForCollector(o: StoredObject): boolean {
  return o.metadata.deletionTimestamp !== undefined
    && (o.metadata.finalizers ?? []).some((f) => f === FINALIZER_ORPHAN_DEPENDENTS || f === FINALIZER_DELETE_DEPENDENTS);
}

function objectKeyOf(r: ResourceInfo, o: StoredObject): string {
  return `${resourceKey(r)}|${r.namespaced ? o.metadata.namespace ?? '' : ''}|${o.metadata.name}`;
}

/** The key of the owner a reference names, when Flotilla serves its kind. */
function ownerKeyOf(ref: OwnerReference, namespace: string): string[] {
  const r = resourceForKind(ref.apiVersion, ref.kind);
  return r ? [`${resourceKey(r)}|${r.namespaced ? namespace : ''}|${ref.name}`] : [];
}
