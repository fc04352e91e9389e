// Every well-known label, annotation, taint key and extended-resource name the cluster reads or writes, in one
// place. Kubernetes' own keys keep their Kubernetes spelling and meaning; Flotilla's live under flotilla.io/.

// ---- extended resources --------------------------------------------------------------------------------

export const GPU_RESOURCE_NVIDIA = 'nvidia.com/gpu';
export const GPU_RESOURCE_AMD = 'amd.com/gpu';

// ---- node labels ---------------------------------------------------------------------------------------

export const LABEL_ARCH = 'kubernetes.io/arch';
export const LABEL_OS = 'kubernetes.io/os';
export const LABEL_HOSTNAME = 'kubernetes.io/hostname';
export const LABEL_ZONE = 'topology.kubernetes.io/zone';
/** Prefix of the node role labels (`node-role.kubernetes.io/control-plane`); the role is what follows. */
export const LABEL_NODE_ROLE_PREFIX = 'node-role.kubernetes.io/';
/** Prefix (also of its subdomains) of node labels only admins set: a node can neither set nor change them (NodeRestriction). */
export const LABEL_NODE_RESTRICTION_PREFIX = 'node-restriction.kubernetes.io/';
export const LABEL_GPU_COUNT = 'flotilla.io/gpu.count';
export const LABEL_GPU_VENDOR = 'flotilla.io/gpu.vendor';
export const LABEL_GPU_MODEL = 'flotilla.io/gpu.model';
export const LABEL_GPU_MEMORY = 'flotilla.io/gpu.memory';
export const LABEL_PI_MODEL = 'flotilla.io/pi.model';
/** Node label: value "shared" allows several sharing pods on one GPU of this node. */
export const LABEL_GPU_SHARING = 'flotilla.io/gpu-sharing';
/** Node label "true": a simulated (hollow) node, see node-agent/hollow.ts. */
export const LABEL_HOLLOW = 'flotilla.io/hollow';

// ---- node taints (as Kubernetes' node lifecycle controller) ----------------------------------------------

export const TAINT_UNREACHABLE = 'node.kubernetes.io/unreachable';
export const TAINT_NOT_READY = 'node.kubernetes.io/not-ready';
export const TAINT_UNSCHEDULABLE = 'node.kubernetes.io/unschedulable';
/** Node label (Kubernetes'): the node never serves LoadBalancer traffic. */
export const LABEL_EXCLUDE_FROM_EXTERNAL_LOAD_BALANCERS = 'node.kubernetes.io/exclude-from-external-load-balancers';

/** On the watch BOOKMARK that ends the initial events of a watch with sendInitialEvents=true (Kubernetes'). */
export const ANNOTATION_INITIAL_EVENTS_END = 'k8s.io/initial-events-end';
/** Any object kubectl apply wrote: the configuration it applied last (JSON); on a Secret it holds the values. */
export const ANNOTATION_LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';

// ---- node annotations ----------------------------------------------------------------------------------

/** Node: fingerprint of the public key of the agent that registered it (see node-agent/identity.ts). */
export const ANNOTATION_NODE_KEY = 'flotilla.io/node-key';
/** Node: set by the node lifecycle controller while the node is unreachable: when its pods are evicted (ISO time). */
export const ANNOTATION_EVICTION_AT = 'flotilla.io/eviction-at';

// ---- pod annotations -----------------------------------------------------------------------------------

/** Pod annotation: quantity; every assigned GPU has at least this much memory. */
export const ANNOTATION_GPU_MEMORY_MIN = 'flotilla.io/gpu-memory-min';
/** Pod annotation: pattern matched against the GPU model, a linear-time regular expression subset (./gpu-model-pattern.ts). */
export const ANNOTATION_GPU_MODEL = 'flotilla.io/gpu-model';
/** Pod annotation: "shared" when the pod accepts a GPU other sharing pods use. */
export const ANNOTATION_GPU_SHARING = 'flotilla.io/gpu-sharing';
/** Pod annotation: comma-separated GPU UUIDs the pod must get, exactly those (one per GPU it asks). */
export const ANNOTATION_GPU_IDS = 'flotilla.io/gpu-ids';
/** The UUIDs of an ANNOTATION_GPU_IDS value. Throws naming what is wrong: an empty entry, whitespace, a repeat. */
export function parseGpuIds(value: string): string[] {
  const ids = value.split(',');
  ids.forEach((id, i) => {
    if (!/^[^\s,]+$/.test(id)) throw new Error(`entry ${i + 1} ("${id}") is not a GPU UUID: a non-empty name without spaces`);
    if (ids.indexOf(id) !== i) throw new Error(`GPU ${id} is listed twice`);
  });
  return ids;
}
/** Pod annotation set by the scheduler: comma-separated GPU UUIDs the agent passes to Docker. */
export const ANNOTATION_ASSIGNED_GPUS = 'flotilla.io/assigned-gpus';
/** Pod annotation: "binpack" | "spread". */
export const ANNOTATION_PLACEMENT = 'flotilla.io/placement';
/** Pod annotation: architectures the image exists for, comma-separated ("amd64,arm64"). */
export const ANNOTATION_IMAGE_ARCH = 'flotilla.io/image-arch';
/**
 * Pod annotation set at admission (never by users: admission overwrites it): the handler of the pod's
 * RuntimeClass, the Docker runtime its containers run with. Recorded on the pod so that an agent starting it
 * from its cache, with the servers unreachable, still knows.
 */
export const ANNOTATION_RUNTIME_HANDLER = 'flotilla.io/runtime-handler';
/**
 * Hollow nodes only: a pod annotated with a CPU quantity ("800m") and/or a memory quantity ("256Mi") reports
 * exactly that as its usage (see node-agent/usage.ts), so that tests can drive the autoscaler.
 */
export const ANNOTATION_SIMULATED_CPU = 'flotilla.io/simulated-cpu';
export const ANNOTATION_SIMULATED_MEMORY = 'flotilla.io/simulated-memory';

// ---- workload controllers (as Kubernetes) --------------------------------------------------------------

/** The label Deployments and DaemonSets put on pods (and ReplicaSets) to tell template versions apart. */
export const LABEL_POD_TEMPLATE_HASH = 'pod-template-hash';
export const LABEL_CONTROLLER_REVISION_HASH = 'controller-revision-hash';
export const LABEL_JOB_NAME = 'batch.kubernetes.io/job-name';
/** The legacy job label Kubernetes still sets beside batch.kubernetes.io/job-name. */
export const LABEL_JOB_NAME_LEGACY = 'job-name';
export const LABEL_CONTROLLER_UID = 'batch.kubernetes.io/controller-uid';
/** Job annotation the CronJob controller sets: the scheduled time the Job is for, RFC 3339 in the CronJob's time zone. */
export const ANNOTATION_CRONJOB_SCHEDULED_TIMESTAMP = 'batch.kubernetes.io/cronjob-scheduled-timestamp';
/** Job annotation `create job --from=cronjob/NAME` sets to "manual": the Job was started by hand, not by the schedule. */
export const ANNOTATION_CRONJOB_INSTANTIATE = 'cronjob.kubernetes.io/instantiate';
export const LABEL_STATEFULSET_POD_NAME = 'statefulset.kubernetes.io/pod-name';
export const LABEL_POD_INDEX = 'apps.kubernetes.io/pod-index';
/** ReplicaSet annotation: the Deployment revision the ReplicaSet's template is. */
export const ANNOTATION_DEPLOYMENT_REVISION = 'deployment.kubernetes.io/revision';
/**
 * ReplicaSet annotations a Deployment writes whenever it scales one: its spec.replicas, and that plus maxSurge,
 * at that time. An active ReplicaSet whose desired-replicas differs from the Deployment's marks a scaling event;
 * max-replicas is the size the ReplicaSets' proportions were taken against.
 */
export const ANNOTATION_DESIRED_REPLICAS = 'deployment.kubernetes.io/desired-replicas';
export const ANNOTATION_MAX_REPLICAS = 'deployment.kubernetes.io/max-replicas';
/** Deployment annotation kubectl records: the command that made the current revision. */
export const ANNOTATION_CHANGE_CAUSE = 'kubernetes.io/change-cause';
/** Pod template annotation `rollout restart` sets to force a new revision. */
export const ANNOTATION_RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';

// ---- Services and their endpoints (as Kubernetes) --------------------------------------------------------

/** EndpointSlice label: the Service the slice belongs to. */
export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';
/** EndpointSlice label: who manages the slice; the controller touches only slices labelled with its own name. */
export const LABEL_ENDPOINTSLICE_MANAGED_BY = 'endpointslice.kubernetes.io/managed-by';
/** The value of LABEL_ENDPOINTSLICE_MANAGED_BY on the slices Flotilla's endpoints controller keeps. */
export const ENDPOINTSLICE_CONTROLLER_NAME = 'endpointslice-controller.flotilla.io';
/** Labels Kubernetes puts on the `kubernetes` Service (provider=kubernetes, component=apiserver). */
export const LABEL_PROVIDER = 'provider';
export const LABEL_COMPONENT = 'component';

/** Service annotation: the LoadBalancer address asked for (as spec.loadBalancerIP; the one address of the Service). */
export const ANNOTATION_LOAD_BALANCER_IPS = 'flotilla.io/load-balancer-ips';
/** Service annotation set by the servers: the node that announces the Service's pool address on the LAN. */
export const ANNOTATION_LOAD_BALANCER_NODE = 'flotilla.io/load-balancer-node';
/** The AddressPool the --load-balancer-pool flag of the servers keeps. */
export const DEFAULT_ADDRESS_POOL = 'default';
/**
 * Namespace of the in-memory announcer leases (server/controllers/load-balancer.ts): an agent ready to
 * announce LoadBalancer addresses renews LB_SPEAKER_LEASE_NAMESPACE/NODE every LB_SPEAKER_RENEW_MS.
 */
export const LB_SPEAKER_LEASE_NAMESPACE = 'flotilla-lb-speakers';
export const LB_SPEAKER_RENEW_MS = 500;
/** An agent withdraws its addresses when its last confirmed renewal was sent longer ago than this. */
export const LB_SPEAKER_FENCE_MS = 1_000;
/** The leader gives a silent announcer's addresses to another node only this long after its last renewal (> the fence). */
export const LB_SPEAKER_EXPIRY_MS = 1_600;
// ---- storage (as Kubernetes' PV controller and k3s' local-path-provisioner) -------------------------------

/** StorageClass annotation "true": the class a PersistentVolumeClaim without storageClassName gets at create. */
export const ANNOTATION_DEFAULT_STORAGE_CLASS = 'storageclass.kubernetes.io/is-default-class';
/** PV and PVC annotation "yes": the controller finished binding them to each other. */
export const ANNOTATION_BIND_COMPLETED = 'pv.kubernetes.io/bind-completed';
/** PV and PVC annotation "yes": the controller (not the user) chose the other side of the binding. */
export const ANNOTATION_BOUND_BY_CONTROLLER = 'pv.kubernetes.io/bound-by-controller';
/** PV annotation: the provisioner that made the volume. */
export const ANNOTATION_PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by';
/** PVC annotation: the provisioner asked to make a volume for the claim. */
export const ANNOTATION_STORAGE_PROVISIONER = 'volume.kubernetes.io/storage-provisioner';
/** PVC annotation set when the first pod using a WaitForFirstConsumer claim is scheduled: that pod's node. */
export const ANNOTATION_SELECTED_NODE = 'volume.kubernetes.io/selected-node';
/** PVC finalizer: the claim stays while a pod uses it. */
export const FINALIZER_PVC_PROTECTION = 'kubernetes.io/pvc-protection';
/** PV finalizer: the volume stays while a claim is bound to it. */
export const FINALIZER_PV_PROTECTION = 'kubernetes.io/pv-protection';
/** The provisioner of the built-in StorageClass: a directory per volume under the data dir of the chosen node's agent. */
export const LOCAL_PATH_PROVISIONER = 'flotilla.io/local-path';
/** The built-in default StorageClass every cluster has. */
export const LOCAL_PATH_STORAGE_CLASS = 'local-path';
/** Node annotation the agent sets: the absolute directory its local-path volumes live under (<data dir>/storage). */
export const ANNOTATION_LOCAL_PATH_DIR = 'flotilla.io/local-path-dir';
/** PV finalizer of local-path volumes: the agent of the volume's node removes it once the directory is gone. */
export const FINALIZER_LOCAL_PATH = 'flotilla.io/local-path-cleanup';

// ---- ServiceAccounts (as Kubernetes' serviceaccount admission, token controller and root-ca-cert-publisher) ----

/** The ServiceAccount a pod without spec.serviceAccountName runs as, kept in every namespace. */
export const DEFAULT_SERVICE_ACCOUNT = 'default';
/** Where every container finds its service account token, the cluster CA and its namespace. */
export const SERVICE_ACCOUNT_MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
/** Prefix of the projected volume serviceaccount admission adds to a pod (kube-api-access-XXXXX). */
export const SERVICE_ACCOUNT_VOLUME_PREFIX = 'kube-api-access-';
/** The ConfigMap of every namespace holding the cluster CA under key ca.crt. */
export const ROOT_CA_CONFIGMAP = 'kube-root-ca.crt';
export const ROOT_CA_KEY = 'ca.crt';
/** Annotation of the kube-root-ca.crt ConfigMaps, as Kubernetes' root-ca-cert-publisher sets it. */
export const ANNOTATION_ROOT_CA_DESCRIPTION = 'kubernetes.io/description';
/** The lifetime serviceaccount admission gives a pod's projected token: an hour and seven seconds, as Kubernetes. */
export const POD_TOKEN_EXPIRATION_SECONDS = 3607;
/** Where a TokenRequest for ServiceAccount NAME of NAMESPACE is posted. */
export function serviceAccountTokenPath(namespace: string, name: string): string {
  return `/api/v1/namespaces/${encodeURIComponent(namespace)}/serviceaccounts/${encodeURIComponent(name)}/token`;
}
/** The user name of a service account's tokens, and the groups every one of them is in. */
export function serviceAccountUser(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}
export const SERVICE_ACCOUNTS_GROUP = 'system:serviceaccounts';
/** Kubernetes' group of every authenticated identity. */
export const AUTHENTICATED_GROUP = 'system:authenticated';

// ---- compose projects (cli/compose) ----------------------------------------------------------------------

/** Label on every object `flotilla compose up` makes: the project's name; `compose down` removes what carries it. */
export const LABEL_COMPOSE_PROJECT = 'flotilla.io/compose-project';
/** Label on a compose service's workload, pods and Services: the service's name. */
export const LABEL_COMPOSE_SERVICE = 'flotilla.io/compose-service';

// ---- Flotilla's own records ----------------------------------------------------------------------------

/** Secret type of the records that hold API and join tokens (kube-system). */
export const SECRET_TYPE_TOKENS = 'flotilla.io/tokens';
/** Where an agent sends its CSR (POST {"nodeName", "csr"}): served by server/api/routes/node-certificates.ts. */
export const NODE_CERTIFICATES_PATH = '/apis/flotilla.io/v1/nodecertificates';

// ---- image archives between the CLI, the servers and the agents -------------------------------------------

/**
 * Node NODE's images (server/api/routes/node-images.ts, `flotilla image`): GET lists them, POST loads the `docker
 * save` archive of the body (with ARCHIVE_DIGEST_HEADER), DELETE ?name=IMAGE removes one.
 */
export function nodeImagesPath(node: string): string {
  return `/apis/flotilla.io/v1/nodes/${encodeURIComponent(node)}/images`;
}
/**
 * Request header, or trailer (for an archive sent while it is made), of an image archive upload: "sha256:<hex>" of
 * the archive's bytes, checked before it is loaded; the trailer of an agent's archive download.
 */
export const ARCHIVE_DIGEST_HEADER = 'x-flotilla-archive-digest';
/** Whether a request's Trailer header announces ARCHIVE_DIGEST_HEADER after the body. */
export function archiveDigestTrails(trailerHeader: string | undefined): boolean {
  return (trailerHeader ?? '').toLowerCase().split(/\s*,\s*/).includes(ARCHIVE_DIGEST_HEADER);
}
/** A well-formed ARCHIVE_DIGEST_HEADER value: "sha256:" and 64 lower-case hex digits. */
export function isArchiveDigest(text: string): boolean {
  return /^sha256:[0-9a-f]{64}$/.test(text);
}
/** Answer header of an image archive download (an agent's GET /v1/images/archive): the id of the image it holds. */
export const IMAGE_ID_HEADER = 'x-flotilla-image-id';
// ---- Ingress -------------------------------------------------------------------------------------------

/** IngressClass annotation (as Kubernetes): "true" makes the class the one Ingresses without a class get. */
export const ANNOTATION_DEFAULT_INGRESS_CLASS = 'ingressclass.kubernetes.io/is-default-class';
/** The IngressClass the servers make, and the controller name the agents' built-in router serves. */
export const DEFAULT_INGRESS_CLASS = 'flotilla';
export const INGRESS_CONTROLLER = 'flotilla.io/ingress';
/**
 * Node annotation the agent keeps while its router serves Ingresses: "http=PORT,https=PORT". The Ingress status
 * controller lists the InternalIPs of the Ready nodes that carry it.
 */
export const ANNOTATION_INGRESS_PORTS = 'flotilla.io/ingress-ports';

/**
 * The kubelet's safe sysctls (namespaced, isolated between pods), by the Kubernetes minor that made each safe: the
 * only ones an agent sets (node-agent), and the only ones Pod Security's baseline level allows at each policy
 * version (server/objects/pod-security.ts).
 */
export const SAFE_SYSCTLS: readonly { since: number; names: readonly string[] }[] = [
  { since: 0, names: ['kernel.shm_rmid_forced', 'net.ipv4.ip_local_port_range', 'net.ipv4.tcp_syncookies', 'net.ipv4.ping_group_range', 'net.ipv4.ip_unprivileged_port_start'] },
  { since: 27, names: ['net.ipv4.ip_local_reserved_ports'] },
  { since: 29, names: ['net.ipv4.tcp_keepalive_time', 'net.ipv4.tcp_fin_timeout', 'net.ipv4.tcp_keepalive_intvl', 'net.ipv4.tcp_keepalive_probes'] },
  { since: 32, names: ['net.ipv4.tcp_rmem', 'net.ipv4.tcp_wmem'] },
];

/** The safe sysctls as of Kubernetes 1.`minor` (every one for Infinity). */
export function safeSysctls(minor: number): Set<string> {
  return new Set(SAFE_SYSCTLS.filter((s) => s.since <= minor).flatMap((s) => s.names));
}
