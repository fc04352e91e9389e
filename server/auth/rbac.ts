// RBAC as Kubernetes' plugin/pkg/auth/authorizer/rbac decides it: the rules of every ClusterRole bound to the
// requester by a ClusterRoleBinding, and in a namespace those of the Role or ClusterRole of every RoleBinding
// there that names the requester, allow a request when one of them matches it; nothing denies. The bootstrap
// policy (./bootstrap-policy.ts) is in effect from the first request: a stored object of the same name (the
// leader reconciles the built-in ones into the state) takes the built-in one's place.
import { labelSelectorFromSpec, matchesLabels, resourceOfKind } from '../../api-types/index.js';
import type { ClusterRole, ClusterRoleBinding, PolicyRule, RbacSubject, Role, RoleBinding } from '../../api-types/index.js';
import type { Objects } from '../objects/service.js';
import type { Identity } from './identity.js';
import type { RequestInfo } from '../api/request-info.js';
import { BOOTSTRAP_CLUSTER_ROLES, BOOTSTRAP_CLUSTER_ROLE_BINDINGS } from './bootstrap-policy.js';

/** Kubernetes' authorizer.Attributes: a resource request (`resource` set) or a non-resource one (`path`). */
export interface Attributes {
  user: Identity;
  verb: string;
  apiGroup: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  /** The request path of a non-resource request ("/healthz", "/api"). */
  path?: string;
}

export const RBAC_RESOURCES = {
  roles: resourceOfKind('Role'),
  clusterRoles: resourceOfKind('ClusterRole'),
  roleBindings: resourceOfKind('RoleBinding'),
  clusterRoleBindings: resourceOfKind('ClusterRoleBinding'),
} as const;

/** Kubernetes' request attributes of a request: from its RequestInfo, or a non-resource path and the method lowercased. */
export function attributesOf(user: Identity, info: RequestInfo | undefined, method: string, path: string): Attributes {
  if (!info) return { user, verb: method.toLowerCase(), apiGroup: '', path };
  return {
    user, verb: info.verb, apiGroup: info.group, resource: info.resource,
    ...(info.subresource !== undefined ? { subresource: info.subresource } : {}),
    ...(info.namespace !== undefined ? { namespace: info.namespace } : {}),
    ...(info.name !== undefined ? { name: info.name } : {}),
  };
}

/** Kubernetes' rbac.VerbMatches ... NonResourceURLMatches, on one rule. */
export function ruleAllows(a: Attributes, rule: PolicyRule): boolean {
  if (!rule.verbs.includes('*') && !rule.verbs.includes(a.verb)) return false;
  if (a.resource === undefined) {
    return (rule.nonResourceURLs ?? []).some((u) => u === '*' || u === a.path || (u.endsWith('*') && (a.path ?? '').startsWith(u.slice(0, -1))));
  }
  const groups = rule.apiGroups ?? [];
  if (!groups.includes('*') && !groups.includes(a.apiGroup)) return false;
  const combined = a.subresource !== undefined ? `${a.resource}/${a.subresource}` : a.resource;
  const resourceMatches = (rule.resources ?? []).some((r) => r === '*' || r === combined
    || (a.subresource !== undefined && r === `*/${a.subresource}`));
  if (!resourceMatches) return false;
  const names = rule.resourceNames ?? [];
  return names.length === 0 || (a.name !== undefined && names.includes(a.name));
}

/** Kubernetes' appliesTo: whether `subject` of a binding in `bindingNamespace` ('' for a ClusterRoleBinding) names `user`. */
export function subjectMatches(subject: RbacSubject, user: Identity, bindingNamespace: string): boolean {
  switch (subject.kind) {
    case 'User': return subject.name === user.name;
    case 'Group': return user.groups.includes(subject.name);
    case 'ServiceAccount': return user.name === `system:serviceaccount:${subject.namespace || bindingNamespace}:${subject.name}`;
    default: return false;
  }
}

/** Where rules come from: roles by name, and the bindings that could name someone. */
export interface RuleSource {
  clusterRole(name: string): ClusterRole | undefined;
  role(namespace: string, name: string): Role | undefined;
  clusterRoleBindings(): Iterable<ClusterRoleBinding>;
  roleBindings(namespace: string): Iterable<RoleBinding>;
}

/**
 * Calls `visit` with every rule that applies to `user` in `namespace` (cluster-wide ones only when undefined),
 * until it returns true; returns whether it did.
 */
export function visitRules(source: RuleSource, user: Identity, namespace: string | undefined, visit: (rule: PolicyRule) => boolean): boolean {
  for (const b of source.clusterRoleBindings()) {
    if (!(b.subjects ?? []).some((s) => subjectMatches(s, user, ''))) continue;
    for (const rule of source.clusterRole(b.roleRef.name)?.rules ?? []) if (visit(rule)) return true;
  }
  if (namespace === undefined || namespace === '') return false;
  for (const b of source.roleBindings(namespace)) {
    if (!(b.subjects ?? []).some((s) => subjectMatches(s, user, namespace))) continue;
    const rules = b.roleRef.kind === 'Role' ? source.role(namespace, b.roleRef.name)?.rules : source.clusterRole(b.roleRef.name)?.rules;
    for (const rule of rules ?? []) if (visit(rule)) return true;
  }
  return false;
}

/** "deployments.apps", "pods": the resource as Kubernetes names it in a Forbidden message. */
export function qualifiedResource(group: string, resource: string): string {
  return group ? `${resource}.${group}` : resource;
}

/**
 * Kubernetes' RBAC refusal: `pods "x" is forbidden: User "u" cannot get resource "pods" in API group "" in the
 * namespace "ns"[: reason]`, or `forbidden: User "u" cannot get path "/metrics"` for a non-resource request.
 */
export function forbiddenMessage(a: Attributes, reason?: string): string {
  const why = reason !== undefined ? `: ${reason}` : '';
  if (a.resource === undefined) return `forbidden: User "${a.user.name}" cannot ${a.verb} path "${a.path ?? ''}"${why}`;
  const res = a.subresource !== undefined ? `${a.resource}/${a.subresource}` : a.resource;
  const scope = a.namespace !== undefined ? ` in the namespace "${a.namespace}"` : ' at the cluster scope';
  return `${qualifiedResource(a.apiGroup, a.resource)}${a.name !== undefined ? ` "${a.name}"` : ''} is forbidden: User "${a.user.name}" cannot ${a.verb} resource "${res}" in API group "${a.apiGroup}"${scope}${why}`;
}

export function rbacAllows(source: RuleSource, a: Attributes): boolean {
  return visitRules(source, a.user, a.namespace, (rule) => ruleAllows(a, rule));
}

/** Every rule that applies to `user` in `namespace` (SelfSubjectRulesReview). */
export function rulesFor(source: RuleSource, user: Identity, namespace: string | undefined): PolicyRule[] {
  const out: PolicyRule[] = [];
  visitRules(source, user, namespace, (rule) => { out.push(rule); return false; });
  return out;
}

type Named<T> = T & { metadata: { name: string; namespace?: string | undefined } };

/**
 * The RuleSource of the stored RBAC objects over the bootstrap policy, indexed and kept current by watches (as
 * PodGraph: built at the first question, built again after the store ends a watch).
 */
export class StoredPolicy implements RuleSource {
  #clusterRoles = new Map<string, ClusterRole>();
  #roles = new Map<string, Role>();
  #clusterRoleBindings = new Map<string, ClusterRoleBinding>();
  /** Namespace -> name -> binding. */
  #roleBindings = new Map<string, Map<string, RoleBinding>>();
  /** Name -> the ClusterRole as it applies, its rules aggregated (see #aggregate); cleared on any ClusterRole change. */
  #effective = new Map<string, ClusterRole | undefined>();
  #built = false;
  #stops: (() => void)[] = [];

  constructor(readonly objects: Pick<Objects, 'list' | 'watch'>) {}

  clusterRole(name: string): ClusterRole | undefined {
    this.#ensureBuilt();
    if (!this.#effective.has(name)) this.#effective.set(name, this.#aggregate(name, new Set()));
    return this.#effective.get(name);
  }

  /**
   * The ClusterRole `name`; one with an aggregationRule has the rules of every ClusterRole its selectors match
   * (themselves aggregated), as the clusterrole-aggregation controller writes them, in name order, each once.
   */
  #aggregate(name: string, seen: Set<string>): ClusterRole | undefined {
    const role = this.#clusterRoles.get(name) ?? BUILT_IN_ROLES.get(name);
    const selectors = role?.aggregationRule?.clusterRoleSelectors;
    if (!role || !selectors || seen.has(name)) return role;
    seen.add(name);
    const all = new Map([...BUILT_IN_ROLES, ...this.#clusterRoles]);
    const rules: PolicyRule[] = [];
    const keys = new Set<string>();
    for (const other of [...all.keys()].sort()) {
      const candidate = all.get(other)!;
      if (other === name || !selectors.some((sel) => matchesLabels(labelSelectorFromSpec(sel), candidate.metadata.labels))) continue;
      for (const r of this.#aggregate(other, seen)?.rules ?? []) {
        const key = JSON.stringify(r);
        if (!keys.has(key)) { keys.add(key); rules.push(r); }
      }
    }
    seen.delete(name);
    return { ...role, rules };
  }

  role(namespace: string, name: string): Role | undefined {
    this.#ensureBuilt();
    return this.#roles.get(`${namespace}/${name}`);
  }

  *clusterRoleBindings(): Iterable<ClusterRoleBinding> {
    this.#ensureBuilt();
    yield* this.#clusterRoleBindings.values();
    for (const b of BOOTSTRAP_CLUSTER_ROLE_BINDINGS) if (!this.#clusterRoleBindings.has(b.metadata.name!)) yield b;
  }

  roleBindings(namespace: string): Iterable<RoleBinding> {
    this.#ensureBuilt();
    return this.#roleBindings.get(namespace)?.values() ?? [];
  }

  #ensureBuilt(): void {
    if (this.#built) return;
    this.#built = true;
    this.#clusterRoles.clear(); this.#roles.clear(); this.#clusterRoleBindings.clear(); this.#roleBindings.clear(); this.#effective.clear();
    const rebuild = () => {
      if (!this.#built) return;
      this.#built = false;
      for (const stop of this.#stops.splice(0)) stop();
    };
    const follow = <T>(r: (typeof RBAC_RESOURCES)[keyof typeof RBAC_RESOURCES], put: (o: Named<T>) => void, remove: (o: Named<T>) => void) => {
      const { items, revision } = this.objects.list(r);
      for (const o of items) put(o as unknown as Named<T>);
      this.#stops.push(this.objects.watch(r, undefined, revision, (e) => (e.type === 'DELETED' ? remove : put)(e.object as unknown as Named<T>), rebuild));
    };
    follow<ClusterRole>(RBAC_RESOURCES.clusterRoles, (o) => { this.#clusterRoles.set(o.metadata.name, o); this.#effective.clear(); },
      (o) => { this.#clusterRoles.delete(o.metadata.name); this.#effective.clear(); });
    follow<Role>(RBAC_RESOURCES.roles, (o) => this.#roles.set(`${o.metadata.namespace}/${o.metadata.name}`, o), (o) => this.#roles.delete(`${o.metadata.namespace}/${o.metadata.name}`));
    follow<ClusterRoleBinding>(RBAC_RESOURCES.clusterRoleBindings, (o) => this.#clusterRoleBindings.set(o.metadata.name, o), (o) => this.#clusterRoleBindings.delete(o.metadata.name));
    follow<RoleBinding>(RBAC_RESOURCES.roleBindings, (o) => {
      const ns = o.metadata.namespace ?? '';
      let m = this.#roleBindings.get(ns);
      if (!m) this.#roleBindings.set(ns, m = new Map());
      m.set(o.metadata.name, o);
    }, (o) => this.#roleBindings.get(o.metadata.namespace ?? '')?.delete(o.metadata.name));
  }
}

const BUILT_IN_ROLES = new Map(BOOTSTRAP_CLUSTER_ROLES.map((r) => [r.metadata.name!, r]));
