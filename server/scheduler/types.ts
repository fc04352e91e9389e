// The parts of Kubernetes-shaped Node and Pod objects the scheduler reads. Local, structural types until
// api-types/ settles; any object with these fields (and more) is accepted.

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  deletionTimestamp?: string | null;
}

export type NodeSelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist' | 'Gt' | 'Lt';
export interface NodeSelectorRequirement { key: string; operator: NodeSelectorOperator; values?: string[] }
export interface NodeSelectorTerm { matchExpressions?: NodeSelectorRequirement[] }

export interface LabelSelectorRequirement { key: string; operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist'; values?: string[] }
export interface LabelSelector { matchLabels?: Record<string, string>; matchExpressions?: LabelSelectorRequirement[] }
export interface PodAffinityTerm { labelSelector?: LabelSelector; namespaces?: string[]; topologyKey: string }
export interface WeightedPodAffinityTerm { weight: number; podAffinityTerm: PodAffinityTerm }
export interface PodAffinityRules {
  requiredDuringSchedulingIgnoredDuringExecution?: PodAffinityTerm[];
  preferredDuringSchedulingIgnoredDuringExecution?: WeightedPodAffinityTerm[];
}
export interface Affinity {
  nodeAffinity?: {
    requiredDuringSchedulingIgnoredDuringExecution?: { nodeSelectorTerms: NodeSelectorTerm[] };
    preferredDuringSchedulingIgnoredDuringExecution?: { weight: number; preference: NodeSelectorTerm }[];
  };
  podAffinity?: PodAffinityRules;
  podAntiAffinity?: PodAffinityRules;
}

export type TaintEffect = 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
export interface Taint { key: string; value?: string; effect: TaintEffect }
export interface Toleration { key?: string; operator?: 'Equal' | 'Exists'; value?: string; effect?: TaintEffect | '' }

export type Quantity = string | number;
export interface Container {
  name: string;
  image?: string;
  resources?: { requests?: Record<string, Quantity>; limits?: Record<string, Quantity> };
  ports?: { containerPort: number; hostPort?: number; protocol?: 'TCP' | 'UDP' | 'SCTP' }[];
}

export interface Pod {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec: {
    nodeName?: string;
    nodeSelector?: Record<string, string>;
    affinity?: Affinity;
    tolerations?: Toleration[];
    /** Resolved from priorityClassName at admission; higher is tried first. */
    priority?: number;
    /** The runtime's own cost (from the RuntimeClass), added to the containers' requests. */
    overhead?: Record<string, Quantity>;
    /** The pod fits only nodes whose kubernetes.io/os label is this name. */
    os?: { name: string };
    containers: Container[];
  };
  status?: { phase?: string };
}

export interface NodeGpu {
  index: number;
  uuid: string;
  vendor: string;
  model: string;
  memory: Quantity;
  health: 'Healthy' | 'Unhealthy';
  busId?: string;
  driver?: string;
}

export interface Node {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: { unschedulable?: boolean; taints?: Taint[] };
  status?: {
    capacity?: Record<string, Quantity>;
    allocatable?: Record<string, Quantity>;
    conditions?: { type: string; status: string }[];
    nodeInfo?: { architecture?: string };
    gpus?: NodeGpu[];
  };
}
