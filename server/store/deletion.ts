// Graceful deletion and finalizers, as Kubernetes' generic registry does them, decided inside the state machine:
// a delete command and the updates that follow it are ordered by the log, so two concurrent deletes, or a
// delete racing the removal of a finalizer, come out the same on every replica without retries.
//
// - An object with finalizers (metadata.finalizers; for a Namespace also spec.finalizers) is not removed by a
//   delete: it gets deletionTimestamp (now) and deletionGracePeriodSeconds 0, and stays until an update removes
//   its last finalizer. That update is its removal.
// - A pod bound to a node and not finished is deleted gracefully: deletionTimestamp = now + grace and
//   deletionGracePeriodSeconds = grace (DeleteOptions.gracePeriodSeconds, else spec.terminationGracePeriodSeconds).
//   Its agent stops the containers and then deletes it with grace 0. A repeated delete may shorten the grace
//   period, counted from the first request, never lengthen it.
// - propagationPolicy Foreground or Orphan adds the garbage collector's finalizer for it; Background (the
//   default) adds none, and the collector deletes the dependents once the owner is gone.
// - deletionTimestamp and deletionGracePeriodSeconds belong to the server: updates keep the stored values, and
//   once an object is being deleted no finalizer may be added to it.
import { FINALIZER_DELETE_DEPENDENTS, FINALIZER_ORPHAN_DEPENDENTS } from '../../api-types/index.js';
import type { DeletionPropagation } from '../../api-types/index.js';
import type { StoredMeta, StoredObject } from './types.js';

export interface DeletionRequest {
  /** When the delete was asked for (ISO time), part of the command so that every replica computes the same deadline. */
  now: string;
  gracePeriodSeconds?: number;
  propagationPolicy?: DeletionPropagation;
}

export type DeletionOutcome =
  | { remove: true }
  /** The object stays: marked as being deleted (or unchanged, the same object, when the request changes nothing). */
  | { remove: false; object: StoredObject };

/** The finalizers holding an object: metadata.finalizers, and for a Namespace its spec.finalizers. */
export function pendingFinalizers(o: StoredObject): string[] {
  const spec = o.kind === 'Namespace' ? (o.spec as { finalizers?: string[] } | undefined)?.finalizers ?? [] : [];
  return [...(o.metadata.finalizers ?? []), ...spec];
}

/** What a delete does to `current`. */
export function planDeletion(current: StoredObject, request: DeletionRequest): DeletionOutcome {
  const meta = current.metadata;
  const grace = gracePeriodOf(current, request.gracePeriodSeconds);
  if (meta.deletionTimestamp !== undefined) {
    const pending = meta.deletionGracePeriodSeconds ?? 0;
    if (pending > 0) {
      // Graceful deletion under way: only a shorter grace period changes it (the policy no longer can).
      if (grace >= pending) return { remove: false, object: current };
      if (grace === 0 && pendingFinalizers(current).length === 0) return { remove: true };
      const askedAt = Date.parse(meta.deletionTimestamp) - pending * 1000;
      return { remove: false, object: { ...current, metadata: { ...meta, deletionTimestamp: isoTime(askedAt + grace * 1000), deletionGracePeriodSeconds: grace } } };
    }
    // Held by finalizers: the policy may still change which of the garbage collector's finalizers it holds.
    const next = withFinalizers(current, request.propagationPolicy);
    return pendingFinalizers(next).length === 0 ? { remove: true } : { remove: false, object: next };
  }
  const next = withFinalizers(current, request.propagationPolicy);
  if (grace > 0) {
    return { remove: false, object: { ...next, metadata: { ...next.metadata, deletionTimestamp: isoTime(Date.parse(request.now) + grace * 1000), deletionGracePeriodSeconds: grace } } };
  }
  if (pendingFinalizers(next).length === 0) return { remove: true };
  const marked: StoredObject = { ...next, metadata: { ...next.metadata, deletionTimestamp: isoTime(Date.parse(request.now)), deletionGracePeriodSeconds: 0 } };
  if (current.kind === 'Namespace') marked.status = { ...(current.status as object | undefined), phase: 'Terminating' };
  return { remove: false, object: marked };
}

/** An update of an object held only by finalizers that removes the last one removes the object. */
export function isRemovedByUpdate(current: StoredObject, next: StoredObject): boolean {
  return current.metadata.deletionTimestamp !== undefined && (current.metadata.deletionGracePeriodSeconds ?? 0) === 0
    && pendingFinalizers(current).length > 0 && pendingFinalizers(next).length === 0;
}

/** The finalizers an update of a deleting object would add, by field; none for an object not being deleted. */
export function addedFinalizers(current: StoredObject, next: StoredObject): { field: string; added: string[] }[] {
  if (current.metadata.deletionTimestamp === undefined) return [];
  const specOf = (o: StoredObject) => (o.kind === 'Namespace' ? (o.spec as { finalizers?: string[] } | undefined)?.finalizers ?? [] : []);
  const lists: [string, string[], string[]][] = [
    ['metadata.finalizers', current.metadata.finalizers ?? [], next.metadata.finalizers ?? []],
    ['spec.finalizers', specOf(current), specOf(next)],
  ];
  return lists.map(([field, before, after]) => ({ field, added: after.filter((f) => !before.includes(f)) })).filter((x) => x.added.length > 0);
}

/**
 * The grace period a delete gives: for a pod bound to a node and not finished, the requested one or its
 * terminationGracePeriodSeconds (negative means 1, as in Kubernetes); 0 for everything else.
 */
function gracePeriodOf(o: StoredObject, requested: number | undefined): number {
  if (o.kind !== 'Pod' || o.apiVersion !== 'v1') return 0;
  const spec = (o.spec ?? {}) as { nodeName?: string; terminationGracePeriodSeconds?: number };
  const phase = (o.status as { phase?: string } | undefined)?.phase;
  if (!spec.nodeName || phase === 'Succeeded' || phase === 'Failed') return 0;
  const grace = requested ?? spec.terminationGracePeriodSeconds ?? 30;
  return grace < 0 ? 1 : grace;
}

/** The object with the garbage collector's finalizers set as the policy says; no policy keeps them as they are. */
function withFinalizers(o: StoredObject, policy: DeletionPropagation | undefined): StoredObject {
  if (policy === undefined) return o;
  const before = o.metadata.finalizers ?? [];
  const after = before.filter((f) => f !== FINALIZER_ORPHAN_DEPENDENTS && f !== FINALIZER_DELETE_DEPENDENTS);
  if (policy === 'Orphan') after.push(FINALIZER_ORPHAN_DEPENDENTS);
  if (policy === 'Foreground') after.push(FINALIZER_DELETE_DEPENDENTS);
  if (after.length === before.length && after.every((f, i) => f === before[i])) return o;
  const metadata: StoredMeta = { ...o.metadata, finalizers: after };
  if (after.length === 0) delete metadata.finalizers;
  return { ...o, metadata };
}

function isoTime(ms: number): string {
  return new Date(ms).toISOString();
}
