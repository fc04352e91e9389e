// Typed shapes of every served kind, with Kubernetes field names. Only the fields Flotilla reads or
// serves are listed; validate.ts refuses anything else. Flotilla additions live in annotations and labels
// (see the constants below) and in two clearly named Node.status fields: `gpus` and `hardware`.
import type { KubeObject, ObjectMeta } from './meta.js';

// ---- Flotilla labels and annotations -------------------------------------------------------------------

export const GPU_RESOURCE_NVIDIA = 'nvidia.com/gpu';
export const GPU_RESOURCE_AMD = 'amd.com/gpu';

export const LABEL_ARCH = 'kubernetes.io/arch';
export const LABEL_OS = 'kubernetes.io/os';
export const LABEL_HOSTNAME = 'kubernetes.io/hostname';
export const LABEL_GPU_COUNT = 'flotilla.io/gpu.count';
export const LABEL_GPU_VENDOR = 'flotilla.io/gpu.vendor';
export const LABEL_GPU_MODEL = 'flotilla.io/gpu.model';
export const LABEL_GPU_MEMORY = 'flotilla.io/gpu.memory';
export const LABEL_PI_MODEL = 'flotilla.io/pi.model';
/** Node label: value "shared" allows several sharing pods on one GPU of this node. */
export const LABEL_GPU_SHARING = 'flotilla.io/gpu-sharing';

/** Pod annotation: quantity; every assigned GPU has at least this much memory. */
export const ANNOTATION_GPU_MEMORY_MIN = 'flotilla.io/gpu-memory-min';
/** Pod annotation: regular expression matched against the GPU model. */
export const ANNOTATION_GPU_MODEL = 'flotilla.io/gpu-model';
/** Pod annotation: "shared" when the pod accepts a GPU other sharing pods use. */
export const ANNOTATION_GPU_SHARING = 'flotilla.io/gpu-sharing';
/** Pod annotation set by the scheduler: comma-separated GPU UUIDs the agent passes to Docker. */
export const ANNOTATION_ASSIGNED_GPUS = 'flotilla.io/assigned-gpus';
/** Pod annotation: "binpack" | "spread". */
export const ANNOTATION_PLACEMENT = 'flotilla.io/placement';
/** Pod annotation: architectures the image exists for, comma-separated ("amd64,arm64"). */
export const ANNOTATION_IMAGE_ARCH = 'flotilla.io/image-arch';
/** Node: fingerprint of the public key of the agent that registered it (see node-agent/identity.ts). */
export const ANNOTATION_NODE_KEY = 'flotilla.io/node-key';
/** Node: set by the node lifecycle controller while the node is unreachable: when its pods are evicted (ISO time). */
export const ANNOTATION_EVICTION_AT = 'flotilla.io/eviction-at';
/**
 * Pod annotation set at admission (never by users: admission overwrites it): the handler of the pod's
 * RuntimeClass, the Docker runtime its containers run with. Recorded on the pod so that an agent starting it
 * from its cache, with the servers unreachable, still knows.
 */
export const ANNOTATION_RUNTIME_HANDLER = 'flotilla.io/runtime-handler';

// ---- scheduling priorities (as Kubernetes) -------------------------------------------------------------

/** The highest value a PriorityClass other than the built-in system ones may have. */
export const HIGHEST_USER_DEFINABLE_PRIORITY = 1_000_000_000;
/** Prefix reserved for the built-in PriorityClasses. */
export const SYSTEM_PRIORITY_CLASS_PREFIX = 'system-';
/** The PriorityClasses every cluster has, exactly as Kubernetes makes them. */
export const SYSTEM_PRIORITY_CLASSES: readonly { name: string; value: number; description: string }[] = Object.freeze([
  { name: 'system-node-critical', value: 2_000_001_000, description: 'Used for system critical pods that must not be moved from their current node.' },
  { name: 'system-cluster-critical', value: 2_000_000_000, description: 'Used for system critical pods that must run in the cluster, but can be moved to another node if necessary.' },
]);

// ---- shared pieces --------------------------------------------------------------------------------------

/** Resource name -> quantity ("500m", "2Gi", 1). Quantities parse with quantity.ts. */
export type ResourceList = Record<string, string | number>;
export type IntOrString = number | string;

export interface LabelSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

/** The object form of a label selector (spec.selector of Deployment, ReplicaSet, ...). */
export interface LabelSelectorSpec {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason?: string;
  message?: string;
  lastTransitionTime?: string;
  lastHeartbeatTime?: string;
  lastProbeTime?: string;
  lastUpdateTime?: string;
  observedGeneration?: number;
}

export interface ObjectReference {
  apiVersion?: string;
  kind?: string;
  namespace?: string;
  name?: string;
  uid?: string;
  resourceVersion?: string;
  fieldPath?: string;
}

// ---- Pod -----------------------------------------------------------------------------------------------

export interface ResourceRequirements {
  limits?: ResourceList;
  requests?: ResourceList;
}

export interface ContainerPort {
  name?: string;
  containerPort: number;
  hostPort?: number;
  hostIP?: string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
}

export interface KeySelector {
  name?: string;
  key: string;
  optional?: boolean;
}

export interface EnvVarSource {
  configMapKeyRef?: KeySelector;
  secretKeyRef?: KeySelector;
  fieldRef?: { apiVersion?: string; fieldPath: string };
  resourceFieldRef?: { containerName?: string; resource: string; divisor?: string | number };
}

export interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: EnvVarSource;
}

export interface EnvFromSource {
  prefix?: string;
  configMapRef?: { name?: string; optional?: boolean };
  secretRef?: { name?: string; optional?: boolean };
}

export interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  subPath?: string;
}

export interface ExecAction {
  command?: string[];
}

export interface HTTPGetAction {
  path?: string;
  port: IntOrString;
  host?: string;
  scheme?: 'HTTP' | 'HTTPS';
  httpHeaders?: { name: string; value: string }[];
}

export interface TCPSocketAction {
  port: IntOrString;
  host?: string;
}

export interface Probe {
  exec?: ExecAction;
  httpGet?: HTTPGetAction;
  tcpSocket?: TCPSocketAction;
  grpc?: { port: number; service?: string };
  initialDelaySeconds?: number;
  timeoutSeconds?: number;
  periodSeconds?: number;
  successThreshold?: number;
  failureThreshold?: number;
  terminationGracePeriodSeconds?: number;
}

export interface LifecycleHandler {
  exec?: ExecAction;
  httpGet?: HTTPGetAction;
  tcpSocket?: TCPSocketAction;
  sleep?: { seconds: number };
}

export interface SecurityContext {
  privileged?: boolean;
  runAsUser?: number;
  runAsGroup?: number;
  runAsNonRoot?: boolean;
  readOnlyRootFilesystem?: boolean;
  allowPrivilegeEscalation?: boolean;
  capabilities?: { add?: string[]; drop?: string[] };
}

export interface Container {
  name: string;
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  command?: string[];
  args?: string[];
  workingDir?: string;
  env?: EnvVar[];
  envFrom?: EnvFromSource[];
  ports?: ContainerPort[];
  resources?: ResourceRequirements;
  volumeMounts?: VolumeMount[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { postStart?: LifecycleHandler; preStop?: LifecycleHandler };
  securityContext?: SecurityContext;
  stdin?: boolean;
  stdinOnce?: boolean;
  tty?: boolean;
  terminationMessagePath?: string;
  terminationMessagePolicy?: 'File' | 'FallbackToLogsOnError';
}

export interface KeyToPath {
  key: string;
  path: string;
  mode?: number;
}

export interface Volume {
  name: string;
  emptyDir?: { medium?: '' | 'Memory'; sizeLimit?: string | number };
  hostPath?: { path: string; type?: string };
  configMap?: { name?: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  secret?: { secretName?: string; items?: KeyToPath[]; defaultMode?: number; optional?: boolean };
  persistentVolumeClaim?: { claimName: string; readOnly?: boolean };
}

export interface Toleration {
  key?: string;
  operator?: 'Exists' | 'Equal';
  value?: string;
  effect?: '' | 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  tolerationSeconds?: number;
}

export interface NodeSelectorRequirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';
  values?: string[];
}

export interface NodeSelectorTerm {
  matchExpressions?: NodeSelectorRequirement[];
  matchFields?: NodeSelectorRequirement[];
}

export interface PodAffinityTerm {
  labelSelector?: LabelSelectorSpec;
  namespaces?: string[];
  topologyKey: string;
}

export interface Affinity {
  nodeAffinity?: {
    requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms: NodeSelectorTerm[] };
    preferredDuringSchedulingIgnoredDuringExecution?: { weight: number; preference: NodeSelectorTerm }[];
  };
  podAffinity?: {
    requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[];
    preferredDuringSchedulingIgnoredDuringExecution?: { weight: number; podAffinityTerm: PodAffinityTerm }[];
  };
  podAntiAffinity?: {
    requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[];
    preferredDuringSchedulingIgnoredDuringExecution?: { weight: number; podAffinityTerm: PodAffinityTerm }[];
  };
}

export interface PodSpec {
  containers: Container[];
  initContainers?: Container[];
  volumes?: Volume[];
  restartPolicy?: 'Always' | 'OnFailure' | 'Never';
  terminationGracePeriodSeconds?: number;
  activeDeadlineSeconds?: number;
  nodeName?: string;
  nodeSelector?: Record<string, string>;
  affinity?: Affinity;
  tolerations?: Toleration[];
  schedulerName?: string;
  /** Set by admission from priorityClassName (a client may not choose it). */
  priority?: number;
  priorityClassName?: string;
  /** Set by admission from the PriorityClass. */
  preemptionPolicy?: PreemptionPolicy;
  /** Names a RuntimeClass; admission applies its scheduling and overhead and records its handler. */
  runtimeClassName?: string;
  /** Resources the pod's runtime takes beyond its containers (from its RuntimeClass); counted for fit. */
  overhead?: Record<string, string | number>;
  /** The OS the containers need: the pod only fits nodes labelled kubernetes.io/os with this name. */
  os?: { name: 'linux' | 'windows' };
  /** Refused by validation unless empty: topology spread is not supported yet. */
  topologySpreadConstraints?: unknown[];
  hostNetwork?: boolean;
  hostPID?: boolean;
  hostIPC?: boolean;
  hostname?: string;
  subdomain?: string;
  dnsPolicy?: 'ClusterFirst' | 'ClusterFirstWithHostNet' | 'Default' | 'None';
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  securityContext?: {
    runAsUser?: number; runAsGroup?: number; runAsNonRoot?: boolean; fsGroup?: number; supplementalGroups?: number[];
  };
  imagePullSecrets?: { name: string }[];
}

export interface ContainerStateWaiting {
  reason?: string;
  message?: string;
}

export interface ContainerStateRunning {
  startedAt?: string;
}

export interface ContainerStateTerminated {
  exitCode: number;
  signal?: number;
  reason?: string;
  message?: string;
  startedAt?: string;
  finishedAt?: string;
  containerID?: string;
}

/** At most one of the three is set. */
export interface ContainerState {
  waiting?: ContainerStateWaiting;
  running?: ContainerStateRunning;
  terminated?: ContainerStateTerminated;
}

export interface ContainerStatus {
  name: string;
  state?: ContainerState;
  lastState?: ContainerState;
  ready: boolean;
  restartCount: number;
  image: string;
  imageID?: string;
  containerID?: string;
  started?: boolean;
}

export type PodPhase = 'Pending' | 'Running' | 'Succeeded' | 'Failed' | 'Unknown';

export interface PodStatus {
  phase?: PodPhase;
  conditions?: Condition[];
  message?: string;
  reason?: string;
  hostIP?: string;
  hostIPs?: { ip: string }[];
  podIP?: string;
  podIPs?: { ip: string }[];
  startTime?: string;
  containerStatuses?: ContainerStatus[];
  initContainerStatuses?: ContainerStatus[];
  qosClass?: 'Guaranteed' | 'Burstable' | 'BestEffort';
  nominatedNodeName?: string;
}

export interface Pod extends KubeObject {
  apiVersion: 'v1';
  kind: 'Pod';
  spec: PodSpec;
  status?: PodStatus;
}

export interface PodTemplateSpec {
  metadata?: ObjectMeta;
  spec: PodSpec;
}

/** Body of POST .../pods/{name}/binding. */
export interface Binding extends KubeObject {
  apiVersion: 'v1';
  kind: 'Binding';
  target: ObjectReference;
}

// ---- Node ----------------------------------------------------------------------------------------------

export interface Taint {
  key: string;
  value?: string;
  effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
  timeAdded?: string;
}

export interface NodeSpec {
  podCIDR?: string;
  podCIDRs?: string[];
  providerID?: string;
  unschedulable?: boolean;
  taints?: Taint[];
}

export interface NodeAddress {
  type: 'Hostname' | 'InternalIP' | 'ExternalIP' | 'InternalDNS' | 'ExternalDNS';
  address: string;
}

export interface NodeSystemInfo {
  machineID?: string;
  systemUUID?: string;
  bootID?: string;
  kernelVersion?: string;
  osImage?: string;
  containerRuntimeVersion?: string;
  kubeletVersion?: string;
  kubeProxyVersion?: string;
  operatingSystem?: string;
  architecture?: string;
}

/** One physical GPU of a node (Flotilla field). */
export interface NodeGpu {
  index: number;
  uuid: string;
  /** "nvidia" | "amd" | "intel" | another lowercase vendor name. */
  vendor: string;
  model: string;
  /** A quantity, e.g. "24Gi". */
  memory: string;
  health: 'Healthy' | 'Unhealthy';
  busId?: string;
  driver?: string;
}

/** Board and health facts of a node (Flotilla field). */
export interface NodeHardware {
  piModel?: string;
  jetsonModel?: string;
  temperatureC?: number;
  throttled?: boolean;
  undervoltage?: boolean;
  cpuModel?: string;
}

export interface NodeStatus {
  /** Keys: cpu, memory, pods, nvidia.com/gpu, amd.com/gpu. */
  capacity?: ResourceList;
  allocatable?: ResourceList;
  conditions?: Condition[];
  addresses?: NodeAddress[];
  nodeInfo?: NodeSystemInfo;
  daemonEndpoints?: { kubeletEndpoint?: { Port: number } };
  images?: { names?: string[]; sizeBytes?: number }[];
  gpus?: NodeGpu[];
  hardware?: NodeHardware;
}

export interface Node extends KubeObject {
  apiVersion: 'v1';
  kind: 'Node';
  spec?: NodeSpec;
  status?: NodeStatus;
}

// ---- RuntimeClass, PriorityClass -----------------------------------------------------------------------

export type PreemptionPolicy = 'PreemptLowerPriority' | 'Never';

export interface RuntimeClass extends KubeObject {
  apiVersion: 'node.k8s.io/v1';
  kind: 'RuntimeClass';
  /** The Docker runtime (a key of the engine's `Runtimes`) pods of this class run with, e.g. "nvidia". */
  handler: string;
  overhead?: { podFixed?: Record<string, string | number> };
  scheduling?: { nodeSelector?: Record<string, string>; tolerations?: Toleration[] };
}

export interface PriorityClass extends KubeObject {
  apiVersion: 'scheduling.k8s.io/v1';
  kind: 'PriorityClass';
  value: number;
  globalDefault?: boolean;
  description?: string;
  preemptionPolicy?: PreemptionPolicy;
}

// ---- Namespace, ConfigMap, Secret, Event, Lease --------------------------------------------------------

export interface Namespace extends KubeObject {
  apiVersion: 'v1';
  kind: 'Namespace';
  spec?: { finalizers?: string[] };
  status?: { phase?: 'Active' | 'Terminating'; conditions?: Condition[] };
}

export interface ConfigMap extends KubeObject {
  apiVersion: 'v1';
  kind: 'ConfigMap';
  data?: Record<string, string>;
  binaryData?: Record<string, string>;
  immutable?: boolean;
}

export interface Secret extends KubeObject {
  apiVersion: 'v1';
  kind: 'Secret';
  type?: string;
  /** Values are base64. */
  data?: Record<string, string>;
  /** Write-only convenience: plain-text values merged into data. */
  stringData?: Record<string, string>;
  immutable?: boolean;
}

export interface Event extends KubeObject {
  apiVersion: 'v1';
  kind: 'Event';
  involvedObject: ObjectReference;
  reason?: string;
  message?: string;
  type?: 'Normal' | 'Warning';
  source?: { component?: string; host?: string };
  firstTimestamp?: string;
  lastTimestamp?: string;
  eventTime?: string;
  count?: number;
  reportingComponent?: string;
  reportingInstance?: string;
  action?: string;
  related?: ObjectReference;
}

export interface LeaseSpec {
  holderIdentity?: string;
  leaseDurationSeconds?: number;
  acquireTime?: string;
  renewTime?: string;
  leaseTransitions?: number;
}

export interface Lease extends KubeObject {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  spec?: LeaseSpec;
}

// ---- Service -------------------------------------------------------------------------------------------

export interface ServicePort {
  name?: string;
  protocol?: 'TCP' | 'UDP' | 'SCTP';
  appProtocol?: string;
  port: number;
  targetPort?: IntOrString;
  nodePort?: number;
}

export interface ServiceSpec {
  type?: 'ClusterIP' | 'NodePort' | 'LoadBalancer' | 'ExternalName';
  selector?: Record<string, string>;
  ports?: ServicePort[];
  clusterIP?: string;
  clusterIPs?: string[];
  externalIPs?: string[];
  externalName?: string;
  sessionAffinity?: 'None' | 'ClientIP';
  externalTrafficPolicy?: 'Cluster' | 'Local';
  internalTrafficPolicy?: 'Cluster' | 'Local';
  loadBalancerIP?: string;
  publishNotReadyAddresses?: boolean;
  ipFamilies?: ('IPv4' | 'IPv6')[];
  ipFamilyPolicy?: 'SingleStack' | 'PreferDualStack' | 'RequireDualStack';
}

export interface ServiceStatus {
  loadBalancer?: { ingress?: { ip?: string; hostname?: string }[] };
  conditions?: Condition[];
}

export interface Service extends KubeObject {
  apiVersion: 'v1';
  kind: 'Service';
  spec?: ServiceSpec;
  status?: ServiceStatus;
}

// ---- workloads -----------------------------------------------------------------------------------------

export interface DeploymentStrategy {
  type?: 'RollingUpdate' | 'Recreate';
  rollingUpdate?: { maxUnavailable?: IntOrString; maxSurge?: IntOrString };
}

export interface DeploymentSpec {
  replicas?: number;
  selector: LabelSelectorSpec;
  template: PodTemplateSpec;
  strategy?: DeploymentStrategy;
  minReadySeconds?: number;
  revisionHistoryLimit?: number;
  progressDeadlineSeconds?: number;
  paused?: boolean;
}

export interface DeploymentStatus {
  observedGeneration?: number;
  replicas?: number;
  updatedReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  unavailableReplicas?: number;
  collisionCount?: number;
  conditions?: Condition[];
}

export interface Deployment extends KubeObject {
  apiVersion: 'apps/v1';
  kind: 'Deployment';
  spec: DeploymentSpec;
  status?: DeploymentStatus;
}

export interface ReplicaSetSpec {
  replicas?: number;
  selector: LabelSelectorSpec;
  template?: PodTemplateSpec;
  minReadySeconds?: number;
}

export interface ReplicaSetStatus {
  replicas: number;
  fullyLabeledReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  observedGeneration?: number;
  conditions?: Condition[];
}

export interface ReplicaSet extends KubeObject {
  apiVersion: 'apps/v1';
  kind: 'ReplicaSet';
  spec: ReplicaSetSpec;
  status?: ReplicaSetStatus;
}

export interface DaemonSetSpec {
  selector: LabelSelectorSpec;
  template: PodTemplateSpec;
  updateStrategy?: {
    type?: 'RollingUpdate' | 'OnDelete';
    rollingUpdate?: { maxUnavailable?: IntOrString; maxSurge?: IntOrString };
  };
  minReadySeconds?: number;
  revisionHistoryLimit?: number;
}

export interface DaemonSetStatus {
  currentNumberScheduled: number;
  numberMisscheduled: number;
  desiredNumberScheduled: number;
  numberReady: number;
  observedGeneration?: number;
  updatedNumberScheduled?: number;
  numberAvailable?: number;
  numberUnavailable?: number;
  collisionCount?: number;
  conditions?: Condition[];
}

export interface DaemonSet extends KubeObject {
  apiVersion: 'apps/v1';
  kind: 'DaemonSet';
  spec: DaemonSetSpec;
  status?: DaemonSetStatus;
}

export interface PersistentVolumeClaimTemplate {
  metadata?: ObjectMeta;
  spec: {
    accessModes?: string[];
    resources?: ResourceRequirements;
    storageClassName?: string;
    volumeMode?: 'Filesystem' | 'Block';
  };
}

export interface StatefulSetSpec {
  replicas?: number;
  selector: LabelSelectorSpec;
  template: PodTemplateSpec;
  serviceName?: string;
  podManagementPolicy?: 'OrderedReady' | 'Parallel';
  updateStrategy?: { type?: 'RollingUpdate' | 'OnDelete'; rollingUpdate?: { partition?: number; maxUnavailable?: IntOrString } };
  volumeClaimTemplates?: PersistentVolumeClaimTemplate[];
  minReadySeconds?: number;
  revisionHistoryLimit?: number;
}

export interface StatefulSetStatus {
  replicas: number;
  observedGeneration?: number;
  readyReplicas?: number;
  currentReplicas?: number;
  updatedReplicas?: number;
  availableReplicas?: number;
  currentRevision?: string;
  updateRevision?: string;
  collisionCount?: number;
  conditions?: Condition[];
}

export interface StatefulSet extends KubeObject {
  apiVersion: 'apps/v1';
  kind: 'StatefulSet';
  spec: StatefulSetSpec;
  status?: StatefulSetStatus;
}

export interface JobSpec {
  template: PodTemplateSpec;
  parallelism?: number;
  completions?: number;
  backoffLimit?: number;
  activeDeadlineSeconds?: number;
  ttlSecondsAfterFinished?: number;
  completionMode?: 'NonIndexed' | 'Indexed';
  suspend?: boolean;
  selector?: LabelSelectorSpec;
  manualSelector?: boolean;
}

export interface JobStatus {
  active?: number;
  succeeded?: number;
  failed?: number;
  ready?: number;
  startTime?: string;
  completionTime?: string;
  conditions?: Condition[];
}

export interface Job extends KubeObject {
  apiVersion: 'batch/v1';
  kind: 'Job';
  spec: JobSpec;
  status?: JobStatus;
}

export interface MetricTarget {
  type: 'Utilization' | 'Value' | 'AverageValue';
  value?: string | number;
  averageValue?: string | number;
  averageUtilization?: number;
}

export interface MetricSpec {
  type: 'Resource' | 'Pods' | 'Object' | 'External' | 'ContainerResource';
  resource?: { name: string; target: MetricTarget };
  containerResource?: { name: string; container: string; target: MetricTarget };
  pods?: { metric: { name: string; selector?: LabelSelectorSpec }; target: MetricTarget };
  object?: {
    describedObject: { apiVersion?: string; kind: string; name: string };
    metric: { name: string; selector?: LabelSelectorSpec };
    target: MetricTarget;
  };
  external?: { metric: { name: string; selector?: LabelSelectorSpec }; target: MetricTarget };
}

export interface HPAScalingRules {
  stabilizationWindowSeconds?: number;
  selectPolicy?: 'Max' | 'Min' | 'Disabled';
  policies?: { type: 'Pods' | 'Percent'; value: number; periodSeconds: number }[];
}

export interface HorizontalPodAutoscalerSpec {
  scaleTargetRef: { apiVersion?: string; kind: string; name: string };
  minReplicas?: number;
  maxReplicas: number;
  metrics?: MetricSpec[];
  behavior?: { scaleUp?: HPAScalingRules; scaleDown?: HPAScalingRules };
}

export interface HorizontalPodAutoscalerStatus {
  observedGeneration?: number;
  lastScaleTime?: string;
  currentReplicas?: number;
  desiredReplicas: number;
  currentMetrics?: unknown[];
  conditions?: Condition[];
}

export interface HorizontalPodAutoscaler extends KubeObject {
  apiVersion: 'autoscaling/v2';
  kind: 'HorizontalPodAutoscaler';
  spec: HorizontalPodAutoscalerSpec;
  status?: HorizontalPodAutoscalerStatus;
}

/** The autoscaling/v1 Scale body of the `scale` subresource. */
export interface Scale extends KubeObject {
  apiVersion: 'autoscaling/v1';
  kind: 'Scale';
  spec: { replicas?: number };
  status?: { replicas: number; selector?: string };
}
