import type { Pod, StatefulSet, StatefulSetStatus, Volume } from '../../api-types/index.js';
import type { Stored } from '../store/types.js';
import {
  resources, objectKey, splitKey, ownerKey, isPodActive, isPodReady, isPodAvailable, podFromTemplate,
  sameContent, templateHash, isGoing,
} from './cluster-objects.js';
import { EventRecorder } from './events.js';
import { deletePod } from './replicaset.js';
import type { Controller, ControllerDeps } from './controller.js';
import { LABEL_CONTROLLER_REVISION_HASH, LABEL_POD_INDEX, LABEL_STATEFULSET_POD_NAME, resourceOfKind } from '../../api-types/index.js';
import { StoreError } from '../store/types.js';


/**
 * StatefulSet pods have stable names NAME-0 .. NAME-(n-1) and stable volumes: each volumeClaimTemplate T
 * becomes a PersistentVolumeClaim T-NAME-i, made before pod i, and a volume named T of that claim, the same for
 * every incarnation of ordinal i (persistentVolumeClaimRetentionPolicy says when the claims go). With podManagementPolicy OrderedReady (the default) pod i
 * is created only once pods 0..i-1 are Ready, pods are removed highest ordinal first, one at a time, and
 * only while the others are Ready; Parallel creates and removes without waiting. Template changes replace
 * pods from the highest ordinal down (down to rollingUpdate.partition), one at a time, when all are Ready.
 */
export function statefulSetController(deps: ControllerDeps): Controller {
  const events = new EventRecorder(deps.objects, 'statefulset-controller', deps.now);
  return {
    name: 'statefulset',
    watches: [
      { resource: resources.statefulSets, keys: (e) => [objectKey(e.object)] },
      { resource: resources.pods, keys: (e) => ownerKey(e.object, 'StatefulSet') },
    ],
    allKeys: () => deps.objects.list(resources.statefulSets).items.map(objectKey),
    async reconcile(key) {
      const { namespace, name } = splitKey(key);
      const sts = deps.objects.get(resources.statefulSets, namespace, name);
      if (!sts || isGoing(sts)) return;
      const replicas = sts.spec.replicas ?? 1;
      const ordered = sts.spec.podManagementPolicy !== 'Parallel';
      const hash = templateHash(sts.spec.template);
      const byOrdinal = new Map<number, Pod>();
      /** Ordinals whose pod is Terminating: its name is free only once it is gone. */
      const terminating = new Set<number>();
      for (const p of deps.pods.ownedBy(sts)) {
        const i = ordinalOf(name, p.metadata.name ?? '');
        if (i === undefined) continue;
        if (p.metadata.deletionTimestamp) { terminating.add(i); continue; }
        if (p.status?.phase === 'Failed' || p.status?.phase === 'Succeeded') {
          await deletePod(deps.objects, p);
          await events.record(sts, 'Warning', 'RecreatingFailedPod', `StatefulSet ${namespace}/${name} is recreating ${p.status?.phase} Pod ${p.metadata.name}`);
          continue;
        }
        if (isPodActive(p)) byOrdinal.set(i, p);
      }

      const pending: Promise<unknown>[] = [];
      // OrderedReady makes no progress while any pod is terminating (Kubernetes' monotonic rule).
      const blocked = ordered && terminating.size > 0;
      for (let i = 0; i < replicas; i++) {
        const existing = byOrdinal.get(i);
        if (existing) {
          if (ordered && !isPodReady(existing)) break;
          continue;
        }
        if (terminating.has(i)) {
          if (ordered) break;
          continue;
        }
        if (blocked) break;
        const podName = `${name}-${i}`;
        const create = ensureClaims(deps, sts, i).then(() => deps.objects.create(resources.pods, namespace, podBody(sts, i, hash))).then(async (p) => {
          byOrdinal.set(i, p);
          await events.record(sts, 'Normal', 'SuccessfulCreate', `create Pod ${podName} in StatefulSet ${name} successful`);
        });
        if (ordered) {
          await create;
          break;
        }
        pending.push(create);
      }
      await Promise.all(pending);

      const live = [...byOrdinal.entries()].sort(([a], [b]) => b - a);
      const condemned = live.filter(([i]) => i >= replicas);
      const othersReady = live.filter(([i]) => i < replicas).every(([, p]) => isPodReady(p));
      for (const [i, p] of condemned) {
        if (ordered && (!othersReady || blocked)) break;
        if (sts.spec.persistentVolumeClaimRetentionPolicy?.whenScaled === 'Delete') await claimsOwnedByPod(deps, sts, i, p);
        await deletePod(deps.objects, p);
        byOrdinal.delete(i);
        await events.record(sts, 'Normal', 'SuccessfulDelete', `delete Pod ${p.metadata.name} in StatefulSet ${name} successful`);
        if (ordered) break;
      }

      const kept = [...byOrdinal.entries()].filter(([i]) => i < replicas).sort(([a], [b]) => b - a);
      if (sts.spec.updateStrategy?.type !== 'OnDelete' && !blocked && condemned.length === 0 && kept.length === replicas && kept.every(([, p]) => isPodReady(p))) {
        const partition = sts.spec.updateStrategy?.rollingUpdate?.partition ?? 0;
        const outdated = kept.find(([i, p]) => i >= partition && p.metadata.labels?.[LABEL_CONTROLLER_REVISION_HASH] !== hash);
        if (outdated) {
          await deletePod(deps.objects, outdated[1]);
          byOrdinal.delete(outdated[0]);
          await events.record(sts, 'Normal', 'SuccessfulDelete', `delete Pod ${outdated[1].metadata.name} in StatefulSet ${name} for update`);
        }
      }

      const pods = [...byOrdinal.values()];
      const updated = pods.filter((p) => p.metadata.labels?.[LABEL_CONTROLLER_REVISION_HASH] === hash).length;
      const status: StatefulSetStatus = {
        replicas: pods.length,
        readyReplicas: pods.filter(isPodReady).length,
        availableReplicas: pods.filter((p) => isPodAvailable(p, sts.spec.minReadySeconds ?? 0, deps.now())).length,
        currentReplicas: updated,
        updatedReplicas: updated,
        currentRevision: hash,
        updateRevision: hash,
        observedGeneration: sts.metadata.generation ?? 1,
      };
      if (!sameContent(status, sts.status ?? {})) {
        await deps.objects.replaceStatus(resources.statefulSets, namespace, name, status);
      }
    },
  };
}

const claims = resourceOfKind('PersistentVolumeClaim');

/**
 * Creates the claims of ordinal `i` that do not exist: TEMPLATE-SET-i, with the template's labels and the set's
 * selector labels; with persistentVolumeClaimRetentionPolicy.whenDeleted Delete the set owns them (the garbage
 * collector removes them with it), else nothing does and they outlive it. A claim of that name that exists is
 * used as it is, as Kubernetes does.
 */
async function ensureClaims(deps: ControllerDeps, sts: Stored<StatefulSet>, i: number): Promise<void> {
  const setName = sts.metadata.name;
  const namespace = sts.metadata.namespace;
  for (const t of sts.spec.volumeClaimTemplates ?? []) {
    const claim = claimName(t.metadata?.name ?? '', setName, i);
    if (deps.objects.get(claims, namespace, claim)) continue;
    const owned = sts.spec.persistentVolumeClaimRetentionPolicy?.whenDeleted === 'Delete';
    try {
      await deps.objects.create(claims, namespace, {
        apiVersion: 'v1', kind: 'PersistentVolumeClaim',
        metadata: {
          name: claim, labels: { ...(t.metadata?.labels ?? {}), ...(sts.spec.selector.matchLabels ?? {}) },
          ...(t.metadata?.annotations ? { annotations: t.metadata.annotations } : {}),
          ...(owned ? { ownerReferences: [{ apiVersion: sts.apiVersion, kind: sts.kind, name: setName, uid: sts.metadata.uid ?? '', controller: true, blockOwnerDeletion: true }] } : {}),
        },
        spec: t.spec,
      });
    } catch (err) {
      if (!(err instanceof StoreError && err.failure.code === 409)) throw err;
    }
  }
}

/** whenScaled Delete: the claims of a condemned ordinal are owned by its pod, so that they go once it is gone. */
async function claimsOwnedByPod(deps: ControllerDeps, sts: Stored<StatefulSet>, i: number, pod: Pod): Promise<void> {
  for (const t of sts.spec.volumeClaimTemplates ?? []) {
    const claim = deps.objects.get(claims, sts.metadata.namespace, claimName(t.metadata?.name ?? '', sts.metadata.name, i));
    const refs = claim?.metadata.ownerReferences ?? [];
    if (!claim || refs.some((r) => r.uid === pod.metadata.uid)) continue;
    await deps.objects.patch(claims, claim.metadata.namespace, claim.metadata.name, {
      metadata: { resourceVersion: claim.metadata.resourceVersion, ownerReferences: [...refs, { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name ?? '', uid: pod.metadata.uid ?? '' }] },
    });
  }
}

/** The ordinal of a pod named SET-i, or undefined for another name. */
export function ordinalOf(setName: string, podName: string): number | undefined {
  if (!podName.startsWith(`${setName}-`)) return undefined;
  const rest = podName.slice(setName.length + 1);
  return /^(0|[1-9]\d*)$/.test(rest) ? Number(rest) : undefined;
}

/** The claim name ordinal `i` of the set uses for a volume claim template: TEMPLATE-SET-i, as in Kubernetes. */
export function claimName(template: string, setName: string, ordinal: number): string {
  return `${template}-${setName}-${ordinal}`;
}

function podBody(sts: Stored<StatefulSet>, ordinal: number, hash: string): Record<string, unknown> {
  const setName = sts.metadata.name ?? '';
  const podName = `${setName}-${ordinal}`;
  const claims: Volume[] = (sts.spec.volumeClaimTemplates ?? []).map((t) => ({
    name: t.metadata?.name ?? '', persistentVolumeClaim: { claimName: claimName(t.metadata?.name ?? '', setName, ordinal) },
  }));
  const claimed = new Set(claims.map((c) => c.name));
  const volumes = [...(sts.spec.template.spec.volumes ?? []).filter((v) => !claimed.has(v.name)), ...claims];
  return podFromTemplate(sts.spec.template, sts, {
    name: podName,
    labels: { [LABEL_STATEFULSET_POD_NAME]: podName, [LABEL_POD_INDEX]: String(ordinal), [LABEL_CONTROLLER_REVISION_HASH]: hash },
    spec: {
      hostname: podName,
      ...(sts.spec.serviceName ? { subdomain: sts.spec.serviceName } : {}),
      ...(volumes.length > 0 ? { volumes } : {}),
    },
  });
}
