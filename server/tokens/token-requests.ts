// The TokenRequest API (POST serviceaccounts/NAME/token, authentication.k8s.io/v1 TokenRequest) and the
// authentication of the tokens it issues, as kube-apiserver's serviceaccount token REST storage and its
// service account token authenticator do.
//
// A token names its account by uid and, when bound, its pod by uid: it stops authenticating once the account or
// the pod is deleted (or replaced by one of the same name), or once the pod's deletion time has passed. A node
// (system:node:N) may ask only for tokens bound to a pod on itself that runs as that account (NodeRestriction).
import { AUTHENTICATED_GROUP, SERVICE_ACCOUNTS_GROUP, formatPath, resourceOfKind, serviceAccountUser, tokenRequestSchema } from '../../api-types/index.js';
import type { TokenRequest } from '../../api-types/index.js';
import type { Objects } from '../objects/service.js';
import { invalid, notFound } from '../objects/service.js';
import { StoreError } from '../store/types.js';
import { API_AUDIENCES, type ServiceAccountTokens } from './service-account-tokens.js';

const serviceAccounts = resourceOfKind('ServiceAccount');
const pods = resourceOfKind('Pod');

/** kube-apiserver's lifetime of a requested token without expirationSeconds: an hour. */
export const DEFAULT_TOKEN_EXPIRATION_SECONDS = 3600;

const forbidden = (name: string, why: string): StoreError => new StoreError({
  code: 403, reason: 'Forbidden', message: `serviceaccounts "${name}" is forbidden: ${why}`, details: { name, kind: 'serviceaccounts' },
});

/** Issues the token `input` (a TokenRequest) asks for ServiceAccount `name` of `namespace`; `node` is the requester when a node asks. */
export function requestToken(
  objects: Pick<Objects, 'get'>, signer: ServiceAccountTokens, namespace: string, name: string, input: unknown, node: string | undefined, nowMs: number,
): TokenRequest {
  const parsed = tokenRequestSchema.safeParse(input);
  if (!parsed.success) {
    throw invalid('TokenRequest', name, parsed.error.issues.map((i) => ({ field: formatPath(i.path), message: i.code === 'unrecognized_keys' ? `unknown field(s) ${i.keys.map((k) => `"${k}"`).join(', ')}` : i.message })));
  }
  const { spec } = parsed.data;
  const sa = objects.get(serviceAccounts, namespace, name);
  if (!sa) throw notFound(`serviceaccounts "${name}" not found`);
  const ref = spec.boundObjectRef;
  let pod: { name: string; uid: string } | undefined;
  if (ref) {
    const bound = objects.get(pods, namespace, ref.name);
    if (!bound) throw notFound(`pods "${ref.name}" not found`);
    if (ref.uid !== undefined && ref.uid !== '' && ref.uid !== bound.metadata.uid) {
      throw new StoreError({ code: 409, reason: 'Conflict', message: `the UID in the bound object reference (${ref.uid}) does not match the UID in record. The object might have been deleted and then recreated` });
    }
    if ((bound.spec.serviceAccountName ?? '') !== name) {
      throw new StoreError({ code: 400, reason: 'BadRequest', message: `cannot bind token for serviceaccount "${name}" to pod running with different serviceaccount name.` });
    }
    if (node !== undefined && bound.spec.nodeName !== node) throw forbidden(name, `node requested token bound to a pod scheduled on a different node`);
    pod = { name: bound.metadata.name, uid: bound.metadata.uid ?? '' };
  } else if (node !== undefined) {
    throw forbidden(name, 'node requested token not bound to a pod');
  }
  const expirationSeconds = spec.expirationSeconds ?? DEFAULT_TOKEN_EXPIRATION_SECONDS;
  const { token, claims } = signer.issue({
    namespace, serviceAccount: { name, uid: sa.metadata.uid ?? '' }, ...(pod ? { pod } : {}),
    audiences: spec.audiences?.length ? spec.audiences : API_AUDIENCES, expirationSeconds,
  }, nowMs);
  return {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
    metadata: { name, namespace, creationTimestamp: new Date(nowMs).toISOString() },
    spec: { ...spec, audiences: claims.aud, expirationSeconds },
    status: { token, expirationTimestamp: new Date(claims.exp * 1000).toISOString() },
  };
}

/** Who a service account token is: Kubernetes' user and groups. */
export interface ServiceAccountUser { name: string; groups: string[] }

/**
 * The user a token this cluster issued names, while its account (same uid) and its bound pod (same uid, deletion
 * time not passed) exist; undefined for any other token.
 */
export function authenticateServiceAccountToken(objects: Pick<Objects, 'get'>, signer: ServiceAccountTokens, token: string, nowMs: number): ServiceAccountUser | undefined {
  const claims = signer.verify(token, nowMs);
  if (!claims) return undefined;
  const k = claims['kubernetes.io'];
  const sa = objects.get(serviceAccounts, k.namespace, k.serviceaccount.name);
  if (!sa || sa.metadata.uid !== k.serviceaccount.uid || sa.metadata.deletionTimestamp !== undefined) return undefined;
  if (k.pod) {
    const pod = objects.get(pods, k.namespace, k.pod.name);
    if (!pod || pod.metadata.uid !== k.pod.uid) return undefined;
    if (pod.metadata.deletionTimestamp !== undefined && Date.parse(pod.metadata.deletionTimestamp) <= nowMs) return undefined;
  }
  return { name: serviceAccountUser(k.namespace, k.serviceaccount.name), groups: [SERVICE_ACCOUNTS_GROUP, `${SERVICE_ACCOUNTS_GROUP}:${k.namespace}`, AUTHENTICATED_GROUP] };
}
