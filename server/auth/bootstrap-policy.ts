// The built-in ClusterRoles and ClusterRoleBindings, after kube-apiserver's bootstrap policy
// (plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go), limited to the kinds this server serves, plus
// Flotilla's own: nodecertificates (flotilla.io) are what a join token asks for, where Kubernetes has
// certificatesigningrequests; `flotilla:node-bootstrap` binds system:node-bootstrapper to the join tokens' group
// as kubeadm binds it to its bootstrap tokens. admin, edit and view aggregate the roles labelled
// aggregate-to-admin|edit|view, as kube-controller-manager's clusterrole-aggregation controller fills them
// (./rbac.ts aggregates, for built-in and stored roles alike).
import type { ClusterRole, ClusterRoleBinding, PolicyRule } from '../../api-types/index.js';
import { RBAC_GROUP } from '../../api-types/index.js';
import { AUTHENTICATED_GROUP, BOOTSTRAPPERS_GROUP, MASTERS_GROUP } from './identity.js';

/** Kubernetes' label on the bootstrap roles and bindings: reconciled at each start unless set to "false". */
export const AUTOUPDATE_ANNOTATION = 'rbac.authorization.kubernetes.io/autoupdate';
export const BOOTSTRAP_LABEL = 'kubernetes.io/bootstrapping';
export const AGGREGATE_TO = (role: 'admin' | 'edit' | 'view'): string => `rbac.authorization.k8s.io/aggregate-to-${role}`;
export const UNAUTHENTICATED_GROUP = 'system:unauthenticated';

const READ = ['get', 'list', 'watch'];
const WRITE = ['create', 'delete', 'deletecollection', 'patch', 'update'];
const READ_WRITE = [...READ, ...WRITE];

const rule = (verbs: string[], apiGroups: string[], resources: string[], resourceNames?: string[]): PolicyRule =>
  ({ verbs, apiGroups, resources, ...(resourceNames ? { resourceNames } : {}) });
const urls = (verbs: string[], nonResourceURLs: string[]): PolicyRule => ({ verbs, nonResourceURLs });

function clusterRole(name: string, rules: PolicyRule[], extra: { labels?: Record<string, string>; aggregate?: string } = {}): ClusterRole {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole',
    metadata: { name, labels: { [BOOTSTRAP_LABEL]: 'rbac-defaults', ...extra.labels }, annotations: { [AUTOUPDATE_ANNOTATION]: 'true' } },
    ...(extra.aggregate ? { aggregationRule: { clusterRoleSelectors: [{ matchLabels: { [extra.aggregate]: 'true' } }] } } : {}),
    rules,
  };
}

function binding(name: string, role: string, groups: string[]): ClusterRoleBinding {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding',
    metadata: { name, labels: { [BOOTSTRAP_LABEL]: 'rbac-defaults' }, annotations: { [AUTOUPDATE_ANNOTATION]: 'true' } },
    roleRef: { apiGroup: RBAC_GROUP, kind: 'ClusterRole', name: role },
    subjects: groups.map((g) => ({ kind: 'Group', apiGroup: RBAC_GROUP, name: g })),
  };
}

export const BOOTSTRAP_CLUSTER_ROLES: readonly ClusterRole[] = Object.freeze([
  clusterRole('cluster-admin', [rule(['*'], ['*'], ['*']), urls(['*'], ['*'])]),
  clusterRole('system:discovery', [urls(['get'], ['/api', '/api/*', '/apis', '/apis/*', '/healthz', '/livez', '/openapi', '/openapi/*', '/readyz', '/version', '/version/'])]),
  clusterRole('system:public-info-viewer', [urls(['get'], ['/healthz', '/livez', '/readyz', '/version', '/version/'])]),
  clusterRole('system:basic-user', [
    rule(['create'], ['authorization.k8s.io'], ['selfsubjectaccessreviews', 'selfsubjectrulesreviews']),
    rule(['create'], ['authentication.k8s.io'], ['selfsubjectreviews']),
  ]),
  clusterRole('admin', [], { aggregate: AGGREGATE_TO('admin') }),
  clusterRole('edit', [], { aggregate: AGGREGATE_TO('edit'), labels: { [AGGREGATE_TO('admin')]: 'true' } }),
  clusterRole('view', [], { aggregate: AGGREGATE_TO('view'), labels: { [AGGREGATE_TO('edit')]: 'true' } }),
  clusterRole('system:aggregate-to-admin', [
    rule(READ_WRITE, ['rbac.authorization.k8s.io'], ['rolebindings', 'roles']),
    rule(['create'], ['authorization.k8s.io'], ['localsubjectaccessreviews']),
  ], { labels: { [AGGREGATE_TO('admin')]: 'true' } }),
  clusterRole('system:aggregate-to-edit', [
    rule(READ_WRITE, [''], ['pods/attach', 'pods/proxy', 'pods/exec', 'pods/portforward', 'secrets', 'services/proxy']),
    rule(['impersonate'], [''], ['serviceaccounts']),
    rule(WRITE, [''], ['pods', 'pods/attach', 'pods/proxy', 'pods/exec', 'pods/portforward']),
    rule(['create'], [''], ['pods/eviction']),
    rule(WRITE, [''], ['configmaps', 'events', 'persistentvolumeclaims', 'replicationcontrollers', 'replicationcontrollers/scale', 'secrets', 'serviceaccounts', 'services', 'services/proxy']),
    rule(['create'], [''], ['serviceaccounts/token']),
    rule(WRITE, ['apps'], ['daemonsets', 'deployments', 'deployments/rollback', 'deployments/scale', 'replicasets', 'replicasets/scale', 'statefulsets', 'statefulsets/scale']),
    rule(WRITE, ['autoscaling'], ['horizontalpodautoscalers']),
    rule(WRITE, ['batch'], ['jobs', 'cronjobs']),
    rule(WRITE, ['policy'], ['poddisruptionbudgets']),
    rule(WRITE, ['networking.k8s.io'], ['networkpolicies', 'ingresses']),
    rule(WRITE, ['coordination.k8s.io'], ['leases']),
  ], { labels: { [AGGREGATE_TO('edit')]: 'true' } }),
  clusterRole('system:aggregate-to-view', [
    rule(READ, [''], ['pods', 'replicationcontrollers', 'replicationcontrollers/scale', 'serviceaccounts', 'services', 'services/status', 'endpoints', 'persistentvolumeclaims', 'persistentvolumeclaims/status', 'configmaps']),
    rule(READ, [''], ['limitranges', 'resourcequotas', 'bindings', 'events', 'pods/status', 'resourcequotas/status', 'namespaces/status', 'replicationcontrollers/status', 'pods/log']),
    rule(READ, [''], ['namespaces']),
    rule(READ, ['discovery.k8s.io'], ['endpointslices']),
    rule(READ, ['apps'], ['controllerrevisions', 'statefulsets', 'statefulsets/status', 'statefulsets/scale', 'daemonsets', 'daemonsets/status', 'deployments', 'deployments/status', 'deployments/scale', 'replicasets', 'replicasets/status', 'replicasets/scale']),
    rule(READ, ['autoscaling'], ['horizontalpodautoscalers', 'horizontalpodautoscalers/status']),
    rule(READ, ['batch'], ['jobs', 'jobs/status', 'cronjobs', 'cronjobs/status']),
    rule(READ, ['policy'], ['poddisruptionbudgets', 'poddisruptionbudgets/status']),
    rule(READ, ['networking.k8s.io'], ['ingresses', 'ingresses/status', 'networkpolicies']),
  ], { labels: { [AGGREGATE_TO('view')]: 'true' } }),
  clusterRole('system:node-bootstrapper', [
    rule(['create', 'get', 'list', 'watch'], ['certificates.k8s.io'], ['certificatesigningrequests']),
    rule(['create'], ['flotilla.io'], ['nodecertificates']),
  ]),
]);

export const BOOTSTRAP_CLUSTER_ROLE_BINDINGS: readonly ClusterRoleBinding[] = Object.freeze([
  binding('cluster-admin', 'cluster-admin', [MASTERS_GROUP]),
  binding('system:discovery', 'system:discovery', [AUTHENTICATED_GROUP]),
  binding('system:basic-user', 'system:basic-user', [AUTHENTICATED_GROUP]),
  binding('system:public-info-viewer', 'system:public-info-viewer', [AUTHENTICATED_GROUP, UNAUTHENTICATED_GROUP]),
  binding('flotilla:node-bootstrap', 'system:node-bootstrapper', [BOOTSTRAPPERS_GROUP]),
]);
