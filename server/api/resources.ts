import { randomUUID, randomBytes } from 'node:crypto';
import { Hono } from 'hono';
import type { Context } from 'hono';
import { parse as parseYaml } from 'yaml';
import {
  resourceFor, validateObject, applyDefaults,
  parseLabelSelector, matchesLabels, parseFieldSelector, matchesFields,
} from '../../api-types/index.js';
import type { ResourceInfo } from '../../api-types/index.js';
import type { SqliteStore } from '../store/sqlite-store.js';
import type { Proposer } from '../store/proposer.js';
import { GoneError } from '../store/types.js';
import type { Command, StoredObject, WatchEvent } from '../store/types.js';
import { mergePatch } from './merge-patch.js';
import { ApiError, badRequest, notFound, methodNotAllowed, statusBody } from './status.js';

/** What the resource routes need from the rest of the server. */
export interface ResourceDeps {
  store: SqliteStore;
  proposer: Proposer;
  /** Resolves once this member's state is at least as new as the cluster's commit (ReadIndex); a lone member resolves at once. */
  readBarrier: () => Promise<void>;
  now: () => Date;
  /** Pod subresources served by the agent that runs the pod (log, exec); absent until an agent proxy exists. */
  podProxy?: (c: Context, pod: StoredObject, sub: string) => Promise<Response>;
}

/** The fields every list can be filtered on, and the extra ones some resources add. */
const fieldSelectable: Record<string, readonly string[]> = {
  pods: ['spec.nodeName', 'status.phase', 'spec.schedulerName'],
  events: ['involvedObject.kind', 'involvedObject.name', 'involvedObject.namespace', 'involvedObject.uid', 'reason', 'type'],
  nodes: ['spec.unschedulable'],
  secrets: ['type'],
};
const commonFields = ['metadata.name', 'metadata.namespace'] as const;

/** How many events a slow watcher may leave unread before it is disconnected (it then watches again). */
const WATCH_BACKLOG = 10_000;
/** How often a conflicting merge patch is retried against the newest object before giving up with 409. */
const PATCH_ATTEMPTS = 5;

/**
 * Kubernetes-shaped REST for every resource in the api-types table, under /api/v1 and /apis/GROUP/VERSION:
 *   collection       GET (list, ?watch=true), POST (create)
 *   object           GET, PUT (replace), PATCH (JSON merge patch), DELETE
 *   object/status    GET, PUT, PATCH        object/scale  GET, PUT, PATCH (workloads with replicas)
 *   pods/NAME/binding POST; pods/NAME/log and /exec through the agent proxy
 */
export function resourceRoutes(deps: ResourceDeps): Hono {
  const app = new Hono();
  const handle = (group: string, version: string) => async (c: Context) => {
    const prefixLen = group === '' ? 3 : 4; // "", "api", "v1" | "", "apis", group, version
    const segs = c.req.path.split('/').slice(prefixLen).filter((s) => s !== '').map(decodeURIComponent);
    const target = resolveTarget(group, version, segs);
    return serve(c, deps, target);
  };
  app.all('/api/v1/*', handle('', 'v1'));
  app.all('/apis/:group/:version/*', (c) => handle(c.req.param('group'), c.req.param('version'))(c));
  return app;
}

interface Target {
  resource: ResourceInfo;
  key: string;
  namespace: string | undefined;
  name?: string;
  sub?: string;
}

function resolveTarget(group: string, version: string, segs: string[]): Target {
  const lookup = (plural: string): ResourceInfo => {
    const r = resourceFor(group, version, plural);
    if (!r) throw notFound(`the server could not find the requested resource: ${group ? `${group}/${version}` : version} ${plural}`);
    return r;
  };
  const make = (resource: ResourceInfo, namespace: string | undefined, name?: string, sub?: string): Target => {
    if (sub !== undefined && !isKnownSub(resource, sub)) throw notFound(`${resource.plural} has no subresource "${sub}"`);
    return { resource, key: resourceKey(resource), namespace, ...(name !== undefined ? { name } : {}), ...(sub !== undefined ? { sub } : {}) };
  };
  if (segs.length >= 3 && segs[0] === 'namespaces') {
    const third = lookupMaybe(group, version, segs[2]!);
    if (third?.namespaced) {
      if (segs.length > 5) throw notFound(`unknown path /${segs.join('/')}`);
      return make(third, segs[1], segs[3], segs[4]);
    }
  }
  if (segs.length < 1 || segs.length > 3) throw notFound(`unknown path /${segs.join('/')}`);
  const resource = lookup(segs[0]!);
  if (resource.namespaced && segs.length > 1) throw notFound(`${resource.plural} are namespaced: use .../namespaces/NAMESPACE/${resource.plural}/${segs[1]}`);
  return make(resource, resource.namespaced ? undefined : '', segs[1], segs[2]);
}

function lookupMaybe(group: string, version: string, plural: string): ResourceInfo | undefined {
  return resourceFor(group, version, plural);
}

function isKnownSub(r: ResourceInfo, sub: string): boolean {
  if ((r.subresources as readonly string[]).includes(sub)) return true;
  return r.plural === 'pods' && r.group === '' && ['binding', 'log', 'exec'].includes(sub);
}

/** The store's key for a resource: the plural, qualified by the group outside the core group. */
export function resourceKey(r: ResourceInfo): string {
  return r.group ? `${r.plural}.${r.group}` : r.plural;
}

async function serve(c: Context, deps: ResourceDeps, t: Target): Promise<Response> {
  const method = c.req.method;
  if (t.name === undefined) {
    if (method === 'GET') return c.req.query('watch') === 'true' || c.req.query('watch') === '1' ? watch(c, deps, t) : list(c, deps, t);
    if (method === 'POST') return create(c, deps, t);
    throw methodNotAllowed(`${method} is not supported on a collection`);
  }
  if (t.sub === undefined) {
    switch (method) {
      case 'GET': return c.json(await read(c, deps, t));
      case 'PUT': return replace(c, deps, t, await body(c));
      case 'PATCH': return patch(c, deps, t);
      case 'DELETE': return remove(c, deps, t);
    }
    throw methodNotAllowed(`${method} is not supported on an object`);
  }
  switch (t.sub) {
    case 'status': return statusSub(c, deps, t);
    case 'scale': return scaleSub(c, deps, t);
    case 'binding': return binding(c, deps, t);
    default: {
      if (!deps.podProxy) throw new ApiError({ code: 503, reason: 'ServiceUnavailable', message: `pods/${t.sub} needs the agent proxy, which this server does not run` });
      return deps.podProxy(c, await read(c, deps, t), t.sub);
    }
  }
}

async function read(c: Context, deps: ResourceDeps, t: Target): Promise<StoredObject> {
  if (c.req.query('consistency') !== 'stale') await deps.readBarrier();
  const obj = deps.store.get(t.key, t.namespace ?? '', t.name!);
  if (!obj) throw notFound(`${t.resource.plural} "${t.name}" not found`);
  return obj;
}

function selectorsOf(c: Context, t: Target): (o: StoredObject) => boolean {
  const label = c.req.query('labelSelector');
  const field = c.req.query('fieldSelector');
  let ls: ReturnType<typeof parseLabelSelector> | undefined;
  let fs: ReturnType<typeof parseFieldSelector> | undefined;
  try {
    ls = label ? parseLabelSelector(label) : undefined;
    fs = field ? parseFieldSelector(field, [...commonFields, ...(fieldSelectable[t.resource.plural] ?? [])]) : undefined;
  } catch (err) {
    throw badRequest(err instanceof Error ? err.message : String(err));
  }
  return (o) => (!ls || matchesLabels(ls, o.metadata.labels)) && (!fs || matchesFields(fs, (path) => fieldValue(o, path)));
}

function fieldValue(o: StoredObject, path: string): string | undefined {
  let v: unknown = o;
  for (const part of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string, unknown>)[part];
  }
  if (v === undefined || v === null) return path === 'spec.nodeName' ? '' : undefined;
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

async function list(c: Context, deps: ResourceDeps, t: Target): Promise<Response> {
  const keep = selectorsOf(c, t);
  if (c.req.query('consistency') !== 'stale') await deps.readBarrier();
  const { items, revision } = deps.store.list(t.key, t.namespace);
  return c.json({
    kind: `${t.resource.kind}List`,
    apiVersion: t.resource.apiVersion,
    metadata: { resourceVersion: String(revision) },
    items: items.filter(keep),
  });
}

function watch(c: Context, deps: ResourceDeps, t: Target): Response {
  const keep = selectorsOf(c, t);
  const rvParam = c.req.query('resourceVersion');
  const timeoutS = Number(c.req.query('timeoutSeconds') ?? 0);
  if (rvParam !== undefined && rvParam !== '' && !/^\d+$/.test(rvParam)) throw badRequest(`resourceVersion must be a number, got "${rvParam}"`);
  const encoder = new TextEncoder();
  let stop = (): void => {};
  let timer: NodeJS.Timeout | undefined;
  const initial: WatchEvent[] = [];
  let from: number;
  if (!rvParam || rvParam === '0') {
    // No starting point: the current objects as ADDED, then every change after them.
    const snapshot = deps.store.list(t.key, t.namespace);
    from = snapshot.revision;
    for (const object of snapshot.items) initial.push({ revision: from, resource: t.key, namespace: object.metadata.namespace ?? '', type: 'ADDED', object });
  } else {
    from = Number(rvParam);
  }
  let controllerRef: ReadableStreamDefaultController<Uint8Array> | undefined;
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      controllerRef = controller;
      const send = (e: WatchEvent): void => {
        if (!keep(e.object)) return;
        if ((controller.desiredSize ?? 0) < -WATCH_BACKLOG) {
          // The client is not reading: drop it rather than buffer without bound; it will watch again.
          stop();
          controller.close();
          return;
        }
        controller.enqueue(encoder.encode(`${JSON.stringify({ type: e.type, object: e.object })}\n`));
      };
      for (const e of initial) send(e);
      try {
        stop = deps.store.hub.watch(t.key, t.namespace, from, send);
      } catch (err) {
        if (!(err instanceof GoneError)) throw err;
        // Kubernetes reports an expired watch as an ERROR event carrying a 410 Status.
        controller.enqueue(encoder.encode(`${JSON.stringify({ type: 'ERROR', object: statusBody(err.failure) })}\n`));
        controller.close();
        return;
      }
      if (timeoutS > 0) timer = setTimeout(() => { stop(); try { controller.close(); } catch { /* already closed */ } }, timeoutS * 1000);
    },
    cancel() {
      stop();
      if (timer) clearTimeout(timer);
    },
  }, new CountQueuingStrategy({ highWaterMark: 1 }));
  c.req.raw.signal?.addEventListener('abort', () => {
    stop();
    if (timer) clearTimeout(timer);
    try { controllerRef?.close(); } catch { /* already closed */ }
  });
  return new Response(stream, { status: 200, headers: { 'content-type': 'application/json; charset=utf-8', 'transfer-encoding': 'chunked', 'cache-control': 'no-cache' } });
}

/** Parses the request body: JSON, or YAML when the client says so. */
async function body(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '') throw badRequest('the request body is empty');
  const type = c.req.header('content-type') ?? '';
  try {
    return /yaml/i.test(type) ? parseYaml(text) : JSON.parse(text);
  } catch (err) {
    throw badRequest(`the request body is not valid ${/yaml/i.test(type) ? 'YAML' : 'JSON'}: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Validates a full object for this target and applies defaults; refuses a kind or namespace that does not belong here. */
function admit(t: Target, input: unknown, name?: string): StoredObject {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw badRequest('the request body must be a JSON object');
  const raw = input as Record<string, unknown>;
  const meta = (raw.metadata && typeof raw.metadata === 'object' ? raw.metadata : {}) as Record<string, unknown>;
  if (raw.kind !== undefined && raw.kind !== t.resource.kind) throw badRequest(`the body's kind "${String(raw.kind)}" does not match ${t.resource.plural} (${t.resource.kind})`);
  if (raw.apiVersion !== undefined && raw.apiVersion !== t.resource.apiVersion) throw badRequest(`the body's apiVersion "${String(raw.apiVersion)}" does not match ${t.resource.apiVersion}`);
  if (t.namespace && meta.namespace !== undefined && meta.namespace !== t.namespace) {
    throw badRequest(`the namespace of the object (${String(meta.namespace)}) does not match the namespace on the request (${t.namespace})`);
  }
  if (name !== undefined && meta.name !== undefined && meta.name !== name) throw badRequest(`the name of the object (${String(meta.name)}) does not match the name on the URL (${name})`);
  const withPath = {
    ...raw,
    apiVersion: t.resource.apiVersion,
    kind: t.resource.kind,
    metadata: { ...meta, ...(t.resource.namespaced ? { namespace: t.namespace } : {}), ...(name !== undefined ? { name } : {}) },
  };
  const v = validateObject(withPath);
  if (!v.ok) {
    const causes = v.issues.map((i) => ({ field: i.path, message: i.message }));
    throw new ApiError({
      code: 422, reason: 'Invalid',
      message: `${t.resource.kind} "${String(withPath.metadata.name ?? '')}" is invalid: ${v.issues.map((i) => `${i.path}: ${i.message}`).join('; ')}`,
      details: { name: String(withPath.metadata.name ?? ''), kind: t.resource.kind, causes },
    });
  }
  return applyDefaults(v.object) as unknown as StoredObject;
}

async function commit(deps: ResourceDeps, command: Command): Promise<{ type: string; object: StoredObject }> {
  const result = await deps.proposer.propose(command);
  if (!result.ok) throw new ApiError(result.failure);
  return result;
}

async function create(c: Context, deps: ResourceDeps, t: Target): Promise<Response> {
  if (t.resource.namespaced && t.namespace !== undefined) await requireNamespace(deps, t.namespace);
  const input = await body(c);
  const meta = (input as { metadata?: { name?: unknown; generateName?: unknown } })?.metadata;
  if (meta && meta.name === undefined && typeof meta.generateName === 'string') meta.name = `${meta.generateName}${randomSuffix()}`;
  if (t.resource.namespaced && t.namespace === undefined) throw badRequest(`${t.resource.plural} are namespaced: POST to .../namespaces/NAMESPACE/${t.resource.plural}`);
  const object = admit(t, input);
  const { object: created } = await commit(deps, { op: 'create', resource: t.key, object, uid: randomUUID(), now: deps.now().toISOString() });
  return c.json(created, 201);
}

async function requireNamespace(deps: ResourceDeps, namespace: string): Promise<void> {
  if (!deps.store.get('namespaces', '', namespace)) throw notFound(`namespaces "${namespace}" not found`);
}

async function replace(c: Context, deps: ResourceDeps, t: Target, input: unknown): Promise<Response> {
  const object = admit(t, input, t.name);
  const { object: updated } = await commit(deps, { op: 'update', resource: t.key, object });
  return c.json(updated);
}

async function patch(c: Context, deps: ResourceDeps, t: Target, sub?: 'status'): Promise<Response> {
  const type = c.req.header('content-type') ?? '';
  if (/json-patch\+json/i.test(type)) throw new ApiError({ code: 415, reason: 'UnsupportedMediaType', message: 'JSON Patch is not supported: send application/merge-patch+json' });
  const delta = await body(c);
  if (delta === null || typeof delta !== 'object' || Array.isArray(delta)) throw badRequest('a merge patch must be a JSON object');
  const pinned = (delta as { metadata?: { resourceVersion?: unknown } }).metadata?.resourceVersion !== undefined;
  for (let attempt = 1; ; attempt++) {
    const current = deps.store.get(t.key, t.namespace ?? '', t.name!);
    if (!current) throw notFound(`${t.resource.plural} "${t.name}" not found`);
    const merged = mergePatch(current, delta) as StoredObject;
    if (!pinned) merged.metadata.resourceVersion = current.metadata.resourceVersion;
    const object = admit(t, merged, t.name);
    object.metadata.resourceVersion = merged.metadata.resourceVersion;
    const result = await deps.proposer.propose({ op: 'update', resource: t.key, object, ...(sub ? { subresource: sub } : {}) });
    if (result.ok) return c.json(result.object);
    // Someone else wrote in between: patch the newer object, unless the client pinned a version.
    if (result.failure.code !== 409 || pinned || attempt >= PATCH_ATTEMPTS) throw new ApiError(result.failure);
  }
}

async function remove(c: Context, deps: ResourceDeps, t: Target): Promise<Response> {
  let preconditions: { uid?: string; resourceVersion?: string } | undefined;
  const text = await c.req.text();
  if (text.trim() !== '') {
    let opts: { preconditions?: { uid?: string; resourceVersion?: string } };
    try { opts = JSON.parse(text); } catch { throw badRequest('DeleteOptions body is not valid JSON'); }
    preconditions = opts.preconditions;
  }
  const { object } = await commit(deps, { op: 'delete', resource: t.key, namespace: t.namespace ?? '', name: t.name!, ...(preconditions ? { preconditions } : {}) });
  return c.json(object);
}

async function statusSub(c: Context, deps: ResourceDeps, t: Target): Promise<Response> {
  switch (c.req.method) {
    case 'GET': return c.json(await read(c, deps, t));
    case 'PUT': {
      const input = await body(c) as Record<string, unknown>;
      const current = await read(c, deps, t);
      // Validate the status inside the whole object, so its paths read as they do everywhere else.
      const object = admit(t, { ...current, status: input?.status, metadata: { ...current.metadata, resourceVersion: (input?.metadata as { resourceVersion?: string } | undefined)?.resourceVersion } }, t.name);
      const { object: updated } = await commit(deps, { op: 'update', resource: t.key, object, subresource: 'status' });
      return c.json(updated);
    }
    case 'PATCH': return patch(c, deps, t, 'status');
  }
  throw methodNotAllowed(`${c.req.method} is not supported on status`);
}

async function scaleSub(c: Context, deps: ResourceDeps, t: Target): Promise<Response> {
  const current = await read(c, deps, t);
  const toScale = (o: StoredObject) => ({
    kind: 'Scale', apiVersion: 'autoscaling/v1',
    metadata: { name: o.metadata.name, namespace: o.metadata.namespace, uid: o.metadata.uid, resourceVersion: o.metadata.resourceVersion, creationTimestamp: o.metadata.creationTimestamp },
    spec: { replicas: (o.spec as { replicas?: number } | undefined)?.replicas ?? 0 },
    status: { replicas: (o.status as { replicas?: number } | undefined)?.replicas ?? 0, selector: selectorText(o) },
  });
  if (c.req.method === 'GET') return c.json(toScale(current));
  if (c.req.method !== 'PUT' && c.req.method !== 'PATCH') throw methodNotAllowed(`${c.req.method} is not supported on scale`);
  const input = await body(c) as { spec?: { replicas?: unknown }; metadata?: { resourceVersion?: string } };
  const replicas = input?.spec?.replicas;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
    throw new ApiError({ code: 422, reason: 'Invalid', message: `Scale is invalid: spec.replicas: must be a non-negative integer, got ${JSON.stringify(replicas)}`, details: { causes: [{ field: 'spec.replicas', message: 'must be a non-negative integer' }] } });
  }
  const object: StoredObject = { ...current, spec: { ...(current.spec as object), replicas }, metadata: { ...current.metadata, resourceVersion: c.req.method === 'PUT' ? input.metadata?.resourceVersion ?? '' : current.metadata.resourceVersion } };
  const { object: updated } = await commit(deps, { op: 'update', resource: t.key, object });
  return c.json(toScale(updated));
}

function selectorText(o: StoredObject): string {
  const labels = (o.spec as { selector?: { matchLabels?: Record<string, string> } } | undefined)?.selector?.matchLabels ?? {};
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
}

/** POST pods/NAME/binding: assigns a pending pod to a node (and records the scheduler's annotations). */
async function binding(c: Context, deps: ResourceDeps, t: Target): Promise<Response> {
  if (c.req.method !== 'POST') throw methodNotAllowed('binding accepts POST only');
  const input = await body(c) as { target?: { name?: unknown }; metadata?: { annotations?: Record<string, string>; resourceVersion?: string; uid?: string } };
  const nodeName = input?.target?.name;
  if (typeof nodeName !== 'string' || nodeName === '') throw new ApiError({ code: 422, reason: 'Invalid', message: 'Binding is invalid: target.name: Required value', details: { causes: [{ field: 'target.name', message: 'Required value' }] } });
  const current = await read(c, deps, t);
  const spec = (current.spec ?? {}) as { nodeName?: string };
  if (spec.nodeName) throw new ApiError({ code: 409, reason: 'Conflict', message: `pod ${t.name} is already assigned to node "${spec.nodeName}"` });
  const annotations = { ...(current.metadata.annotations ?? {}), ...(input.metadata?.annotations ?? {}) };
  const object: StoredObject = {
    ...current,
    spec: { ...spec, nodeName },
    metadata: { ...current.metadata, annotations, resourceVersion: input.metadata?.resourceVersion ?? current.metadata.resourceVersion, ...(input.metadata?.uid ? { uid: input.metadata.uid } : {}) },
  };
  await commit(deps, { op: 'update', resource: t.key, object });
  return c.json({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 }, 201);
}

function randomSuffix(): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return Array.from(randomBytes(5), (b) => alphabet[b % alphabet.length]).join('');
}

