import { randomUUID, randomBytes } from 'node:crypto';
import { SECRET_TYPE_TOKENS, isKind, validateObject, applyDefaults, resourceOfKind } from '../../api-types/index.js';
import type { DeleteOptions, ObjectOf, Pod, ResourceInfo, Secret } from '../../api-types/index.js';
import { DryRunProposer } from '../store/proposer.js';
import type { Proposer } from '../store/proposer.js';
import { StoreError, internalResource } from '../store/types.js';
import type { Command, StateStore, Stored, StoredObject, WatchEvent } from '../store/types.js';
import { mergePatch } from '../api/merge-patch.js';
import { admitCreate, admitUpdate } from './pod-admission.js';
import { awaitServiceAccount } from './serviceaccount-admission.js';
import { keepImmutableFields } from './immutable-fields.js';
import { admitNodeDelete, admitNodeWrite } from './node-restriction.js';
import { ALLOCATIONS_RESOURCE } from '../network/allocator.js';

/**
 * The most an object may take, stored as JSON: etcd's default request limit (--max-request-bytes), which bounds
 * every object of a Kubernetes cluster. Larger writes get 413 before they reach the log.
 */
export const MAX_OBJECT_BYTES = 1.5 * 1024 * 1024;

/** How often a conflicting merge patch (or token entry write) is retried against the newest object before giving up with 409. */
const PATCH_ATTEMPTS = 5;

/** Members of the Raft cluster: name = member id, spec.peerUrl = the URL its peers and clients reach it at. */
export const MEMBERS = internalResource('cluster.flotilla.io', 'Member', 'members', false);
/** The store key of MEMBERS. */
export const MEMBERS_RESOURCE = resourceKey(MEMBERS);

/**
 * Which key node N's certificates are issued to: one record per node name, under this internal resource key (not
 * served by the API), { spec: { publicKeySha256 } } (server/tokens/node-certificates.ts says why it is not an
 * annotation of the Node). Deleting the Node removes it (`delete` below); `flotilla node replace` removes it too.
 */
export const NODE_KEYS_RESOURCE = 'nodekeys.cluster.flotilla.io';

/** The SHA-256 (hex, of the SubjectPublicKeyInfo) of the key node `name` is bound to, when it is bound. */
export function nodeKeyOf(store: Pick<StateStore, 'get'>, name: string): string | undefined {
  const spec = (store.get(NODE_KEYS_RESOURCE, '', name) as (StoredObject & { spec?: { publicKeySha256?: unknown } }) | undefined)?.spec;
  return typeof spec?.publicKeySha256 === 'string' ? spec.publicKeySha256 : undefined;
}

/**
 * Bearer tokens are kept in the replicated state as digests only, in the Secret kube-system/flotilla-tokens: one
 * data key per token (server/tokens/api-tokens.ts and join-tokens.ts say what the entries hold).
 */
export const TOKENS_SECRET = { namespace: 'kube-system', name: 'flotilla-tokens' } as const;

const secrets = resourceOfKind('Secret');

export const badRequest = (message: string): StoreError => new StoreError({ code: 400, reason: 'BadRequest', message });
export const notFound = (message: string): StoreError => new StoreError({ code: 404, reason: 'NotFound', message });
export const invalid = (kind: string, name: string, causes: { field: string; message: string }[]): StoreError => new StoreError({
  code: 422, reason: 'Invalid',
  message: `${kind} "${name}" is invalid: ${causes.map((c) => (c.field === '' ? c.message : `${c.field}: ${c.message}`)).join('; ')}`,
  details: { name, kind, causes },
});

/**
 * A stored object as the type of its resource's kind. The store is generic over kinds, so its objects are
 * envelopes; every object it holds for `r` passed r's schema at admission (validate.ts), which is what the
 * kind's type is derived from.
 */
function typed<K extends string>(_r: ResourceInfo<K>, o: StoredObject): Stored<ObjectOf<K>> {
  return o as unknown as Stored<ObjectOf<K>>;
}

/** The store's key for a resource: the plural, qualified by the group outside the core group. */
export function resourceKey(r: ResourceInfo): string {
  return r.group ? `${r.plural}.${r.group}` : r.plural;
}

/**
 * A rule about an update beyond the schema: it sees the object as stored and as about to be written, and
 * throws a StoreError (a 4xx Status) to refuse it. Runs on replace, patch and status writes.
 */
export type UpdateCheck = (r: ResourceInfo, stored: StoredObject, incoming: StoredObject) => void;

/**
 * What controllers, the scheduler's view of the cluster and the leader's work do with cluster objects, by
 * resource: reads of the local replica, the writes of the API, and watches. ObjectService implements it.
 */
export interface Objects {
  get<K extends string>(r: ResourceInfo<K>, namespace: string | undefined, name: string): Stored<ObjectOf<K>> | undefined;
  list<K extends string>(r: ResourceInfo<K>, namespace?: string): { items: Stored<ObjectOf<K>>[]; revision: number };
  create<K extends string>(r: ResourceInfo<K>, namespace: string | undefined, input: unknown): Promise<Stored<ObjectOf<K>>>;
  replace<K extends string>(r: ResourceInfo<K>, namespace: string | undefined, name: string, input: unknown): Promise<Stored<ObjectOf<K>>>;
  replaceStatus<K extends string>(r: ResourceInfo<K>, namespace: string | undefined, name: string, status: unknown, resourceVersion?: string): Promise<Stored<ObjectOf<K>>>;
  patch<K extends string>(r: ResourceInfo<K>, namespace: string | undefined, name: string, delta: unknown, subresource?: 'status'): Promise<Stored<ObjectOf<K>>>;
  delete<K extends string>(r: ResourceInfo<K>, namespace: string | undefined, name: string, options?: DeleteOptions): Promise<Stored<ObjectOf<K>>>;
  bindPod(namespace: string, name: string, nodeName: string, opts?: { annotations?: Record<string, string>; uid?: string; resourceVersion?: string }): Promise<Stored<Pod>>;
  /** The revision of the newest applied write: where a watch that wants only what comes next starts. */
  revision(): number;
  watch(r: ResourceInfo, namespace: string | undefined, fromRevision: number, onEvent: (event: WatchEvent) => void, onClose?: () => void): () => void;
}

/**
 * Every write to cluster objects, from the API, from in-process controllers and from the server's own
 * bookkeeping (bootstrap objects, token entries, member records) alike: admission (validation, defaults,
 * server-owned fields) and then a command through the proposer. Failures throw StoreError carrying a Kubernetes
 * Status. Reads go to the local replica; callers needing linearizable reads pass through readBarrier. Every
 * watch goes through `watch`.
 */
export class ObjectService implements Objects {
  readonly #store: StateStore;

  constructor(
    store: StateStore,
    readonly proposer: Proposer,
    readonly now: () => Date = () => new Date(),
    readonly updateChecks: readonly UpdateCheck[] = [],
    /** The node whose agent writes through this service (see asNode): its writes pass NodeRestriction admission. */
    readonly actingNode?: string,
  ) {
    this.#store = store;
  }

  /**
   * This service as node `node`'s agent writes through it: every write also passes NodeRestriction admission
   * (./node-restriction.ts). For anyone else (undefined) the service itself.
   */
  asNode(node: string | undefined): ObjectService {
    return node === undefined ? this : new ObjectService(this.#store, this.proposer, this.now, this.updateChecks, node);
  }

  /**
   * This service as a request with dryRun=All writes through it: every write is validated, admitted and decided
   * as a real one, and answered with the object it would have written; nothing is stored.
   */
  asDryRun(): ObjectService {
    return new ObjectService(this.#store, new DryRunProposer(this.#store), this.now, this.updateChecks, this.actingNode);
  }

  /** The update checks and, for a node's write, NodeRestriction; `status`: a status-subresource write. */
  #admitUpdate(r: ResourceInfo, stored: StoredObject, incoming: StoredObject, status: boolean): void {
    for (const check of this.updateChecks) check(r, stored, incoming);
    if (this.actingNode !== undefined) admitNodeWrite(this.actingNode, r, stored, incoming, status, this);
  }

  #stored(r: ResourceInfo, namespace: string | undefined, name: string): StoredObject | undefined {
    return this.#store.get(resourceKey(r), r.namespaced ? namespace ?? '' : '', name);
  }

  get<K extends string>(r: ResourceInfo<K>, namespace: string | undefined, name: string): Stored<ObjectOf<K>> | undefined {
    const o = this.#stored(r, namespace, name);
    return o && typed(r, o);
  }

  mustGet<K extends string>(r: ResourceInfo<K>, namespace: string | undefined, name: string): Stored<ObjectOf<K>> {
    const o = this.get(r, namespace, name);
    if (!o) throw notFound(`${resourceKey(r)} "${name}" not found`);
    return o;
  }

  list<K extends string>(r: ResourceInfo<K>, namespace?: string): { items: Stored<ObjectOf<K>>[]; revision: number } {
    const { items, revision } = this.#store.list(resourceKey(r), r.namespaced ? namespace : undefined);
    return { items: items.map((o) => typed(r, o)), revision };
  }

  revision(): number {
    return this.#store.revision();
  }

  /**
   * Calls `onEvent` for every change of resource `r` (in `namespace`, or all) after `fromRevision`, replayed
   * history first, synchronously in revision order, until the returned function is called or the store ends the
   * watch (`onClose`: the state was replaced by a snapshot, or the store closed; the watcher lists again).
   * Throws GoneError (410) when the history no longer reaches back to `fromRevision`.
   */
  watch(r: ResourceInfo, namespace: string | undefined, fromRevision: number, onEvent: (event: WatchEvent) => void, onClose?: () => void): () => void {
    return this.#store.watch(resourceKey(r), r.namespaced ? namespace : undefined, fromRevision, onEvent, onClose);
  }

  /** Open watches. */
  get watcherCount(): number {
    return this.#store.watcherCount;
  }

  /**
   * Validates a whole object for resource `r` in `namespace` (named `name` when the path names it) and
   * applies defaults. A body whose kind, apiVersion, namespace or name disagree with the target is refused.
   */
  admit(r: ResourceInfo, namespace: string | undefined, input: unknown, name?: string): StoredObject {
    if (input === null || typeof input !== 'object' || Array.isArray(input)) throw badRequest('the request body must be a JSON object');
    const raw = input as Record<string, unknown>;
    const meta = (raw.metadata && typeof raw.metadata === 'object' ? raw.metadata : {}) as Record<string, unknown>;
    if (raw.kind !== undefined && raw.kind !== r.kind) throw badRequest(`the body's kind "${String(raw.kind)}" does not match ${r.plural} (${r.kind})`);
    if (raw.apiVersion !== undefined && raw.apiVersion !== r.apiVersion) throw badRequest(`the body's apiVersion "${String(raw.apiVersion)}" does not match ${r.apiVersion}`);
    if (r.namespaced && namespace && meta.namespace !== undefined && meta.namespace !== namespace) {
      throw badRequest(`the namespace of the object (${String(meta.namespace)}) does not match the namespace on the request (${namespace})`);
    }
    if (name !== undefined && meta.name !== undefined && meta.name !== name) throw badRequest(`the name of the object (${String(meta.name)}) does not match the name on the URL (${name})`);
    const full = {
      ...raw, apiVersion: r.apiVersion, kind: r.kind,
      metadata: { ...meta, ...(r.namespaced ? { namespace } : {}), ...(name !== undefined ? { name } : {}) },
    };
    const v = validateObject(full);
    if (!v.ok) throw invalid(r.kind, String(full.metadata.name ?? ''), v.issues.map((i: { path: string; message: string }) => ({ field: i.path, message: i.message })));
    const object = applyDefaults(v.object);
    const objectName = object.metadata.name;
    // The schemas require a name (generateName was resolved before); this narrows the type for the store.
    if (objectName === undefined) throw invalid(r.kind, '', [{ field: 'metadata.name', message: 'Required value: name or generateName is required' }]);
    return { ...object, metadata: { ...object.metadata, name: objectName } };
  }

  async create<K extends string>(r: ResourceInfo<K>, namespace: string | undefined, input: unknown): Promise<Stored<ObjectOf<K>>> {
    if (r.namespaced && !namespace) throw badRequest(`${r.plural} are namespaced: create them in a namespace`);
    const ns = r.namespaced ? this.#store.get('namespaces', '', namespace!) : undefined;
    if (r.namespaced && !ns) throw notFound(`namespaces "${namespace}" not found`);
    const meta = (input as { metadata?: { name?: unknown; generateName?: unknown } } | null)?.metadata;
    const named = meta && meta.name === undefined && typeof meta.generateName === 'string' ? { ...input as object, metadata: { ...meta, name: `${meta.generateName}${randomSuffix()}` } } : input;
    const admitted = this.admit(r, namespace, named);
    if (isKind(admitted, 'Pod')) await awaitServiceAccount(admitted, this);
    const object = admitCreate(admitted, this);
    if (this.actingNode !== undefined) admitNodeWrite(this.actingNode, r, undefined, object, false, this);
    if (ns?.metadata.deletionTimestamp !== undefined) {
      // Kubernetes' NamespaceLifecycle admission. Something admitted just before the namespace's delete
      // committed is removed by the namespace controller.
      throw new StoreError({
        code: 403, reason: 'Forbidden',
        message: `${r.plural} "${object.metadata.name}" is forbidden: unable to create new content in namespace ${namespace} because it is being terminated`,
        details: { name: object.metadata.name, kind: r.plural, causes: [{ field: 'metadata.namespace', message: `namespace ${namespace} is being terminated` }] },
      });
    }
    return typed(r, await this.#commit({ op: 'create', resource: resourceKey(r), object, uid: randomUUID(), now: this.now().toISOString() }));
  }

  /** Replaces an object; a resourceVersion in the body is a precondition. */
  async replace<K extends string>(r: ResourceInfo<K>, namespace: string | undefined, name: string, input: unknown): Promise<Stored<ObjectOf<K>>> {
    const stored = this.#stored(r, namespace, name);
    const admitted = admitUpdate(stored, this.admit(r, namespace, input, name), this);
    const object = stored ? keepImmutableFields(stored, admitted) : admitted;
    if (stored) this.#admitUpdate(r, stored, object, false);
    // A node's write is admitted against the stored object: it replaces that one or none (409), so a concurrent
    // change (a taint the admin adds) cannot be overwritten unchecked.
    if (this.actingNode !== undefined && stored && !object.metadata.resourceVersion) object.metadata.resourceVersion = stored.metadata.resourceVersion;
    return typed(r, await this.#commit({ op: 'update', resource: resourceKey(r), object }));
  }

  /** Replaces only the status of an object (validated within the whole object). */
  async replaceStatus<K extends string>(r: ResourceInfo<K>, namespace: string | undefined, name: string, status: unknown, resourceVersion?: string): Promise<Stored<ObjectOf<K>>> {
    const current = this.mustGet(r, namespace, name);
    const object = this.admit(r, namespace, { ...current, status, metadata: { ...current.metadata, resourceVersion: resourceVersion ?? '' } }, name);
    object.metadata.resourceVersion = resourceVersion ?? '';
    this.#admitUpdate(r, current, object, true);
    return typed(r, await this.#commit({ op: 'update', resource: resourceKey(r), object, subresource: 'status' }));
  }

  /** Applies a JSON merge patch to the newest object (see patchWith). */
  async patch<K extends string>(r: ResourceInfo<K>, namespace: string | undefined, name: string, delta: unknown, subresource?: 'status'): Promise<Stored<ObjectOf<K>>> {
    if (delta === null || typeof delta !== 'object' || Array.isArray(delta)) throw badRequest('a merge patch must be a JSON object');
    return this.patchWith(r, namespace, name, (current) => mergePatch(current, delta), subresource);
  }

  /**
   * Writes `apply(newest object)` (any kind of patch: server/api/patch.ts), admitted as a replace. Unless the
   * result pins a resourceVersion other than the one it was made from, a concurrent write is resolved by
   * applying again to the newer object (as kube-apiserver does for a patch); a pinned one gets 409.
   */
  async patchWith<K extends string>(r: ResourceInfo<K>, namespace: string | undefined, name: string, apply: (current: StoredObject) => unknown, subresource?: 'status'): Promise<Stored<ObjectOf<K>>> {
    for (let attempt = 1; ; attempt++) {
      const current = this.mustGet(r, namespace, name);
      const patched = apply(structuredClone(current as StoredObject)) as StoredObject;
      const asked = (patched as { metadata?: { resourceVersion?: unknown } } | null)?.metadata?.resourceVersion;
      const pinned = typeof asked === 'string' && asked !== '' && asked !== current.metadata.resourceVersion;
      const object = keepImmutableFields(current, admitUpdate(current, this.admit(r, namespace, patched, name), subresource === 'status' ? undefined : this));
      object.metadata.resourceVersion = pinned ? asked : current.metadata.resourceVersion;
      this.#admitUpdate(r, current, object, subresource === 'status');
      const result = await this.#propose({ op: 'update', resource: resourceKey(r), object, ...(subresource ? { subresource } : {}) });
      if (result.ok) return typed(r, result.object);
      if (result.failure.code !== 409 || pinned || attempt >= PATCH_ATTEMPTS) throw new StoreError(result.failure);
    }
  }

  /**
   * Assigns an unbound pod to a node, adding annotations (the scheduler's GPU choice). Preconditions: the pod is
   * still unbound, and its uid and resourceVersion match when given (else 409, so concurrent binders lose cleanly).
   */
  async bindPod(namespace: string, name: string, nodeName: string, opts: { annotations?: Record<string, string>; uid?: string; resourceVersion?: string } = {}): Promise<Stored<Pod>> {
    const pods = resourceOfKind('Pod');
    const current = this.mustGet(pods, namespace, name);
    const spec = (current.spec ?? {}) as { nodeName?: string };
    const conflict = (message: string) => new StoreError({ code: 409, reason: 'Conflict', message, details: { name, kind: 'pods' } });
    if (spec.nodeName) throw conflict(`pod ${name} is already assigned to node "${spec.nodeName}"`);
    if (opts.uid && opts.uid !== current.metadata.uid) throw conflict(`pod ${name} has uid ${current.metadata.uid}, not ${opts.uid}`);
    if (opts.resourceVersion && opts.resourceVersion !== current.metadata.resourceVersion) throw conflict(`pod ${name} changed since resourceVersion ${opts.resourceVersion}`);
    const annotations = { ...(current.metadata.annotations ?? {}), ...(opts.annotations ?? {}) };
    // The current resourceVersion is the precondition of the write itself: a concurrent binding gets 409.
    return typed(pods, await this.#commit({ op: 'update', resource: 'pods', object: { ...current, spec: { ...spec, nodeName }, metadata: { ...current.metadata, annotations } } }));
  }

  /**
   * Deletes an object as Kubernetes does (server/store/deletion.ts): at once, or by marking it with
   * deletionTimestamp (a pod's graceful deletion, finalizers, propagationPolicy Foreground or Orphan). Resolves
   * to the object as it was removed, or as it now stands marked.
   */
  async delete<K extends string>(r: ResourceInfo<K>, namespace: string | undefined, name: string, options: DeleteOptions = {}): Promise<Stored<ObjectOf<K>>> {
    const { gracePeriodSeconds, propagationPolicy } = options;
    let { preconditions } = options;
    if (this.actingNode !== undefined) {
      const stored = this.#stored(r, namespace, name);
      if (stored) {
        admitNodeDelete(this.actingNode, r, stored);
        // What was admitted is what is deleted: not another object of that name made meanwhile.
        preconditions = { ...preconditions, uid: preconditions?.uid ?? stored.metadata.uid };
      }
    }
    const deleted = typed(r, await this.#commit({
      op: 'delete', resource: resourceKey(r), namespace: r.namespaced ? namespace ?? '' : '', name, now: this.now().toISOString(),
      ...(preconditions ? { preconditions } : {}), ...(gracePeriodSeconds !== undefined ? { gracePeriodSeconds } : {}), ...(propagationPolicy ? { propagationPolicy } : {}),
    }));
    // A Node's certificate binding goes with the Node: its certificates authenticate nobody from then on.
    if (r.group === '' && r.plural === 'nodes' && !this.#stored(r, undefined, name)) await this.unbindNodeKey(name);
    return deleted;
  }

  /** Creates `object` (validated as any create) unless an object of its name exists: the objects every cluster has. */
  async ensureObject(r: ResourceInfo, object: StoredObject): Promise<void> {
    if (this.get(r, object.metadata.namespace, object.metadata.name)) return;
    try {
      await this.create(r, object.metadata.namespace, object);
    } catch (err) {
      if (!(err instanceof StoreError && err.failure.code === 409)) throw err;
    }
  }

  /**
   * Sets (value) or removes (undefined) entry `key` of the token Secret (TOKENS_SECRET), creating the Secret when
   * missing; an entry that already holds `value` is not written (false). Concurrent writes of other entries are retried.
   */
  putTokenEntry(key: string, value: string | undefined): Promise<boolean> {
    return this.updateTokenEntry(key, () => value);
  }

  /**
   * Sets entry `key` of the token Secret to what `update` makes of its current value (undefined: removes it), in
   * one compare-and-swap write: when another write got in between, `update` is called again on the newer value,
   * so a decision taken on the current entry (exists, is revoked, ...) holds for the value written. What `update`
   * throws is thrown. An unchanged entry is not written (false).
   */
  async updateTokenEntry(key: string, update: (current: string | undefined) => string | undefined): Promise<boolean> {
    const { namespace, name } = TOKENS_SECRET;
    for (let attempt = 1; ; attempt++) {
      const current = this.get(secrets, namespace, name);
      const value = update(current?.data?.[key]);
      if (current?.data?.[key] === value) return false;
      const data = { ...(current?.data ?? {}) };
      if (value === undefined) delete data[key];
      else data[key] = value;
      const object: Secret = {
        apiVersion: 'v1', kind: 'Secret', type: SECRET_TYPE_TOKENS,
        metadata: { name, namespace, ...(current ? { resourceVersion: current.metadata.resourceVersion } : {}) },
        data,
      };
      try {
        await (current ? this.replace(secrets, namespace, name, object) : this.create(secrets, namespace, object));
        return true;
      } catch (err) {
        if (!(err instanceof StoreError && err.failure.code === 409)) throw err;
        if (attempt >= PATCH_ATTEMPTS) throw new StoreError({ code: 409, reason: 'Conflict', message: 'the token store kept changing under this write; try again' });
      }
    }
  }

  /**
   * Binds node `name` to the key whose SPKI SHA-256 is `publicKeySha256` unless it is bound already; resolves to
   * the key it is bound to after the call (this one, or the other key that holds the name). The create is the
   * arbiter between two machines asking at once: the log orders them and the second meets AlreadyExists.
   */
  async bindNodeKey(name: string, publicKeySha256: string): Promise<string> {
    if (!/^[0-9a-f]{64}$/.test(publicKeySha256)) throw badRequest(`a node key is a hex SHA-256, not "${publicKeySha256}"`);
    for (let attempt = 1; ; attempt++) {
      const bound = nodeKeyOf(this.#store, name);
      if (bound !== undefined) return bound;
      const object: StoredObject = { apiVersion: 'cluster.flotilla.io/v1', kind: 'NodeKey', metadata: { name }, spec: { publicKeySha256 } };
      const result = await this.proposer.propose({ op: 'create', resource: NODE_KEYS_RESOURCE, object, uid: randomUUID(), now: this.now().toISOString() });
      if (result.ok) return publicKeySha256;
      // AlreadyExists: another request bound it first; the next read of the replica sees that binding.
      if (result.failure.code !== 409 || attempt >= PATCH_ATTEMPTS) throw new StoreError(result.failure);
    }
  }

  /** The SHA-256 of the key node `name` is bound to (local replica), when it is bound. */
  boundNodeKey(name: string): string | undefined {
    return nodeKeyOf(this.#store, name);
  }

  /** Removes node `name`'s key binding; false when there was none. */
  async unbindNodeKey(name: string): Promise<boolean> {
    if (!this.#store.get(NODE_KEYS_RESOURCE, '', name)) return false;
    const result = await this.proposer.propose({ op: 'delete', resource: NODE_KEYS_RESOURCE, namespace: '', name, now: this.now().toISOString() });
    if (!result.ok && result.failure.code !== 404) throw new StoreError(result.failure);
    return result.ok;
  }

  /** Records Raft member `id` and the URL its peers reach it at (MEMBERS_RESOURCE), replacing an older record. */
  async putMember(id: number, peerUrl: string): Promise<void> {
    if (!Number.isSafeInteger(id) || id <= 0) throw badRequest(`a member id is a positive integer, not ${id}`);
    if (!/^https?:\/\/[^/]/.test(peerUrl)) throw badRequest(`a member's peer URL is http(s)://HOST..., not "${peerUrl}"`);
    const object: StoredObject = { apiVersion: 'cluster.flotilla.io/v1', kind: 'Member', metadata: { name: String(id) }, spec: { peerUrl } };
    await this.#commit(this.#store.get(MEMBERS_RESOURCE, '', String(id))
      ? { op: 'update', resource: MEMBERS_RESOURCE, object }
      : { op: 'create', resource: MEMBERS_RESOURCE, object, uid: randomUUID(), now: this.now().toISOString() });
  }

  /**
   * Writes an allocation row the state machine should have written (server/network/repair.ts, when the rows and
   * the objects disagree); 409 when the value is held already.
   */
  async restoreAllocation(row: StoredObject): Promise<void> {
    await this.#commit({ op: 'create', resource: ALLOCATIONS_RESOURCE, object: row, uid: randomUUID(), now: this.now().toISOString() });
  }

  async #commit(command: Command): Promise<StoredObject> {
    const result = await this.#propose(command);
    if (!result.ok) throw new StoreError(result.failure);
    return result.object;
  }

  /** Proposes a write of an API object, once it is known to fit in MAX_OBJECT_BYTES. */
  #propose(command: Command): ReturnType<Proposer['propose']> {
    if (command.op === 'create' || command.op === 'update') {
      const bytes = Buffer.byteLength(JSON.stringify(command.object));
      if (bytes > MAX_OBJECT_BYTES) {
        const { kind, metadata: { name } } = command.object;
        throw new StoreError({
          code: 413, reason: 'RequestEntityTooLarge',
          message: `Request entity too large: ${kind} "${name}" is ${bytes} bytes as stored, more than the ${MAX_OBJECT_BYTES} an object may have (etcdserver: request is too large)`,
        });
      }
    }
    return this.proposer.propose(command);
  }
}

function randomSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return Array.from(randomBytes(5), (b) => alphabet[b % alphabet.length]).join('');
}
