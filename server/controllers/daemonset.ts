import { isKind, matchesLabels, labelSelectorFromSpec, LABEL_CONTROLLER_REVISION_HASH, TAINT_NOT_READY, TAINT_UNREACHABLE, TAINT_UNSCHEDULABLE } from '../../api-types/index.js';
import type { DaemonSet, DaemonSetStatus, Node, Pod, Toleration } from '../../api-types/index.js';
import type { Stored } from '../store/types.js';
import {
  resources, objectKey, splitKey, ownerKey, isPodActive, isPodReady, isPodAvailable, podFromTemplate,
  sameContent, scaledValue, templateHash, tolerationFor, isGoing,
} from './cluster-objects.js';
import { EventRecorder } from './events.js';
import { deletePod } from './replicaset.js';
import type { Controller, ControllerDeps } from './controller.js';

/** What every DaemonSet pod tolerates, as in Kubernetes: its node being unreachable, not ready or cordoned. */
const DAEMON_TOLERATIONS: readonly Toleration[] = [
  { key: TAINT_UNREACHABLE, operator: 'Exists', effect: 'NoExecute' },
  { key: TAINT_NOT_READY, operator: 'Exists', effect: 'NoExecute' },
  { key: TAINT_UNSCHEDULABLE, operator: 'Exists', effect: 'NoSchedule' },
];

/**
 * One pod per eligible node for every DaemonSet: nodes matching the template's nodeSelector whose NoSchedule
 * and NoExecute taints the pod tolerates, including nodes that join later. DaemonSet pods are created bound
 * (spec.nodeName) and are never moved by node eviction. Template changes roll out node by node, keeping at most
 * maxUnavailable (default 1) nodes without a ready pod; with updateStrategy OnDelete old pods stay until deleted.
 */
export function daemonSetController(deps: ControllerDeps): Controller {
  const events = new EventRecorder(deps.objects, 'daemonset-controller', deps.now);
  const allKeys = () => deps.objects.list(resources.daemonSets).items.map(objectKey);
  const seenNodes = new Map<string, string>();
  return {
    name: 'daemonset',
    watches: [
      { resource: resources.daemonSets, keys: (e) => [objectKey(e.object)] },
      { resource: resources.pods, keys: (e) => ownerKey(e.object, 'DaemonSet') },
      { resource: resources.nodes, keys: (e) => (e.type === 'MODIFIED' && isKind(e.object, 'Node') && !nodeSchedulingChanged(seenNodes, e.object) ? [] : allKeys()) },
    ],
    allKeys,
    async reconcile(key) {
      const { namespace, name } = splitKey(key);
      const ds = deps.objects.get(resources.daemonSets, namespace, name);
      if (!ds || isGoing(ds)) return;
      const hash = templateHash(ds.spec.template);
      const nodes = deps.objects.list(resources.nodes).items;
      const eligible = new Set(nodes.filter((n) => runsOn(ds, n)).map((n) => n.metadata.name ?? ''));
      const pods = deps.pods.ownedBy(ds);
      const byNode = new Map<string, Pod[]>();
      const doomed: Pod[] = [];
      /** Nodes whose daemon pod is Terminating: as in Kubernetes, the next one starts once it is gone. */
      const terminatingOn = new Set<string>();
      for (const p of pods) {
        if (p.metadata.deletionTimestamp) { terminatingOn.add(p.spec.nodeName ?? ''); continue; }
        const node = p.spec.nodeName ?? '';
        if (p.status?.phase === 'Failed' || !eligible.has(node)) { doomed.push(p); continue; }
        if (!isPodActive(p)) continue;
        byNode.set(node, [...(byNode.get(node) ?? []), p]);
      }
      for (const list of byNode.values()) {
        // Keep one pod per node: the oldest ready one.
        list.sort((a, b) => Number(isPodReady(b)) - Number(isPodReady(a)) || (a.metadata.creationTimestamp ?? '').localeCompare(b.metadata.creationTimestamp ?? ''));
        doomed.push(...list.splice(1));
      }
      for (const p of doomed) await deletePod(deps.objects, p);
      if (doomed.length > 0) await events.record(ds, 'Normal', 'SuccessfulDelete', `Deleted ${doomed.length} pod(s) not wanted on their nodes`);

      const missing = [...eligible].filter((n) => !byNode.has(n) && !terminatingOn.has(n)).sort();
      const tolerations = [...(ds.spec.template.spec.tolerations ?? []), ...DAEMON_TOLERATIONS];
      for (const node of missing) {
        const pod = await deps.objects.create(resources.pods, namespace, podFromTemplate(ds.spec.template, ds, {
          labels: { [LABEL_CONTROLLER_REVISION_HASH]: hash }, spec: { nodeName: node, tolerations },
        }));
        byNode.set(node, [pod]);
        await events.record(ds, 'Normal', 'SuccessfulCreate', `Created pod: ${pod.metadata.name} on node ${node}`);
      }

      const placed = [...byNode.values()].map((l) => l[0]!);
      if (ds.spec.updateStrategy?.type !== 'OnDelete') {
        const maxUnavailable = Math.max(1, scaledValue(ds.spec.updateStrategy?.rollingUpdate?.maxUnavailable, eligible.size, '1', true));
        let room = maxUnavailable - placed.filter((p) => !isPodReady(p)).length - [...terminatingOn].filter((n) => eligible.has(n) && !byNode.has(n)).length;
        const outdated = placed.filter((p) => p.metadata.labels?.[LABEL_CONTROLLER_REVISION_HASH] !== hash)
          .sort((a, b) => Number(isPodReady(a)) - Number(isPodReady(b)));
        for (const p of outdated) {
          // Replacing an unready pod costs no availability; a ready one uses one unit of the budget.
          if (isPodReady(p)) {
            if (room <= 0) break;
            room--;
          }
          await deletePod(deps.objects, p);
          await events.record(ds, 'Normal', 'SuccessfulDelete', `Deleted outdated pod: ${p.metadata.name} (rolling update)`);
        }
      }

      const now = deps.now();
      const ready = placed.filter(isPodReady).length;
      const availableCount = placed.filter((p) => isPodAvailable(p, ds.spec.minReadySeconds ?? 0, now)).length;
      const status: DaemonSetStatus = {
        desiredNumberScheduled: eligible.size,
        currentNumberScheduled: placed.length,
        numberMisscheduled: 0,
        numberReady: ready,
        updatedNumberScheduled: placed.filter((p) => p.metadata.labels?.[LABEL_CONTROLLER_REVISION_HASH] === hash).length,
        numberAvailable: availableCount,
        numberUnavailable: Math.max(0, eligible.size - availableCount),
        observedGeneration: ds.metadata.generation ?? 1,
      };
      if (!sameContent(status, ds.status ?? {})) {
        await deps.objects.replaceStatus(resources.daemonSets, namespace, name, status);
      }
    },
  };
}

/** Whether a DaemonSet wants a pod on `node`. */
export function runsOn(ds: DaemonSet, node: Node): boolean {
  if (node.metadata.deletionTimestamp) return false;
  const selector = ds.spec.template.spec.nodeSelector;
  if (selector && !matchesLabels(labelSelectorFromSpec({ matchLabels: selector }), node.metadata.labels)) return false;
  const tolerations = [...(ds.spec.template.spec.tolerations ?? []), ...DAEMON_TOLERATIONS];
  return (node.spec?.taints ?? []).every((t) => t.effect === 'PreferNoSchedule' || tolerationFor(tolerations, t) !== undefined);
}

/**
 * Agents rewrite node status often; only labels and taints decide DaemonSet placement. A watch event carries
 * only the new object, so the placement-relevant part of each node is remembered in `seen` and compared.
 */
function nodeSchedulingChanged(seen: Map<string, string>, node: Stored<Node>): boolean {
  const placement = JSON.stringify([node.metadata.labels ?? {}, node.spec?.taints ?? []]);
  const changed = seen.get(node.metadata.name) !== placement;
  seen.set(node.metadata.name, placement);
  return changed;
}
