// Kubernetes object metadata, the generic object envelope, lists and the Status error body.
// Field names follow Kubernetes exactly so that existing manifests and clients work unchanged.

import type { z } from 'zod';
import type { deleteOptionsSchema, metadataSchema } from './validate.js';

/**
 * Object metadata, as the metadata schema (validate.ts) parses it. `uid`, `resourceVersion`, `generation`,
 * `creationTimestamp` and `deletionTimestamp` are set by the server; clients may send them back unchanged
 * (resourceVersion is the optimistic-lock token).
 */
export type ObjectMeta = z.output<ReturnType<typeof metadataSchema>>;
export type OwnerReference = NonNullable<ObjectMeta['ownerReferences']>[number];

/** How deleting an owner treats its dependents (DeleteOptions.propagationPolicy), as in Kubernetes. */
export const DELETION_PROPAGATIONS = ['Foreground', 'Background', 'Orphan'] as const;
export type DeletionPropagation = (typeof DELETION_PROPAGATIONS)[number];

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
export type DeleteOptions = z.output<typeof deleteOptionsSchema>;

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

/** One reason a request failed: the field it concerns (absent when it concerns none), and a cause type such as ResourceVersionTooLarge. */
export interface StatusCause {
  field?: string;
  message: string;
  reason?: string;
}

export interface StatusDetails {
  name?: string;
  kind?: string;
  group?: string;
  causes?: StatusCause[];
  /** How long a client should wait before it tries again (429 TooManyRequests, 504 Timeout). */
  retryAfterSeconds?: number;
}

/** The Kubernetes Status body: every failed request returns one, and some successful ones do (bindings, revocations). */
export interface Status {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure' | 'Success';
  message?: string;
  reason?: string;
  code: number;
  details?: StatusDetails;
}

/** What a failed request reports: the HTTP code, a Kubernetes reason (NotFound, Conflict, Invalid, ...) and a message. */
export interface Failure {
  code: number;
  reason: string;
  message: string;
  details?: StatusDetails;
}

/**
 * The one Status builder: Success for a 2xx code, Failure otherwise; reason, message and details appear only
 * when given.
 */
export function statusObject(s: { code: number; reason?: string; message?: string; details?: StatusDetails }): Status {
  const status: Status = { kind: 'Status', apiVersion: 'v1', metadata: {}, status: s.code >= 200 && s.code < 300 ? 'Success' : 'Failure', code: s.code };
  if (s.message !== undefined) status.message = s.message;
  if (s.reason !== undefined) status.reason = s.reason;
  if (s.details !== undefined) status.details = s.details;
  return status;
}

/** A watch stream line: `{"type":"ADDED|MODIFIED|DELETED","object":...}`; an ERROR line carries a Status (410 Expired, ...). */
export type WatchEvent<T = KubeObject> =
  | { type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK'; object: T }
  | { type: 'ERROR'; object: Status };
