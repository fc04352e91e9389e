// The state machine's vocabulary: stored objects, the commands that change them, and what applying a command
// returns. Commands carry everything that must be identical on every replica (uid, timestamps): applying the
// same commands in the same order to the same state gives the same result everywhere.
import type { DeletionPropagation, Failure, KubeObject, ObjectMeta, StatusDetails } from '../../api-types/index.js';

export type { Failure, StatusDetails };

/** Metadata of a stored object: api-types' ObjectMeta, always named (the store names every object it keeps). */
export type StoredMeta = ObjectMeta & { name: string };

/** The store is generic over kinds: any object envelope whose metadata names it. */
export interface StoredObject extends KubeObject {
  metadata: StoredMeta;
}

/** A stored object whose kind is known: the api-types type T, named as every stored object is. */
export type Stored<T extends KubeObject = KubeObject> = T & { metadata: StoredMeta };

/** A resource key names one collection: the plural for the core group ("pods"), plural.group otherwise ("deployments.apps"). */
export type ResourceKey = string;

export type Command =
  | { op: 'create'; resource: ResourceKey; object: StoredObject; uid: string; now: string }
  /** Replaces the object. A non-empty metadata.resourceVersion is a precondition (409 when stale). The main
   *  resource keeps the stored status; the status subresource changes only status. */
  | { op: 'update'; resource: ResourceKey; object: StoredObject; subresource?: 'status' }
  /** Deletes as server/store/deletion.ts says: at once, or by marking the object (graceful deletion, finalizers).
   *  `now` is when the delete was asked for; a command without it (logged before graceful deletion existed, or
   *  of internal records) removes the object at once, as such commands always did. */
  | {
    op: 'delete'; resource: ResourceKey; namespace: string; name: string; preconditions?: { uid?: string; resourceVersion?: string };
    now?: string; gracePeriodSeconds?: number; propagationPolicy?: DeletionPropagation;
  };

export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

export type ApplyResult =
  /** `unchanged`: an update that changed nothing; as in Kubernetes it keeps the resourceVersion and emits no event. */
  | { ok: true; type: EventType; object: StoredObject; unchanged?: boolean }
  | { ok: false; failure: Failure };

export interface WatchEvent {
  revision: number;
  resource: ResourceKey;
  namespace: string;
  type: EventType;
  object: StoredObject;
}

export class StoreError extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}

/** Thrown by watch when the requested revision is older than the retained history window (HTTP 410 Gone). */
export class GoneError extends StoreError {
  constructor(requested: number, oldest: number) {
    super({ code: 410, reason: 'Expired', message: `too old resource version: ${requested} (${oldest})` });
  }
}
