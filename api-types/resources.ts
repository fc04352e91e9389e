// The one table of served resources, and the lookups the API router, the client and the CLI use.
import type { KubeObject } from './meta.js';
import type { Kind, ObjectsByKind } from './objects.js';

export type Subresource = 'status' | 'scale';

/**
 * One served resource. `K` is its kind when known at compile time (resourceOfKind('Pod')): reads and writes
 * through such a handle are typed by the kind (ObjectOf<K>); a handle found at run time (from a URL or a CLI
 * argument) is a plain ResourceInfo, whose objects are KubeObjects.
 */
export interface ResourceInfo<K extends string = string> {
  /** '' for the core group. */
  group: string;
  version: string;
  /** "v1" for core, else "GROUP/VERSION". */
  apiVersion: string;
  kind: K;
  plural: string;
  singular: string;
  shortNames: readonly string[];
  namespaced: boolean;
  subresources: readonly Subresource[];
  /** Kubernetes' categories: "all" for the workload kinds `kubectl get all` lists. */
  categories: readonly string[];
}

/** The resources in Kubernetes' category "all" (those of them this table serves), in the order kube-apiserver lists them. */
export const CATEGORY_ALL: readonly string[] = Object.freeze(['pods', 'services', 'daemonsets', 'deployments', 'replicasets', 'statefulsets', 'horizontalpodautoscalers', 'cronjobs', 'jobs']);

function resource(
  group: string, version: string, kind: string, plural: string, shortNames: readonly string[],
  namespaced: boolean, subresources: readonly Subresource[],
): ResourceInfo {
  return Object.freeze({
    group, version, apiVersion: group === '' ? version : `${group}/${version}`, kind, plural,
    singular: kind.toLowerCase(), shortNames: Object.freeze([...shortNames]), namespaced,
    subresources: Object.freeze([...subresources]), categories: Object.freeze(CATEGORY_ALL.includes(plural) ? ['all'] : []),
  });
}

/** Every served resource. Binding is only a subresource body (pods/{name}/binding), so it is not listed. */
export const allResources: readonly ResourceInfo[] = Object.freeze([
  resource('', 'v1', 'Namespace', 'namespaces', ['ns'], false, ['status']),
  resource('', 'v1', 'Node', 'nodes', ['no'], false, ['status']),
  resource('', 'v1', 'Pod', 'pods', ['po'], true, ['status']),
  resource('', 'v1', 'Service', 'services', ['svc'], true, ['status']),
  resource('', 'v1', 'Endpoints', 'endpoints', ['ep'], true, []),
  resource('', 'v1', 'ConfigMap', 'configmaps', ['cm'], true, []),
  resource('', 'v1', 'Secret', 'secrets', [], true, []),
  resource('', 'v1', 'ServiceAccount', 'serviceaccounts', ['sa'], true, []),
  resource('', 'v1', 'Event', 'events', ['ev'], true, []),
  resource('', 'v1', 'PersistentVolume', 'persistentvolumes', ['pv'], false, ['status']),
  resource('', 'v1', 'PersistentVolumeClaim', 'persistentvolumeclaims', ['pvc'], true, ['status']),
  resource('apps', 'v1', 'Deployment', 'deployments', ['deploy'], true, ['status', 'scale']),
  resource('apps', 'v1', 'ReplicaSet', 'replicasets', ['rs'], true, ['status', 'scale']),
  resource('apps', 'v1', 'DaemonSet', 'daemonsets', ['ds'], true, ['status']),
  resource('apps', 'v1', 'StatefulSet', 'statefulsets', ['sts'], true, ['status', 'scale']),
  resource('batch', 'v1', 'Job', 'jobs', [], true, ['status']),
  resource('batch', 'v1', 'CronJob', 'cronjobs', ['cj'], true, ['status']),
  resource('autoscaling', 'v2', 'HorizontalPodAutoscaler', 'horizontalpodautoscalers', ['hpa'], true, ['status']),
  resource('discovery.k8s.io', 'v1', 'EndpointSlice', 'endpointslices', [], true, []),
  resource('networking.k8s.io', 'v1', 'Ingress', 'ingresses', ['ing'], true, ['status']),
  resource('networking.k8s.io', 'v1', 'IngressClass', 'ingressclasses', [], false, []),
  resource('coordination.k8s.io', 'v1', 'Lease', 'leases', [], true, []),
  resource('node.k8s.io', 'v1', 'RuntimeClass', 'runtimeclasses', [], false, []),
  resource('scheduling.k8s.io', 'v1', 'PriorityClass', 'priorityclasses', ['pc'], false, []),
  resource('flotilla.io', 'v1', 'AddressPool', 'addresspools', ['pool'], false, ['status']),
  resource('storage.k8s.io', 'v1', 'StorageClass', 'storageclasses', ['sc'], false, []),
  resource('rbac.authorization.k8s.io', 'v1', 'Role', 'roles', [], true, []),
  resource('rbac.authorization.k8s.io', 'v1', 'ClusterRole', 'clusterroles', [], false, []),
  resource('rbac.authorization.k8s.io', 'v1', 'RoleBinding', 'rolebindings', [], true, []),
  resource('rbac.authorization.k8s.io', 'v1', 'ClusterRoleBinding', 'clusterrolebindings', [], false, []),
]);

/** Kinds that are valid request bodies without being served resources. */
export const bindingResource: ResourceInfo = resource('', 'v1', 'Binding', 'bindings', [], true, []);

const byPath = new Map(allResources.map((r) => [`${r.group}/${r.version}/${r.plural}`, r]));
const byKind = new Map([...allResources, bindingResource].map((r) => [`${r.apiVersion}/${r.kind}`, r]));
const byCliName = new Map<string, ResourceInfo>();
for (const r of allResources) {
  for (const name of [r.plural, r.singular, r.kind.toLowerCase(), ...r.shortNames]) byCliName.set(name, r);
  if (r.group !== '') {
    byCliName.set(`${r.plural}.${r.group}`, r);
    byCliName.set(`${r.singular}.${r.group}`, r);
    byCliName.set(`${r.plural}.${r.version}.${r.group}`, r);
  }
}

/** The type of the objects of kind K: the kind's type from objects.ts, or any KubeObject for a kind known only at run time. */
export type ObjectOf<K extends string> = K extends Kind ? ObjectsByKind[K] : KubeObject;

/** The resource of a kind with a schema (validate.ts) and a line in the table above; throws for any other. */
export function resourceOfKind<K extends Kind>(kind: K): ResourceInfo<K> {
  const r = kind === bindingResource.kind ? bindingResource : allResources.find((x) => x.kind === kind);
  if (r === undefined) throw new Error(`api-types: kind ${kind} has no entry in resources.ts`);
  return r as ResourceInfo<K>;
}

/** Whether `o` is of kind K, narrowing it to the kind's type (its fields are trusted to have passed the kind's schema). */
export function isKind<K extends Kind, T extends KubeObject>(o: T, kind: K): o is T & ObjectsByKind[K] {
  return o.kind === kind;
}

/** The kinds served with a `scale` subresource: their spec.replicas is what the Scale body reads and writes. */
export const SCALABLE_KINDS = ['Deployment', 'ReplicaSet', 'StatefulSet'] as const;
export type Scalable = ObjectsByKind[(typeof SCALABLE_KINDS)[number]];

export function isScalable<T extends KubeObject>(o: T): o is T & Scalable {
  return (SCALABLE_KINDS as readonly string[]).includes(o.kind);
}

/** The resource served at /api/v1/PLURAL (group '') or /apis/GROUP/VERSION/PLURAL. */
export function resourceFor(group: string, version: string, plural: string): ResourceInfo | undefined {
  return byPath.get(`${group}/${version}/${plural}`);
}

/** The resource for a manifest's apiVersion and kind (Binding included). Case-sensitive, as in Kubernetes. */
export function resourceForKind(apiVersion: string, kind: string): ResourceInfo | undefined {
  return byKind.get(`${apiVersion}/${kind}`);
}

/**
 * The resource a CLI user means: plural, singular, short name (po, deploy, rs, svc, cm, ns, no, ev, ...),
 * the Kind in any case, or "plural.group" / "plural.version.group" (deployments.apps). Case-insensitive.
 */
export function resourceByCliName(name: string): ResourceInfo | undefined {
  return byCliName.get(name.toLowerCase());
}

/**
 * The URL path of a collection or an object: /api/v1[/namespaces/NS]/PLURAL[/NAME] for the core group,
 * /apis/GROUP/VERSION[/namespaces/NS]/PLURAL[/NAME] otherwise. For a namespaced resource without a namespace
 * the path lists across all namespaces. Giving a namespace for a cluster-scoped resource is an error.
 * Segments are URI-encoded.
 */
export function apiPath(r: ResourceInfo, namespace?: string, name?: string): string {
  if (namespace !== undefined && !r.namespaced) {
    throw new Error(`apiPath: ${r.plural} are cluster-scoped and take no namespace (got "${namespace}")`);
  }
  let path = r.group === '' ? `/api/${r.version}` : `/apis/${r.group}/${r.version}`;
  if (namespace !== undefined) path += `/namespaces/${encodeURIComponent(namespace)}`;
  path += `/${r.plural}`;
  if (name !== undefined) path += `/${encodeURIComponent(name)}`;
  return path;
}
