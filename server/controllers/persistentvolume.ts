// The PersistentVolume controller (after Kubernetes' pkg/controller/volume/persistentvolume, its pvc-protection
// and pv-protection controllers, and k3s' local-path-provisioner), on the leader.
//
// Binding: an unbound claim gets the smallest Available volume that matches it (claimVolumeMismatch below); a
// volume pre-bound to the claim (spec.claimRef) comes first, and a claim naming its volume (spec.volumeName) takes
// only that one. The volume is written first (claimRef, phase Bound), then the claim (volumeName, phase Bound), each
// with pv.kubernetes.io/bind-completed and, where the controller chose, pv.kubernetes.io/bound-by-controller. A
// claim of a WaitForFirstConsumer class waits until a pod using it is bound to a node: that node is recorded in
// volume.kubernetes.io/selected-node, and only volumes whose node affinity admits it match.
//
// Provisioning (local-path): a claim of a class with provisioner flotilla.io/local-path and a selected node that no
// volume matches gets a new volume pvc-<claim uid>, a hostPath directory <agent data dir>/storage/<volume name> on
// that node (the node publishes its directory in annotation flotilla.io/local-path-dir), with node affinity to it,
// the class's reclaim policy and finalizer flotilla.io/local-path-cleanup: the node's agent creates the directory
// when the first pod uses it, and removes it and then that finalizer when the volume is deleted.
//
// Phases: a claim is Pending until bound, Bound, and Lost when its bound volume is gone. A volume is Available
// without a claim, Bound to an existing claim, Released once its claim is gone; then Retain keeps it Released,
// Delete deletes local-path volumes (any other is Failed: no plugin here deletes it).
//
// Protection: a claim being deleted keeps kubernetes.io/pvc-protection while a pod that is not finished uses it;
// a volume being deleted keeps kubernetes.io/pv-protection while it is Bound.
import {
  ANNOTATION_BIND_COMPLETED, ANNOTATION_BOUND_BY_CONTROLLER, ANNOTATION_LOCAL_PATH_DIR, ANNOTATION_PROVISIONED_BY, ANNOTATION_SELECTED_NODE,
  ANNOTATION_STORAGE_PROVISIONER, FINALIZER_LOCAL_PATH, FINALIZER_PV_PROTECTION, FINALIZER_PVC_PROTECTION, LABEL_HOSTNAME,
  LOCAL_PATH_PROVISIONER, isKind, labelSelectorFromSpec, matchesLabels, parseQuantity, podReferences, resourceOfKind,
} from '../../api-types/index.js';
import type { Node, PersistentVolume, PersistentVolumeClaim, Pod, StorageClass } from '../../api-types/index.js';
import type { Stored } from '../store/types.js';
import { StoreError } from '../store/types.js';
import { resources, isPodUnfinished, sameContent } from './cluster-objects.js';
import { EventRecorder } from './events.js';
import type { Controller, ControllerDeps } from './controller.js';
import { expressionsMatch } from '../scheduler/reference.js';

export const storageResources = {
  persistentVolumes: resourceOfKind('PersistentVolume'),
  persistentVolumeClaims: resourceOfKind('PersistentVolumeClaim'),
  storageClasses: resourceOfKind('StorageClass'),
} as const;
const { persistentVolumes, persistentVolumeClaims, storageClasses } = storageResources;

/** The volume a claim of uid `uid` is provisioned as, as Kubernetes names it. */
export function provisionedVolumeName(claimUid: string): string {
  return `pvc-${claimUid}`;
}

/** The storage class a claim or volume names ("" for none). */
export function classOf(o: { spec: { storageClassName?: string } }): string {
  return o.spec.storageClassName ?? '';
}

function storageBytes(q: string | number | undefined): bigint {
  return q === undefined ? 0n : parseQuantity(q).milli;
}

/**
 * Why `volume` cannot serve `claim` (undefined when it can), by Kubernetes' rules (findMatchingVolume /
 * checkVolumeSatisfyClaim): same class, same volumeMode, every access mode the claim asks, at least the storage
 * it asks, the claim's selector, not pre-bound to another claim, not being deleted, and for a claim with a
 * selected node, node affinity admitting that node (`nodeLabels`).
 */
export function claimVolumeMismatch(claim: PersistentVolumeClaim, volume: PersistentVolume, nodeLabels?: Record<string, string>): string | undefined {
  const ref = volume.spec.claimRef;
  if (ref && !(ref.name === claim.metadata.name && (ref.namespace ?? 'default') === (claim.metadata.namespace ?? 'default') && (!ref.uid || ref.uid === claim.metadata.uid))) return 'bound to another claim';
  if (volume.metadata.deletionTimestamp) return 'being deleted';
  if (!ref && volume.status?.phase !== undefined && volume.status.phase !== 'Available' && volume.status.phase !== 'Pending') return `phase ${volume.status.phase}`;
  if (classOf(volume) !== classOf(claim)) return `storage class "${classOf(volume)}", not "${classOf(claim)}"`;
  if ((volume.spec.volumeMode ?? 'Filesystem') !== (claim.spec.volumeMode ?? 'Filesystem')) return `volumeMode ${volume.spec.volumeMode ?? 'Filesystem'}`;
  const missing = (claim.spec.accessModes ?? []).filter((m) => !(volume.spec.accessModes ?? []).includes(m));
  if (missing.length > 0) return `no access mode ${missing.join(', ')}`;
  if (storageBytes(volume.spec.capacity?.storage) < storageBytes(claim.spec.resources?.requests?.storage)) return 'too small';
  if (claim.spec.selector && !matchesLabels(labelSelectorFromSpec(claim.spec.selector), volume.metadata.labels)) return 'not selected';
  if (nodeLabels !== undefined && !volumeAdmitsNode(volume, nodeLabels)) return 'node affinity excludes the selected node';
  return undefined;
}

/** Whether the volume's node affinity (none: every node) admits a node with `labels`. */
export function volumeAdmitsNode(volume: PersistentVolume, labels: Record<string, string>): boolean {
  const terms = volume.spec.nodeAffinity?.required?.nodeSelectorTerms;
  return terms === undefined || terms.some((t) => expressionsMatch(t, labels));
}

/**
 * The volume an unbound claim binds to, of `volumes`: the one it names (spec.volumeName), else one pre-bound to
 * it, else the smallest match (ties: by name, so every leader picks the same); undefined when none matches.
 */
export function bestVolume(claim: PersistentVolumeClaim, volumes: readonly PersistentVolume[], nodeLabels?: Record<string, string>): PersistentVolume | undefined {
  const fits = volumes.filter((v) => claimVolumeMismatch(claim, v, nodeLabels) === undefined);
  if (claim.spec.volumeName) return fits.find((v) => v.metadata.name === claim.spec.volumeName);
  const preBound = fits.filter((v) => v.spec.claimRef !== undefined);
  const pool = preBound.length > 0 ? preBound : fits;
  return [...pool].sort((a, b) => {
    const d = storageBytes(a.spec.capacity?.storage) - storageBytes(b.spec.capacity?.storage);
    return d < 0n ? -1 : d > 0n ? 1 : (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '');
  })[0];
}

/** Whether `pod` uses claim `name` of its namespace. */
function usesClaim(pod: Pod, name: string): boolean {
  return podReferences(pod).persistentVolumeClaims.has(name);
}

const claimKey = (namespace: string, name: string): string => `claim:${namespace}/${name}`;
const volumeKey = (name: string): string => `volume:${name}`;

const withoutFinalizer = (finalizers: readonly string[] | undefined, f: string): string[] => (finalizers ?? []).filter((x) => x !== f);

export function persistentVolumeController(deps: ControllerDeps): Controller {
  const events = new EventRecorder(deps.objects, 'persistentvolume-controller', deps.now);
  const nowIso = (): string => new Date(deps.now()).toISOString();

  const setClaimStatus = async (claim: Stored<PersistentVolumeClaim>, status: PersistentVolumeClaim['status']): Promise<void> => {
    if (sameContent(status, claim.status ?? {})) return;
    await deps.objects.replaceStatus(persistentVolumeClaims, claim.metadata.namespace, claim.metadata.name, status, claim.metadata.resourceVersion);
  };
  const setVolumePhase = async (volume: Stored<PersistentVolume>, phase: NonNullable<PersistentVolume['status']>['phase'], reason?: string, message?: string): Promise<void> => {
    const was = volume.status ?? {};
    if (was.phase === phase && was.reason === reason && was.message === message) return;
    await deps.objects.replaceStatus(persistentVolumes, undefined, volume.metadata.name, {
      phase, ...(reason ? { reason } : {}), ...(message ? { message } : {}), lastPhaseTransitionTime: was.phase === phase && was.lastPhaseTransitionTime ? was.lastPhaseTransitionTime : nowIso(),
    }, volume.metadata.resourceVersion);
  };
  /** Removes one finalizer, pinned to the version read (a conflict retries the key). */
  const dropFinalizer = async (r: typeof persistentVolumes | typeof persistentVolumeClaims, o: Stored<PersistentVolume> | Stored<PersistentVolumeClaim>, f: string): Promise<void> => {
    if (!o.metadata.finalizers?.includes(f)) return;
    await deps.objects.patch(r, o.metadata.namespace, o.metadata.name, { metadata: { resourceVersion: o.metadata.resourceVersion, finalizers: withoutFinalizer(o.metadata.finalizers, f) } });
  };

  async function reconcileClaim(namespace: string, name: string): Promise<void> {
    const claim = deps.objects.get(persistentVolumeClaims, namespace, name);
    if (!claim) return;
    if (claim.metadata.deletionTimestamp) {
      const inUse = deps.objects.list(resources.pods, namespace).items.some((p) => isPodUnfinished(p) && usesClaim(p, name));
      if (!inUse) await dropFinalizer(persistentVolumeClaims, claim, FINALIZER_PVC_PROTECTION);
      return;
    }
    const bound = claim.spec.volumeName ? deps.objects.get(persistentVolumes, undefined, claim.spec.volumeName) : undefined;
    if (claim.spec.volumeName && claim.metadata.annotations?.[ANNOTATION_BIND_COMPLETED] === 'yes') {
      // Bound once: the volume must still name this claim.
      const ref = bound?.spec.claimRef;
      if (!bound || (ref?.uid !== undefined && ref.uid !== claim.metadata.uid)) {
        if (claim.status?.phase !== 'Lost') {
          await setClaimStatus(claim, { ...claim.status, phase: 'Lost' });
          await events.record(claim, 'Warning', 'ClaimLost', `Bound claim has lost its PersistentVolume. Data on the volume is lost!`);
        }
        return;
      }
      await finishBinding(claim, bound, false);
      return;
    }
    const klass = classOf(claim) ? deps.objects.get(storageClasses, undefined, classOf(claim)) : undefined;
    const waitForConsumer = klass?.volumeBindingMode === 'WaitForFirstConsumer';
    let selected = claim.metadata.annotations?.[ANNOTATION_SELECTED_NODE];
    if (waitForConsumer && !selected && !claim.spec.volumeName) {
      // The first consumer is the first pod using the claim that the scheduler has bound.
      const consumer = deps.objects.list(resources.pods, namespace).items.find((p) => p.spec.nodeName && isPodUnfinished(p) && usesClaim(p, name));
      if (!consumer) {
        await events.record(claim, 'Normal', 'WaitForFirstConsumer', 'waiting for first consumer to be created before binding');
        return;
      }
      selected = consumer.spec.nodeName!;
      await deps.objects.patch(persistentVolumeClaims, namespace, name, { metadata: { resourceVersion: claim.metadata.resourceVersion, annotations: { [ANNOTATION_SELECTED_NODE]: selected } } });
      return; // the write brings the claim back with its node
    }
    const node = selected ? deps.objects.get(resources.nodes, undefined, selected) : undefined;
    const nodeLabels = selected ? { [LABEL_HOSTNAME]: selected, ...(node?.metadata.labels ?? {}) } : undefined;
    const volume = bestVolume(claim, deps.objects.list(persistentVolumes).items, waitForConsumer ? nodeLabels : undefined);
    if (volume) {
      await finishBinding(claim, volume as Stored<PersistentVolume>, !claim.spec.volumeName && !volume.spec.claimRef);
      return;
    }
    if (claim.spec.volumeName) {
      await events.record(claim, 'Warning', 'FailedBinding', `volume "${claim.spec.volumeName}" ${bound ? `cannot be bound to this claim: ${claimVolumeMismatch(claim, bound) ?? 'already bound'}` : 'not found'}`);
      return;
    }
    if (klass?.provisioner === LOCAL_PATH_PROVISIONER) {
      await provisionLocalPath(claim, klass, selected, node);
      return;
    }
    await events.record(claim, 'Normal', 'FailedBinding', classOf(claim) && !klass
      ? `storageclass.storage.k8s.io "${classOf(claim)}" not found`
      : classOf(claim) ? `waiting for a volume to be created, either by external provisioner "${klass?.provisioner}" or manually created by system administrator`
        : 'no persistent volumes available for this claim and no storage class is set');
  }

  /** Binds the claim and the volume to each other, the volume first; `byController`: the controller chose the volume. */
  async function finishBinding(claim: Stored<PersistentVolumeClaim>, volume: Stored<PersistentVolume>, byController: boolean): Promise<void> {
    const namespace = claim.metadata.namespace ?? 'default';
    const ref = { kind: 'PersistentVolumeClaim', namespace, name: claim.metadata.name, uid: claim.metadata.uid ?? '', apiVersion: 'v1', resourceVersion: claim.metadata.resourceVersion };
    let pv = volume;
    if (pv.spec.claimRef?.uid !== claim.metadata.uid || pv.metadata.annotations?.[ANNOTATION_BIND_COMPLETED] !== 'yes') {
      pv = await deps.objects.patch(persistentVolumes, undefined, pv.metadata.name, {
        metadata: {
          resourceVersion: pv.metadata.resourceVersion,
          annotations: { [ANNOTATION_BIND_COMPLETED]: 'yes', ...(byController || pv.metadata.annotations?.[ANNOTATION_BOUND_BY_CONTROLLER] ? { [ANNOTATION_BOUND_BY_CONTROLLER]: 'yes' } : {}) },
        },
        spec: { claimRef: ref },
      });
    }
    await setVolumePhase(pv, 'Bound');
    let pvc = claim;
    if (pvc.spec.volumeName !== pv.metadata.name || pvc.metadata.annotations?.[ANNOTATION_BIND_COMPLETED] !== 'yes') {
      pvc = await deps.objects.patch(persistentVolumeClaims, namespace, claim.metadata.name, {
        metadata: {
          resourceVersion: pvc.metadata.resourceVersion,
          annotations: { [ANNOTATION_BIND_COMPLETED]: 'yes', ...(byController ? { [ANNOTATION_BOUND_BY_CONTROLLER]: 'yes' } : {}) },
        },
        spec: { volumeName: pv.metadata.name },
      });
    }
    await setClaimStatus(pvc, { ...pvc.status, phase: 'Bound', accessModes: pv.spec.accessModes ?? [], capacity: { ...pv.spec.capacity } });
  }

  async function provisionLocalPath(claim: Stored<PersistentVolumeClaim>, klass: Stored<StorageClass>, selected: string | undefined, node: Stored<Node> | undefined): Promise<void> {
    const dir = node?.metadata.annotations?.[ANNOTATION_LOCAL_PATH_DIR];
    if (!selected || !dir) {
      await events.record(claim, 'Warning', 'ProvisioningFailed', !selected
        ? `failed to provision volume with StorageClass "${klass.metadata.name}": configuration error, no node was specified`
        : `failed to provision volume with StorageClass "${klass.metadata.name}": node "${selected}" ${node ? `has no annotation ${ANNOTATION_LOCAL_PATH_DIR}` : 'not found'}`);
      return;
    }
    if (claim.metadata.annotations?.[ANNOTATION_STORAGE_PROVISIONER] !== klass.provisioner) {
      await deps.objects.patch(persistentVolumeClaims, claim.metadata.namespace, claim.metadata.name, { metadata: { annotations: { [ANNOTATION_STORAGE_PROVISIONER]: klass.provisioner } } });
    }
    const name = provisionedVolumeName(claim.metadata.uid ?? '');
    const volume: PersistentVolume = {
      apiVersion: 'v1', kind: 'PersistentVolume',
      metadata: { name, annotations: { [ANNOTATION_PROVISIONED_BY]: klass.provisioner }, finalizers: [FINALIZER_LOCAL_PATH] },
      spec: {
        capacity: { storage: claim.spec.resources?.requests?.storage ?? '0' },
        accessModes: claim.spec.accessModes ?? [],
        claimRef: { kind: 'PersistentVolumeClaim', namespace: claim.metadata.namespace ?? 'default', name: claim.metadata.name, uid: claim.metadata.uid ?? '', apiVersion: 'v1' },
        persistentVolumeReclaimPolicy: klass.reclaimPolicy ?? 'Delete',
        storageClassName: klass.metadata.name,
        volumeMode: claim.spec.volumeMode ?? 'Filesystem',
        nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: LABEL_HOSTNAME, operator: 'In', values: [selected] }] }] } },
        hostPath: { path: `${dir.replace(/\/+$/, '')}/${name}`, type: 'DirectoryOrCreate' },
      },
    };
    try {
      await deps.objects.create(persistentVolumes, undefined, volume);
    } catch (err) {
      if (err instanceof StoreError && err.failure.code === 409) return; // made by an earlier attempt: the watch brings it
      throw err;
    }
    await events.record(claim, 'Normal', 'ProvisioningSucceeded', `Successfully provisioned volume ${name}`);
  }

  async function reconcileVolume(name: string): Promise<void> {
    const volume = deps.objects.get(persistentVolumes, undefined, name);
    if (!volume) return;
    const ref = volume.spec.claimRef;
    const claim = ref?.name ? deps.objects.get(persistentVolumeClaims, ref.namespace ?? 'default', ref.name) : undefined;
    const claimed = claim !== undefined && (!ref?.uid || ref.uid === claim.metadata.uid);
    if (volume.metadata.deletionTimestamp) {
      if (!(claimed && claim?.spec.volumeName === name)) await dropFinalizer(persistentVolumes, volume, FINALIZER_PV_PROTECTION);
      return;
    }
    if (!ref) { await setVolumePhase(volume, 'Available'); return; }
    if (claimed) {
      if (claim.spec.volumeName === name) await setVolumePhase(volume, 'Bound');
      else if (claim.spec.volumeName && volume.metadata.annotations?.[ANNOTATION_BOUND_BY_CONTROLLER] === 'yes') {
        // The claim went to another volume meanwhile: this one is free again.
        const { [ANNOTATION_BIND_COMPLETED]: _, [ANNOTATION_BOUND_BY_CONTROLLER]: __, ...annotations } = volume.metadata.annotations ?? {};
        const freed = await deps.objects.replace(persistentVolumes, undefined, name, { ...volume, metadata: { ...volume.metadata, annotations }, spec: { ...volume.spec, claimRef: undefined } });
        await setVolumePhase(freed, 'Available');
      } else await setVolumePhase(volume, ref.uid ? 'Bound' : 'Available');
      return;
    }
    if (!ref.uid) { await setVolumePhase(volume, 'Available'); return; } // pre-bound to a claim still to come
    // The claim is gone: Released, then the reclaim policy.
    if (volume.status?.phase !== 'Released' && volume.status?.phase !== 'Failed') await setVolumePhase(volume, 'Released');
    const current = deps.objects.get(persistentVolumes, undefined, name)!;
    if (current.spec.persistentVolumeReclaimPolicy === 'Delete') {
      if (current.metadata.annotations?.[ANNOTATION_PROVISIONED_BY] === LOCAL_PATH_PROVISIONER) {
        await deps.objects.delete(persistentVolumes, undefined, name, { preconditions: { uid: current.metadata.uid ?? '' } });
      } else {
        await setVolumePhase(current, 'Failed', 'VolumeFailedDelete', `error getting deleter volume plugin for volume "${name}": no deletable volume plugin matched`);
      }
    } else if (current.spec.persistentVolumeReclaimPolicy === 'Recycle') {
      await setVolumePhase(current, 'Failed', 'VolumeFailedRecycle', `error getting recycler volume plugin for volume "${name}": no recyclable volume plugin matched`);
    }
  }

  return {
    name: 'persistentvolume',
    watches: [
      { resource: persistentVolumeClaims, keys: (e) => [claimKey(e.object.metadata.namespace ?? 'default', e.object.metadata.name), ...((e.object as PersistentVolumeClaim).spec?.volumeName ? [volumeKey((e.object as PersistentVolumeClaim).spec.volumeName!)] : []), ...volumesOfClaim(e.object as PersistentVolumeClaim)] },
      { resource: persistentVolumes, keys: (e) => {
        const ref = (e.object as PersistentVolume).spec?.claimRef;
        return [volumeKey(e.object.metadata.name), ...(ref?.name ? [claimKey(ref.namespace ?? 'default', ref.name)] : [])];
      } },
      { resource: resources.pods, keys: (e) => (isKind(e.object, 'Pod') ? [...podReferences(e.object).persistentVolumeClaims].map((c) => claimKey(e.object.metadata.namespace ?? 'default', c)) : []) },
    ],
    allKeys: () => [
      ...deps.objects.list(persistentVolumeClaims).items.map((c) => claimKey(c.metadata.namespace ?? 'default', c.metadata.name)),
      ...deps.objects.list(persistentVolumes).items.map((v) => volumeKey(v.metadata.name)),
    ],
    async reconcile(key) {
      if (key.startsWith('volume:')) return reconcileVolume(key.slice('volume:'.length));
      const rest = key.slice('claim:'.length);
      const slash = rest.indexOf('/');
      return reconcileClaim(rest.slice(0, slash), rest.slice(slash + 1));
    },
  };

  /** A claim's change (its deletion above all) concerns the volumes that name it. */
  function volumesOfClaim(claim: PersistentVolumeClaim): string[] {
    return deps.objects.list(persistentVolumes).items
      .filter((v) => v.spec.claimRef?.name === claim.metadata.name && (v.spec.claimRef?.namespace ?? 'default') === (claim.metadata.namespace ?? 'default'))
      .map((v) => volumeKey(v.metadata.name));
  }
}
