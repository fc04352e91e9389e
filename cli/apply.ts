// `apply -f` and `delete -f` of many objects: each object is one short exchange with the server, and up to
// BULK_REQUESTS of them are in flight at once, so that a file of thousands of documents takes the server's write
// rate (its group commit batches concurrent writes) rather than the sum of the round trips.
import { ApiClient, ApiClientError } from '../client/client.js';
import type { DeleteOptions, KubeObject, ResourceInfo } from '../api-types/index.js';

/**
 * Requests in flight at once for bulk work: far under the server's mutating in-flight limit (100 by default, so
 * that others' writes still pass), and enough that its group commit gets batches rather than single writes.
 */
export const BULK_REQUESTS = 32;

/** How often an update lost to a concurrent write (409 Conflict) is read and written again. */
const APPLY_ATTEMPTS = 3;

/**
 * The order bulk work goes in: objects are created in their namespace, so Namespaces are applied before (and
 * deleted after) everything else; within each wave requests run in parallel. Returns [first, then].
 */
export function inWaves<T>(items: readonly T[], resourceOf: (item: T) => ResourceInfo, namespacesFirst: boolean): [T[], T[]] {
  const isNamespace = (t: T) => { const r = resourceOf(t); return r.group === '' && r.plural === 'namespaces'; };
  const namespaces = items.filter(isNamespace);
  const others = items.filter((t) => !isNamespace(t));
  return namespacesFirst ? [namespaces, others] : [others, namespaces];
}

export type ApplyOutcome = 'created' | 'configured' | 'unchanged';

/**
 * Creates `object` at `collection`, or, when one of its name exists (409 AlreadyExists), replaces what the
 * manifest declares and keeps what the server and controllers own (status, resourceVersion): one POST for a
 * new object, POST + GET + PUT for an existing one.
 */
export async function applyManifest(client: ApiClient, collection: string, path: string, object: KubeObject): Promise<ApplyOutcome> {
  try {
    await client.request('POST', collection, object);
    return 'created';
  } catch (err) {
    if (!(err instanceof ApiClientError && err.code === 409 && err.reason === 'AlreadyExists')) throw err;
  }
  for (let attempt = 1; ; attempt++) {
    const current = await client.request<KubeObject & { status?: unknown }>('GET', path);
    const desired: KubeObject & { status?: unknown } = { ...object, metadata: { ...object.metadata, resourceVersion: current.metadata.resourceVersion } };
    if ('status' in current) desired.status = current.status;
    try {
      const updated = await client.request<KubeObject>('PUT', path, desired);
      return updated.metadata.resourceVersion === current.metadata.resourceVersion ? 'unchanged' : 'configured';
    } catch (err) {
      if (!(err instanceof ApiClientError && err.code === 409) || attempt >= APPLY_ATTEMPTS) throw err;
    }
  }
}

/** Deletes the object at `path`; resolves to the object as removed or, when its deletion takes time, as marked. */
export function deleteObject(client: ApiClient, path: string, options: DeleteOptions): Promise<KubeObject> {
  return client.request<KubeObject>('DELETE', path, options);
}

/**
 * Runs `work` on every item with at most `limit` running at once and hands each outcome (its value or its
 * error) to `done` in the items' order, as soon as it and all before it have finished: output reads as if the
 * items had been done one after another. Rejects with the first error `done` throws, after what is running ends.
 */
export async function inParallel<T, R>(items: readonly T[], limit: number, work: (item: T) => Promise<R>, done: (item: T, outcome: { ok: true; value: R } | { ok: false; error: unknown }) => void): Promise<void> {
  const outcomes = new Array<{ ok: true; value: R } | { ok: false; error: unknown } | undefined>(items.length);
  let next = 0;
  let reported = 0;
  let failure: { error: unknown } | undefined;
  const report = () => {
    while (failure === undefined && reported < items.length && outcomes[reported] !== undefined) {
      const outcome = outcomes[reported]!;
      outcomes[reported] = undefined;
      try { done(items[reported]!, outcome); } catch (error) { failure = { error }; }
      reported++;
    }
  };
  const worker = async () => {
    while (failure === undefined && next < items.length) {
      const i = next++;
      try { outcomes[i] = { ok: true, value: await work(items[i]!) }; } catch (error) { outcomes[i] = { ok: false, error }; }
      report();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  if (failure !== undefined) throw failure.error;
}
