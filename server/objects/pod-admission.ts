// What Kubernetes' Priority and RuntimeClass admission plugins do at create, and the one rule on PriorityClasses
// they keep (a single global default). Runs after validation and defaults, before the write; a refusal is 403
// Forbidden with Kubernetes' own message ("pods "x" is forbidden: ...").
//
// Pods:
// - priority: spec.priorityClassName names a PriorityClass (missing: refused); without a name the global
//   default class applies (its name is set on the pod), else priority 0. spec.priority and spec.preemptionPolicy
//   become the class's; a client may send them only equal to what the class gives.
// - RuntimeClass: spec.runtimeClassName names one (missing: refused). Its scheduling.nodeSelector is merged into
//   the pod's (a key with another value: refused), its tolerations are added (those the pod has already are not
//   repeated), its overhead.podFixed becomes spec.overhead (a pod may only send the same overhead, and none
//   without a class that defines one), and its handler is recorded in annotation flotilla.io/runtime-handler for
//   the agent. A pod without a RuntimeClass never carries that annotation.
// - ServiceAccount: ./serviceaccount-admission.ts (the default account, which must exist).
// - updates keep all that (admitUpdate): what an update leaves out is carried over, a change is refused.
import {
  ANNOTATION_RUNTIME_HANDLER, isKind, parseQuantity, resourceOfKind,
  type Pod, type PriorityClass, type ResourceInfo, type Toleration,
} from '../../api-types/index.js';
import { sameContent } from '../controllers/cluster-objects.js';
import { invalid } from './service.js';
import { admitStorageCreate } from './storage-admission.js';
import type { Objects } from './service.js';
import { StoreError } from '../store/types.js';
import { admitIngress } from './ingress-admission.js';
import { admitPodSecurity, policyLabelErrors } from './pod-security.js';
import { admitServiceAccount } from './serviceaccount-admission.js';
import type { StoredObject } from '../store/types.js';

const pods = resourceOfKind('Pod');
const namespaces = resourceOfKind('Namespace');
const runtimeClasses = resourceOfKind('RuntimeClass');
const priorityClasses = resourceOfKind('PriorityClass');

/** The reads admission makes (ObjectService's, on the local replica). */
export type AdmissionReads = Pick<Objects, 'get' | 'list'>;

const forbidden = (r: ResourceInfo, name: string, why: string): StoreError => new StoreError({
  code: 403, reason: 'Forbidden', message: `${r.plural} "${name}" is forbidden: ${why}`, details: { name, kind: r.plural },
});

/** Admits a new object of resource `r` (already validated and defaulted): returns what to store, or throws. */
export function admitCreate(object: StoredObject, reads: AdmissionReads): StoredObject {
  admitSecurity(object, undefined, reads);
  if (isKind(object, 'Pod')) return admitPod(object, reads);
  if (isKind(object, 'PriorityClass')) checkSingleDefault(object, reads);
  if (isKind(object, 'Ingress')) return admitIngress(object, reads);
  return admitStorageCreate(object, reads);
}

/** The spec fields admission sets on a pod at create (beside annotation flotilla.io/runtime-handler). */
const ADMITTED_SPEC_FIELDS = ['priority', 'priorityClassName', 'preemptionPolicy', 'runtimeClassName', 'overhead', 'serviceAccountName', 'serviceAccount'] as const;

/**
 * An update of a pod keeps what admission set at create: a field the incoming object leaves out is carried over
 * from the stored one (a whole-object PUT of the original manifest, as `flotilla apply` sends, stays valid); a
 * different value is refused, as the field is immutable in Kubernetes. Other resources pass unchanged. Pod Security
 * admission runs on every update but a status write (`reads` undefined), which it does not look at, as Kubernetes.
 */
export function admitUpdate(stored: StoredObject | undefined, incoming: StoredObject, reads: AdmissionReads | undefined): StoredObject {
  if (reads) admitSecurity(incoming, stored, reads);
  if (!stored || !isKind(stored, 'Pod') || !isKind(incoming, 'Pod')) return incoming;
  const before = stored; const after = incoming;
  const spec: Record<string, unknown> = { ...after.spec };
  const causes: { field: string; message: string }[] = [];
  const keep = (field: string, was: unknown, now: unknown, set: (v: unknown) => void): void => {
    if (now === undefined) { if (was !== undefined) set(was); return; }
    const equal = field === 'spec.overhead' && was !== undefined
      ? sameResources(now as Record<string, string | number>, was as Record<string, string | number>) : sameContent(now, was);
    if (!equal) causes.push({ field, message: 'field is immutable' });
  };
  for (const f of ADMITTED_SPEC_FIELDS) keep(`spec.${f}`, before.spec[f], after.spec[f], (v) => { spec[f] = v; });
  const annotations = { ...after.metadata.annotations };
  keep(`metadata.annotations[${JSON.stringify(ANNOTATION_RUNTIME_HANDLER)}]`, before.metadata.annotations?.[ANNOTATION_RUNTIME_HANDLER],
    after.metadata.annotations?.[ANNOTATION_RUNTIME_HANDLER], (v) => { annotations[ANNOTATION_RUNTIME_HANDLER] = v as string; });
  if (causes.length > 0) throw invalid('Pod', after.metadata.name ?? '', causes);
  const metadata = Object.keys(annotations).length > 0 || after.metadata.annotations ? { ...after.metadata, annotations } : after.metadata;
  return { ...after, metadata, spec: spec as Pod['spec'] };
}

/**
 * Pod Security admission (./pod-security.ts) of pods and workload templates, against the labels of their
 * namespace; and the pod-security labels of a Namespace, which must parse (422 naming the label).
 */
function admitSecurity(object: StoredObject, stored: StoredObject | undefined, reads: AdmissionReads): void {
  if (isKind(object, 'Namespace')) {
    const errors = policyLabelErrors(object.metadata.labels);
    if (errors.length > 0) throw invalid('Namespace', object.metadata.name, errors.map((e) => ({ field: `metadata.labels[${JSON.stringify(e.label)}]`, message: e.message })));
    return;
  }
  const namespace = object.metadata.namespace;
  if (namespace === undefined) return;
  const labels = reads.get(namespaces, undefined, namespace)?.metadata.labels;
  admitPodSecurity(object, stored, labels, (why) => forbidden(pods, object.metadata.name, why));
}

/** The global default PriorityClass; with several (possible through updates), the lowest value, as Kubernetes. */
function defaultPriorityClass(reads: AdmissionReads): PriorityClass | undefined {
  let found: PriorityClass | undefined;
  for (const o of reads.list(priorityClasses).items) {
    if (o.globalDefault && (!found || o.value < found.value)) found = o;
  }
  return found;
}

function checkSingleDefault(pc: PriorityClass, reads: AdmissionReads): void {
  const existing = pc.globalDefault ? defaultPriorityClass(reads) : undefined;
  if (existing) {
    throw forbidden(priorityClasses, pc.metadata.name ?? '', `PriorityClass ${existing.metadata.name} is already marked as default. Only one default can exist`);
  }
}

function admitPod<P extends Pod>(input: P, reads: AdmissionReads): P {
  const pod: P = { ...input, metadata: { ...input.metadata }, spec: { ...input.spec } };
  const name = pod.metadata.name ?? '';
  const refuse = (why: string): StoreError => forbidden(pods, name, why);
  const spec = pod.spec;

  let priority = 0;
  let preemptionPolicy: PriorityClass['preemptionPolicy'] = 'PreemptLowerPriority';
  const pc = spec.priorityClassName ? reads.get(priorityClasses, undefined, spec.priorityClassName) : defaultPriorityClass(reads);
  if (spec.priorityClassName && !pc) throw refuse(`no PriorityClass with name ${spec.priorityClassName} was found`);
  if (pc) {
    spec.priorityClassName = pc.metadata.name!;
    priority = pc.value;
    preemptionPolicy = pc.preemptionPolicy ?? 'PreemptLowerPriority';
  }
  if (spec.priority !== undefined && spec.priority !== priority) {
    throw refuse(`the integer value of priority (${spec.priority}) must not be provided in pod spec; priority admission controller computed ${priority} from the given PriorityClass name`);
  }
  if (spec.preemptionPolicy !== undefined && spec.preemptionPolicy !== preemptionPolicy) {
    throw refuse(`the string value of PreemptionPolicy (${spec.preemptionPolicy}) must not be provided in pod spec; priority admission controller computed ${preemptionPolicy} from the given PriorityClass name`);
  }
  spec.priority = priority;
  spec.preemptionPolicy = preemptionPolicy;

  const annotations = { ...pod.metadata.annotations };
  delete annotations[ANNOTATION_RUNTIME_HANDLER];
  const rc = spec.runtimeClassName ? reads.get(runtimeClasses, undefined, spec.runtimeClassName) : undefined;
  if (spec.runtimeClassName && !rc) throw refuse(`pod rejected: RuntimeClass "${spec.runtimeClassName}" not found`);
  const podFixed = rc?.overhead?.podFixed;
  if (podFixed && Object.keys(podFixed).length > 0) {
    if (spec.overhead && Object.keys(spec.overhead).length > 0 && !sameResources(spec.overhead, podFixed)) {
      throw refuse("pod rejected: Pod's Overhead doesn't match RuntimeClass's defined Overhead");
    }
    spec.overhead = { ...podFixed };
  } else if (spec.overhead) {
    throw refuse('pod rejected: Pod Overhead set without corresponding RuntimeClass defined Overhead');
  }
  if (rc) {
    const selector = { ...spec.nodeSelector };
    for (const [key, value] of Object.entries(rc.scheduling?.nodeSelector ?? {})) {
      if (selector[key] !== undefined && selector[key] !== value) {
        throw refuse(`conflict: runtimeClass.scheduling.nodeSelector[${key}] = ${value}; pod.spec.nodeSelector[${key}] = ${selector[key]}`);
      }
      selector[key] = value;
    }
    if (Object.keys(selector).length > 0) spec.nodeSelector = selector;
    const tolerations = [...spec.tolerations ?? []];
    for (const t of rc.scheduling?.tolerations ?? []) if (!tolerations.some((have) => sameToleration(have, t))) tolerations.push(t);
    if (tolerations.length > 0) spec.tolerations = tolerations;
    annotations[ANNOTATION_RUNTIME_HANDLER] = rc.handler;
  }
  if (Object.keys(annotations).length > 0 || input.metadata.annotations) pod.metadata.annotations = annotations;
  admitServiceAccount(pod, reads);
  return pod;
}

/** Equal resource lists by value ("1Gi" equals "1073741824"), as Kubernetes compares quantities. */
function sameResources(a: Record<string, string | number>, b: Record<string, string | number>): boolean {
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  for (const k of keys) {
    if (a[k] === undefined || b[k] === undefined || parseQuantity(a[k]).milli !== parseQuantity(b[k]).milli) return false;
  }
  return true;
}

function sameToleration(a: Toleration, b: Toleration): boolean {
  return (a.key ?? '') === (b.key ?? '') && (a.operator ?? 'Equal') === (b.operator ?? 'Equal') && (a.value ?? '') === (b.value ?? '')
    && (a.effect ?? '') === (b.effect ?? '') && a.tolerationSeconds === b.tolerationSeconds;
}
