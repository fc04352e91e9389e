// Kubernetes' DefaultIngressClass admission: an Ingress created without spec.ingressClassName (and without the
// deprecated kubernetes.io/ingress.class annotation) gets the default IngressClass (annotation
// ingressclass.kubernetes.io/is-default-class: "true"); with several defaults the newest, as Kubernetes picks.
// Without a default class the Ingress is stored as it is.
import { ANNOTATION_DEFAULT_INGRESS_CLASS, resourceOfKind, type Ingress } from '../../api-types/index.js';
import type { AdmissionReads } from './pod-admission.js';

const ingressClasses = resourceOfKind('IngressClass');
/** The annotation that named an Ingress's class before spec.ingressClassName: admission leaves such an Ingress alone. */
const ANNOTATION_INGRESS_CLASS_LEGACY = 'kubernetes.io/ingress.class';

export function admitIngress<I extends Ingress>(ingress: I, reads: AdmissionReads): I {
  if (ingress.spec.ingressClassName !== undefined || ingress.metadata.annotations?.[ANNOTATION_INGRESS_CLASS_LEGACY] !== undefined) return ingress;
  const defaults = reads.list(ingressClasses).items.filter((c) => c.metadata.annotations?.[ANNOTATION_DEFAULT_INGRESS_CLASS] === 'true');
  const newest = defaults.sort((a, b) => (b.metadata.creationTimestamp ?? '').localeCompare(a.metadata.creationTimestamp ?? ''))[0];
  return newest ? { ...ingress, spec: { ...ingress.spec, ingressClassName: newest.metadata.name } } : ingress;
}
