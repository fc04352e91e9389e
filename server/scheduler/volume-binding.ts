// What a pod's PersistentVolumeClaims ask of its placement (after kube-scheduler's VolumeBinding plugin): a bound
// claim's volume node affinity becomes a required node-affinity term of the pod, so both placement cores see it as
// any other; an unbound claim of a WaitForFirstConsumer class lets the pod be placed (the PersistentVolume
// controller then binds or provisions for the pod's node): anywhere for local-path, which provisions on any node,
// else only where one of the volumes that can serve the claim is; an unbound claim of another class, or a missing
// claim, keeps the pod pending with Kubernetes' message.
import type { NodeSelectorTerm, PersistentVolume, PersistentVolumeClaim, Pod, StorageClass } from '../../api-types/index.js';
import { LOCAL_PATH_PROVISIONER, podReferences } from '../../api-types/index.js';
import { claimVolumeMismatch } from '../controllers/persistentvolume.js';

/** The storage objects the decision reads. */
export interface VolumeReads {
  claim(namespace: string, name: string): PersistentVolumeClaim | undefined;
  volume(name: string): PersistentVolume | undefined;
  storageClass(name: string): StorageClass | undefined;
  /** Every PersistentVolume: what an unbound WaitForFirstConsumer claim of a class without a provisioner may bind to. */
  volumes(): readonly PersistentVolume[];
}

/** Kubernetes' reason for a WaitForFirstConsumer claim that no volume can serve and no provisioner makes. */
export const NO_VOLUME_TO_BIND = "node(s) didn't find available persistent volumes to bind";

/** The pod to place (with its volumes' node affinity), or why it cannot be placed yet. */
export type VolumeVerdict = { pod: Pod } | { unschedulable: string };

/** Kubernetes' reason for a pod whose Immediate claims are not bound yet. */
export const UNBOUND_IMMEDIATE_CLAIMS = 'pod has unbound immediate PersistentVolumeClaims';

/** More combined terms than this are not worth placing against; the pod waits with a message saying so. */
const MAX_COMBINED_TERMS = 64;

export function volumeVerdict(pod: Pod, reads: VolumeReads): VolumeVerdict {
  const claims = podReferences(pod).persistentVolumeClaims;
  if (claims.size === 0) return { pod };
  const namespace = pod.metadata.namespace ?? 'default';
  const required: NodeSelectorTerm[][] = [];
  let unboundImmediate = false;
  for (const name of claims) {
    const claim = reads.claim(namespace, name);
    if (!claim) return { unschedulable: `persistentvolumeclaim "${name}" not found` };
    if (claim.metadata.deletionTimestamp) return { unschedulable: `persistentvolumeclaim "${name}" is being deleted` };
    if (!claim.spec.volumeName || claim.status?.phase !== 'Bound') {
      const klass = claim.spec.storageClassName ? reads.storageClass(claim.spec.storageClassName) : undefined;
      if (klass?.volumeBindingMode !== 'WaitForFirstConsumer') unboundImmediate = true;
      else if (klass.provisioner !== LOCAL_PATH_PROVISIONER) {
        // No provisioner here makes its volume: the pod goes where one of the volumes that can serve it is.
        const fits = reads.volumes().filter((v) => claimVolumeMismatch(claim, v) === undefined);
        if (fits.length === 0) return { unschedulable: NO_VOLUME_TO_BIND };
        const terms = fits.map((v) => v.spec.nodeAffinity?.required?.nodeSelectorTerms);
        if (terms.every((t) => t?.length)) required.push(terms.flatMap((t) => t!));
      }
      continue;
    }
    const volume = reads.volume(claim.spec.volumeName);
    if (!volume) return { unschedulable: `persistentvolume "${claim.spec.volumeName}" not found` };
    const terms = volume.spec.nodeAffinity?.required?.nodeSelectorTerms;
    if (terms?.length) required.push(terms);
  }
  if (unboundImmediate) return { unschedulable: UNBOUND_IMMEDIATE_CLAIMS };
  if (required.length === 0) return { pod };
  const own = pod.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;
  // Terms of one list are alternatives, lists must all hold: every combination of one term per list, joined.
  let combined: NodeSelectorTerm[] = own?.length ? own : [{}];
  for (const terms of required) {
    combined = combined.flatMap((a) => terms.map((b) => ({
      matchExpressions: [...(a.matchExpressions ?? []), ...(b.matchExpressions ?? [])],
      ...(a.matchFields?.length || b.matchFields?.length ? { matchFields: [...(a.matchFields ?? []), ...(b.matchFields ?? [])] } : {}),
    })));
    if (combined.length > MAX_COMBINED_TERMS) return { unschedulable: `the node affinity of the pod and its volumes makes more than ${MAX_COMBINED_TERMS} terms` };
  }
  const affinity = pod.spec.affinity ?? {};
  const nodeAffinity = affinity.nodeAffinity ?? {};
  return {
    pod: {
      ...pod,
      spec: { ...pod.spec, affinity: { ...affinity, nodeAffinity: { ...nodeAffinity, requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: combined } } } },
    },
  };
}
