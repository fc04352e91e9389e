// What Kubernetes' ServiceAccount admission plugin does to a pod at create
// (plugin/pkg/admission/serviceaccount/admission.go):
// - spec.serviceAccountName defaults to `default` (the deprecated spec.serviceAccount, when it alone is given,
//   names it; serviceAccountName wins over it), and spec.serviceAccount mirrors it, as the v1 conversion writes it;
// - the ServiceAccount must exist: otherwise 403 "error looking up service account NS/NAME: ..." after the wait
//   of awaitServiceAccount for a `default` the serviceaccount controller is about to make;
// - a pod without imagePullSecrets gets the ServiceAccount's.
// Updates keep serviceAccountName and serviceAccount (pod-admission.ts, ADMITTED_SPEC_FIELDS).
import { randomInt } from 'node:crypto';
import { DEFAULT_SERVICE_ACCOUNT, resourceOfKind } from '../../api-types/index.js';
import type { Pod } from '../../api-types/index.js';
import { StoreError } from '../store/types.js';
import type { AdmissionReads } from './pod-admission.js';

const serviceAccounts = resourceOfKind('ServiceAccount');

const accountOf = (pod: Pod): string => pod.spec.serviceAccountName ?? pod.spec.serviceAccount ?? DEFAULT_SERVICE_ACCOUNT;

/** Applies the plugin to a pod being created (a copy the caller owns: its spec is replaced here). */
export function admitServiceAccount(pod: Pod, reads: AdmissionReads): void {
  const namespace = pod.metadata.namespace ?? 'default';
  const name = accountOf(pod);
  const spec = { ...pod.spec, serviceAccountName: name, serviceAccount: name };
  pod.spec = spec;
  const sa = reads.get(serviceAccounts, namespace, name);
  if (!sa) {
    throw new StoreError({
      code: 403, reason: 'Forbidden',
      message: `pods "${pod.metadata.name ?? ''}" is forbidden: error looking up service account ${namespace}/${name}: serviceaccount "${name}" not found`,
      details: { name: pod.metadata.name ?? '', kind: 'pods' },
    });
  }
  if (!spec.imagePullSecrets?.length && sa.imagePullSecrets?.length) spec.imagePullSecrets = sa.imagePullSecrets.map((s) => ({ name: s.name }));
}

/** How often, and how far apart (ms), a missing `default` ServiceAccount is looked up, as Kubernetes' getServiceAccount does. */
const DEFAULT_LOOKUPS = 10;
const LOOKUP_INTERVAL_MS = [100, 200] as const;

/**
 * Waits, as Kubernetes' admission does, for the `default` ServiceAccount of a namespace the serviceaccount
 * controller has not reached yet (a namespace made just before the pod): up to DEFAULT_LOOKUPS lookups, one
 * random interval apart. Another account is looked up once, by admitServiceAccount.
 */
export async function awaitServiceAccount(pod: Pod, reads: AdmissionReads): Promise<void> {
  if (accountOf(pod) !== DEFAULT_SERVICE_ACCOUNT) return;
  const namespace = pod.metadata.namespace ?? 'default';
  const interval = LOOKUP_INTERVAL_MS[0] + randomInt(LOOKUP_INTERVAL_MS[1] - LOOKUP_INTERVAL_MS[0]);
  for (let i = 1; i < DEFAULT_LOOKUPS && !reads.get(serviceAccounts, namespace, DEFAULT_SERVICE_ACCOUNT); i++) {
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}
