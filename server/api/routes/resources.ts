import { Hono } from 'hono';
import type { Context } from 'hono';
import { resourceFor, parseLabelSelector, matchesLabels, parseFieldSelector, matchesFields, formatLabelSelector, labelSelectorFromSpec, isScalable, statusObject, validateDeleteOptions, objectTable, ANNOTATION_INITIAL_EVENTS_END } from '../../../api-types/index.js';
import type { DeleteOptions, Failure, IncludeObject, KubeObject, ResourceInfo, Scale } from '../../../api-types/index.js';
import { GoneError, StoreError } from '../../store/types.js';
import type { StoredObject, WatchEvent } from '../../store/types.js';
import { ObjectService, resourceKey, badRequest, notFound, invalid } from '../../objects/service.js';
import { methodNotAllowed } from '../status.js';
import { identityOf, nodeNameOf } from '../middleware/auth.js';
import { requestInfo } from '../request-info.js';
import { parseBody } from '../request-body.js';
import { acceptedAs } from '../accept.js';
import { APPLY_PATCH, applyPatch, patchTypeOf } from '../patch.js';
import type { RequestInfo } from '../request-info.js';
import { requestToken } from '../../tokens/token-requests.js';
import type { ServiceAccountTokens } from '../../tokens/service-account-tokens.js';

/** What the resource routes need from the rest of the server. */
export interface ResourceDeps {
  objects: ObjectService;
  /** Resolves once this member's state is at least as new as the cluster's commit (ReadIndex); a lone member resolves at once. */
  readBarrier: () => Promise<void>;
  /** Pod subresources served by the agent that runs the pod (log, exec); absent until an agent proxy exists. */
  podProxy?: (c: Context, pod: StoredObject, sub: string) => Promise<Response>;
  /** The signer of service account tokens (serviceaccounts/NAME/token); absent: the subresource answers 503. */
  serviceAccountTokens?: ServiceAccountTokens;
}

/** The fields lists can be filtered on: these for every resource, plus those some resources add. */
const commonFields = ['metadata.name', 'metadata.namespace'] as const;
const fieldSelectable: Record<string, readonly string[]> = {
  pods: ['spec.nodeName', 'status.phase', 'spec.schedulerName'],
  events: ['involvedObject.kind', 'involvedObject.name', 'involvedObject.namespace', 'involvedObject.uid', 'reason', 'type'],
  nodes: ['spec.unschedulable'],
  secrets: ['type'],
};

/** How many events a slow watcher may leave unread before it is disconnected (it then watches again). */
const WATCH_BACKLOG = 10_000;

/** Each event's line, encoded once for all the watches it goes to: the store hands every watcher the same event. */
const eventLines = new WeakMap<WatchEvent, Uint8Array>();

/**
 * kube-apiserver's --min-request-timeout default: a watch without timeoutSeconds ends after a random one to two
 * times this, so that clients do not all watch again at once; a longer timeoutSeconds is cut to twice this.
 */
const MIN_REQUEST_TIMEOUT_S = 1800;

/**
 * How long a watch from a resourceVersion this member has not reached yet waits for it (kube-apiserver's watch
 * cache blockTimeout) before it ends with 504 Too large resource version, and when the client is told to retry.
 */
const TOO_LARGE_RV_WAIT_MS = 3000;
/** How often a watch with allowWatchBookmarks says how far it has got (kube-apiserver: about once a minute). */
const BOOKMARK_EVERY_MS = 60_000;
const TOO_LARGE_RV_RETRY_S = 1;

/**
 * Kubernetes-shaped REST for every resource in the api-types table, under /api/v1 and /apis/GROUP/VERSION:
 *   collection       GET (list, ?watch=true), POST (create)
 *   object           GET, PUT (replace), PATCH (JSON, merge and strategic merge patch), DELETE; ?dryRun=All on writes
 *   object/status    GET, PUT, PATCH        object/scale  GET, PUT, PATCH (workloads with replicas)
 *   pods/NAME/binding POST; pods/NAME/log and /exec through the agent proxy
 *   serviceaccounts/NAME/token POST (a TokenRequest: server/tokens/token-requests.ts)
 */
export function resourceRoutes(deps: ResourceDeps): Hono {
  const app = new Hono();
  const handle = (c: Context) => {
    const info = requestInfo(c.req.method, c.req.path, c.req.query('watch'));
    if (!info) throw notFound(`the server could not find the requested resource: ${c.req.path}`);
    const objects = deps.objects.asNode(nodeNameOf(identityOf(c)));
    return serve(c, isDryRun(c) ? objects.asDryRun() : objects, deps, resolveTarget(info));
  };
  app.all('/api/v1/*', handle);
  app.all('/apis/:group/:version/*', handle);
  return app;
}

interface Target {
  resource: ResourceInfo;
  namespace: string | undefined;
  name?: string;
  sub?: string;
}

/** The served resource a request names, from the resource table; 404 for anything the table does not serve. */
function resolveTarget(info: RequestInfo): Target {
  const { group, version, namespace, name, subresource: sub } = info;
  const shown = `${group ? `/apis/${group}` : '/api'}/${version}${namespace !== undefined ? `/namespaces/${namespace}` : ''}/${info.resource}`;
  if (info.extra) throw notFound(`the server could not find the requested resource: ${shown}/${name}/${sub}/...`);
  const resource = resourceFor(group, version, info.resource);
  if (!resource || (namespace !== undefined && !resource.namespaced)) throw notFound(`the server could not find the requested resource: ${shown}`);
  if (resource.namespaced && namespace === undefined && name !== undefined) throw notFound(`${resource.plural} are namespaced: use .../namespaces/NAMESPACE/${resource.plural}/${name}`);
  if (sub !== undefined && !isKnownSub(resource, sub)) throw notFound(`${resource.plural} has no subresource "${sub}"`);
  return { resource, namespace, ...(name !== undefined ? { name } : {}), ...(sub !== undefined ? { sub } : {}) };
}

/** The subresources served for `r`: the table's (status, scale), and for pods binding plus those the agent serves. Discovery lists these. */
export function servedSubresources(r: ResourceInfo): readonly string[] {
  if (r.group !== '') return r.subresources;
  if (r.plural === 'pods') return [...r.subresources, 'binding', 'log', 'exec', 'attach'];
  if (r.plural === 'serviceaccounts') return [...r.subresources, 'token'];
  return r.subresources;
}

function isKnownSub(r: ResourceInfo, sub: string): boolean {
  return servedSubresources(r).includes(sub);
}

/** Serves a request; `objects` is deps.objects as the requester writes (NodeRestriction for a node). */
async function serve(c: Context, objects: ObjectService, deps: ResourceDeps, t: Target): Promise<Response> {
  const method = c.req.method;
  if (t.name === undefined) {
    if (method === 'GET') return c.req.query('watch') === 'true' || c.req.query('watch') === '1' ? watch(c, deps, t) : list(c, deps, t);
    if (method === 'POST') return c.json(await objects.create(t.resource, t.namespace, await body(c)), 201);
    throw methodNotAllowed(`${method} is not supported on a collection`);
  }
  const name = t.name;
  if (t.sub === undefined) {
    switch (method) {
      case 'GET': {
        const table = tableRequest(c);
        const o = await read(c, deps, t);
        return table ? tableResponse(c, table(t.resource, [o], o.metadata.resourceVersion)) : c.json(o);
      }
      case 'PUT': return c.json(await objects.replace(t.resource, t.namespace, name, await body(c)));
      case 'PATCH': return c.json(await patch(c, objects, t, name));
      case 'DELETE': return c.json(await objects.delete(t.resource, t.namespace, name, await deleteOptions(c)));
    }
    throw methodNotAllowed(`${method} is not supported on an object`);
  }
  switch (t.sub) {
    case 'status':
      switch (method) {
        case 'GET': return c.json(await read(c, deps, t));
        case 'PUT': {
          const input = (await body(c)) as { status?: unknown; metadata?: { resourceVersion?: string } };
          return c.json(await objects.replaceStatus(t.resource, t.namespace, name, input?.status, input?.metadata?.resourceVersion));
        }
        case 'PATCH': return c.json(await patch(c, objects, t, name, 'status'));
      }
      throw methodNotAllowed(`${method} is not supported on status`);
    case 'scale': return scaleSub(c, objects, deps, t, name);
    case 'binding': return binding(c, objects, t, name);
    case 'token': {
      if (method !== 'POST') throw methodNotAllowed('token accepts POST only');
      if (!deps.serviceAccountTokens) throw new StoreError({ code: 503, reason: 'ServiceUnavailable', message: 'this server issues no service account tokens' });
      const input = await body(c);
      await deps.readBarrier();
      return c.json(requestToken(deps.objects, deps.serviceAccountTokens, t.namespace ?? 'default', name, input, nodeNameOf(identityOf(c)), Date.now()), 201);
    }
    default: {
      if (!deps.podProxy) throw new StoreError({ code: 503, reason: 'ServiceUnavailable', message: `pods/${t.sub} needs the agent proxy, which this server does not run` });
      return deps.podProxy(c, await read(c, deps, t), t.sub);
    }
  }
}

async function read(c: Context, deps: ResourceDeps, t: Target): Promise<StoredObject> {
  if (c.req.query('consistency') !== 'stale') await deps.readBarrier();
  return deps.objects.mustGet(t.resource, t.namespace, t.name!);
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
  return (o) => (!ls || matchesLabels(ls, o.metadata.labels)) && (!fs || matchesFields(fs, (path: string) => fieldValue(o, path)));
}

/** A field's value as a selector compares it; an unset spec.nodeName reads as "" so that `spec.nodeName=` finds unbound pods. */
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
  const o = listOptionsOf(c, false);
  if (c.req.query('consistency') !== 'stale') await deps.readBarrier();
  const table = tableRequest(c);
  const { items, revision } = deps.objects.list(t.resource, t.namespace);
  // Any revision at least the one asked for serves NotOlderThan ("0": any at all); Exact only the one asked for,
  // and the store keeps no older lists than its current one.
  if (o.resourceVersion !== undefined && o.resourceVersion !== '' && o.resourceVersion !== '0') {
    const asked = Number(o.resourceVersion);
    if (asked > revision) throw new StoreError(tooLargeResourceVersion(asked, revision));
    if (o.resourceVersionMatch === 'Exact' && asked < revision) throw new GoneError(asked, revision);
  }
  const kept = items.filter(keep);
  if (table) return tableResponse(c, table(t.resource, kept, String(revision)));
  return c.json({ kind: `${t.resource.kind}List`, apiVersion: t.resource.apiVersion, metadata: { resourceVersion: String(revision) }, items: kept });
}

/** The Table versions of meta.k8s.io a get, list or watch may ask for (kubectl asks for v1, then v1beta1). */
const TABLE_VERSIONS = ['v1', 'v1beta1'] as const;
const TABLE_CONTENT_TYPE = 'application/json;as=Table;v=v1;g=meta.k8s.io';
const INCLUDE_OBJECT: readonly IncludeObject[] = ['None', 'Metadata', 'Object'];

type TableOf = (resource: ResourceInfo, items: readonly KubeObject[], resourceVersion: string | undefined) => unknown;

/**
 * When the request's Accept asks for a Table (as=Table;g=meta.k8s.io), how to make it: with the rows' objects as
 * ?includeObject says (None, Metadata (the default), Object); undefined for an ordinary answer.
 */
function tableRequest(c: Context): TableOf | undefined {
  if (acceptedAs(c.req.header('accept'), 'Table', 'meta.k8s.io', TABLE_VERSIONS) === undefined) return undefined;
  const include = c.req.query('includeObject') ?? 'Metadata';
  if (!(INCLUDE_OBJECT as readonly string[]).includes(include)) throw badRequest(`includeObject: Unsupported value: "${include}": supported values: "None", "Metadata", "Object"`);
  return (resource, items, resourceVersion) => objectTable(resource, items, { now: Date.now(), includeObject: include as IncludeObject, ...(resourceVersion !== undefined ? { resourceVersion } : {}) });
}

function tableResponse(c: Context, table: unknown): Response {
  return c.body(JSON.stringify(table), 200, { 'content-type': TABLE_CONTENT_TYPE });
}

interface ListOptions {
  resourceVersion?: string;
  resourceVersionMatch?: 'Exact' | 'NotOlderThan';
  sendInitialEvents?: boolean;
  allowWatchBookmarks: boolean;
}

/** The largest resourceVersion Kubernetes parses (strconv.ParseUint(rv, 10, 64)). */
const MAX_RESOURCE_VERSION = 2n ** 64n - 1n;

/** The ListOptions of a list or watch request, held to Kubernetes' rules (ValidateListOptions): 422 otherwise. */
function listOptionsOf(c: Context, watching: boolean): ListOptions {
  const rv = c.req.query('resourceVersion');
  if (rv !== undefined && rv !== '' && !/^\d+$/.test(rv)) throw badRequest(`resourceVersion must be a number, got "${rv}"`);
  // A revision is a uint64, as Kubernetes parses it: past that it is no revision at all (400), not one the store
  // has yet to reach (504 Too large resource version).
  if (rv !== undefined && rv !== '' && BigInt(rv) > MAX_RESOURCE_VERSION) throw badRequest(`resourceVersion: Invalid value: "${rv}": value out of range`);
  const match = c.req.query('resourceVersionMatch') || undefined;
  const initialText = c.req.query('sendInitialEvents');
  const bool = (text: string | undefined) => text === 'true' || text === '1';
  const sendInitialEvents = initialText === undefined ? undefined : bool(initialText);
  const allowWatchBookmarks = bool(c.req.query('allowWatchBookmarks'));
  const continued = (c.req.query('continue') ?? '') !== '';
  const causes: { field: string; message: string }[] = [];
  const forbid = (field: string, message: string) => causes.push({ field, message: `Forbidden: ${message}` });
  const unsupported = (values: string[]) => causes.push({ field: 'resourceVersionMatch', message: `Unsupported value: "${match}": supported values: ${values.map((v) => `"${v}"`).join(', ')}` });
  if (watching) {
    if (sendInitialEvents !== undefined) {
      if (match !== 'NotOlderThan') forbid('resourceVersionMatch', 'sendInitialEvents requires setting resourceVersionMatch to NotOlderThan');
      if (!allowWatchBookmarks) forbid('allowWatchBookmarks', 'sendInitialEvents requires setting allowWatchBookmarks to true');
    }
    if (match !== undefined) {
      if (sendInitialEvents === undefined) forbid('resourceVersionMatch', 'resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided');
      if (match !== 'NotOlderThan') unsupported(['NotOlderThan']);
      if (continued) forbid('resourceVersionMatch', 'resourceVersionMatch is forbidden when continue is provided');
    }
  } else {
    if (match !== undefined) {
      if (rv === undefined || rv === '') forbid('resourceVersionMatch', 'resourceVersionMatch is forbidden unless resourceVersion is provided');
      if (continued) forbid('resourceVersionMatch', 'resourceVersionMatch is forbidden when continue is provided');
      if (match !== 'Exact' && match !== 'NotOlderThan') unsupported(['Exact', 'NotOlderThan', '']);
      if (match === 'Exact' && rv === '0') forbid('resourceVersionMatch', 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"');
    }
    if (sendInitialEvents !== undefined) forbid('sendInitialEvents', 'sendInitialEvents is forbidden for list');
  }
  if (causes.length > 0) throw invalid('ListOptions.meta.k8s.io', '', causes);
  return {
    allowWatchBookmarks, ...(rv !== undefined ? { resourceVersion: rv } : {}),
    ...(match === 'Exact' || match === 'NotOlderThan' ? { resourceVersionMatch: match } : {}),
    ...(sendInitialEvents !== undefined ? { sendInitialEvents } : {}),
  };
}

/**
 * A watch stream: newline-delimited {"type","object"} events after `resourceVersion`; without one, the current
 * objects first as ADDED. As in Kubernetes, an expired revision yields one ERROR event with a 410 Status, and a
 * revision this member has not reached within TOO_LARGE_RV_WAIT_MS one with a 504 (Too large resource version).
 * The stream ends after timeoutSeconds (bounded; see MIN_REQUEST_TIMEOUT_S).
 * sendInitialEvents=true (with resourceVersionMatch=NotOlderThan) sends the current objects as ADDED whatever the
 * resourceVersion, then a BOOKMARK annotated k8s.io/initial-events-end; =false none. allowWatchBookmarks=true
 * adds a BOOKMARK (the revision the stream has reached) every BOOKMARK_EVERY_MS and when the timeout ends it.
 */
function watch(c: Context, deps: ResourceDeps, t: Target): Response {
  const keep = selectorsOf(c, t);
  const options = listOptionsOf(c, true);
  const table = tableRequest(c);
  const rvParam = options.resourceVersion;
  const timeoutParam = c.req.query('timeoutSeconds');
  if (timeoutParam !== undefined && !/^\d+$/.test(timeoutParam)) throw badRequest(`timeoutSeconds must be a non-negative integer, got "${timeoutParam}"`);
  const timeoutS = Math.min(Number(timeoutParam ?? 0), 2 * MIN_REQUEST_TIMEOUT_S) || MIN_REQUEST_TIMEOUT_S * (1 + Math.random());
  const key = resourceKey(t.resource);
  const encoder = new TextEncoder();
  const line = (v: unknown) => encoder.encode(`${JSON.stringify(v)}\n`);
  let stop = (): void => {};
  let timer: NodeJS.Timeout | undefined;
  let tooLarge: NodeJS.Timeout | undefined;
  let closed = false;
  let from: number;
  const initial: WatchEvent[] = [];
  if (options.sendInitialEvents === true || (options.sendInitialEvents === undefined && (!rvParam || rvParam === '0'))) {
    const snapshot = deps.objects.list(t.resource, t.namespace);
    from = snapshot.revision;
    for (const object of snapshot.items) initial.push({ revision: from, resource: key, namespace: object.metadata.namespace ?? '', type: 'ADDED', object });
  } else {
    from = rvParam ? Number(rvParam) : deps.objects.revision();
  }
  /** The revision every event up to which has been sent (or filtered out): what a bookmark says. */
  let reached = from;
  let bookmarks: NodeJS.Timeout | undefined;
  let finish = (): void => {};
  const stream = new ReadableStream<Uint8Array>({
    start(controller) {
      finish = () => {
        if (closed) return;
        closed = true;
        stop();
        clearTimeout(timer);
        clearTimeout(tooLarge);
        clearInterval(bookmarks);
        try { controller.close(); } catch { /* the reader already went away */ }
      };
      const send = (e: WatchEvent): void => {
        if (closed || !keep(e.object)) return;
        // A client that stops reading is dropped rather than buffered without bound; it will watch again.
        if ((controller.desiredSize ?? 0) < -WATCH_BACKLOG) return finish();
        // A Table watcher gets each object as a one-row Table (kubectl get -w prints the row).
        if (table) return controller.enqueue(line({ type: e.type, object: table(t.resource, [e.object], e.object.metadata.resourceVersion) }));
        let encoded = eventLines.get(e);
        if (encoded === undefined) eventLines.set(e, encoded = line({ type: e.type, object: e.object }));
        controller.enqueue(encoded);
      };
      const fail = (f: Failure): void => {
        if (closed) return;
        controller.enqueue(line({ type: 'ERROR', object: statusObject(f) }));
        finish();
      };
      const bookmark = (annotations?: Record<string, string>): void => {
        if (closed) return;
        controller.enqueue(line({ type: 'BOOKMARK', object: { kind: t.resource.kind, apiVersion: t.resource.apiVersion, metadata: { resourceVersion: String(reached), ...(annotations ? { annotations } : {}) } } }));
      };
      for (const e of initial) send(e);
      if (options.sendInitialEvents === true) bookmark({ [ANNOTATION_INITIAL_EVENTS_END]: 'true' });
      try {
        // Past `from` only: a watch from a revision not reached yet skips what comes before it.
        stop = deps.objects.watch(t.resource, t.namespace, from, (e) => {
          if (e.revision <= from) return;
          reached = Math.max(reached, e.revision);
          send(e);
        }, () => finish());
      } catch (err) {
        if (!(err instanceof GoneError)) throw err;
        return fail(err.failure);
      }
      timer = setTimeout(() => { if (options.allowWatchBookmarks) bookmark(); finish(); }, timeoutS * 1000);
      if (options.allowWatchBookmarks) bookmarks = setInterval(() => bookmark(), BOOKMARK_EVERY_MS);
      if (from > deps.objects.revision()) {
        tooLarge = setTimeout(() => {
          const current = deps.objects.revision();
          if (current < from) fail(tooLargeResourceVersion(from, current));
        }, TOO_LARGE_RV_WAIT_MS);
      }
    },
    cancel() { finish(); },
  }, new CountQueuingStrategy({ highWaterMark: 1 }));
  c.req.raw.signal?.addEventListener('abort', () => finish());
  return new Response(stream, { status: 200, headers: { 'content-type': table ? TABLE_CONTENT_TYPE : 'application/json; charset=utf-8', 'cache-control': 'no-cache' } });
}

/** Kubernetes' answer to a read from a resourceVersion the store has not reached (storage.NewTooLargeResourceVersionError). */
function tooLargeResourceVersion(requested: number, current: number): Failure {
  return {
    code: 504, reason: 'Timeout', message: `Timeout: Too large resource version: ${requested}, current: ${current}`,
    details: { causes: [{ reason: 'ResourceVersionTooLarge', message: 'Too large resource version' }], retryAfterSeconds: TOO_LARGE_RV_RETRY_S },
  };
}

/** Parses the request body: JSON, or YAML when the client says so. */
async function body(c: Context): Promise<unknown> {
  // Protobuf is what client-go sends built-in kinds in by default; told 415, it sends JSON from then on.
  const media = (c.req.header('content-type') ?? '').split(';')[0]!.trim().toLowerCase();
  if (media === 'application/vnd.kubernetes.protobuf') {
    throw new StoreError({ code: 415, reason: 'UnsupportedMediaType', message: 'the body of the request was in an unknown format - accepted media types include: application/json, application/yaml' });
  }
  const text = await c.req.text();
  if (text.trim() === '') throw badRequest('the request body is empty');
  return parseBody(text, /yaml/i.test(c.req.header('content-type') ?? ''));
}

/** A PATCH of the object or its status, in the format its Content-Type names (server/api/patch.ts). */
async function patch(c: Context, objects: ObjectService, t: Target, name: string, subresource?: 'status'): Promise<StoredObject> {
  const type = patchTypeOf(c.req.header('content-type'));
  if (type === APPLY_PATCH) throw new StoreError({ code: 415, reason: 'UnsupportedMediaType', message: 'server-side apply (application/apply-patch+yaml) is not supported: use client-side apply (kubectl apply without --server-side)' });
  const input = await body(c);
  return objects.patchWith(t.resource, t.namespace, name, (current) => applyPatch(type, current, input, t.resource.kind), subresource);
}

/**
 * Whether the request asks for dryRun=All (validated and admitted as a real write, answered, nothing stored);
 * 400 for any other value, with kube-apiserver's message.
 */
function isDryRun(c: Context): boolean {
  const values = c.req.queries('dryRun') ?? [];
  for (const v of values) if (v !== 'All') throw badRequest(`dryRun: Unsupported value: ${JSON.stringify(v)}: supported values: "All"`);
  return values.length > 0 && c.req.method !== 'GET';
}

/** DeleteOptions from the body or, when there is none, from the query parameters (as Kubernetes reads them). */
async function deleteOptions(c: Context): Promise<DeleteOptions> {
  const text = await c.req.text();
  let input: Record<string, unknown>;
  if (text.trim() !== '') {
    input = parseBody(text, false, 'the DeleteOptions body') as Record<string, unknown>;
  } else {
    input = {};
    const grace = c.req.query('gracePeriodSeconds');
    if (grace !== undefined) {
      if (!/^-?\d+$/.test(grace)) throw badRequest(`gracePeriodSeconds must be an integer, got "${grace}"`);
      input.gracePeriodSeconds = Number(grace);
    }
    const policy = c.req.query('propagationPolicy');
    if (policy !== undefined) input.propagationPolicy = policy;
    const orphan = c.req.query('orphanDependents');
    if (orphan !== undefined) {
      if (orphan !== 'true' && orphan !== 'false') throw badRequest(`orphanDependents must be true or false, got "${orphan}"`);
      input.orphanDependents = orphan === 'true';
    }
  }
  const v = validateDeleteOptions(input);
  if (!v.ok) throw invalid('DeleteOptions', '', v.issues.map((i) => ({ field: i.path, message: i.message })));
  return v.options;
}

async function scaleSub(c: Context, objects: ObjectService, deps: ResourceDeps, t: Target, name: string): Promise<Response> {
  const toScale = (o: StoredObject): Scale => {
    // Only the scalable kinds are served with a scale subresource (resources.ts, checked by its tests).
    if (!isScalable(o)) throw methodNotAllowed(`${t.resource.plural} have no scale subresource`);
    return {
      kind: 'Scale', apiVersion: 'autoscaling/v1',
      metadata: { name: o.metadata.name, namespace: o.metadata.namespace, uid: o.metadata.uid, resourceVersion: o.metadata.resourceVersion, creationTimestamp: o.metadata.creationTimestamp },
      spec: { replicas: o.spec.replicas ?? 0 },
      status: { replicas: o.status?.replicas ?? 0, selector: formatLabelSelector(labelSelectorFromSpec(o.spec.selector)) },
    };
  };
  if (c.req.method === 'GET') return c.json(toScale(await read(c, deps, t)));
  if (c.req.method !== 'PUT' && c.req.method !== 'PATCH') throw methodNotAllowed(`${c.req.method} is not supported on scale`);
  const input = (await body(c)) as { spec?: { replicas?: unknown }; metadata?: { resourceVersion?: string } };
  const replicas = input?.spec?.replicas;
  if (typeof replicas !== 'number' || !Number.isInteger(replicas) || replicas < 0) {
    throw invalid('Scale', name, [{ field: 'spec.replicas', message: `must be a non-negative integer, got ${JSON.stringify(replicas)}` }]);
  }
  const pin = c.req.method === 'PUT' && input.metadata?.resourceVersion ? { resourceVersion: input.metadata.resourceVersion } : {};
  return c.json(toScale(await objects.patch(t.resource, t.namespace, name, { spec: { replicas }, metadata: pin })));
}


/** POST pods/NAME/binding: assigns an unbound pod to a node, adding the binding's annotations (the scheduler's GPU choice). */
async function binding(c: Context, objects: ObjectService, t: Target, name: string): Promise<Response> {
  if (c.req.method !== 'POST') throw methodNotAllowed('binding accepts POST only');
  const input = (await body(c)) as { target?: { name?: unknown }; metadata?: { annotations?: Record<string, string>; uid?: string; resourceVersion?: string } };
  const nodeName = input?.target?.name;
  if (typeof nodeName !== 'string' || nodeName === '') throw invalid('Binding', name, [{ field: 'target.name', message: 'Required value' }]);
  const m = input.metadata;
  await objects.bindPod(t.namespace ?? 'default', name, nodeName, { ...(m?.annotations ? { annotations: m.annotations } : {}), ...(m?.uid ? { uid: m.uid } : {}), ...(m?.resourceVersion ? { resourceVersion: m.resourceVersion } : {}) });
  return c.json(statusObject({ code: 201 }), 201);
}
