import { ANNOTATION_EVICTION_AT, TAINT_UNREACHABLE, isKind } from '../../api-types/index.js';
import type { Condition, Node, Pod, Taint } from '../../api-types/index.js';
import { StoreError } from '../store/types.js';
import type { Stored } from '../store/types.js';
import { resources, controllerOf, sameContent, tolerationFor, withCondition } from './cluster-objects.js';
import { EventRecorder } from './events.js';
import { deletePod } from './replicaset.js';
import { settingsOf } from './controller.js';
import type { Controller, ControllerDeps } from './controller.js';


/** How often (clock ms) an unreachable node is looked at again: heartbeats are in memory and make no watch events. */
const UNREACHABLE_POLL_MS = 1_000;

/**
 * Watches node heartbeats (in-memory leases, not durable). A node silent for longer than nodeGracePeriodMs
 * gets Ready=Unknown (reason NodeStatusUnknown, the message names the last heartbeat), the taint
 * node.kubernetes.io/unreachable:NoExecute and the annotation flotilla.io/eviction-at. Its pods are deleted,
 * so that their controllers replace them elsewhere, podEvictionDelayMs after the taint was added, or after
 * the tolerationSeconds of a pod's toleration of that taint (a toleration without seconds keeps the pod).
 * DaemonSet pods stay. Meanwhile every pod on the node has its Ready condition set False (reason
 * NodeUnreachable), DaemonSet pods included. When heartbeats resume: Ready=True, taint and annotation removed;
 * the pods' Ready comes back with their agent's next status report.
 *
 * Pods are removed from a node that cannot stop them by force (gracePeriodSeconds 0), as Kubernetes' pod
 * garbage collector does: evicted pods, and Terminating pods (whose agent would otherwise remove them when
 * their containers stopped), on an unreachable node podEvictionDelayMs after the taint, on a node whose Node
 * object is gone podEvictionDelayMs after this controller saw it gone (an agent registering it again in time
 * finishes their termination itself).
 *
 * A node is judged from its last heartbeat, or from when this leader's controller first saw it (its
 * registration, or the start of this leadership term) when that is later: a node that joins long after the
 * leader started, and a leader change, both give the node a full grace period before its first heartbeat.
 */
export function nodeLifecycleController(deps: ControllerDeps): Controller {
  const events = new EventRecorder(deps.objects, 'node-controller', deps.now);
  const firstSeen = new Map<string, number>();
  /** When this controller first found each node that Terminating pods are bound to gone. */
  const goneSince = new Map<string, number>();
  const nodeExists = (name: string) => deps.objects.get(resources.nodes, undefined, name) !== undefined;
  return {
    name: 'node-lifecycle',
    watches: [
      {
        resource: resources.nodes,
        keys: (e) => {
          if (e.type === 'DELETED') firstSeen.delete(e.object.metadata.name);
          return [e.object.metadata.name];
        },
      },
      {
        resource: resources.pods,
        keys: (e) => {
          const node = isKind(e.object, 'Pod') ? e.object.spec.nodeName : undefined;
          return e.type !== 'DELETED' && e.object.metadata.deletionTimestamp !== undefined && node && !nodeExists(node) ? [node] : [];
        },
      },
    ],
    allKeys: () => new Set([
      ...deps.objects.list(resources.nodes).items.map((n) => n.metadata.name),
      ...(deps.objects.list(resources.pods).items).filter((p) => p.metadata.deletionTimestamp !== undefined && p.spec.nodeName && !nodeExists(p.spec.nodeName)).map((p) => p.spec.nodeName!),
    ]),
    async reconcile(name) {
      const node = deps.objects.get(resources.nodes, undefined, name);
      const { nodeGracePeriodMs, podEvictionDelayMs } = settingsOf(deps);
      const now = deps.now();
      if (!node) return forceDeleteOnGoneNode(name, now, podEvictionDelayMs);
      goneSince.delete(name);
      const nowIso = new Date(now).toISOString();
      if (!firstSeen.has(name)) firstSeen.set(name, now);
      const last = Math.max(deps.heartbeats.lastRenewMs(name) ?? -Infinity, firstSeen.get(name)!);
      const taints = node.spec?.taints ?? [];
      const existing = taints.find((t) => t.key === TAINT_UNREACHABLE && t.effect === 'NoExecute');
      const ready = node.status?.conditions?.find((c) => c.type === 'Ready');

      if (now - last <= nodeGracePeriodMs) {
        const restored = ready === undefined || (ready.status !== 'True' && ready.reason === 'NodeStatusUnknown');
        if (restored) {
          await setReady(node, { type: 'Ready', status: 'True', reason: 'KubeletReady', message: 'node is sending heartbeats', lastHeartbeatTime: new Date(last).toISOString() }, nowIso);
          if (ready) await events.record(node, 'Normal', 'NodeReady', `Node ${name} status is now: NodeReady`);
        }
        if (existing || node.metadata.annotations?.[ANNOTATION_EVICTION_AT] !== undefined) {
          await deps.objects.patch(resources.nodes, undefined, name, {
            spec: { taints: withoutUnreachable(taints) }, metadata: { annotations: { [ANNOTATION_EVICTION_AT]: null } },
          });
        }
        return { requeueAfterMs: last + nodeGracePeriodMs - now + 1 };
      }

      const taint: Taint = existing ?? { key: TAINT_UNREACHABLE, effect: 'NoExecute', timeAdded: nowIso };
      const taintedAt = Date.parse(taint.timeAdded ?? nowIso);
      const evictAt = new Date(taintedAt + podEvictionDelayMs).toISOString();
      if (!existing || node.metadata.annotations?.[ANNOTATION_EVICTION_AT] !== evictAt) {
        await deps.objects.patch(resources.nodes, undefined, name, {
          spec: { taints: [...withoutUnreachable(taints), taint] }, metadata: { annotations: { [ANNOTATION_EVICTION_AT]: evictAt } },
        });
      }
      if (ready?.status !== 'Unknown' || ready.reason !== 'NodeStatusUnknown') {
        await setReady(node, { type: 'Ready', status: 'Unknown', reason: 'NodeStatusUnknown', message: `Node stopped sending heartbeats; last heartbeat at ${new Date(last).toISOString()}`, lastHeartbeatTime: new Date(last).toISOString() }, nowIso);
        await events.record(node, 'Warning', 'NodeNotReady', `Node ${name} status is now: NodeNotReady (no heartbeat since ${new Date(last).toISOString()})`);
      }

      const onNode = podsOn(name);
      const pods = onNode.filter((p) => p.metadata.deletionTimestamp === undefined);
      for (const pod of pods) await markNotReady(pod, name, nowIso);

      let nextDue = Infinity;
      for (const pod of onNode) {
        const terminating = pod.metadata.deletionTimestamp !== undefined;
        if (!terminating && controllerOf(pod)?.kind === 'DaemonSet') continue;
        const tol = terminating ? undefined : tolerationFor(pod.spec.tolerations, taint);
        if (tol && tol.tolerationSeconds === undefined) continue;
        const due = taintedAt + (tol ? Math.max(0, tol.tolerationSeconds!) * 1000 : podEvictionDelayMs);
        if (now < due) { nextDue = Math.min(nextDue, due); continue; }
        await deletePod(deps.objects, pod, { gracePeriodSeconds: 0 });
        await events.record(pod, 'Normal', 'TaintManagerEviction', `Deleted pod ${pod.metadata.namespace}/${pod.metadata.name}: node ${name} unreachable since ${new Date(last).toISOString()}`);
      }
      return { requeueAfterMs: Math.min(UNREACHABLE_POLL_MS, nextDue - now) };
    },
  };

  function podsOn(node: string): Stored<Pod>[] {
    return deps.pods.onNode(node);
  }

  /** Terminating pods bound to a node that no longer exists: removed by force once the eviction delay passed. */
  async function forceDeleteOnGoneNode(name: string, now: number, podEvictionDelayMs: number): Promise<{ requeueAfterMs: number } | undefined> {
    const pods = podsOn(name).filter((p) => p.metadata.deletionTimestamp !== undefined);
    if (pods.length === 0) {
      goneSince.delete(name);
      return undefined;
    }
    if (!goneSince.has(name)) goneSince.set(name, now);
    const due = goneSince.get(name)! + podEvictionDelayMs;
    if (now < due) return { requeueAfterMs: Math.min(UNREACHABLE_POLL_MS, due - now) };
    for (const pod of pods) {
      await deletePod(deps.objects, pod, { gracePeriodSeconds: 0 });
      await events.record(pod, 'Normal', 'PodGCForceDeleted', `Deleted pod ${pod.metadata.namespace}/${pod.metadata.name}: its node ${name} no longer exists`);
    }
    goneSince.delete(name);
    return undefined;
  }

  /**
   * Sets the pod's Ready condition False (reason NodeUnreachable), as Kubernetes does for the pods of a node
   * that went silent, so that Services and rollouts stop counting on it. Only pods that report a Ready
   * condition are touched, each once: the write is pinned to the pod's resourceVersion, and a pod that changed
   * meanwhile is looked at again at the next poll. Only the agent sets Ready True again, when it reports.
   */
  async function markNotReady(pod: Stored<Pod>, node: string, nowIso: string): Promise<void> {
    const ready = pod.status?.conditions?.find((c) => c.type === 'Ready');
    if (!ready || ready.status === 'False') return;
    const conditions = withCondition(pod.status?.conditions, { type: 'Ready', status: 'False', reason: 'NodeUnreachable', message: `node ${node} is unreachable` }, nowIso);
    try {
      await deps.objects.patch(resources.pods, pod.metadata.namespace, pod.metadata.name ?? '', {
        metadata: { resourceVersion: pod.metadata.resourceVersion }, status: { conditions },
      }, 'status');
    } catch (err) {
      if (err instanceof StoreError && (err.failure.code === 404 || err.failure.code === 409)) return;
      throw err;
    }
    await events.record(pod, 'Warning', 'NodeNotReady', `Node ${node} is not ready`);
  }

  async function setReady(node: Node, ready: Condition, nowIso: string): Promise<void> {
    const conditions = withCondition(node.status?.conditions, ready, nowIso);
    if (sameContent(conditions, node.status?.conditions ?? [])) return;
    await deps.objects.patch(resources.nodes, undefined, node.metadata.name ?? '', { status: { conditions } }, 'status');
  }
}

function withoutUnreachable(taints: readonly Taint[]): Taint[] {
  return taints.filter((t) => !(t.key === TAINT_UNREACHABLE && t.effect === 'NoExecute'));
}
