// Two controllers of kube-controller-manager, keyed by namespace name:
// - serviceaccount: every namespace that is not being deleted has the ServiceAccount `default` (made again when
//   deleted), so that pods, which run as it unless they name another, are admitted;
// - root-ca-cert-publisher: every such namespace has the ConfigMap kube-root-ca.crt holding the cluster CA under
//   ca.crt (kept equal to the CA), which the token volume of every pod projects as ca.crt.
// The server's bootstrap makes both in the built-in namespaces (ensureNamespaceAccounts) before it is ready.
import {
  ANNOTATION_ROOT_CA_DESCRIPTION, DEFAULT_SERVICE_ACCOUNT, ROOT_CA_CONFIGMAP, ROOT_CA_KEY, resourceOfKind,
} from '../../api-types/index.js';
import type { ConfigMap, ServiceAccount } from '../../api-types/index.js';
import type { Objects } from '../objects/service.js';
import { StoreError } from '../store/types.js';
import type { Controller, ControllerDeps } from './controller.js';

const namespaces = resourceOfKind('Namespace');
const serviceAccounts = resourceOfKind('ServiceAccount');
const configMaps = resourceOfKind('ConfigMap');

/** Kubernetes' description of the kube-root-ca.crt ConfigMap (pkg/controller/certificates/rootcacertpublisher). */
const ROOT_CA_DESCRIPTION = 'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. '
  + 'No other usage is guaranteed across distributions of Kubernetes clusters.';

function live(objects: Objects, namespace: string): boolean {
  const ns = objects.get(namespaces, undefined, namespace);
  return ns !== undefined && ns.metadata.deletionTimestamp === undefined;
}

/** A create that lost a race with another writer (409) or with the namespace's deletion (403, 404) is done. */
async function createUnlessGone(create: () => Promise<unknown>): Promise<void> {
  try {
    await create();
  } catch (err) {
    if (!(err instanceof StoreError && [403, 404, 409].includes(err.failure.code))) throw err;
  }
}

/** Makes `default` in `namespace` when it is missing. */
export async function ensureDefaultServiceAccount(objects: Objects, namespace: string): Promise<void> {
  if (!live(objects, namespace) || objects.get(serviceAccounts, namespace, DEFAULT_SERVICE_ACCOUNT)) return;
  const body: ServiceAccount = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: DEFAULT_SERVICE_ACCOUNT, namespace } };
  await createUnlessGone(() => objects.create(serviceAccounts, namespace, body));
}

/** Makes kube-root-ca.crt in `namespace`, or puts `caPem` back into it. */
export async function ensureRootCaConfigMap(objects: Objects, namespace: string, caPem: string): Promise<void> {
  if (!live(objects, namespace)) return;
  const current = objects.get(configMaps, namespace, ROOT_CA_CONFIGMAP);
  const data = { [ROOT_CA_KEY]: caPem };
  if (current && current.data?.[ROOT_CA_KEY] === caPem && Object.keys(current.data).length === 1) return;
  const metadata = { name: ROOT_CA_CONFIGMAP, namespace, annotations: { [ANNOTATION_ROOT_CA_DESCRIPTION]: ROOT_CA_DESCRIPTION } };
  if (current) {
    await objects.replace(configMaps, namespace, ROOT_CA_CONFIGMAP, { ...current, metadata: { ...current.metadata, annotations: { ...current.metadata.annotations, ...metadata.annotations } }, data });
    return;
  }
  const body: ConfigMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata, data };
  await createUnlessGone(() => objects.create(configMaps, namespace, body));
}

/** Both of the above, for the bootstrap's namespaces. */
export async function ensureNamespaceAccounts(objects: Objects, namespace: string, caPem: string): Promise<void> {
  await ensureDefaultServiceAccount(objects, namespace);
  await ensureRootCaConfigMap(objects, namespace, caPem);
}

const namespaceKeys = (deps: ControllerDeps) => () => deps.objects.list(namespaces).items.map((n) => n.metadata.name);

export function serviceAccountController(deps: ControllerDeps): Controller {
  return {
    name: 'serviceaccount',
    watches: [
      { resource: namespaces, keys: (e) => [e.object.metadata.name] },
      { resource: serviceAccounts, keys: (e) => (e.type === 'DELETED' && e.object.metadata.name === DEFAULT_SERVICE_ACCOUNT ? [e.object.metadata.namespace ?? ''] : []) },
    ],
    allKeys: namespaceKeys(deps),
    reconcile: (namespace) => ensureDefaultServiceAccount(deps.objects, namespace),
  };
}

/** Runs only where the server handed the controllers its CA (deps.clusterCaPem). */
export function rootCaCertPublisher(deps: ControllerDeps): Controller {
  const caPem = deps.clusterCaPem;
  return {
    name: 'root-ca-cert-publisher',
    watches: [
      { resource: namespaces, keys: (e) => [e.object.metadata.name] },
      { resource: configMaps, keys: (e) => (e.object.metadata.name === ROOT_CA_CONFIGMAP ? [e.object.metadata.namespace ?? ''] : []) },
    ],
    allKeys: caPem === undefined ? () => [] : namespaceKeys(deps),
    reconcile: async (namespace) => { if (caPem !== undefined) await ensureRootCaConfigMap(deps.objects, namespace, caPem); },
  };
}
