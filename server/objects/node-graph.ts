// What the Node authorizer asks about pods (after Kubernetes' node authorizer graph,
// plugin/pkg/auth/authorizer/node/graph.go): which node a pod is bound to, whether a pod bound to a node
// references a Secret, ConfigMap or PersistentVolumeClaim, and which PersistentVolumes are the node's. All are
// map lookups (the last reads the one volume asked about): the index follows the store by watch, so no question
// scans the pods. Every node is also an Ingress router: a Secret named in tls[] of an Ingress whose IngressClass
// has the agents' controller (flotilla.io/ingress) is referenced by every node.
import { ANNOTATION_PROVISIONED_BY, INGRESS_CONTROLLER, LABEL_HOSTNAME, LOCAL_PATH_PROVISIONER, isKind, podReferences, resourceOfKind } from '../../api-types/index.js';
import type { Ingress, PersistentVolume, Pod } from '../../api-types/index.js';
import type { Stored } from '../store/types.js';
import type { Objects } from './service.js';

/** The resources a pod's spec references by name, as the authorizer names them (their plurals). */
export type ReferencedResource = 'secrets' | 'configmaps' | 'persistentvolumeclaims' | 'serviceaccounts';

/** The read-only questions of the Node authorizer. */
export interface NodeGraph {
  /** The node pod `namespace/name` is bound to (spec.nodeName); undefined for an unbound or unknown pod. */
  nodeOfPod(namespace: string, name: string): string | undefined;
  /** Whether some pod bound to `node` references `resource` `namespace/name` (volumes, env, envFrom, imagePullSecrets). */
  referencedBy(node: string, resource: ReferencedResource, namespace: string, name: string): boolean;
  /**
   * Whether PersistentVolume `name` is the node's to read: bound to a claim some pod bound to the node references,
   * or a local-path volume whose node affinity names the node (its agent removes the directory of a deleted one).
   */
  volumeVisible(node: string, name: string): boolean;
  /** Whether `name` is a local-path volume whose node affinity names the node: the one kind of volume a node may write (its cleanup finalizer). */
  localVolumeOf(node: string, name: string): boolean;
}

const pods = resourceOfKind('Pod');
const ingresses = resourceOfKind('Ingress');
const ingressClasses = resourceOfKind('IngressClass');
const volumes = resourceOfKind('PersistentVolume');

/** The node a local-path volume lives on (its node affinity's one hostname), undefined for any other volume. */
export function localPathNode(volume: PersistentVolume): string | undefined {
  if (volume.metadata.annotations?.[ANNOTATION_PROVISIONED_BY] !== LOCAL_PATH_PROVISIONER) return undefined;
  const terms = volume.spec.nodeAffinity?.required?.nodeSelectorTerms ?? [];
  const e = terms.length === 1 ? terms[0]!.matchExpressions : undefined;
  return e?.length === 1 && e[0]!.key === LABEL_HOSTNAME && e[0]!.operator === 'In' && e[0]!.values?.length === 1 ? e[0]!.values[0] : undefined;
}

/**
 * The NodeGraph of the pods in a store, built at the first question and kept current by a watch on it. The
 * store publishes watch events inside apply, before the write's promise resolves, so after an awaited write the
 * graph is as new as the store. When the store ends the watch (a snapshot install replaced the state, or the
 * store closed) the graph is built again at the next question.
 */
export class PodGraph implements NodeGraph {
  /** Edge "node, resource, namespace, name" -> how many pods bound to the node reference that object. */
  readonly #edges = new Map<string, number>();
  /** Pod "namespace/name" -> its node and the edges it counts in. */
  readonly #pods = new Map<string, { node: string; edges: string[] }>();
  /** Secret "namespace/name" -> the Ingresses naming it in tls[] ("namespace/name") and their class names. */
  readonly #tlsSecrets = new Map<string, Map<string, string>>();
  /** Ingress "namespace/name" -> the Secret keys it names. */
  readonly #ingresses = new Map<string, string[]>();
  #stopWatch: (() => void) | undefined;
  #stopIngressWatch: (() => void) | undefined;

  constructor(readonly objects: Pick<Objects, 'get' | 'list' | 'watch'>) {}

  nodeOfPod(namespace: string, name: string): string | undefined {
    this.#ensureBuilt();
    return this.#pods.get(podKey(namespace, name))?.node;
  }

  referencedBy(node: string, resource: ReferencedResource, namespace: string, name: string): boolean {
    this.#ensureBuilt();
    if (this.#edges.has(edgeKey(node, resource, namespace, name))) return true;
    if (resource !== 'secrets') return false;
    this.#ensureIngressesBuilt();
    // The class is looked up at question time: an IngressClass changing its controller changes the answer at once.
    for (const className of this.#tlsSecrets.get(podKey(namespace, name))?.values() ?? []) {
      if (this.objects.get(ingressClasses, undefined, className)?.spec.controller === INGRESS_CONTROLLER) return true;
    }
    return false;
  }

  #ensureIngressesBuilt(): void {
    if (this.#stopIngressWatch) return;
    this.#tlsSecrets.clear();
    this.#ingresses.clear();
    const { items, revision } = this.objects.list(ingresses);
    for (const i of items) this.#putIngress(i);
    this.#stopIngressWatch = this.objects.watch(ingresses, undefined, revision, (e) => {
      if (e.type === 'DELETED') this.#removeIngress(podKey(e.object.metadata.namespace ?? '', e.object.metadata.name));
      else if (isKind(e.object, 'Ingress')) this.#putIngress(e.object);
    }, () => { this.#stopIngressWatch = undefined; });
  }

  #putIngress(ing: Stored<Ingress>): void {
    const namespace = ing.metadata.namespace ?? '';
    const key = podKey(namespace, ing.metadata.name);
    this.#removeIngress(key);
    // Admission gives every Ingress without a class the default one, so ingressClassName is set.
    const className = ing.spec.ingressClassName;
    if (!className) return;
    const secrets = [...new Set((ing.spec.tls ?? []).flatMap((t) => (t.secretName ? [podKey(namespace, t.secretName)] : [])))];
    for (const s of secrets) {
      let by = this.#tlsSecrets.get(s);
      if (!by) this.#tlsSecrets.set(s, by = new Map());
      by.set(key, className);
    }
    this.#ingresses.set(key, secrets);
  }

  #removeIngress(key: string): void {
    for (const s of this.#ingresses.get(key) ?? []) {
      const by = this.#tlsSecrets.get(s);
      by?.delete(key);
      if (by?.size === 0) this.#tlsSecrets.delete(s);
    }
    this.#ingresses.delete(key);
  }

  volumeVisible(node: string, name: string): boolean {
    const ref = this.objects.get(volumes, undefined, name)?.spec.claimRef;
    return this.localVolumeOf(node, name) || (ref?.name !== undefined && this.referencedBy(node, 'persistentvolumeclaims', ref.namespace ?? 'default', ref.name));
  }

  localVolumeOf(node: string, name: string): boolean {
    const volume = this.objects.get(volumes, undefined, name);
    return volume !== undefined && localPathNode(volume) === node;
  }

  #ensureBuilt(): void {
    if (this.#stopWatch) return;
    this.#edges.clear();
    this.#pods.clear();
    const { items, revision } = this.objects.list(pods);
    for (const p of items) this.#put(p);
    this.#stopWatch = this.objects.watch(pods, undefined, revision, (e) => {
      if (e.type === 'DELETED') this.#remove(podKey(e.object.metadata.namespace ?? '', e.object.metadata.name));
      else if (isKind(e.object, 'Pod')) this.#put(e.object);
    }, () => { this.#stopWatch = undefined; });
  }

  #put(pod: Stored<Pod>): void {
    const namespace = pod.metadata.namespace ?? '';
    const key = podKey(namespace, pod.metadata.name);
    this.#remove(key);
    const node = pod.spec.nodeName;
    if (!node) return;
    const refs = podReferences(pod);
    const named: [ReferencedResource, Set<string>][] = [
      ['secrets', new Set([...refs.secrets, ...refs.imagePullSecrets])], ['configmaps', refs.configMaps], ['persistentvolumeclaims', refs.persistentVolumeClaims],
      ['serviceaccounts', new Set(pod.spec.serviceAccountName ? [pod.spec.serviceAccountName] : [])],
    ];
    const edges = named.flatMap(([resource, names]) => [...names].map((name) => edgeKey(node, resource, namespace, name)));
    for (const e of edges) this.#edges.set(e, (this.#edges.get(e) ?? 0) + 1);
    this.#pods.set(key, { node, edges });
  }

  #remove(key: string): void {
    const was = this.#pods.get(key);
    if (!was) return;
    this.#pods.delete(key);
    for (const e of was.edges) {
      const n = (this.#edges.get(e) ?? 1) - 1;
      if (n === 0) this.#edges.delete(e); else this.#edges.set(e, n);
    }
  }
}

function podKey(namespace: string, name: string): string {
  return `${namespace}/${name}`;
}

/** Names are DNS names and cannot hold a NUL, so the joined key is unambiguous. */
function edgeKey(node: string, resource: ReferencedResource, namespace: string, name: string): string {
  return `${node}\0${resource}\0${namespace}\0${name}`;
}
