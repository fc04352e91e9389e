// Typed shapes of every served kind, with Kubernetes field names, derived from the schemas in validate.ts
// (the one definition of each shape: a field exists in a type exactly when the schema accepts it). Only the
// fields Flotilla reads or serves are modelled; validate.ts refuses anything else. Flotilla additions live in
// annotations and labels (well-known.ts) and in clearly named Node.status fields: `gpus`, `hardware` and `imagePlatforms`.
import type { z } from 'zod';
import type { kindSchemas, scaleSchema, tokenRequestSchema } from './validate.js';

/** The type of one kind, as its schema parses it. */
type KindOf<K extends keyof typeof kindSchemas> = z.output<(typeof kindSchemas)[K]>;
type Item<T extends readonly unknown[] | undefined> = NonNullable<T>[number];

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

// ---- Pod -----------------------------------------------------------------------------------------------

export type Pod = KindOf<'Pod'>;
export type PodSpec = Pod['spec'];
export type PodStatus = NonNullable<Pod['status']>;
export type PodPhase = NonNullable<PodStatus['phase']>;
export type Container = PodSpec['containers'][number];
export type ContainerPort = Item<Container['ports']>;
export type ResourceRequirements = NonNullable<Container['resources']>;
/** Resource name -> quantity ("500m", "2Gi", 1). Quantities parse with quantity.ts. */
export type ResourceList = NonNullable<ResourceRequirements['limits']>;
export type EnvVar = Item<Container['env']>;
export type EnvVarSource = NonNullable<EnvVar['valueFrom']>;
export type KeySelector = NonNullable<EnvVarSource['configMapKeyRef']>;
export type EnvFromSource = Item<Container['envFrom']>;
export type VolumeMount = Item<Container['volumeMounts']>;
export type Probe = NonNullable<Container['livenessProbe']>;
export type ExecAction = NonNullable<Probe['exec']>;
export type HTTPGetAction = NonNullable<Probe['httpGet']>;
export type TCPSocketAction = NonNullable<Probe['tcpSocket']>;
export type LifecycleHandler = NonNullable<NonNullable<Container['lifecycle']>['preStop']>;
export type SecurityContext = NonNullable<Container['securityContext']>;
export type Volume = Item<PodSpec['volumes']>;
export type KeyToPath = Item<NonNullable<Volume['configMap']>['items']>;
export type Toleration = Item<PodSpec['tolerations']>;
export type Affinity = NonNullable<PodSpec['affinity']>;
type NodeAffinity = NonNullable<Affinity['nodeAffinity']>;
export type NodeSelectorTerm = Item<NonNullable<NodeAffinity['requiredDuringSchedulingIgnoredDuringExecution']>['nodeSelectorTerms']>;
export type NodeSelectorRequirement = Item<NodeSelectorTerm['matchExpressions']>;
export type PodAffinityTerm = Item<NonNullable<Affinity['podAffinity']>['requiredDuringSchedulingIgnoredDuringExecution']>;
export type PreemptionPolicy = NonNullable<PodSpec['preemptionPolicy']>;
export type ContainerStatus = Item<PodStatus['containerStatuses']>;
/** At most one of the three is set. */
export type ContainerState = NonNullable<ContainerStatus['state']>;
export type ContainerStateWaiting = NonNullable<ContainerState['waiting']>;
export type ContainerStateRunning = NonNullable<ContainerState['running']>;
export type ContainerStateTerminated = NonNullable<ContainerState['terminated']>;

/** Body of POST .../pods/{name}/binding. */
export type Binding = KindOf<'Binding'>;

// ---- shared pieces --------------------------------------------------------------------------------------

export type Condition = Item<PodStatus['conditions']>;
export type ObjectReference = Binding['target'];

// ---- Node ----------------------------------------------------------------------------------------------

export type Node = KindOf<'Node'>;
export type NodeSpec = NonNullable<Node['spec']>;
export type Taint = Item<NodeSpec['taints']>;
export type NodeStatus = NonNullable<Node['status']>;
export type NodeAddress = Item<NodeStatus['addresses']>;
export type NodeSystemInfo = NonNullable<NodeStatus['nodeInfo']>;
/** One physical GPU of a node (Flotilla field). `vendor`: "nvidia" | "amd" | "intel" | another lowercase name. */
export type NodeGpu = Item<NodeStatus['gpus']>;
/** Board and health facts of a node (Flotilla field). */
export type NodeHardware = NonNullable<NodeStatus['hardware']>;
/** One image of `status.images` (the kubelet's ContainerImage: names, digests first, and sizeBytes). */
export type NodeImage = Item<NodeStatus['images']>;
/**
 * The platform of one image the node holds (Flotilla field `status.imagePlatforms`, one entry per entry of
 * `status.images`, with the same names): Go names as in image manifests, e.g. linux/arm/v7 (`variant` only
 * where the image has one). The scheduler reads it as "this image exists at least for this platform".
 */
export type NodeImagePlatform = Item<NodeStatus['imagePlatforms']>;

// ---- RuntimeClass, PriorityClass -----------------------------------------------------------------------

/** `handler`: the Docker runtime (a key of the engine's `Runtimes`) pods of this class run with, e.g. "nvidia". */
export type RuntimeClass = KindOf<'RuntimeClass'>;
export type PriorityClass = KindOf<'PriorityClass'>;

// ---- Namespace, ConfigMap, Secret, Event, Lease --------------------------------------------------------

export type Namespace = KindOf<'Namespace'>;
export type ConfigMap = KindOf<'ConfigMap'>;
/** `data` values are base64; `stringData` is the write-only plain-text convenience merged into data. */
export type Secret = KindOf<'Secret'>;
export type ServiceAccount = KindOf<'ServiceAccount'>;
/** authentication.k8s.io/v1 TokenRequest, the body and answer of POST serviceaccounts/NAME/token. */
export type TokenRequest = z.output<typeof tokenRequestSchema>;
export type ProjectedVolumeSource = NonNullable<Volume['projected']>;
export type VolumeProjection = Item<ProjectedVolumeSource['sources']>;
export type Event = KindOf<'Event'>;
export type Lease = KindOf<'Lease'>;
export type LeaseSpec = NonNullable<Lease['spec']>;

// ---- Service -------------------------------------------------------------------------------------------

export type Service = KindOf<'Service'>;
export type ServiceSpec = NonNullable<Service['spec']>;
export type ServicePort = Item<ServiceSpec['ports']>;
export type ServiceStatus = NonNullable<Service['status']>;

// ---- Endpoints, EndpointSlice -------------------------------------------------------------------------

export type Endpoints = KindOf<'Endpoints'>;
export type EndpointSubset = Item<Endpoints['subsets']>;
export type EndpointAddress = Item<EndpointSubset['addresses']>;
export type EndpointPort = Item<EndpointSubset['ports']>;
export type EndpointSlice = KindOf<'EndpointSlice'>;
export type SliceEndpoint = EndpointSlice['endpoints'][number];
export type EndpointConditions = NonNullable<SliceEndpoint['conditions']>;
export type SlicePort = Item<EndpointSlice['ports']>;

// ---- Ingress, IngressClass ----------------------------------------------------------------------------

export type Ingress = KindOf<'Ingress'>;
export type IngressSpec = Ingress['spec'];
export type IngressRule = Item<IngressSpec['rules']>;
export type HTTPIngressPath = NonNullable<IngressRule['http']>['paths'][number];
export type IngressBackend = HTTPIngressPath['backend'];
export type IngressTLS = Item<IngressSpec['tls']>;
export type IngressLoadBalancerIngress = Item<NonNullable<NonNullable<Ingress['status']>['loadBalancer']>['ingress']>;
export type IngressClass = KindOf<'IngressClass'>;

// ---- workloads -----------------------------------------------------------------------------------------

export type Deployment = KindOf<'Deployment'>;
export type DeploymentSpec = Deployment['spec'];
export type DeploymentStrategy = NonNullable<DeploymentSpec['strategy']>;
export type DeploymentStatus = NonNullable<Deployment['status']>;
export type PodTemplateSpec = DeploymentSpec['template'];
/** The object form of a label selector (spec.selector of Deployment, ReplicaSet, ...). */
export type LabelSelectorSpec = DeploymentSpec['selector'];
export type LabelSelectorRequirement = Item<LabelSelectorSpec['matchExpressions']>;
export type IntOrString = NonNullable<NonNullable<DeploymentStrategy['rollingUpdate']>['maxSurge']>;

export type ReplicaSet = KindOf<'ReplicaSet'>;
export type ReplicaSetSpec = ReplicaSet['spec'];
export type ReplicaSetStatus = NonNullable<ReplicaSet['status']>;

export type DaemonSet = KindOf<'DaemonSet'>;
export type DaemonSetSpec = DaemonSet['spec'];
export type DaemonSetStatus = NonNullable<DaemonSet['status']>;

export type StatefulSet = KindOf<'StatefulSet'>;
export type StatefulSetSpec = StatefulSet['spec'];
export type StatefulSetStatus = NonNullable<StatefulSet['status']>;
export type PersistentVolumeClaimTemplate = Item<StatefulSetSpec['volumeClaimTemplates']>;

export type Job = KindOf<'Job'>;
export type JobSpec = Job['spec'];
export type JobStatus = NonNullable<Job['status']>;

export type CronJob = KindOf<'CronJob'>;
export type CronJobSpec = CronJob['spec'];
export type CronJobStatus = NonNullable<CronJob['status']>;
export type ConcurrencyPolicy = NonNullable<CronJobSpec['concurrencyPolicy']>;

export type HorizontalPodAutoscaler = KindOf<'HorizontalPodAutoscaler'>;
export type HorizontalPodAutoscalerSpec = HorizontalPodAutoscaler['spec'];
export type HorizontalPodAutoscalerStatus = NonNullable<HorizontalPodAutoscaler['status']>;
export type MetricSpec = Item<HorizontalPodAutoscalerSpec['metrics']>;
export type MetricTarget = NonNullable<MetricSpec['resource']>['target'];
export type HPAScalingRules = NonNullable<NonNullable<HorizontalPodAutoscalerSpec['behavior']>['scaleUp']>;

/** The autoscaling/v1 Scale body of the `scale` subresource. */
export type Scale = z.output<typeof scaleSchema>;

/** A pool of LoadBalancer addresses on the LAN: ranges ("192.168.1.240-192.168.1.250", "192.168.1.240-250") and CIDRs. */
export type AddressPool = KindOf<'AddressPool'>;
// ---- storage -------------------------------------------------------------------------------------------

export type PersistentVolume = KindOf<'PersistentVolume'>;
export type PersistentVolumeSpec = PersistentVolume['spec'];
export type PersistentVolumeStatus = NonNullable<PersistentVolume['status']>;
export type PersistentVolumeClaim = KindOf<'PersistentVolumeClaim'>;
export type PersistentVolumeClaimSpec = PersistentVolumeClaim['spec'];
export type PersistentVolumeClaimStatus = NonNullable<PersistentVolumeClaim['status']>;
export type PersistentVolumeAccessMode = Item<PersistentVolumeClaimSpec['accessModes']>;
export type StorageClass = KindOf<'StorageClass'>;

// ---- RBAC ----------------------------------------------------------------------------------------------

export type Role = KindOf<'Role'>;
export type ClusterRole = KindOf<'ClusterRole'>;
export type RoleBinding = KindOf<'RoleBinding'>;
export type ClusterRoleBinding = KindOf<'ClusterRoleBinding'>;
export type PolicyRule = Item<Role['rules']>;
export type RbacSubject = Item<RoleBinding['subjects']>;
export type RoleRef = RoleBinding['roleRef'];

// ---- every kind ----------------------------------------------------------------------------------------

/** The type of each served kind (and Binding), by kind: what a typed read of a resource returns. */
export type ObjectsByKind = { [K in keyof typeof kindSchemas]: KindOf<K> };
export type Kind = keyof ObjectsByKind;
