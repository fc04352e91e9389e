import { allResources, resourceForKind } from '../../api-types/index.js';
import type { OwnerReference, ResourceInfo } from '../../api-types/index.js';
import { resourceKey } from '../objects.js';
import type { ObjectService } from '../objects.js';
import { StoreError } from '../store/types.js';
import type { StoredObject } from '../store/types.js';
import type { Controller, ControllerDeps } from './controller.js';
import { ANNOTATION_ORPHANING } from './cluster-objects.js';

/** Resources whose objects can have owners. Events, nodes and namespaces never do. */
const ownable: readonly ResourceInfo[] = allResources.filter((r) => !['events', 'nodes', 'namespaces'].includes(r.plural));

/**
 * Cascading deletion in the background: an object whose every owner (metadata.ownerReferences, matched by uid)
 * is gone is deleted; an owner reference to a deleted owner is dropped while other owners remain. Deleting a
 * Deployment thus removes its ReplicaSets, whose deletion removes their pods.
 *
 * Orphaning: the API deletes at once, so an owner deleted with propagationPolicy=Orphan must release its
 * dependents BEFORE it is deleted: the API calls `orphanDependents` first (see below), then deletes it.
 *
 * Keys are "resourceKey|namespace|name" of dependents. An in-memory index from owner uid to dependent keys,
 * kept by the watches and rebuilt by every resync, finds the dependents of a deleted owner.
 */
export function garbageCollector(deps: ControllerDeps): Controller {
  const dependents = new Map<string, Set<string>>();
  const index = (key: string, refs: readonly OwnerReference[] | undefined, add: boolean) => {
    for (const ref of refs ?? []) {
      let set = dependents.get(ref.uid);
      if (add) {
        if (!set) dependents.set(ref.uid, set = new Set());
        set.add(key);
      } else if (set) {
        set.delete(key);
        if (set.size === 0) dependents.delete(ref.uid);
      }
    }
  };
  return {
    name: 'garbage-collector',
    watches: ownable.map((r) => ({
      resource: r,
      keys: (e) => {
        const key = dependentKey(r, e.object);
        const out: string[] = [];
        if (e.type === 'DELETED') {
          index(key, e.object.metadata.ownerReferences, false);
          out.push(...(dependents.get(e.object.metadata.uid ?? '') ?? []));
        } else if (e.object.metadata.ownerReferences?.length) {
          index(key, e.object.metadata.ownerReferences, true);
          out.push(key);
        }
        return out;
      },
    })),
    allKeys() {
      dependents.clear();
      const keys: string[] = [];
      for (const r of ownable) {
        for (const o of deps.objects.list(r).items) {
          if (!o.metadata.ownerReferences?.length) continue;
          const key = dependentKey(r, o);
          index(key, o.metadata.ownerReferences, true);
          keys.push(key);
        }
      }
      return keys;
    },
    async reconcile(key) {
      const [rk, namespace, name] = key.split('|') as [string, string, string];
      const r = ownable.find((x) => resourceKey(x) === rk);
      if (!r) return;
      const o = deps.objects.get(r, namespace, name);
      if (!o?.metadata.ownerReferences?.length) return;
      const refs = o.metadata.ownerReferences;
      const live = refs.filter((ref) => ownerExists(deps.objects, ref, namespace));
      if (live.length === refs.length) return;
      try {
        if (live.length === 0) {
          await deps.objects.delete(r, namespace, name, { uid: o.metadata.uid ?? '' });
        } else {
          await deps.objects.patch(r, namespace, name, { metadata: { ownerReferences: live, resourceVersion: o.metadata.resourceVersion } });
        }
      } catch (err) {
        // Gone already, or changed meanwhile: a changed object comes back through the watch.
        if (!(err instanceof StoreError && (err.failure.code === 404 || err.failure.code === 409))) throw err;
      }
    },
  };
}

/**
 * Removes the owner reference to `owner` from every object that has one, so that deleting the owner leaves
 * them in place (propagationPolicy=Orphan). The API calls this before deleting the owner. The owner is first
 * annotated flotilla.io/orphaning, which stops its controller; should the delete not follow, removing the
 * annotation hands the owner back to its controller. Returns how many dependents were released.
 */
export async function orphanDependents(objects: ObjectService, owner: StoredObject): Promise<number> {
  const uid = owner.metadata.uid;
  if (!uid) return 0;
  // First freeze the owner's controller, or it would adopt or replace what is being released.
  const ownerResource = resourceForKind(owner.apiVersion, owner.kind);
  if (ownerResource) {
    await objects.patch(ownerResource, owner.metadata.namespace, owner.metadata.name, {
      metadata: { uid, annotations: { [ANNOTATION_ORPHANING]: new Date(objects.now().getTime()).toISOString() } },
    });
  }
  let released = 0;
  for (const r of ownable) {
    for (const o of objects.list(r, owner.metadata.namespace || undefined).items) {
      const refs = o.metadata.ownerReferences ?? [];
      if (!refs.some((ref) => ref.uid === uid)) continue;
      const rest = refs.filter((ref) => ref.uid !== uid);
      await objects.patch(r, o.metadata.namespace, o.metadata.name, { metadata: { ownerReferences: rest.length > 0 ? rest : null } });
      released++;
    }
  }
  return released;
}

function dependentKey(r: ResourceInfo, o: StoredObject): string {
  return `${resourceKey(r)}|${o.metadata.namespace ?? ''}|${o.metadata.name}`;
}

/** An owner exists when an object of its kind, name and uid does; an owner of a kind Flotilla does not serve is assumed to exist. */
function ownerExists(objects: ObjectService, ref: OwnerReference, namespace: string): boolean {
  const r = resourceForKind(ref.apiVersion, ref.kind);
  if (!r) return true;
  return objects.get(r, r.namespaced ? namespace : undefined, ref.name)?.metadata.uid === ref.uid;
}
