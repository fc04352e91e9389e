// The one authorization policy, in kube-apiserver's order of authorizers: the superuser groups are allowed
// everything; a node (system:node:N in system:nodes) what the Node authorizer allows it; then RBAC. Only an
// allow decides: a request nothing allows is Forbidden, with Kubernetes' message.
import { MASTERS_GROUP, SERVER_GROUP, nodeNameOf } from './identity.js';
import type { RequestInfo } from '../api/request-info.js';
import { authorizeNode, type Decision } from '../api/middleware/node-authorizer.js';
import type { NodeGraph } from '../objects/node-graph.js';
import { forbiddenMessage, rbacAllows, type Attributes, type RuleSource } from './rbac.js';

/**
 * Groups allowed every request before any authorizer is asked: Kubernetes' system:masters, and the cluster
 * members (flotilla:servers), which call each other's Raft, membership and agent routes, and whose requests must
 * not depend on RBAC objects in the state they replicate.
 */
const SUPERUSER_GROUPS = [MASTERS_GROUP, SERVER_GROUP];

export interface Policy { graph: NodeGraph; rbac: RuleSource }

/** Whether `a` is allowed, and Kubernetes' message when not. `info` and `method`/`path` are the request's, for the Node authorizer. */
export function authorize(policy: Policy, a: Attributes, info?: RequestInfo): Decision {
  if (a.user.groups.some((g) => SUPERUSER_GROUPS.includes(g))) return { allowed: true };
  const node = nodeNameOf(a.user);
  let refusal: string | undefined;
  if (node !== undefined && (info !== undefined || a.path !== undefined)) {
    const d = authorizeNode(a.user.name, node, info, a.path ?? '', a.verb.toUpperCase(), policy.graph);
    if (d.allowed) return d;
    refusal = d.message;
  }
  if (!(info?.extra ?? false) && rbacAllows(policy.rbac, a)) return { allowed: true };
  return { allowed: false, message: refusal ?? forbiddenMessage(a) };
}
