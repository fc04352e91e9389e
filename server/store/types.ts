// The state machine's vocabulary: stored objects, the commands that change them, and what applying a command
// returns. Commands carry everything that must be identical on every replica (uid, timestamps): applying the
// same commands in the same order to the same state gives the same result everywhere.
import type { DeletionPropagation, Failure, KubeObject, ObjectMeta, ResourceInfo, StatusDetails } from '../../api-types/index.js';

export type { Failure, StatusDetails };

/** Metadata of a stored object: api-types' ObjectMeta, always named (the store names every object it keeps). */
export type StoredMeta = ObjectMeta & { name: string };

/** The store is generic over kinds: any object envelope whose metadata names it. */
export interface StoredObject extends KubeObject {
  metadata: StoredMeta;
}

/** A stored object whose kind is known: the api-types type T, named as every stored object is. */
export type Stored<T extends KubeObject = KubeObject> = T & { metadata: StoredMeta };

/**
 * An internal record kind: kept in the replicated state like the served kinds, never served by the API (no line
 * in api-types/resources.ts). Reads and watches go through ObjectService as for any resource; writes only
 * through the code that owns the record.
 */
export function internalResource(group: string, kind: string, plural: string, namespaced: boolean): ResourceInfo {
  return Object.freeze({ group, version: 'v1', apiVersion: `${group}/v1`, kind, plural, singular: kind.toLowerCase(), shortNames: [], namespaced, subresources: [], categories: [] });
}

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

/**
 * A command at its revision. A `proposalId` makes applying at-most-once: a proposal that reaches the log twice
 * (re-proposed after a leader change) takes effect once; the repeat yields 409 AlreadyApplied.
 */
export interface AppliedCommand { command: Command; revision: number; proposalId?: string }

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

/**
 * A replica of the cluster state: what ObjectService, the proposers and the Raft member need of it. SqliteStore
 * is the real one, MemoryStore the in-memory reference; both apply commands with server/store/state-machine.ts,
 * and test/store/store-contract.ts holds them to the same behaviour.
 */
export interface StateStore {
  /** The revision of the last applied command: the resourceVersion of the newest write. */
  revision(): number;
  get(resource: ResourceKey, namespace: string, name: string): StoredObject | undefined;
  /** Objects of one resource, in one namespace or (namespace undefined) all, by namespace and name; with the revision they reflect. */
  list(resource: ResourceKey, namespace?: string): { items: StoredObject[]; revision: number };
  /**
   * The only way state changes: applies the batch, each command at its revision, all or nothing, then
   * publishes the watch events before returning.
   */
  apply(batch: AppliedCommand[]): ApplyResult[];
  /**
   * Calls `listener` for every change after `fromRevision` (replayed history first, then live), in revision
   * order, synchronously, until the returned stop function is called or the store ends the watch (`onClose`).
   * Throws GoneError when the retained history no longer reaches back to `fromRevision`.
   */
  watch(resource: ResourceKey, namespace: string | undefined, fromRevision: number, listener: (event: WatchEvent) => void, onClose?: () => void): () => void;
  /** Open watches. */
  readonly watcherCount: number;
}
