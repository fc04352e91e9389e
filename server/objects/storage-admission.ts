// What Kubernetes' DefaultStorageClass and StorageObjectInUseProtection admission plugins do at create: a
// PersistentVolumeClaim that names no class (storageClassName absent, not "") gets the default StorageClass, the
// one annotated storageclass.kubernetes.io/is-default-class "true" (of several, the newest, then by name, as
// Kubernetes since 1.26); none left unset. Every new claim carries finalizer kubernetes.io/pvc-protection and every
// new volume kubernetes.io/pv-protection, which the PersistentVolume controller lifts once nothing uses them.
import {
  ANNOTATION_DEFAULT_STORAGE_CLASS, FINALIZER_PV_PROTECTION, FINALIZER_PVC_PROTECTION, isKind, resourceOfKind,
} from '../../api-types/index.js';
import type { StorageClass } from '../../api-types/index.js';
import type { StoredObject } from '../store/types.js';
import type { AdmissionReads } from './pod-admission.js';

const storageClasses = resourceOfKind('StorageClass');

/** The default StorageClass, if any. */
export function defaultStorageClass(reads: Pick<AdmissionReads, 'list'>): StorageClass | undefined {
  const defaults = reads.list(storageClasses).items.filter((c) => c.metadata.annotations?.[ANNOTATION_DEFAULT_STORAGE_CLASS] === 'true');
  return defaults.sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? '') || a.metadata.name.localeCompare(b.metadata.name))[0];
}

/** Admits a new PersistentVolumeClaim or PersistentVolume; other objects pass unchanged. */
export function admitStorageCreate(object: StoredObject, reads: AdmissionReads): StoredObject {
  if (isKind(object, 'PersistentVolumeClaim')) {
    const storageClassName = object.spec.storageClassName ?? defaultStorageClass(reads)?.metadata.name;
    return { ...withFinalizer(object, FINALIZER_PVC_PROTECTION), spec: { ...object.spec, ...(storageClassName !== undefined ? { storageClassName } : {}) } } as StoredObject;
  }
  if (isKind(object, 'PersistentVolume')) return withFinalizer(object, FINALIZER_PV_PROTECTION);
  return object;
}

function withFinalizer<T extends StoredObject>(object: T, finalizer: string): T {
  const finalizers = object.metadata.finalizers ?? [];
  return finalizers.includes(finalizer) ? object : { ...object, metadata: { ...object.metadata, finalizers: [...finalizers, finalizer] } };
}
