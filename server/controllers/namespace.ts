import { allResources } from '../../api-types/index.js';
import type { ResourceInfo } from '../../api-types/index.js';
import { StoreError } from '../store/types.js';
import type { WatchEvent } from '../store/types.js';
import type { Controller, ControllerDeps } from './controller.js';

/**
 * Every namespaced resource, workloads first: deleting the controllers before their pods keeps them from
 * trying to replace what is being removed (their creates fail anyway, the namespace being gone).
 */
const namespaces = allResources.find((r) => r.plural === 'namespaces')!;

const namespacedResources: readonly ResourceInfo[] = [
  ...allResources.filter((r) => r.namespaced && r.group !== ''),
  ...allResources.filter((r) => r.namespaced && r.group === ''),
];

/** At most this many deletions are proposed at once (one Raft group commit), the rest in later rounds. */
const BURST = 500;

/**
 * Namespace deletion, as Kubernetes' namespace controller does it, for an API that deletes the Namespace
 * object at once (no Terminating phase, no finalizers): once a namespace no longer exists, every object of
 * every namespaced resource left in it is deleted (pods, workloads, services, configmaps, secrets, events,
 * leases...). Keys are namespace names. The contents of a namespace that exists are never touched, built-in
 * ones included; a namespace re-created before its contents are gone keeps what is left of them.
 *
 * An object written into a namespace just as it was deleted (a create admitted before the delete committed)
 * is caught by the watch; every resync looks for leftovers too.
 */
export function namespaceController(deps: ControllerDeps): Controller {
  const exists = (namespace: string) => deps.objects.get(namespaces, undefined, namespace) !== undefined;
  return {
    name: 'namespace',
    watches: [
      { resource: namespaces, keys: (e) => (e.type === 'DELETED' ? [e.object.metadata.name] : []) },
      ...namespacedResources.map((r) => ({
        resource: r,
        keys: (e: WatchEvent) => (e.type !== 'DELETED' && e.namespace !== '' && !exists(e.namespace) ? [e.namespace] : []),
      })),
    ],
    allKeys() {
      const orphaned = new Set<string>();
      for (const r of namespacedResources) {
        for (const o of deps.objects.list(r).items) {
          const ns = o.metadata.namespace;
          if (ns && !orphaned.has(ns) && !exists(ns)) orphaned.add(ns);
        }
      }
      return orphaned;
    },
    async reconcile(namespace) {
      let budget = BURST;
      for (const r of namespacedResources) {
        if (exists(namespace)) return;
        const items = deps.objects.list(r, namespace).items.slice(0, budget);
        budget -= items.length;
        await Promise.all(items.map(async (o) => {
          try {
            await deps.objects.delete(r, namespace, o.metadata.name, { uid: o.metadata.uid ?? '' });
          } catch (err) {
            // Gone already (the garbage collector got there first), or replaced by another object of that name.
            if (!(err instanceof StoreError && (err.failure.code === 404 || err.failure.code === 409))) throw err;
          }
        }));
        if (budget === 0) return { requeueAfterMs: 0 };
      }
      // A 409 above (or a write racing this round) may have left something: look once more.
      if (!exists(namespace) && namespacedResources.some((r) => deps.objects.list(r, namespace).items.length > 0)) return { requeueAfterMs: 0 };
    },
  };
}
