import { labelSelectorFromSpec, matchesLabels } from '../../api-types/index.js';
import type { DeleteOptions, Pod, ReplicaSet, ReplicaSetStatus } from '../../api-types/index.js';
import { StoreError } from '../store/types.js';
import type { Stored } from '../store/types.js';
import type { Objects } from '../objects/service.js';
import {
  resources, objectKey, splitKey, ownerKey, controllerOf, controllerRefTo, isPodActive, isPodReady, isPodAvailable, podCondition,
  podFromTemplate, sameContent, isGoing,
} from './cluster-objects.js';
import { EventRecorder } from './events.js';
import type { Controller, ControllerDeps } from './controller.js';

/** At most this many pods are created or deleted by one reconcile; the next reconcile does the rest. */
const BURST = 500;

/**
 * Keeps spec.replicas active pods for every ReplicaSet: adopts matching pods no controller owns, creates
 * unbound pods from the template (the scheduler binds them), deletes surplus pods (unbound first, then not ready, then the newest), deletes Failed pods so
 * that they are replaced, and reports replicas/ready/available in the status.
 */
export function replicaSetController(deps: ControllerDeps): Controller {
  const events = new EventRecorder(deps.objects, 'replicaset-controller', deps.now);
  return {
    name: 'replicaset',
    watches: [
      { resource: resources.replicaSets, keys: (e) => [objectKey(e.object)] },
      {
        resource: resources.pods,
        // A pod without a controller wakes the ReplicaSets whose selector matches it, which may adopt it.
        keys: (e) => (controllerOf(e.object) || e.type === 'DELETED'
          ? ownerKey(e.object, 'ReplicaSet')
          : (deps.objects.list(resources.replicaSets, e.object.metadata.namespace).items)
            .filter((rs) => matchesLabels(labelSelectorFromSpec(rs.spec.selector), e.object.metadata.labels)).map(objectKey)),
      },
    ],
    allKeys: () => deps.objects.list(resources.replicaSets).items.map(objectKey),
    async reconcile(key) {
      const { namespace, name } = splitKey(key);
      const rs = deps.objects.get(resources.replicaSets, namespace, name);
      if (!rs || isGoing(rs)) return;
      const pods = [...deps.pods.ownedBy(rs), ...await adopt(deps, rs)];
      for (const p of pods.filter((p) => p.status?.phase === 'Failed' && !p.metadata.deletionTimestamp)) {
        await deletePod(deps.objects, p);
        await events.record(rs, 'Normal', 'SuccessfulDelete', `Deleted failed pod: ${p.metadata.name}`);
      }
      let active = pods.filter(isPodActive);
      const want = rs.spec.replicas ?? 1;
      if (active.length < want && rs.spec.template) {
        const missing = Math.min(BURST, want - active.length);
        const created = await Promise.allSettled(Array.from({ length: missing }, () =>
          deps.objects.create(resources.pods, namespace, podFromTemplate(rs.spec.template!, rs, {}))));
        const failures = created.filter((c): c is PromiseRejectedResult => c.status === 'rejected');
        active = [...active, ...created.flatMap((c) => (c.status === 'fulfilled' ? [c.value] : []))];
        if (missing - failures.length > 0) await events.record(rs, 'Normal', 'SuccessfulCreate', `Created ${missing - failures.length} pod(s)`);
        if (failures.length > 0) {
          const why = failures[0]!.reason instanceof Error ? failures[0]!.reason.message : String(failures[0]!.reason);
          await events.record(rs, 'Warning', 'FailedCreate', `Error creating: ${why}`);
          await writeStatus(deps, rs, active);
          throw failures[0]!.reason;
        }
      } else if (active.length > want) {
        const victims = [...active].sort(deletionOrder).slice(0, Math.min(BURST, active.length - want));
        await Promise.all(victims.map((p) => deletePod(deps.objects, p)));
        const gone = new Set(victims.map((p) => p.metadata.uid));
        active = active.filter((p) => !gone.has(p.metadata.uid));
        await events.record(rs, 'Normal', 'SuccessfulDelete', `Deleted ${victims.length} pod(s)`);
      }
      return writeStatus(deps, rs, active);
    },
  };
}

/**
 * Takes over the namespace's live pods that no controller owns and that the selector matches, as Kubernetes
 * does (pods left behind by an orphaning delete, say). The write is pinned to the pod's resourceVersion, so of
 * two ReplicaSets adopting one pod only one succeeds.
 */
async function adopt(deps: ControllerDeps, rs: Stored<ReplicaSet>): Promise<Stored<Pod>[]> {
  const selector = labelSelectorFromSpec(rs.spec.selector);
  const adopted: Stored<Pod>[] = [];
  for (const p of deps.pods.unowned(rs.metadata.namespace)) {
    if (!isPodActive(p) || !matchesLabels(selector, p.metadata.labels)) continue;
    try {
      adopted.push(await deps.objects.patch(resources.pods, p.metadata.namespace, p.metadata.name ?? '', {
        metadata: { resourceVersion: p.metadata.resourceVersion, ownerReferences: [...(p.metadata.ownerReferences ?? []), controllerRefTo(rs)] },
      }));
    } catch (err) {
      if (!(err instanceof StoreError && (err.failure.code === 404 || err.failure.code === 409))) throw err;
    }
  }
  return adopted;
}

/** Pods to delete first sort first: unbound, then not ready, then the most recently created. */
function deletionOrder(a: Pod, b: Pod): number {
  const rank = (p: Pod) => (p.spec.nodeName ? 2 : 0) + (isPodReady(p) ? 1 : 0);
  const r = rank(a) - rank(b);
  if (r !== 0) return r;
  return (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '');
}

async function writeStatus(deps: ControllerDeps, rs: ReplicaSet, active: Pod[]): Promise<{ requeueAfterMs?: number }> {
  const now = deps.now();
  const minReady = rs.spec.minReadySeconds ?? 0;
  const status: ReplicaSetStatus = {
    replicas: active.length,
    fullyLabeledReplicas: active.length,
    readyReplicas: active.filter(isPodReady).length,
    availableReplicas: active.filter((p) => isPodAvailable(p, minReady, now)).length,
    observedGeneration: rs.metadata.generation ?? 1,
  };
  if (!sameContent(status, rs.status ?? {})) {
    await deps.objects.replaceStatus(resources.replicaSets, rs.metadata.namespace, rs.metadata.name ?? '', status);
  }
  // Pods ready but not yet available long enough: look again when the first of them becomes available.
  const waits = active.filter((p) => isPodReady(p) && !isPodAvailable(p, minReady, now))
    .map((p) => Date.parse(podCondition(p, 'Ready')?.lastTransitionTime ?? '') + minReady * 1000 - now)
    .filter((ms) => Number.isFinite(ms));
  return waits.length > 0 ? { requeueAfterMs: Math.max(0, Math.min(...waits)) } : {};
}

/**
 * Deletes a pod, pinned to its uid: gracefully (its agent stops it, then removes it), or at once with
 * gracePeriodSeconds 0. A pod already gone is not an error.
 */
export async function deletePod(objects: Objects, pod: Pod, options: Omit<DeleteOptions, 'preconditions'> = {}): Promise<void> {
  try {
    await objects.delete(resources.pods, pod.metadata.namespace, pod.metadata.name ?? '', { ...options, ...(pod.metadata.uid ? { preconditions: { uid: pod.metadata.uid } } : {}) });
  } catch (err) {
    if (!(err instanceof StoreError && (err.failure.code === 404 || err.failure.code === 409))) throw err;
  }
}
