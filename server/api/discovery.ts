// API discovery as kube-apiserver serves it, from the one resource table: the legacy documents (/api, /apis,
// /api/v1, /apis/GROUP/VERSION) and the aggregated form (apidiscovery.k8s.io v2 and v2beta1) that kubectl v1.32
// asks for first. kubectl caches what it reads here and finds every resource type through it.
import { createHash } from 'node:crypto';
import { Hono } from 'hono';
import type { Context } from 'hono';
import { allResources } from '../../api-types/index.js';
import type { ResourceInfo } from '../../api-types/index.js';
import { servedSubresources } from './routes/resources.js';
import { acceptedAs } from './accept.js';

/** What every served resource allows; deletecollection is not served (kubectl deletes each object it lists). */
const RESOURCE_VERBS = ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'] as const;

interface GroupVersionKind { group: string; version: string; kind: string }

/** Each subresource's verbs and the kind of its body, as kube-apiserver registers them. */
const SUBRESOURCES: Record<string, { verbs: readonly string[]; kind: (r: DiscoveredResource['info']) => GroupVersionKind }> = {
  status: { verbs: ['get', 'patch', 'update'], kind: (r) => ({ group: r.group, version: r.version, kind: r.kind }) },
  scale: { verbs: ['get', 'patch', 'update'], kind: () => ({ group: 'autoscaling', version: 'v1', kind: 'Scale' }) },
  binding: { verbs: ['create'], kind: () => ({ group: '', version: 'v1', kind: 'Binding' }) },
  log: { verbs: ['get'], kind: () => ({ group: '', version: 'v1', kind: 'Pod' }) },
  exec: { verbs: ['create', 'get'], kind: () => ({ group: '', version: 'v1', kind: 'PodExecOptions' }) },
  attach: { verbs: ['create', 'get'], kind: () => ({ group: '', version: 'v1', kind: 'PodAttachOptions' }) },
  portforward: { verbs: ['create', 'get'], kind: () => ({ group: '', version: 'v1', kind: 'PodPortForwardOptions' }) },
  eviction: { verbs: ['create'], kind: () => ({ group: 'policy', version: 'v1', kind: 'Eviction' }) },
  token: { verbs: ['create'], kind: () => ({ group: 'authentication.k8s.io', version: 'v1', kind: 'TokenRequest' }) },
};

function subresourceOf(r: DiscoveredResource['info'], sub: string) {
  const s = SUBRESOURCES[sub];
  if (s === undefined) throw new Error(`discovery: subresource ${r.plural}/${sub} has no entry in SUBRESOURCES`);
  return s;
}

/** One resource as discovery lists it: a kind of the resource table, or one of the reviews and metrics below. */
interface DiscoveredResource {
  info: Pick<ResourceInfo, 'group' | 'version' | 'kind' | 'plural' | 'singular' | 'namespaced' | 'shortNames' | 'categories'>;
  verbs: readonly string[];
  /** Served subresources (of table kinds only). */
  subresources: readonly string[];
}

/**
 * Resources served without being stored: the access reviews (server/auth/access-review.ts), the
 * SelfSubjectReview of `kubectl auth whoami`, and the metrics `kubectl top` reads (routes/metrics.ts). kubectl
 * looks for their groups in discovery before it asks (`top` says "Metrics API not available" without it).
 */
const UNSTORED: readonly DiscoveredResource[] = [
  ...(['SelfSubjectAccessReview', 'SelfSubjectRulesReview', 'SubjectAccessReview'] as const).map((kind) => ({ group: 'authorization.k8s.io', version: 'v1', kind })),
  { group: 'authentication.k8s.io', version: 'v1', kind: 'SelfSubjectReview' },
].map(({ group, version, kind }) => ({
  info: { group, version, kind, plural: `${kind.toLowerCase()}s`, singular: kind.toLowerCase(), namespaced: false, shortNames: [], categories: [] },
  verbs: ['create'], subresources: [],
})).concat([
  { kind: 'NodeMetrics', plural: 'nodes', singular: '', namespaced: false },
  { kind: 'PodMetrics', plural: 'pods', singular: '', namespaced: true },
].map((r) => ({ info: { group: 'metrics.k8s.io', version: 'v1beta1', shortNames: [], categories: [], ...r }, verbs: ['get', 'list'], subresources: [] })));

/** The group versions served, core ('' / v1) first, then the groups in the table's order, then the unstored ones. */
function groupVersions(): { group: string; version: string; resources: DiscoveredResource[] }[] {
  const out = new Map<string, { group: string; version: string; resources: DiscoveredResource[] }>();
  const stored = allResources.map((r): DiscoveredResource => ({ info: r, verbs: RESOURCE_VERBS, subresources: servedSubresources(r) }));
  for (const d of [...stored, ...UNSTORED]) {
    const key = `${d.info.group}/${d.info.version}`;
    if (!out.has(key)) out.set(key, { group: d.info.group, version: d.info.version, resources: [] });
    out.get(key)!.resources.push(d);
  }
  return [...out.values()].sort((a, b) => Number(a.group !== '') - Number(b.group !== ''));
}

/** The APIResourceList of one group version (GET /api/v1, /apis/GROUP/VERSION). */
export function apiResourceList(group: string, version: string): Record<string, unknown> | undefined {
  const gv = groupVersions().find((x) => x.group === group && x.version === version);
  if (gv === undefined) return undefined;
  const resources: Record<string, unknown>[] = [];
  for (const { info: r, verbs, subresources } of gv.resources) {
    resources.push({
      name: r.plural, singularName: r.singular, namespaced: r.namespaced, kind: r.kind, verbs: [...verbs],
      ...(r.shortNames.length > 0 ? { shortNames: [...r.shortNames] } : {}), ...(r.categories.length > 0 ? { categories: [...r.categories] } : {}),
    });
    for (const sub of subresources) {
      const s = subresourceOf(r, sub);
      const kind = s.kind(r);
      resources.push({
        name: `${r.plural}/${sub}`, singularName: '', namespaced: r.namespaced,
        ...(kind.group !== r.group || kind.version !== r.version ? { group: kind.group, version: kind.version } : {}), kind: kind.kind, verbs: [...s.verbs],
      });
    }
  }
  return { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group === '' ? version : `${group}/${version}`, resources };
}

/** The APIGroupList (GET /apis): every named group with its one served version, preferred. */
export function apiGroupList(): Record<string, unknown> {
  const groups = groupVersions().filter((gv) => gv.group !== '').map(({ group, version }) => {
    const v = { groupVersion: `${group}/${version}`, version };
    return { name: group, versions: [v], preferredVersion: v };
  });
  return { kind: 'APIGroupList', apiVersion: 'v1', groups };
}

/** The APIGroupDiscoveryList of the core group (/api, legacy: true) or of the named groups (/apis). */
export function aggregatedDiscovery(legacy: boolean, apiVersion: string): Record<string, unknown> {
  const items = groupVersions().filter((gv) => (gv.group === '') === legacy).map((gv) => ({
    metadata: { name: gv.group, creationTimestamp: null },
    versions: [{
      version: gv.version,
      resources: gv.resources.map(({ info: r, verbs, subresources: served }) => {
        const subresources = served.map((sub) => {
          const s = subresourceOf(r, sub);
          return { subresource: sub, responseKind: s.kind(r), verbs: [...s.verbs] };
        });
        return {
          resource: r.plural, responseKind: { group: r.group, version: r.version, kind: r.kind }, scope: r.namespaced ? 'Namespaced' : 'Cluster',
          singularResource: r.singular, verbs: [...verbs],
          ...(r.shortNames.length > 0 ? { shortNames: [...r.shortNames] } : {}), ...(r.categories.length > 0 ? { categories: [...r.categories] } : {}),
          ...(subresources.length > 0 ? { subresources } : {}),
        };
      }),
      freshness: 'Current',
    }],
  }));
  return { kind: 'APIGroupDiscoveryList', apiVersion, metadata: {}, items };
}

/** The aggregated discovery versions a client may name in Accept, best first. */
const AGGREGATED_VERSIONS = ['v2', 'v2beta1'] as const;

/** JSON with kube-apiserver's caching headers: an ETag of the body, 304 when If-None-Match names it, Vary: Accept. */
function cachedJson(c: Context, body: unknown, contentType: string): Response {
  const text = JSON.stringify(body);
  const etag = `"${createHash('sha512').update(text).digest('hex').slice(0, 64).toUpperCase()}"`;
  const headers = { etag, vary: 'Accept', 'cache-control': 'public', 'content-type': contentType };
  if (c.req.header('if-none-match') === etag) return new Response(null, { status: 304, headers });
  return new Response(text, { status: 200, headers });
}

/** The discovery routes: /api, /apis and each served group version's resource list. */
export function discoveryRoutes(): Hono {
  const app = new Hono();
  // The documents depend only on the table: built once, on first use.
  const cache = new Map<string, unknown>();
  const once = (key: string, build: () => unknown) => {
    if (!cache.has(key)) cache.set(key, build());
    return cache.get(key);
  };
  const root = (legacy: boolean) => (c: Context) => {
    const v = acceptedAs(c.req.header('accept'), 'APIGroupDiscoveryList', 'apidiscovery.k8s.io', AGGREGATED_VERSIONS);
    if (v !== undefined) {
      const apiVersion = `apidiscovery.k8s.io/${v}`;
      return cachedJson(c, once(`${legacy}/${v}`, () => aggregatedDiscovery(legacy, apiVersion)), `application/json;g=apidiscovery.k8s.io;v=${v};as=APIGroupDiscoveryList`);
    }
    const legacyDocument = legacy ? { kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: new URL(c.req.url).host }] } : once('groups', apiGroupList);
    return c.json(legacyDocument);
  };
  app.get('/api', root(true));
  app.get('/apis', root(false));
  const list = (group: string, version: string) => once(`list ${group}/${version}`, () => apiResourceList(group, version) ?? null);
  app.get('/apis/:group', (c, next) => {
    const group = (apiGroupList().groups as { name: string }[]).find((g) => g.name === c.req.param('group'));
    return group === undefined ? next() : c.json({ kind: 'APIGroup', apiVersion: 'v1', ...group });
  });
  app.get('/api/v1', (c) => cachedJson(c, list('', 'v1'), 'application/json'));
  app.get('/apis/:group/:version', (c, next) => {
    const doc = list(c.req.param('group'), c.req.param('version'));
    return doc === null ? next() : cachedJson(c, doc, 'application/json');
  });
  return app;
}
