// The fields Kubernetes' update validation keeps as they were created (ValidatePodUpdate, the apps/v1 and batch/v1
// selector rules, ValidateStatefulSetUpdate, ValidateServiceUpdate, immutable ConfigMaps and Secrets, the
// PersistentVolume, PersistentVolumeClaim and StorageClass update rules): an update
// that changes one is refused with 422 Invalid naming the field, in Kubernetes' words.
//
// Runs on every update (replace, patch, status) after validation and defaults, so both sides are complete objects;
// a field an update leaves out where Kubernetes' own clients would have kept it (a bound pod's spec.nodeName, which a
// whole-object PUT of the original manifest does not carry) is carried over rather than refused.
import { canonicalJson, isKind, parseQuantity } from '../../api-types/index.js';
import type { ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod, Secret, Service, StorageClass, Toleration } from '../../api-types/index.js';
import type { StoredObject } from '../store/types.js';
import { invalid } from './service.js';

type Cause = { field: string; message: string };

const same = (a: unknown, b: unknown): boolean => canonicalJson(a ?? null) === canonicalJson(b ?? null);
const immutable = (field: string, value: unknown): Cause => ({ field, message: `Invalid value: ${JSON.stringify(value ?? null)}: field is immutable` });

/** Kubernetes' message for a pod spec change outside the fields a pod update may change. */
export const POD_UPDATE_FORBIDDEN = 'Forbidden: pod updates may not change fields other than `spec.containers[*].image`,'
  + '`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),'
  + '`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)';

/** The StatefulSet spec fields an update may change (the rest are fixed at create). */
const STATEFULSET_MUTABLE = ['replicas', 'ordinals', 'template', 'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy', 'minReadySeconds'] as const;

/** Returns what to store (`incoming`, with carried-over fields), or throws 422 when an immutable field changed. */
export function keepImmutableFields(stored: StoredObject, incoming: StoredObject): StoredObject {
  if (stored.kind !== incoming.kind) return incoming;
  const causes: Cause[] = [];
  let out = incoming;
  if (isKind(stored, 'Pod') && isKind(incoming, 'Pod')) out = podUpdate(stored, incoming, causes);
  else if (isKind(stored, 'Service') && isKind(incoming, 'Service')) serviceUpdate(stored, incoming, causes);
  else if (isKind(stored, 'PersistentVolume') && isKind(incoming, 'PersistentVolume')) out = persistentVolumeUpdate(stored, incoming, causes);
  else if (isKind(stored, 'PersistentVolumeClaim') && isKind(incoming, 'PersistentVolumeClaim')) out = claimUpdate(stored, incoming, causes);
  else if (isKind(stored, 'StorageClass') && isKind(incoming, 'StorageClass')) storageClassUpdate(stored, incoming, causes);
  else if ((isKind(stored, 'ConfigMap') && isKind(incoming, 'ConfigMap')) || (isKind(stored, 'Secret') && isKind(incoming, 'Secret'))) configUpdate(stored, incoming, causes);
  else if (['Deployment', 'ReplicaSet', 'StatefulSet', 'DaemonSet', 'Job'].includes(stored.kind)) {
    const before = (stored.spec ?? {}) as Record<string, unknown>;
    const after = (incoming.spec ?? {}) as Record<string, unknown>;
    if (!same(before.selector, after.selector)) causes.push(immutable('spec.selector', after.selector));
    if (stored.kind === 'StatefulSet') {
      const fixed = (spec: Record<string, unknown>) => Object.fromEntries(Object.entries(spec).filter(([k]) => !(STATEFULSET_MUTABLE as readonly string[]).includes(k) && k !== 'selector'));
      if (!same(fixed(before), fixed(after))) {
        causes.push({ field: 'spec', message: `Forbidden: updates to statefulset spec for fields other than ${STATEFULSET_MUTABLE.map((f) => `'${f}'`).join(', ').replace(/, ([^,]*)$/, ' and $1')} are forbidden` });
      }
    }
  }
  if (causes.length > 0) throw invalid(incoming.kind, incoming.metadata.name, causes);
  return out;
}

/**
 * A pod's spec is fixed once created but for the images, activeDeadlineSeconds, added tolerations and (through a
 * binding) an unset nodeName; a nodeName once set is for good.
 */
function podUpdate(stored: Pod & StoredObject, incoming: Pod & StoredObject, causes: Cause[]): StoredObject {
  const was = stored.spec.nodeName;
  const spec = { ...incoming.spec };
  if (was) {
    if (spec.nodeName === undefined) spec.nodeName = was;
    else if (spec.nodeName !== was) causes.push(immutable('spec.nodeName', spec.nodeName));
  }
  const tolerated = (t: Toleration) => canonicalJson(t);
  const added = new Set((spec.tolerations ?? []).map(tolerated));
  const kept = (stored.spec.tolerations ?? []).every((t) => added.has(tolerated(t)));
  const fixed = (s: Pod['spec']) => ({
    ...s, nodeName: undefined, activeDeadlineSeconds: undefined, tolerations: undefined,
    containers: s.containers.map((c) => ({ ...c, image: undefined })),
    initContainers: s.initContainers?.map((c) => ({ ...c, image: undefined })),
  });
  if (!kept || !same(fixed(stored.spec), fixed(spec))) causes.push({ field: 'spec', message: POD_UPDATE_FORBIDDEN });
  return { ...incoming, spec } as StoredObject;
}

/** spec.clusterIPs, once allocated, stay (spec.clusterIP is held by the allocator in the state machine); ExternalName gives them up. */
function serviceUpdate(stored: Service & StoredObject, incoming: Service & StoredObject, causes: Cause[]): void {
  const before = stored.spec ?? {};
  const after = incoming.spec ?? {};
  if (before.type === 'ExternalName' || after.type === 'ExternalName') return;
  if (before.clusterIPs?.length && after.clusterIPs?.length && !same(before.clusterIPs, after.clusterIPs)) {
    causes.push({ field: 'spec.clusterIPs[0]', message: `Invalid value: ${JSON.stringify(after.clusterIPs)}: may not change once set` });
  }
}

/** An `immutable: true` ConfigMap or Secret keeps its data and stays immutable; a Secret's type never changes. */
function configUpdate(stored: (ConfigMap | Secret) & StoredObject, incoming: (ConfigMap | Secret) & StoredObject, causes: Cause[]): void {
  if (isKind(stored, 'Secret') && isKind(incoming, 'Secret') && (stored.type ?? 'Opaque') !== (incoming.type ?? 'Opaque')) causes.push(immutable('type', incoming.type));
  if (stored.immutable !== true) return;
  const forbidden = (field: string): Cause => ({ field, message: 'Forbidden: field is immutable when `immutable` is set' });
  if (incoming.immutable !== true) causes.push(forbidden('immutable'));
  const fields = isKind(stored, 'Secret') ? ['data', 'stringData'] : ['data', 'binaryData'];
  for (const f of fields) {
    if (!same((stored as Record<string, unknown>)[f], (incoming as Record<string, unknown>)[f])) causes.push(forbidden(f));
  }
}

/**
 * ValidatePersistentVolumeUpdate: the volume source, volumeMode and a node affinity once set stay as created. A
 * claimRef the update leaves out (a PUT of the original manifest) is carried over: dropping it would unbind.
 */
function persistentVolumeUpdate(stored: PersistentVolume & StoredObject, incoming: PersistentVolume & StoredObject, causes: Cause[]): StoredObject {
  const source = (pv: PersistentVolume) => ({ hostPath: pv.spec.hostPath, local: pv.spec.local, nfs: pv.spec.nfs });
  if (!same(source(stored), source(incoming))) causes.push({ field: 'spec.persistentvolumesource', message: 'Forbidden: spec.persistentvolumesource is immutable after creation' });
  if (!same(stored.spec.volumeMode, incoming.spec.volumeMode)) causes.push(immutable('spec.volumeMode', incoming.spec.volumeMode));
  if (stored.spec.nodeAffinity !== undefined && !same(stored.spec.nodeAffinity, incoming.spec.nodeAffinity)) causes.push(immutable('spec.nodeAffinity', incoming.spec.nodeAffinity));
  return incoming.spec.claimRef === undefined && stored.spec.claimRef !== undefined ? { ...incoming, spec: { ...incoming.spec, claimRef: stored.spec.claimRef } } as StoredObject : incoming;
}

/**
 * ValidatePersistentVolumeClaimUpdate: a claim's spec is fixed but for its volumeName, which binding sets once, and
 * its storage request, which a bound claim may raise (never below what it got). A storageClassName or volumeName
 * the update leaves out is carried over (a PUT of the original manifest).
 */
function claimUpdate(stored: PersistentVolumeClaim & StoredObject, given: PersistentVolumeClaim & StoredObject, causes: Cause[]): StoredObject {
  // What admission and binding set (the default class, the volume) and an update leaves out is carried over.
  const incoming = {
    ...given,
    spec: { ...given.spec, storageClassName: given.spec.storageClassName ?? stored.spec.storageClassName, volumeName: given.spec.volumeName ?? stored.spec.volumeName },
  } as PersistentVolumeClaim & StoredObject;
  if (incoming.spec.storageClassName === undefined) delete incoming.spec.storageClassName;
  if (incoming.spec.volumeName === undefined) delete incoming.spec.volumeName;
  const bound = stored.status?.phase === 'Bound';
  const fixed = (spec: PersistentVolumeClaim['spec'], volumeName: string | undefined) => ({
    ...spec, volumeName, resources: bound ? { ...spec.resources, requests: { ...spec.resources?.requests, storage: undefined } } : spec.resources,
  });
  const volumeName = stored.spec.volumeName || incoming.spec.volumeName;
  if (!same(fixed(stored.spec, volumeName), fixed(incoming.spec, volumeName)) || (stored.spec.volumeName && stored.spec.volumeName !== incoming.spec.volumeName)) {
    causes.push({ field: 'spec', message: 'Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims' });
    return incoming;
  }
  const asked = incoming.spec.resources?.requests?.storage;
  const got = stored.status?.capacity?.storage;
  if (bound && asked !== undefined && got !== undefined && parseQuantity(asked).milli < parseQuantity(got).milli) {
    causes.push({ field: 'spec.resources.requests.storage', message: 'Forbidden: field can not be less than status.capacity' });
  }
  return incoming;
}

/** ValidateStorageClassUpdate: provisioner, parameters, reclaimPolicy and volumeBindingMode are fixed at create. */
function storageClassUpdate(stored: StorageClass & StoredObject, incoming: StorageClass & StoredObject, causes: Cause[]): void {
  if (!same(stored.parameters, incoming.parameters)) causes.push({ field: 'parameters', message: 'Forbidden: updates to parameters are forbidden.' });
  if (stored.provisioner !== incoming.provisioner) causes.push({ field: 'provisioner', message: 'Forbidden: updates to provisioner are forbidden.' });
  if (stored.reclaimPolicy !== incoming.reclaimPolicy) causes.push({ field: 'reclaimPolicy', message: 'Forbidden: updates to reclaimPolicy are forbidden.' });
  if (stored.volumeBindingMode !== incoming.volumeBindingMode) causes.push(immutable('volumeBindingMode', incoming.volumeBindingMode));
}
