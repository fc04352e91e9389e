// The one reading of a request's method and path into Kubernetes' request attributes: the resource routes
// serve by it (server/api/routes/resources.ts) and the authorizers decide by it (server/api/middleware/auth.ts).
/**
 * A request as Kubernetes' RequestInfoFactory reads it from the method and the path alone (no resource table):
 * what the authorizers decide on and what the routes serve. Paths outside /api/v1/... and /apis/GROUP/VERSION/...
 * (and those two alone, the discovery documents) are not resource requests: undefined.
 */
export interface RequestInfo {
  /** Kubernetes' verbs: get, list, watch, create, update, patch, delete, deletecollection. */
  verb: string;
  /** '' for the core group. */
  group: string;
  version: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  /** Path segments after the subresource: no such resource is served (404). */
  extra: boolean;
}

/** Subresources of a Namespace: .../namespaces/NAME/status is that, not a resource "status" in namespace NAME. */
const NAMESPACE_SUBRESOURCES = new Set(['status', 'finalize']);

export function requestInfo(method: string, path: string, watchParam: string | undefined): RequestInfo | undefined {
  let segs: string[];
  try {
    segs = path.split('/').filter((s) => s !== '').map(decodeURIComponent);
  } catch {
    return undefined; // a malformed escape names no resource
  }
  let group: string, version: string;
  let parts: string[];
  if (segs[0] === 'api' && segs[1] === 'v1') [group, version, parts] = ['', 'v1', segs.slice(2)];
  else if (segs[0] === 'apis' && segs.length >= 3) [group, version, parts] = [segs[1]!, segs[2]!, segs.slice(3)];
  else return undefined;
  if (parts.length === 0) return undefined;
  let namespace: string | undefined;
  if (parts[0] === 'namespaces' && parts.length > 2 && !NAMESPACE_SUBRESOURCES.has(parts[2]!)) {
    namespace = parts[1];
    parts = parts.slice(2);
  }
  const [resource, name, subresource] = parts as [string, string?, string?];
  // A WebSocket GET of a pod stream runs something in the pod: it needs `create`, as in Kubernetes since 1.30
  // (AuthorizePodWebsocketUpgradeCreatePermission), not `get`.
  const podStream = group === '' && resource === 'pods' && subresource !== undefined && POD_STREAMS.has(subresource);
  const verb = podStream && method === 'GET' ? 'create' : verbOf(method, name !== undefined, watchParam === 'true' || watchParam === '1');
  return {
    verb, group, version, resource, extra: parts.length > 3,
    ...(subresource !== undefined ? { subresource } : {}), ...(namespace !== undefined ? { namespace } : {}), ...(name !== undefined ? { name } : {}),
  };
}

/** Pod subresources that are streams into the pod. */
const POD_STREAMS = new Set(['exec', 'attach', 'portforward']);

function verbOf(method: string, named: boolean, watching: boolean): string {
  switch (method) {
    case 'GET': case 'HEAD': return named ? 'get' : watching ? 'watch' : 'list';
    case 'POST': return 'create';
    case 'PUT': return 'update';
    case 'PATCH': return 'patch';
    case 'DELETE': return named ? 'delete' : 'deletecollection';
    default: return method.toLowerCase();
  }
}
