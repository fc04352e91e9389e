import { allResources, FINALIZER_KUBERNETES, resourceOfKind } from '../../api-types/index.js';
import type { ResourceInfo } from '../../api-types/index.js';
import { StoreError } from '../store/types.js';
import type { WatchEvent } from '../store/types.js';
import type { Controller, ControllerDeps } from './controller.js';

const namespaces = resourceOfKind('Namespace');

/**
 * Every namespaced resource, workloads first: deleting the controllers before their pods keeps them from
 * trying to replace what is being removed (their creates fail anyway, the namespace being terminated).
 */
const namespacedResources: readonly ResourceInfo[] = [
  ...allResources.filter((r) => r.namespaced && r.group !== ''),
  ...allResources.filter((r) => r.namespaced && r.group === ''),
];

/** At most this many deletions are proposed at once (one Raft group commit), the rest in later rounds. */
const BURST = 500;

/** How often (clock ms) a terminating namespace whose content is still going (pods stopping) is looked at again. */
const TERMINATING_POLL_MS = 1_000;

/**
 * Namespace deletion, as Kubernetes' namespace controller does it. Deleting a Namespace makes it Terminating
 * (deletionTimestamp, status.phase Terminating; the API refuses new content in it), held by the `kubernetes`
 * entry of its spec.finalizers. This controller deletes every object of every namespaced resource in it (pods,
 * workloads, services, configmaps, secrets, events, leases...), waits until they are gone (pods stop
 * gracefully), and then removes that finalizer, upon which the store removes the Namespace. Keys are
 * namespace names. The contents of a namespace that is not being deleted are never touched.
 *
 * A Namespace without the finalizer (created before Flotilla kept one) is removed at once by its delete: what
 * is left in a namespace that no longer exists is deleted the same way. An object written into a namespace
 * just as it was deleted (a create admitted before the delete committed) is caught by the watch; every resync
 * looks for leftovers too.
 */
export function namespaceController(deps: ControllerDeps): Controller {
  const terminating = (namespace: string) => {
    const ns = deps.objects.get(namespaces, undefined, namespace);
    return ns === undefined || ns.metadata.deletionTimestamp !== undefined;
  };
  return {
    name: 'namespace',
    watches: [
      { resource: namespaces, keys: (e) => (e.type === 'DELETED' || e.object.metadata.deletionTimestamp !== undefined ? [e.object.metadata.name] : []) },
      ...namespacedResources.map((r) => ({
        resource: r,
        // Removals count too: the last one lets a terminating namespace go.
        keys: (e: WatchEvent) => (e.namespace !== '' && terminating(e.namespace) ? [e.namespace] : []),
      })),
    ],
    allKeys() {
      const keys = new Set<string>(deps.objects.list(namespaces).items.filter((ns) => ns.metadata.deletionTimestamp !== undefined).map((ns) => ns.metadata.name));
      for (const r of namespacedResources) {
        for (const o of deps.objects.list(r).items) {
          const ns = o.metadata.namespace;
          if (ns && !keys.has(ns) && terminating(ns)) keys.add(ns);
        }
      }
      return keys;
    },
    async reconcile(namespace) {
      let budget = BURST;
      for (const r of namespacedResources) {
        if (!terminating(namespace)) return;
        const items = deps.objects.list(r, namespace).items.filter((o) => o.metadata.deletionTimestamp === undefined).slice(0, budget);
        budget -= items.length;
        await Promise.all(items.map(async (o) => {
          try {
            await deps.objects.delete(r, namespace, o.metadata.name, { preconditions: { uid: o.metadata.uid ?? '' } });
          } catch (err) {
            // Gone already (the garbage collector got there first), or replaced by another object of that name.
            if (!(err instanceof StoreError && (err.failure.code === 404 || err.failure.code === 409))) throw err;
          }
        }));
        if (budget === 0) return { requeueAfterMs: 0 };
      }
      // A 409 above (or a write racing this round) may have left something, and graceful deletions take a while.
      const left = namespacedResources.flatMap((r) => deps.objects.list(r, namespace).items);
      if (left.length > 0) return { requeueAfterMs: left.some((o) => o.metadata.deletionTimestamp === undefined) ? 0 : TERMINATING_POLL_MS };
      const ns = deps.objects.get(namespaces, undefined, namespace);
      const finalizers = ns?.spec?.finalizers ?? [];
      if (!ns || !finalizers.includes(FINALIZER_KUBERNETES)) return;
      // Content whose create was admitted before the namespace became Terminating may still commit after this:
      // it is then left in a namespace that no longer exists, and deleted like any such leftover.
      try {
        await deps.objects.patch(namespaces, undefined, namespace, { metadata: { resourceVersion: ns.metadata.resourceVersion }, spec: { finalizers: finalizers.filter((f) => f !== FINALIZER_KUBERNETES) } });
      } catch (err) {
        if (!(err instanceof StoreError && (err.failure.code === 404 || err.failure.code === 409))) throw err;
        return { requeueAfterMs: 0 };
      }
    },
  };
}
