// What the controllers share about cluster objects: the resources they read and write, work-queue keys,
// owner references, pod readiness and pod templates.
import { createHash } from 'node:crypto';
import { canonicalJson, isKind, resourceOfKind } from '../../api-types/index.js';
import type { Condition, KubeObject, OwnerReference, Pod, PodTemplateSpec, Taint, Toleration } from '../../api-types/index.js';
import type { Stored, StoredObject } from '../store/types.js';
import type { Objects } from '../objects/service.js';

/** The resources the controllers read and write; reads and writes through them are typed by kind. */
export const resources = {
  namespaces: resourceOfKind('Namespace'),
  pods: resourceOfKind('Pod'),
  nodes: resourceOfKind('Node'),
  events: resourceOfKind('Event'),
  deployments: resourceOfKind('Deployment'),
  replicaSets: resourceOfKind('ReplicaSet'),
  daemonSets: resourceOfKind('DaemonSet'),
  statefulSets: resourceOfKind('StatefulSet'),
  jobs: resourceOfKind('Job'),
  cronJobs: resourceOfKind('CronJob'),
  hpas: resourceOfKind('HorizontalPodAutoscaler'),
  services: resourceOfKind('Service'),
  endpoints: resourceOfKind('Endpoints'),
  endpointSlices: resourceOfKind('EndpointSlice'),
} as const;

/** Being deleted (deletionTimestamp set: graceful, held by finalizers, or releasing its dependents): a controller must not act on it. */
export function isGoing(o: { metadata: { deletionTimestamp?: string } }): boolean {
  return o.metadata.deletionTimestamp !== undefined;
}

/** A work-queue key: "namespace/name" for namespaced objects, "name" for cluster-scoped ones. */
export function objectKey(o: { metadata: { namespace?: string; name?: string } }): string {
  return o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name ?? ''}` : o.metadata.name ?? '';
}

export function splitKey(key: string): { namespace: string | undefined; name: string } {
  const slash = key.indexOf('/');
  return slash < 0 ? { namespace: undefined, name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

/** The owner reference a controller puts on what it creates: controller=true, blocking owner deletion. */
export function controllerRefTo(owner: StoredObject): OwnerReference {
  return { apiVersion: owner.apiVersion, kind: owner.kind, name: owner.metadata.name, uid: owner.metadata.uid ?? '', controller: true, blockOwnerDeletion: true };
}

/** The reference of the object's managing controller, if any. */
export function controllerOf(o: { metadata: { ownerReferences?: OwnerReference[] } }): OwnerReference | undefined {
  return o.metadata.ownerReferences?.find((r) => r.controller === true);
}

/** The key of the owning controller of `kind`, or nothing: how a watch on dependents wakes their owner. */
export function ownerKey(o: StoredObject, kind: string): string[] {
  const ref = controllerOf(o);
  if (!ref || ref.kind !== kind) return [];
  return [o.metadata.namespace ? `${o.metadata.namespace}/${ref.name}` : ref.name];
}

/** The objects in `items` controlled by `owner` (matched by uid, so a re-created owner of the same name does not adopt them). */
export function ownedBy<T extends { metadata: { ownerReferences?: OwnerReference[] } }>(items: readonly T[], owner: StoredObject): T[] {
  return items.filter((o) => controllerOf(o)?.uid === owner.metadata.uid);
}

/**
 * Pods by the uid of their controller and by the node they are bound to, built from the store and kept current by a watch on it. The store
 * publishes watch events inside apply, before the write's promise resolves, so after any awaited write the
 * index is as new as the store. When the store ends the watch (a snapshot install replaced the state
 * wholesale, or the store closed), the index is built again from the store's contents at the next question.
 * One per leadership term (server/cluster/leader-work.ts makes it with the controllers' deps and closes it after them);
 * cached pods are shared and must not be mutated.
 */
export class PodsByOwner {
  readonly #byOwner = new Map<string, Map<string, Stored<Pod>>>();
  readonly #ownerOf = new Map<string, string>();
  readonly #byNode = new Map<string, Map<string, Stored<Pod>>>();
  readonly #nodeOf = new Map<string, string>();
  /** Ends the watch; undefined while the index is not built (before the first question, or after the store ended the watch). */
  #stopWatch: (() => void) | undefined;
  #closed = false;

  constructor(readonly objects: Objects) {}

  /** The pods whose controller is `owner` (by uid, so a re-created owner of the same name does not adopt them). */
  ownedBy(owner: Pick<KubeObject, 'metadata'>): Stored<Pod>[] {
    return owner.metadata.uid ? this.#bucket(owner.metadata.uid) : [];
  }

  /** Pods of `namespace` that no controller owns: candidates for adoption. */
  unowned(namespace: string | undefined): Stored<Pod>[] {
    return this.#bucket(UNOWNED).filter((p) => p.metadata.namespace === namespace);
  }

  /** The pods bound to node `node` (spec.nodeName): what a node's lifecycle acts on, without a scan of every pod. */
  onNode(node: string): Stored<Pod>[] {
    if (!this.#stopWatch) this.#build();
    return [...(this.#byNode.get(node)?.values() ?? [])];
  }

  /** Stops following the store; the index answers no more questions. */
  close(): void {
    this.#closed = true;
    this.#stopWatch?.();
    this.#stopWatch = undefined;
  }

  #bucket(uid: string): Stored<Pod>[] {
    if (!this.#stopWatch) this.#build();
    return [...(this.#byOwner.get(uid)?.values() ?? [])];
  }

  #build(): void {
    if (this.#closed) throw new Error('the pod index was asked after close()');
    this.#byOwner.clear();
    this.#ownerOf.clear();
    this.#byNode.clear();
    this.#nodeOf.clear();
    const { items, revision } = this.objects.list(resources.pods);
    for (const p of items) this.#put(p);
    this.#stopWatch = this.objects.watch(resources.pods, undefined, revision, (e) => {
      if (e.type === 'DELETED') this.#remove(objectKey(e.object));
      else if (isKind(e.object, 'Pod')) this.#put(e.object);
    }, () => { this.#stopWatch = undefined; });
  }

  #put(p: Stored<Pod>): void {
    const key = objectKey(p);
    this.#remove(key);
    const uid = controllerOf(p)?.uid ?? UNOWNED;
    let pods = this.#byOwner.get(uid);
    if (!pods) this.#byOwner.set(uid, pods = new Map());
    pods.set(key, p);
    this.#ownerOf.set(key, uid);
    const node = p.spec.nodeName;
    if (!node) return;
    let onNode = this.#byNode.get(node);
    if (!onNode) this.#byNode.set(node, onNode = new Map());
    onNode.set(key, p);
    this.#nodeOf.set(key, node);
  }

  #remove(key: string): void {
    const node = this.#nodeOf.get(key);
    if (node !== undefined) {
      this.#nodeOf.delete(key);
      const onNode = this.#byNode.get(node);
      onNode?.delete(key);
      if (onNode?.size === 0) this.#byNode.delete(node);
    }
    const uid = this.#ownerOf.get(key);
    if (uid === undefined) return;
    this.#ownerOf.delete(key);
    const pods = this.#byOwner.get(uid);
    pods?.delete(key);
    if (pods?.size === 0) this.#byOwner.delete(uid);
  }
}

/** The index bucket of pods without a controller (no real uid is empty). */
const UNOWNED = '';

export function podCondition(pod: Pod, type: string): Condition | undefined {
  return pod.status?.conditions?.find((c) => c.type === type);
}

export function isPodReady(pod: Pod): boolean {
  return podCondition(pod, 'Ready')?.status === 'True';
}

/** Ready for at least minReadySeconds at `nowMs` (the Ready condition's transition time marks the start). */
export function isPodAvailable(pod: Pod, minReadySeconds: number, nowMs: number): boolean {
  if (!isPodReady(pod)) return false;
  if (minReadySeconds <= 0) return true;
  const since = Date.parse(podCondition(pod, 'Ready')?.lastTransitionTime ?? '');
  return Number.isFinite(since) && since + minReadySeconds * 1000 <= nowMs;
}

/** A pod whose containers may still run: not Succeeded or Failed (Terminating pods included). */
export function isPodUnfinished(pod: Pod): boolean {
  return pod.status?.phase !== 'Succeeded' && pod.status?.phase !== 'Failed';
}

/** A pod that counts toward a controller's replicas: not terminating and not finished. */
export function isPodActive(pod: Pod): boolean {
  return !pod.metadata.deletionTimestamp && isPodUnfinished(pod);
}

/** A short, stable hash of a pod template (FNV would do; sha256 keeps it collision-free in practice). */
export function templateHash(template: PodTemplateSpec | undefined): string {
  return createHash('sha256').update(canonicalJson(template ?? {})).digest('hex').slice(0, 10);
}

/**
 * A pod body from a template, owned by `owner`. `name` names it exactly; otherwise the server generates a
 * name from `generateName`. Extra labels are added on top of the template's.
 */
export function podFromTemplate(
  template: PodTemplateSpec, owner: StoredObject,
  opts: { name?: string; generateName?: string; labels?: Record<string, string>; spec?: Partial<Pod['spec']> },
): Record<string, unknown> {
  const meta = template.metadata ?? {};
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      ...(opts.name !== undefined ? { name: opts.name } : { generateName: opts.generateName ?? `${owner.metadata.name}-` }),
      labels: { ...(meta.labels ?? {}), ...(opts.labels ?? {}) },
      ...(meta.annotations ? { annotations: { ...meta.annotations } } : {}),
      ownerReferences: [controllerRefTo(owner)],
    },
    spec: { ...structuredClone(template.spec), ...(opts.spec ?? {}) },
  };
}

/** A condition list with `next` set, keeping lastTransitionTime when the status did not change. */
export function withCondition(conditions: readonly Condition[] | undefined, next: Condition, nowIso: string): Condition[] {
  const list = [...(conditions ?? [])];
  const i = list.findIndex((c) => c.type === next.type);
  const old = i >= 0 ? list[i] : undefined;
  const merged: Condition = { ...next, lastTransitionTime: old && old.status === next.status ? old.lastTransitionTime ?? nowIso : nowIso };
  if (i >= 0) list[i] = merged; else list.push(merged);
  return list;
}

/** Deep equality by canonical JSON: used to skip writes that would change nothing. */
export function sameContent(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

/** An int-or-percent value (maxSurge, maxUnavailable) resolved against `total`, rounding up or down. */
export function scaledValue(value: number | string | undefined, total: number, fallback: string, roundUp: boolean): number {
  const v = value ?? fallback;
  if (typeof v === 'number') return v;
  const m = /^(\d+)%$/.exec(v);
  if (!m) {
    if (/^\d+$/.test(v)) return Number(v);
    throw new Error(`"${v}" is neither a count nor a percentage`);
  }
  const exact = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

/** The first toleration that tolerates `taint` (Kubernetes rules: empty key with Exists tolerates everything). */
export function tolerationFor(tolerations: readonly Toleration[] | undefined, taint: Taint): Toleration | undefined {
  return tolerations?.find((t) => {
    if (t.effect && t.effect !== taint.effect) return false;
    if (!t.key) return t.operator === 'Exists';
    if (t.key !== taint.key) return false;
    return t.operator === 'Exists' || (t.value ?? '') === (taint.value ?? '');
  });
}
