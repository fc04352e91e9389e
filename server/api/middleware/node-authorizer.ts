// The Node authorizer (after Kubernetes' plugin/pkg/auth/authorizer/node and the system:node ClusterRole): what
// an agent holding node N's credentials may ask of the API. A pure decision on the request's attributes and
// the read-only pod graph; what depends on the objects themselves (a Node's labels and taints before and
// after, an Event's involvedObject, the name in a Node created) is NodeRestriction admission, inside the write
// path (server/objects/node-restriction.ts), where the stored object and the one written are those the store
// commits: deciding it here, before the body is merged into the newest object, would race with other writers.
import type { RequestInfo } from '../request-info.js';
import { attributesOf, forbiddenMessage, qualifiedResource } from '../../auth/rbac.js';
import type { NodeGraph, ReferencedResource } from '../../objects/node-graph.js';
import { TOKENS_SECRET } from '../../objects/service.js';
import { LB_SPEAKER_LEASE_NAMESPACE, NETWORK_SETTINGS_CONFIGMAP } from '../../../api-types/index.js';

export type Decision = { allowed: true } | { allowed: false; message: string };

const ALLOW: Decision = { allowed: true };
const READ_VERBS = new Set(['get', 'list', 'watch']);

/**
 * Kinds a node reads whole (get, list, watch), by "group/resource": what the system:node ClusterRole grants,
 * and what system:node-proxier grants (Endpoints, EndpointSlices), since every agent is also its node's
 * service proxy and DNS server; and Ingresses and IngressClasses, for its Ingress router (the TLS Secrets those
 * Ingresses name are readable by reference, through the graph).
 */
const READABLE = new Set(['/nodes', '/pods', '/services', '/endpoints', 'discovery.k8s.io/endpointslices', '/namespaces', 'node.k8s.io/runtimeclasses', 'scheduling.k8s.io/priorityclasses',
  // Every agent is its node's Ingress router.
  'networking.k8s.io/ingresses', 'networking.k8s.io/ingressclasses']);

/** Kinds a node may get one by one, only when a pod bound to it references the object (the graph's edges). */
const BY_REFERENCE = new Set<string>(['secrets', 'configmaps', 'persistentvolumeclaims'] satisfies ReferencedResource[]);

/** Secrets of agent endpoint credentials (kube-system/flotilla-agent-NODE): never readable by a node, whatever references them. */
const AGENT_SECRET_PREFIX = 'flotilla-agent-';

/** Where a node's lease lives; the lease is named after the node. */
const NODE_LEASE_NAMESPACE = 'kube-node-lease';

/** Non-resource paths any node may GET: discovery, and the cluster status an agent checks the cluster id with. */
const READABLE_PATHS = new Set(['/api', '/apis', '/openapi.json', '/cluster/status']);

/** The resource node certificates are asked for at (the CSR route): what a bootstrap (join) token may do. */
export const NODE_CERTIFICATES = { group: 'flotilla.io', resource: 'nodecertificates' } as const;

/**
 * What user `user` (system:node:NODE) may do as node `node`: `info` is the request (undefined for a path that
 * is not a resource request, then `path` and `method` decide). Refusals carry Kubernetes' messages.
 */
export function authorizeNode(user: string, node: string, info: RequestInfo | undefined, path: string, method: string, graph: NodeGraph): Decision {
  if (!info) return (method === 'GET' || method === 'HEAD') && READABLE_PATHS.has(path) ? ALLOW : { allowed: false, message: forbiddenMessage(attributesOf({ name: user, groups: [] }, undefined, method, path)) };
  const { verb, group, resource, subresource: sub, namespace, name } = info;
  const refuse = (reason?: string): Decision => ({ allowed: false, message: forbiddenMessage(attributesOf({ name: user, groups: [] }, info, method, path), reason) });
  const refuseObject = (reason: string): Decision => ({ allowed: false, message: `${qualifiedResource(group, resource)}${name !== undefined ? ` "${name}"` : ''} is forbidden: ${reason}` });
  if (info.extra) return refuse();
  if (READ_VERBS.has(verb) && sub === undefined && READABLE.has(`${group}/${resource}`)) return ALLOW;
  // The published network settings (cluster CIDR, service CIDR, cluster domain) are every agent's to read.
  if (group === '' && resource === 'configmaps' && verb === 'get' && sub === undefined && namespace === NETWORK_SETTINGS_CONFIGMAP.namespace && name === NETWORK_SETTINGS_CONFIGMAP.name) return ALLOW;
  if (group === '' && BY_REFERENCE.has(resource)) {
    if (verb !== 'get' || sub !== undefined || name === undefined || namespace === undefined) return refuse();
    if (resource === 'secrets' && ((namespace === TOKENS_SECRET.namespace && name === TOKENS_SECRET.name) || name.startsWith(AGENT_SECRET_PREFIX))) {
      return refuse(`node '${node}' may not read credentials`);
    }
    return graph.referencedBy(node, resource as ReferencedResource, namespace, name) ? ALLOW : refuse(`no relationship found between node '${node}' and this object`);
  }
  // The kubelet's projected tokens: only for the account of a pod bound here (the body's pod: server/tokens/token-requests.ts).
  if (group === '' && resource === 'serviceaccounts' && sub === 'token' && verb === 'create' && name !== undefined && namespace !== undefined) {
    return graph.referencedBy(node, 'serviceaccounts', namespace, name) ? ALLOW : refuse(`no relationship found between node '${node}' and this object`);
  }
  if (group === '' && resource === 'persistentvolumes' && name !== undefined && sub === undefined) {
    if (verb === 'get') return graph.volumeVisible(node, name) ? ALLOW : refuse(`no relationship found between node '${node}' and this object`);
    // What the write may change (only the local-path cleanup finalizer) is NodeRestriction admission's.
    if (verb === 'update' || verb === 'patch') return graph.localVolumeOf(node, name) ? ALLOW : refuse(`node '${node}' may only update the local-path volumes on itself`);
    return refuse();
  }
  if (group === '' && resource === 'nodes') {
    // A created Node's name is in the body: NodeRestriction admission holds it to the node's own.
    if (verb === 'create' && name === undefined && sub === undefined) return ALLOW;
    if ((verb === 'update' || verb === 'patch') && (sub === undefined || sub === 'status')) {
      return name === node ? ALLOW : refuseObject(`node "${node}" cannot modify node "${name}"`);
    }
    return refuse();
  }
  if (group === '' && resource === 'pods' && name !== undefined && namespace !== undefined) {
    const boundHere = graph.nodeOfPod(namespace, name) === node;
    if (verb === 'delete' && sub === undefined) return boundHere ? ALLOW : refuseObject(`node "${node}" can only delete pods with spec.nodeName set to itself`);
    if ((verb === 'update' || verb === 'patch') && sub === 'status') return boundHere ? ALLOW : refuseObject(`node "${node}" can only update pod status for pods with spec.nodeName set to itself`);
    return refuse();
  }
  // What an Event is about is in its body: NodeRestriction admission holds it to the node and its pods.
  if (group === '' && resource === 'events' && (verb === 'create' || verb === 'update' || verb === 'patch') && sub === undefined && namespace !== undefined) return ALLOW;
  if (group === 'coordination.k8s.io' && resource === 'leases' && (namespace === NODE_LEASE_NAMESPACE || namespace === LB_SPEAKER_LEASE_NAMESPACE) && ['get', 'create', 'update', 'patch'].includes(verb)) {
    return name === node ? ALLOW : refuseObject(`node "${node}" can only access the node lease with the same name as the requesting node`);
  }
  if (group === 'metrics.flotilla.io' && resource === 'nodes' && sub === 'usage' && verb === 'update') {
    return name === node ? ALLOW : refuseObject(`node "${node}" can only report the usage of its own node`);
  }
  // A node renews its own certificate; the CSR route binds what it signs to the requester's node name.
  if (group === NODE_CERTIFICATES.group && resource === NODE_CERTIFICATES.resource && verb === 'create' && name === undefined) return ALLOW;
  return refuse();
}
