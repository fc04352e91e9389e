// Kubernetes object metadata, the generic object envelope, lists and the Status error body.
// Field names follow Kubernetes exactly so that existing manifests and clients work unchanged.

export interface OwnerReference {
  apiVersion: string;
  kind: string;
  name: string;
  uid: string;
  controller?: boolean;
  blockOwnerDeletion?: boolean;
}

/**
 * Object metadata. `uid`, `resourceVersion`, `generation`, `creationTimestamp` and `deletionTimestamp` are
 * set by the server; clients may send them back unchanged (resourceVersion is the optimistic-lock token).
 */
export interface ObjectMeta {
  name?: string;
  generateName?: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: OwnerReference[];
  finalizers?: string[];
}

/** How deleting an owner treats its dependents (DeleteOptions.propagationPolicy), as in Kubernetes. */
export type DeletionPropagation = 'Foreground' | 'Background' | 'Orphan';
export const DELETION_PROPAGATIONS: readonly DeletionPropagation[] = ['Foreground', 'Background', 'Orphan'];

/** metadata.finalizers the garbage collector serves: release the dependents (Orphan), or delete them first (Foreground). */
export const FINALIZER_ORPHAN_DEPENDENTS = 'orphan';
export const FINALIZER_DELETE_DEPENDENTS = 'foregroundDeletion';
/** The Namespace spec.finalizers entry that the namespace controller removes once the namespace is empty. */
export const FINALIZER_KUBERNETES = 'kubernetes';

/**
 * The body (or the query parameters) of a DELETE. gracePeriodSeconds: for pods, how long the containers get
 * to stop (default spec.terminationGracePeriodSeconds; 0 removes the pod at once); a negative value means 1.
 * orphanDependents is the deprecated form of propagationPolicy (true: Orphan, false: Background).
 */
export interface DeleteOptions {
  kind?: 'DeleteOptions';
  apiVersion?: string;
  gracePeriodSeconds?: number;
  propagationPolicy?: DeletionPropagation;
  orphanDependents?: boolean;
  preconditions?: { uid?: string; resourceVersion?: string };
}

export interface ListMeta {
  resourceVersion?: string;
  continue?: string;
  remainingItemCount?: number;
}

/**
 * Any served object: apiVersion, kind, metadata plus the kind's own top-level fields (spec, status, data, ...).
 * The concrete interfaces in objects.ts narrow it per kind.
 */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  [field: string]: unknown;
}

/** A list response: kind is the item kind plus "List" (PodList, NodeList, ...). */
export interface List<T extends KubeObject = KubeObject> {
  apiVersion: string;
  kind: string;
  metadata: ListMeta;
  items: T[];
}

export interface StatusCause {
  field: string;
  message: string;
  reason?: string;
}

export interface StatusDetails {
  name?: string;
  kind?: string;
  group?: string;
  causes?: StatusCause[];
}

/** The Kubernetes error body every failed request returns. */
export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message: string;
  reason: string;
  code: number;
  details?: StatusDetails;
}

/** Builds a failure Status; `details` is present only when given. */
export function statusObject(code: number, reason: string, message: string, details?: StatusDetails): Status {
  const status: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
  if (details !== undefined) status.details = details;
  return status;
}

/** A watch stream line: `{"type":"ADDED|MODIFIED|DELETED","object":...}`. */
export interface WatchEvent<T extends KubeObject = KubeObject> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}
