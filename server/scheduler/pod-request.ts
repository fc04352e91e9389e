// Request parsing: what a pod asks of the scheduler (resources, GPUs, host ports, placement strategy, its
// required anti-affinity terms), resolved from its spec and annotations and checked, with errors naming the
// field. The node table records bound pods by these requests; the placement core never sees a Pod.
import {
  ANNOTATION_GPU_IDS, ANNOTATION_GPU_MEMORY_MIN, ANNOTATION_GPU_MODEL, ANNOTATION_GPU_SHARING, ANNOTATION_IMAGE_ARCH, ANNOTATION_PLACEMENT, GPU_RESOURCE_AMD, GPU_RESOURCE_NVIDIA,
  LABEL_HOSTNAME, LABEL_ZONE, canonicalJson, parseGpuIds, parseGpuModelPattern,
} from '../../api-types/index.js';
import type { GpuModelPattern, LabelSelectorSpec, NodeSelectorTerm, Pod } from '../../api-types/index.js';
import * as L from './layout.js';
import { parseBytes, parseMillicores, parseQuantity } from './quantity.js';

const GPU_RESOURCES: Record<string, string> = { [GPU_RESOURCE_NVIDIA]: 'nvidia', [GPU_RESOURCE_AMD]: 'amd' };

/** What a pod asks for, resolved from its spec and annotations. */
export interface PodRequest {
  key: string;
  namespace: string;
  labels: Record<string, string>;
  cpuMilli: number;
  memoryBytes: number;
  gpus: number;
  gpuResource: string;
  gpuVendor: string;
  gpuMemoryMin: number;
  gpuModel: GpuModelPattern | null;
  gpuShared: boolean;
  /** The GPU UUIDs the pod must get (annotation flotilla.io/gpu-ids), one per GPU; null: any. */
  gpuIds: string[] | null;
  hostPorts: number[];
  strategy: 'binpack' | 'spread';
  /** Required pod anti-affinity terms with a supported topology key; bound pods' terms repel later pods. */
  antiAffinity: AntiAffinityTerm[];
  /** The architectures the pod's node may have (annotation flotilla.io/image-arch, narrowed by what is known of
   * its images: Scheduler.place); null: any. */
  arches: string[] | null;
}

/** The architectures annotation flotilla.io/image-arch lists; null without it. */
export function annotatedArches(pod: Pod): string[] | null {
  const list = (pod.metadata.annotations?.[ANNOTATION_IMAGE_ARCH] ?? '').split(',').map((a) => a.trim()).filter(Boolean);
  return list.length > 0 ? list : null;
}

/** The architectures both lists allow (null: any). */
export function intersectArches(a: readonly string[] | null, b: readonly string[] | null): string[] | null {
  if (a === null) return b === null ? null : [...b];
  return b === null ? [...a] : a.filter((x) => b.includes(x));
}

/** A required anti-affinity term a pod declares; `key` is equal for equal terms (topology, namespaces, selector). */
export interface AntiAffinityTerm { key: string; topology: number; namespaces: string[]; selector: LabelSelectorSpec }

/** Topology slot (TOPO_*) of a supported topologyKey, -1 for any other. */
export function topologyOf(topologyKey: string): number {
  return topologyKey === LABEL_HOSTNAME ? L.TOPO_HOSTNAME : topologyKey === LABEL_ZONE ? L.TOPO_ZONE : -1;
}

/** Kubernetes: a node selector term with neither matchExpressions nor matchFields matches no node (required),
 * and a preference of that kind is a no-op (preferred). */
export function emptyNodeSelectorTerm(term: NodeSelectorTerm): boolean {
  return !term.matchExpressions?.length && !term.matchFields?.length;
}

/** Identity of a selector over pods in `namespaces` (sorted): equal for equal selectors. */
export function selectorKey(selector: LabelSelectorSpec, namespaces: readonly string[]): string {
  return `${namespaces.join(',')}|${canonicalJson(selector)}`;
}

export function podKey(pod: Pod): string {
  return pod.metadata.uid ?? `${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`;
}

/** Whether a label selector (object form) selects `labels`. Throws on an unknown operator. */
export function selectorMatches(selector: LabelSelectorSpec, labels: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const v = labels[e.key];
    switch (e.operator) {
      case 'In': if (v === undefined || !(e.values ?? []).includes(v)) return false; break;
      case 'NotIn': if (v !== undefined && (e.values ?? []).includes(v)) return false; break;
      case 'Exists': if (v === undefined) return false; break;
      case 'DoesNotExist': if (v !== undefined) return false; break;
      default: throw new Error(`labelSelector operator "${String(e.operator)}" is not one of In, NotIn, Exists, DoesNotExist`);
    }
  }
  return true;
}

const PROTOCOLS: Record<string, number> = { TCP: 0, UDP: 1, SCTP: 2 };

/** Resolves a pod's requests. Throws an Error naming the field when something is malformed. */
export function resolvePodRequest(pod: Pod, defaultStrategy: 'binpack' | 'spread'): PodRequest {
  const name = `pod ${pod.metadata.namespace ?? 'default'}/${pod.metadata.name}`;
  const ann = pod.metadata.annotations ?? {};
  let cpuMilli = 0; let memoryBytes = 0; let gpus = 0; let gpuResource = 'nvidia.com/gpu';
  const hostPorts: number[] = [];
  if (!Array.isArray(pod.spec?.containers)) throw new Error(`${name}: spec.containers must be a list`);
  pod.spec.containers.forEach((c, i) => {
    const path = `${name}: spec.containers[${i}].resources`;
    const req = c.resources?.requests ?? {}; const lim = c.resources?.limits ?? {};
    const cpu = req.cpu ?? lim.cpu; const mem = req.memory ?? lim.memory;
    if (cpu !== undefined) cpuMilli += parseMillicores(cpu, `${path}.requests.cpu`);
    if (mem !== undefined) memoryBytes += parseBytes(mem, `${path}.requests.memory`);
    for (const resource of Object.keys(GPU_RESOURCES)) {
      const n = lim[resource] ?? req[resource];
      if (n === undefined) continue;
      const count = parseQuantity(n, `${path}.limits["${resource}"]`);
      if (!Number.isInteger(count) || count < 0) throw new Error(`${path}.limits["${resource}"]: ${n} is not a whole number of GPUs`);
      if (count > 0 && gpus > 0 && gpuResource !== resource) throw new Error(`${name}: asks both ${gpuResource} and ${resource}; one vendor per pod`);
      if (count > 0) gpuResource = resource;
      gpus += count;
    }
    (c.ports ?? []).forEach((p, j) => {
      if (p.hostPort === undefined || p.hostPort === 0) return;
      if (!Number.isInteger(p.hostPort) || p.hostPort < 1 || p.hostPort > 65535) throw new Error(`${name}: spec.containers[${i}].ports[${j}].hostPort ${p.hostPort} is not a port`);
      const proto = PROTOCOLS[p.protocol ?? 'TCP'];
      if (proto === undefined) throw new Error(`${name}: spec.containers[${i}].ports[${j}].protocol "${p.protocol}" is not TCP, UDP or SCTP`);
      hostPorts.push(p.hostPort | (proto << 16));
    });
  });
  // Kubernetes counts the pod's overhead on top of its containers for fit.
  const overhead = pod.spec.overhead ?? {};
  if (overhead.cpu !== undefined) cpuMilli += parseMillicores(overhead.cpu, `${name}: spec.overhead.cpu`);
  if (overhead.memory !== undefined) memoryBytes += parseBytes(overhead.memory, `${name}: spec.overhead.memory`);
  if (gpus > L.MAX_GPUS) throw new Error(`${name}: asks ${gpus} GPUs, more than the ${L.MAX_GPUS} a node can hold`);
  const memMin = ann[ANNOTATION_GPU_MEMORY_MIN];
  const modelPattern = ann[ANNOTATION_GPU_MODEL];
  let model: GpuModelPattern | null = null;
  if (modelPattern !== undefined) {
    try { model = parseGpuModelPattern(modelPattern); } catch (e) { throw new Error(`${name}: annotation ${ANNOTATION_GPU_MODEL}: ${(e as Error).message}`); }
  }
  let gpuIds: string[] | null = null;
  const ids = ann[ANNOTATION_GPU_IDS];
  if (ids !== undefined) {
    try { gpuIds = parseGpuIds(ids); } catch (e) { throw new Error(`${name}: annotation ${ANNOTATION_GPU_IDS}: ${(e as Error).message}`); }
    if (gpuIds.length !== gpus) throw new Error(`${name}: annotation ${ANNOTATION_GPU_IDS} lists ${gpuIds.length} GPUs, the pod asks ${gpus}`);
  }
  const sharing = ann[ANNOTATION_GPU_SHARING];
  if (sharing !== undefined && sharing !== 'shared' && sharing !== 'exclusive') {
    throw new Error(`${name}: annotation ${ANNOTATION_GPU_SHARING} is "${sharing}", expected "shared" or "exclusive"`);
  }
  const namespace = pod.metadata.namespace ?? 'default';
  const antiAffinity: AntiAffinityTerm[] = [];
  (pod.spec.affinity?.podAntiAffinity?.requiredDuringSchedulingIgnoredDuringExecution ?? []).forEach((t, i) => {
    // Other topology keys are refused by writePod for a pod to place; on a bound pod they cannot be honoured.
    const topology = topologyOf(t.topologyKey);
    if (topology < 0) return;
    const selector = t.labelSelector ?? {};
    try { selectorMatches(selector, {}); } catch (e) {
      throw new Error(`${name}: spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[${i}].labelSelector: ${(e as Error).message}`);
    }
    const namespaces = [...new Set(t.namespaces?.length ? t.namespaces : [namespace])].sort();
    antiAffinity.push({ key: `${topology}|${selectorKey(selector, namespaces)}`, topology, namespaces, selector });
  });
  const placement = ann[ANNOTATION_PLACEMENT] ?? defaultStrategy;
  if (placement !== 'binpack' && placement !== 'spread') {
    throw new Error(`${name}: annotation ${ANNOTATION_PLACEMENT} is "${placement}", expected "binpack" or "spread"`);
  }
  return {
    key: podKey(pod),
    namespace,
    labels: pod.metadata.labels ?? {},
    cpuMilli, memoryBytes, gpus, gpuResource,
    gpuVendor: GPU_RESOURCES[gpuResource]!,
    gpuMemoryMin: memMin === undefined ? 0 : parseBytes(memMin, `${name}: annotation ${ANNOTATION_GPU_MEMORY_MIN}`),
    gpuModel: model,
    gpuShared: sharing === 'shared',
    gpuIds,
    hostPorts,
    strategy: placement,
    antiAffinity,
    arches: annotatedArches(pod),
  };
}
