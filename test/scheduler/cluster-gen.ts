// Seeded random clusters and pods for the differential tests and the benchmark. Same seed -> same objects.
import type { LabelSelectorSpec, Node, NodeGpu, Pod, PodAffinityTerm, Taint, Toleration } from '../../api-types/index.js';

/** mulberry32: small, fast, seeded. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;
const pick = <T>(rng: Rng, list: readonly T[]): T => list[Math.floor(rng() * list.length)]!;
const chance = (rng: Rng, p: number): boolean => rng() < p;
const int = (rng: Rng, lo: number, hi: number): number => lo + Math.floor(rng() * (hi - lo + 1));

export const GPU_MODELS = [
  { vendor: 'nvidia', model: 'NVIDIA GeForce RTX 4090', memory: '24Gi' },
  { vendor: 'nvidia', model: 'NVIDIA A100-SXM4-40GB', memory: '40Gi' },
  { vendor: 'nvidia', model: 'NVIDIA A100-SXM4-80GB', memory: '80Gi' },
  { vendor: 'nvidia', model: 'Tesla T4', memory: '16Gi' },
  { vendor: 'nvidia', model: 'NVIDIA H100 80GB HBM3', memory: '80Gi' },
  { vendor: 'amd', model: 'AMD Instinct MI210', memory: '64Gi' },
] as const;

export interface NodeOptions { name: string; cpu: number; memoryGi: number; arch?: string; zone?: string; labels?: Record<string, string>;
  gpus?: (typeof GPU_MODELS)[number][]; unhealthy?: number[]; taints?: Taint[]; ready?: boolean; unschedulable?: boolean; pods?: number }

/** One-line node builder (also used by table-driven tests). */
export function makeNode(o: NodeOptions): Node {
  const gpus: NodeGpu[] = (o.gpus ?? []).map((g, index) => ({
    index, uuid: `GPU-${o.name}-${index}`, vendor: g.vendor, model: g.model, memory: g.memory,
    health: o.unhealthy?.includes(index) ? 'Unhealthy' : 'Healthy',
  }));
  const labels: Record<string, string> = { 'kubernetes.io/hostname': o.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': o.arch ?? 'amd64', ...o.labels };
  if (o.zone) labels['topology.kubernetes.io/zone'] = o.zone;
  const nvidia = gpus.filter((g) => g.vendor === 'nvidia').length; const amd = gpus.filter((g) => g.vendor === 'amd').length;
  const allocatable: Record<string, string | number> = { cpu: String(o.cpu), memory: `${o.memoryGi}Gi`, pods: o.pods ?? 110 };
  if (nvidia) allocatable['nvidia.com/gpu'] = nvidia;
  if (amd) allocatable['amd.com/gpu'] = amd;
  return {
    apiVersion: 'v1', kind: 'Node', metadata: { name: o.name, labels },
    spec: { unschedulable: o.unschedulable ?? false, taints: o.taints ?? [] },
    status: { allocatable, capacity: allocatable, conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }], gpus },
  };
}

export interface PodOptions { name: string; namespace?: string; cpu?: string; memory?: string; gpus?: number; gpuResource?: string;
  labels?: Record<string, string>; annotations?: Record<string, string>; nodeSelector?: Record<string, string>;
  affinity?: Pod['spec']['affinity']; tolerations?: Toleration[]; hostPorts?: number[]; overhead?: Pod['spec']['overhead']; os?: NonNullable<Pod['spec']['os']>['name'] }

/** One-line pod builder. */
export function makePod(o: PodOptions): Pod {
  const limits: Record<string, string | number> = {};
  if (o.gpus) limits[o.gpuResource ?? 'nvidia.com/gpu'] = o.gpus;
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name: o.name, namespace: o.namespace ?? 'default', uid: `uid-${o.namespace ?? 'default'}-${o.name}`,
      labels: o.labels ?? {}, annotations: o.annotations ?? {} },
    spec: {
      ...(o.nodeSelector ? { nodeSelector: o.nodeSelector } : {}),
      ...(o.affinity ? { affinity: o.affinity } : {}),
      ...(o.tolerations ? { tolerations: o.tolerations } : {}),
      ...(o.overhead ? { overhead: o.overhead } : {}),
      ...(o.os ? { os: { name: o.os } } : {}),
      containers: [{
        name: 'main', image: 'busybox',
        resources: { requests: { cpu: o.cpu ?? '100m', memory: o.memory ?? '128Mi' }, limits },
        ports: (o.hostPorts ?? []).map((p) => ({ containerPort: p, hostPort: p })),
      }],
    },
  };
}

/** A random cluster exercising every filter: readiness, cordons, arches, zones, labels, taints, GPU mixes. */
export function randomCluster(rng: Rng, count: number): Node[] {
  const nodes: Node[] = [];
  for (let i = 0; i < count; i++) {
    const gpuNode = chance(rng, 0.25);
    const model = pick(rng, GPU_MODELS);
    const gpus = gpuNode ? Array.from({ length: int(rng, 1, 8) }, () => (chance(rng, 0.7) ? model : pick(rng, GPU_MODELS))) : [];
    const taints: Taint[] = [];
    if (gpuNode && chance(rng, 0.3)) taints.push({ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' });
    if (chance(rng, 0.1)) taints.push({ key: 'spot', effect: 'PreferNoSchedule' });
    if (chance(rng, 0.05)) taints.push({ key: 'maintenance', value: 'soon', effect: 'NoExecute' });
    const labels: Record<string, string> = { disk: pick(rng, ['ssd', 'hdd']), tier: String(int(rng, 1, 5)) };
    if (gpuNode && chance(rng, 0.3)) labels['flotilla.io/gpu-sharing'] = 'shared';
    if (chance(rng, 0.2)) labels.pool = pick(rng, ['edge', 'core', 'lab']);
    if (chance(rng, 0.05)) labels['kubernetes.io/os'] = 'windows';
    nodes.push(makeNode({
      name: `node-${i}`, cpu: pick(rng, [2, 4, 8, 16, 32]), memoryGi: pick(rng, [4, 8, 16, 32, 64]),
      arch: chance(rng, 0.2) ? 'arm64' : 'amd64', ...(chance(rng, 0.9) ? { zone: `zone-${int(rng, 1, 3)}` } : {}),
      labels, gpus, unhealthy: chance(rng, 0.1) ? [0] : [], taints,
      ready: chance(rng, 0.95), unschedulable: chance(rng, 0.03), pods: pick(rng, [8, 32, 110]),
    }));
  }
  return nodes;
}

/** A random pod; about 20% ask GPUs. */
export function randomPod(rng: Rng, i: number): Pod {
  const app = `app-${int(rng, 0, 9)}`;
  const gpu = chance(rng, 0.2);
  const annotations: Record<string, string> = {};
  if (gpu && chance(rng, 0.5)) annotations['flotilla.io/gpu-memory-min'] = pick(rng, ['16Gi', '24Gi', '40Gi', '70Gi']);
  if (gpu && chance(rng, 0.3)) annotations['flotilla.io/gpu-model'] = pick(rng, ['A100|H100', 'RTX 40', 'T4', 'MI2']);
  if (gpu && chance(rng, 0.3)) annotations['flotilla.io/gpu-sharing'] = 'shared';
  if (chance(rng, 0.2)) annotations['flotilla.io/placement'] = pick(rng, ['binpack', 'spread']);
  if (chance(rng, 0.15)) annotations['flotilla.io/image-arch'] = pick(rng, ['amd64', 'arm64', 'amd64,arm64']);
  const topologyKey = (): string => pick(rng, ['kubernetes.io/hostname', 'topology.kubernetes.io/zone']);
  const selector = (): LabelSelectorSpec => (chance(rng, 0.2)
    ? { matchExpressions: [{ key: 'app', operator: pick(rng, ['In', 'NotIn'] as const), values: [`app-${int(rng, 0, 9)}`, `app-${int(rng, 0, 9)}`] }] }
    : { matchLabels: { app: `app-${int(rng, 0, 9)}` } });
  const namespaces = (): Pick<PodAffinityTerm, 'namespaces'> => (chance(rng, 0.1) ? { namespaces: ['default', 'team-b'] } : {});
  const term = (): PodAffinityTerm => ({ topologyKey: topologyKey(), labelSelector: selector(), ...namespaces() });
  const affinity: NonNullable<Pod['spec']['affinity']> = {};
  if (chance(rng, 0.2)) {
    const op = pick(rng, ['In', 'NotIn', 'Exists', 'DoesNotExist', 'Gt', 'Lt'] as const);
    const expr = op === 'Gt' || op === 'Lt' ? { key: 'tier', operator: op, values: [String(int(rng, 1, 5))] }
      : op === 'Exists' || op === 'DoesNotExist' ? { key: 'pool', operator: op }
      : { key: 'disk', operator: op, values: [pick(rng, ['ssd', 'hdd'])] };
    affinity.nodeAffinity = { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [expr] }, ...(chance(rng, 0.3) ? [{ matchExpressions: [{ key: 'pool', operator: 'In' as const, values: ['lab'] }] }] : []), ...(chance(rng, 0.1) ? [{}] : [])] } };
  }
  if (chance(rng, 0.2)) {
    affinity.nodeAffinity = { ...affinity.nodeAffinity, preferredDuringSchedulingIgnoredDuringExecution: [
      { weight: int(rng, 1, 100), preference: { matchExpressions: [{ key: 'disk', operator: 'In', values: ['ssd'] }] } },
      { weight: int(rng, 1, 100), preference: { matchExpressions: [{ key: 'tier', operator: 'Gt', values: ['2'] }] } },
      ...(chance(rng, 0.1) ? [{ weight: int(rng, 1, 100), preference: {} }] : []),
    ] };
  }
  if (chance(rng, 0.1)) affinity.podAffinity = { requiredDuringSchedulingIgnoredDuringExecution: [term()] };
  if (chance(rng, 0.2)) affinity.podAntiAffinity = { requiredDuringSchedulingIgnoredDuringExecution: [{ topologyKey: topologyKey(), labelSelector: { matchLabels: { app } }, ...namespaces() }] };
  if (chance(rng, 0.2)) affinity.podAntiAffinity = { ...affinity.podAntiAffinity, preferredDuringSchedulingIgnoredDuringExecution: [{ weight: int(rng, 1, 100), podAffinityTerm: term() }] };
  if (chance(rng, 0.1)) affinity.podAffinity = { ...affinity.podAffinity, preferredDuringSchedulingIgnoredDuringExecution: [{ weight: int(rng, 1, 100), podAffinityTerm: term() }] };
  const tolerations: Toleration[] = [];
  if (gpu && chance(rng, 0.6)) tolerations.push({ key: 'dedicated', operator: 'Equal', value: 'gpu', effect: 'NoSchedule' });
  if (chance(rng, 0.1)) tolerations.push({ key: 'spot', operator: 'Exists' });
  if (chance(rng, 0.02)) tolerations.push({ operator: 'Exists' });
  const pod = makePod({
    name: `pod-${i}`, namespace: chance(rng, 0.8) ? 'default' : 'team-b',
    cpu: pick(rng, ['100m', '250m', '500m', '1', '2', '4']), memory: pick(rng, ['128Mi', '512Mi', '1Gi', '2Gi', '4Gi', '8Gi']),
    gpus: gpu ? pick(rng, [1, 1, 1, 2, 2, 4]) : 0, gpuResource: gpu && chance(rng, 0.1) ? 'amd.com/gpu' : 'nvidia.com/gpu',
    labels: { app }, annotations,
    ...(chance(rng, 0.15) ? { nodeSelector: chance(rng, 0.5) ? { disk: 'ssd' } : { 'kubernetes.io/arch': 'arm64' } } : {}),
    ...(Object.keys(affinity).length ? { affinity } : {}),
    tolerations,
    hostPorts: chance(rng, 0.05) ? [pick(rng, [80, 443, 8080])] : [],
    ...(chance(rng, 0.05) ? { overhead: { cpu: '250m', memory: '128Mi' } } : {}),
    ...(chance(rng, 0.05) ? { os: pick(rng, ['linux', 'linux', 'windows'] as const) } : {}),
  });
  // Rarer request forms, so that request parsing is compared too: a container with limits only (requests
  // default to them), a UDP host port.
  if (chance(rng, 0.1)) {
    pod.spec.containers.push({ name: 'sidecar', image: 'busybox', resources: { limits: { cpu: pick(rng, ['100m', '1']), memory: pick(rng, ['64Mi', '1Gi']) } } });
  }
  if (chance(rng, 0.03)) pod.spec.containers[0]!.ports!.push({ containerPort: 53, hostPort: 53, protocol: pick(rng, ['UDP', 'TCP'] as const) });
  // Pinned GPUs of one node of a cluster of up to 40 (node names of randomCluster), often missing there, now
  // and then of two nodes.
  const limits = pod.spec.containers[0]!.resources?.limits;
  const asked = Number(limits?.['nvidia.com/gpu'] ?? limits?.['amd.com/gpu'] ?? 0);
  if (gpu && asked > 0 && chance(rng, 0.5)) {
    const node = int(rng, 0, 8);
    pod.metadata.annotations!['flotilla.io/gpu-ids'] = Array.from({ length: asked }, (_, k) =>
      `GPU-node-${chance(rng, 0.05) ? int(rng, 0, 8) : node}-${2 * k + int(rng, 0, 1)}`).join(',');
  }
  return pod;
}
