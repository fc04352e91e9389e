// The reference scheduler: the placement semantics of asm/scheduler.ts (docs/scheduling.md) stated on Pod and
// Node objects, as a table of filters, each naming every reason it rejects a node for, and a table of scorers.
// It shares none of the host encoding (request parsing, interning, the column store, the pod and node words),
// only what the encoding must preserve (reason codes, the power table, the hashes of the tie-break): comparing
// it with the wasm core through the NodeTable (test/scheduler/differential.test.ts) checks the encoding as
// well as the core. A test oracle, written to be read, not to be fast: every placement
// recomputes the nodes' usage from the bound pods. It expects pods the request parser accepts.
import {
  ANNOTATION_GPU_IDS, ANNOTATION_GPU_MEMORY_MIN, ANNOTATION_GPU_MODEL, ANNOTATION_GPU_SHARING, ANNOTATION_IMAGE_ARCH, ANNOTATION_PLACEMENT,
  GPU_RESOURCE_AMD, GPU_RESOURCE_NVIDIA, LABEL_GPU_SHARING, LABEL_HOSTNAME, LABEL_OS,
  bytes, cpuMillis, labelSelectorFromSpec, matchesLabels, parseGpuModelPattern, parseQuantity,
  type GpuModelPattern, type Node, type NodeGpu, type NodeSelectorTerm, type Pod, type PodAffinityTerm, type Taint,
} from '../../api-types/index.js';
import { fnv1a, tieHash } from './hash.js';
import { ImagePlatforms, nodeArchitecture } from './image-platforms.js';
import * as L from './layout.js';
import { LABEL_ZONE } from '../../api-types/index.js';
import { emptyNodeSelectorTerm, podKey } from './pod-request.js';
import { DEFAULT_WEIGHTS, type ScoreName } from './scheduler.js';

/** The outcome of one placement. */
export interface ReferencePlacement {
  nodeName: string | null;
  gpuUuids: string[];
  score: number;
  feasible: number;
  /** Every reason each node is rejected for, in pipeline order (R_* codes ascend with it); [] when it fits. */
  reasons: Map<string, number[]>;
}

export interface ReferenceOptions {
  seed?: number;
  strategy?: 'binpack' | 'spread';
  weights?: Partial<Record<ScoreName, number>>;
}

type Topology = 'hostname' | 'zone';

/** What the filters and scorers read of a node, with the usage of the pods bound to it. */
interface NodeView {
  name: string;
  node: Node;
  labels: Record<string, string>;
  zone: string | undefined;
  cpu: number; memory: number; pods: number;
  used: { cpu: number; memory: number; pods: number; ports: Set<string> };
  /** status.gpus in order (`slot` is the position), with the pods holding each. */
  gpus: { gpu: NodeGpu; slot: number; memory: number; holders: number; exclusive: number }[];
}

/** What the filters and scorers read of a pod. */
interface PodView {
  pod: Pod;
  namespace: string;
  labels: Record<string, string>;
  cpu: number; memory: number;
  gpus: number; gpuVendor: string;
  gpuMemoryMin: number; gpuModel: GpuModelPattern | null; gpuShared: boolean;
  /** The only GPUs it may get (flotilla.io/gpu-ids); null: any. */
  gpuIds: string[] | null;
  ports: string[];
  strategy: 'binpack' | 'spread';
  /** Architectures its node may have: those of annotation flotilla.io/image-arch and of every image of known
   * platforms (null: any). */
  arches: string[] | null;
}

/** A pod bound to a node of the cluster. */
interface Placed { view: PodView; node: NodeView; gpuUuids: readonly string[] }

/** One evaluation: the pod, one node, and the cluster around them. */
interface Fit { pod: PodView; node: NodeView; placed: readonly Placed[] }

const GPU_VENDORS: Record<string, string> = { [GPU_RESOURCE_NVIDIA]: 'nvidia', [GPU_RESOURCE_AMD]: 'amd' };
const POWER = L.powerTable();

function topologyOf(term: PodAffinityTerm, what: string): Topology {
  if (term.topologyKey === LABEL_HOSTNAME) return 'hostname';
  if (term.topologyKey === LABEL_ZONE) return 'zone';
  throw new Error(`${what}: topologyKey "${term.topologyKey}" is not supported`);
}

function podView(pod: Pod, defaultStrategy: 'binpack' | 'spread'): PodView {
  const ann = pod.metadata.annotations ?? {};
  let cpu = 0; let memory = 0; let gpus = 0; let gpuResource = GPU_RESOURCE_NVIDIA;
  const ports: string[] = [];
  for (const c of pod.spec.containers) {
    const req = c.resources?.requests ?? {}; const lim = c.resources?.limits ?? {};
    const cpuQ = req.cpu ?? lim.cpu; const memQ = req.memory ?? lim.memory;
    if (cpuQ !== undefined) cpu += cpuMillis(cpuQ);
    if (memQ !== undefined) memory += bytes(memQ);
    for (const resource of Object.keys(GPU_VENDORS)) {
      const q = lim[resource] ?? req[resource];
      if (q === undefined) continue;
      const n = Number(parseQuantity(q).milli) / 1000;
      if (n > 0) gpuResource = resource;
      gpus += n;
    }
    for (const p of c.ports ?? []) if (p.hostPort) ports.push(`${p.hostPort}/${p.protocol ?? 'TCP'}`);
  }
  const overhead = pod.spec.overhead ?? {};
  if (overhead.cpu !== undefined) cpu += cpuMillis(overhead.cpu);
  if (overhead.memory !== undefined) memory += bytes(overhead.memory);
  const model = ann[ANNOTATION_GPU_MODEL];
  const placement = ann[ANNOTATION_PLACEMENT];
  const annotated = (ann[ANNOTATION_IMAGE_ARCH] ?? '').split(',').map((a) => a.trim()).filter(Boolean);
  return {
    pod, namespace: pod.metadata.namespace ?? 'default', labels: pod.metadata.labels ?? {},
    cpu, memory, gpus, gpuVendor: GPU_VENDORS[gpuResource]!,
    gpuMemoryMin: ann[ANNOTATION_GPU_MEMORY_MIN] === undefined ? 0 : bytes(ann[ANNOTATION_GPU_MEMORY_MIN]),
    gpuModel: model === undefined ? null : parseGpuModelPattern(model),
    gpuShared: ann[ANNOTATION_GPU_SHARING] === 'shared',
    gpuIds: ann[ANNOTATION_GPU_IDS] === undefined ? null : ann[ANNOTATION_GPU_IDS].split(','),
    ports,
    strategy: placement === 'spread' || placement === 'binpack' ? placement : defaultStrategy,
    arches: annotated.length > 0 ? annotated : null,
  };
}

function nodeView(node: Node): NodeView {
  const labels = node.metadata.labels ?? {};
  const alloc = node.status?.allocatable ?? node.status?.capacity ?? {};
  return {
    name: node.metadata.name ?? '', node, labels, zone: labels[LABEL_ZONE],
    cpu: alloc.cpu === undefined ? 0 : cpuMillis(alloc.cpu),
    memory: alloc.memory === undefined ? 0 : bytes(alloc.memory),
    pods: alloc.pods === undefined ? 110 : Number(parseQuantity(alloc.pods).milli) / 1000,
    used: { cpu: 0, memory: 0, pods: 0, ports: new Set() },
    gpus: (node.status?.gpus ?? []).map((gpu, slot) => ({ gpu, slot, memory: bytes(gpu.memory), holders: 0, exclusive: 0 })),
  };
}

// ---- selectors and topology ----

/** Whether a node with `labels` meets every matchExpressions requirement of the term (matchFields are not read). */
export function expressionsMatch(term: NodeSelectorTerm, labels: Record<string, string>): boolean {
  return (term.matchExpressions ?? []).every((e) => {
    const v = labels[e.key]; const values = e.values ?? [];
    switch (e.operator) {
      case 'In': return v !== undefined && values.includes(v);
      case 'NotIn': return v === undefined || !values.includes(v);
      case 'Exists': return v !== undefined;
      case 'DoesNotExist': return v === undefined;
      case 'Gt': case 'Lt': {
        // Only integer label values compare; anything else fails both.
        if (v === undefined || !/^[+-]?\d+$/.test(v)) return false;
        return e.operator === 'Gt' ? Number(v) > Number(values[0]) : Number(v) < Number(values[0]);
      }
    }
  });
}

/** Whether a pod-affinity term of a pod in `ownNamespace` selects `other`. */
function termSelects(term: PodAffinityTerm, ownNamespace: string, other: PodView): boolean {
  const namespaces = term.namespaces?.length ? term.namespaces : [ownNamespace];
  return namespaces.includes(other.namespace) && matchesLabels(labelSelectorFromSpec(term.labelSelector ?? {}), other.labels);
}

/** Whether nodes a and b share a domain of the topology; a node without a zone label is in no zone. */
function sameDomain(topology: Topology, a: NodeView, b: NodeView): boolean {
  return topology === 'hostname' ? a === b : a.zone !== undefined && a.zone === b.zone;
}

/** Bound pods the term selects in the node's domain; -1 when the node has no domain of that topology. */
function domainCount(f: Fit, term: PodAffinityTerm, what: string): number {
  const topology = topologyOf(term, what);
  if (topology === 'zone' && f.node.zone === undefined) return -1;
  return f.placed.filter((p) => sameDomain(topology, p.node, f.node) && termSelects(term, f.pod.namespace, p.view)).length;
}

function tolerated(pod: Pod, taint: Taint): boolean {
  return (pod.spec.tolerations ?? []).some((t) => {
    if (t.effect && t.effect !== taint.effect) return false;
    const exists = (t.operator ?? 'Equal') === 'Exists';
    if (!t.key) return exists;
    return t.key === taint.key && (exists || (t.value ?? '') === (taint.value ?? ''));
  });
}

// ---- GPUs ----

/** Whether the pod may hold the GPU beside its holders: it is free, or shareable with a sharing pod. */
function gpuFree(f: Fit, g: NodeView['gpus'][number]): boolean {
  return g.holders === 0 || (f.pod.gpuShared && f.node.labels[LABEL_GPU_SHARING] === 'shared' && g.exclusive === 0);
}

/** GPUs of the node the pod may use at all: among its pinned ones if any, healthy, of its vendor, free or shareable. */
function usableGpus(f: Fit): NodeView['gpus'] {
  return f.node.gpus.filter((g) => (f.pod.gpuIds === null || f.pod.gpuIds.includes(g.gpu.uuid))
    && g.gpu.health === 'Healthy' && g.gpu.vendor === f.pod.gpuVendor && gpuFree(f, g));
}
const modelMatches = (f: Fit, g: NodeView['gpus'][number]): boolean => f.pod.gpuModel === null || f.pod.gpuModel.test(g.gpu.model);

/** How many GPUs of the node are usable, of those how many of the model, of those how many have the memory. */
function gpuCounts(f: Fit): [number, number, number] {
  const usable = usableGpus(f); const model = usable.filter((g) => modelMatches(f, g));
  return [usable.length, model.length, model.filter((g) => g.memory >= f.pod.gpuMemoryMin).length];
}

/** The GPUs the pod gets on the node: the smallest fitting by memory, ties to the lower slot. */
function pickGpus(f: Fit): NodeView['gpus'] {
  const fitting = usableGpus(f).filter((g) => modelMatches(f, g) && g.memory >= f.pod.gpuMemoryMin);
  return fitting.sort((a, b) => a.memory - b.memory || a.slot - b.slot).slice(0, f.pod.gpus);
}

// ---- the filters, in pipeline order ----

const ownTerms = (pod: Pod, kind: 'podAffinity' | 'podAntiAffinity'): PodAffinityTerm[] =>
  pod.spec.affinity?.[kind]?.requiredDuringSchedulingIgnoredDuringExecution ?? [];

export const FILTERS: readonly { name: string; reasons: (f: Fit) => number[] }[] = [
  { name: 'ready', reasons: (f) => (f.node.node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True') ? [] : [L.R_NOT_READY] },
  { name: 'unschedulable', reasons: (f) => f.node.node.spec?.unschedulable ? [L.R_UNSCHEDULABLE] : [] },
  { name: 'arch', reasons: (f) => f.pod.arches !== null && !f.pod.arches.includes(nodeArchitecture(f.node.node)) ? [L.R_ARCH] : [] },
  { name: 'nodeSelector', reasons: (f) => {
    const wanted = f.pod.pod.spec.nodeSelector ?? {};
    const os = f.pod.pod.spec.os?.name;
    const pairs = Object.entries(wanted);
    if (os && wanted[LABEL_OS] !== os) pairs.push([LABEL_OS, os]);
    return pairs.every(([k, v]) => f.node.labels[k] === v) ? [] : [L.R_NODE_SELECTOR];
  } },
  { name: 'nodeAffinity', reasons: (f) => {
    const terms = f.pod.pod.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
    return terms.length === 0 || terms.some((t) => !emptyNodeSelectorTerm(t) && expressionsMatch(t, f.node.labels)) ? [] : [L.R_NODE_AFFINITY];
  } },
  { name: 'taints', reasons: (f) => (f.node.node.spec?.taints ?? [])
    .some((t) => t.effect !== 'PreferNoSchedule' && !tolerated(f.pod.pod, t)) ? [L.R_TAINT] : [] },
  { name: 'resources', reasons: (f) => {
    const { node, pod } = f; const out: number[] = [];
    if (node.used.pods + 1 > node.pods) out.push(L.R_PODS);
    if (node.used.cpu + pod.cpu > node.cpu) out.push(L.R_CPU);
    if (node.used.memory + pod.memory > node.memory) out.push(L.R_MEMORY);
    return out;
  } },
  { name: 'hostPorts', reasons: (f) => f.pod.ports.some((p) => f.node.used.ports.has(p)) ? [L.R_HOST_PORT] : [] },
  { name: 'podAffinity', reasons: (f) => {
    // A matching pod in the node's domain; or, for the first of a group, none anywhere and the pod matches itself.
    const ok = ownTerms(f.pod.pod, 'podAffinity').every((t, i) => {
      const what = `spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[${i}]`;
      const c = domainCount(f, t, what);
      if (c !== 0) return c > 0;
      return !f.placed.some((p) => termSelects(t, f.pod.namespace, p.view)) && termSelects(t, f.pod.namespace, f.pod);
    });
    return ok ? [] : [L.R_POD_AFFINITY];
  } },
  { name: 'podAntiAffinity', reasons: (f) => {
    const own = ownTerms(f.pod.pod, 'podAntiAffinity').some((t, i) =>
      domainCount(f, t, `spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[${i}]`) > 0);
    // Symmetric: a bound pod in the node's domain whose own required anti-affinity selects this pod. Its
    // terms with another topology key cannot be honoured and are ignored.
    const theirs = (): boolean => f.placed.some((p) => ownTerms(p.view.pod, 'podAntiAffinity').some((t) => {
      const topology = t.topologyKey === LABEL_HOSTNAME ? 'hostname' : t.topologyKey === LABEL_ZONE ? 'zone' : null;
      return topology !== null && sameDomain(topology, p.node, f.node) && termSelects(t, p.view.namespace, f.pod);
    }));
    return own || theirs() ? [L.R_POD_ANTI_AFFINITY] : [];
  } },
  // GPUs: each condition narrows the GPUs of the one before (usable, then of the model, then with the memory
  // minimum), so a node fails at most one of them, the first that leaves too few.
  // Pinned GPUs: all on the node, none held by a pod it cannot share with.
  { name: 'gpuIds', reasons: (f) => {
    const ids = f.pod.gpuIds;
    if (ids === null || f.pod.gpus === 0) return [];
    const pinned = f.node.gpus.filter((g) => ids.includes(g.gpu.uuid));
    if (pinned.length < ids.length) return [L.R_GPU_ID_ABSENT];
    return pinned.every((g) => gpuFree(f, g)) ? [] : [L.R_GPU_ID_HELD];
  } },
  { name: 'gpuCount', reasons: (f) => gpuCounts(f)[0] < f.pod.gpus ? [L.R_GPU_COUNT] : [] },
  { name: 'gpuModel', reasons: (f) => {
    const [usable, model] = gpuCounts(f);
    return usable >= f.pod.gpus && model < f.pod.gpus ? [L.R_GPU_MODEL] : [];
  } },
  { name: 'gpuMemory', reasons: (f) => {
    const [, model, memory] = gpuCounts(f);
    return model >= f.pod.gpus && memory < f.pod.gpus ? [L.R_GPU_MEMORY] : [];
  } },
];

// ---- the scorers: 0..100 each (null: not counted), as if the pod were placed ----

/** Free share of a resource after placing the pod, in permille, floored and clamped to 0..1000. */
function freePermille(f: Fit, resource: 'cpu' | 'memory'): number {
  const whole = f.node[resource];
  if (whole <= 0) return 0;
  const p = Math.floor((whole - f.node.used[resource] - f.pod[resource]) * 1000 / whole);
  return Math.min(1000, Math.max(0, p));
}

/** Weight met over total weight of weighted terms, as a percentage; null without terms. */
function weightedShare(terms: { weight: number; met: boolean }[]): number | null {
  const total = terms.reduce((a, t) => a + t.weight, 0);
  return total > 0 ? Math.floor(terms.reduce((a, t) => a + (t.met ? t.weight : 0), 0) * 100 / total) : null;
}

export const SCORERS: Readonly<Record<ScoreName, (f: Fit, picks: NodeView['gpus']) => number | null>> = {
  resources: (f) => {
    const fc = freePermille(f, 'cpu'); const fm = freePermille(f, 'memory');
    if (f.pod.strategy === 'spread') return Math.floor((fc + fm) / 20);
    const raw = Math.min(18000, Math.max(0, 20000 - POWER[fc]! - POWER[fm]!));
    return Math.floor(raw * 100 / 18000);
  },
  balanced: (f) => 100 - Math.floor(Math.abs(freePermille(f, 'cpu') - freePermille(f, 'memory')) / 10),
  nodeAffinity: (f) => weightedShare((f.pod.pod.spec.affinity?.nodeAffinity?.preferredDuringSchedulingIgnoredDuringExecution ?? [])
    .filter((t) => !emptyNodeSelectorTerm(t.preference ?? {}))
    .map((t) => ({ weight: t.weight, met: expressionsMatch(t.preference ?? {}, f.node.labels) }))),
  taint: (f) => {
    const k = (f.node.node.spec?.taints ?? []).filter((t) => t.effect === 'PreferNoSchedule' && !tolerated(f.pod.pod, t)).length;
    return k >= 4 ? 0 : 100 - 25 * k;
  },
  podAffinity: (f) => {
    const a = f.pod.pod.spec.affinity;
    const terms = (kind: 'podAffinity' | 'podAntiAffinity') => (a?.[kind]?.preferredDuringSchedulingIgnoredDuringExecution ?? [])
      .map((w, i) => ({ weight: w.weight, count: domainCount(f, w.podAffinityTerm, `spec.affinity.${kind}.preferredDuringSchedulingIgnoredDuringExecution[${i}]`) }));
    return weightedShare([
      ...terms('podAffinity').map((t) => ({ weight: t.weight, met: t.count > 0 })),
      ...terms('podAntiAffinity').map((t) => ({ weight: t.weight, met: t.count <= 0 })),
    ]);
  },
  gpuFit: (f, picks) => {
    const gpus = f.node.gpus.length; const busy = f.node.gpus.filter((g) => g.holders > 0).length; const want = f.pod.gpus;
    if (want === 0) return gpus === 0 || busy > 0 ? 100 : 0;
    const occupancy = Math.min(100, Math.floor((busy + want) * 100 / gpus));
    const sum = picks.reduce((a, g) => a + g.memory, 0);
    const tight = f.pod.gpuMemoryMin > 0 && sum > 0 ? Math.floor(f.pod.gpuMemoryMin * want * 100 / sum) : 100;
    return Math.floor((occupancy + tight) / 2);
  },
};

/** The cluster as objects: nodes in the order the NodeTable keeps them, and the pods bound to them. */
export class ReferenceScheduler {
  readonly #nodes: Node[] = [];
  /** What is known of the images' platforms: from these nodes, and what tests say the registry answered (learn). */
  readonly images = new ImagePlatforms();
  readonly #bound = new Map<string, { pod: Pod; nodeName: string; gpuUuids: readonly string[] }>();
  readonly #seed: number;
  readonly #strategy: 'binpack' | 'spread';
  readonly #weights: Record<ScoreName, number>;

  constructor(options: ReferenceOptions = {}) {
    this.#seed = options.seed ?? 0;
    this.#strategy = options.strategy ?? 'binpack';
    this.#weights = { ...DEFAULT_WEIGHTS, ...options.weights };
  }

  /** Adds a node at the end, or replaces the node of that name in place. */
  upsertNode(node: Node): void {
    const i = this.#nodes.findIndex((n) => n.metadata.name === node.metadata.name);
    if (i < 0) this.#nodes.push(node); else this.#nodes[i] = node;
    this.images.upsertNode(node);
  }
  /** Removes a node; the last node takes its place, as in the NodeTable (the order breaks exact ties). */
  removeNode(name: string): void {
    const i = this.#nodes.findIndex((n) => n.metadata.name === name);
    if (i < 0) return;
    this.images.removeNode(name);
    const last = this.#nodes.pop()!;
    if (i < this.#nodes.length) this.#nodes[i] = last;
  }
  podBound(pod: Pod, nodeName: string, gpuUuids: readonly string[]): void { this.#bound.set(podKey(pod), { pod, nodeName, gpuUuids }); }
  podRemoved(key: string): void { this.#bound.delete(key); }

  place(pod: Pod): ReferencePlacement {
    const nodes = this.#nodes.map(nodeView);
    const byName = new Map(nodes.map((n) => [n.name, n]));
    const placed: Placed[] = [];
    for (const b of this.#bound.values()) {
      const node = byName.get(b.nodeName);
      if (!node) continue; // counts once its node appears
      const view = podView(b.pod, this.#strategy);
      placed.push({ view, node, gpuUuids: b.gpuUuids });
      node.used.cpu += view.cpu; node.used.memory += view.memory; node.used.pods += 1;
      for (const p of view.ports) node.used.ports.add(p);
      for (const g of node.gpus) {
        if (!b.gpuUuids.includes(g.gpu.uuid)) continue;
        g.holders++;
        if (!view.gpuShared) g.exclusive++;
      }
    }
    const view = podView(pod, this.#strategy);
    const imageArches = this.images.constraintOf(pod)?.arches;
    if (imageArches) view.arches = view.arches === null ? imageArches : view.arches.filter((a) => imageArches.includes(a));
    const podHash = fnv1a(`${view.namespace}/${pod.metadata.name}`) >>> 0;
    const reasons = new Map<string, number[]>();
    let best: { node: NodeView; score: number; hash: number; picks: NodeView['gpus'] } | null = null;
    let feasible = 0;
    for (const node of nodes) {
      const f: Fit = { pod: view, node, placed };
      const why = FILTERS.flatMap((filter) => filter.reasons(f));
      reasons.set(node.name, why);
      if (why.length > 0) continue;
      feasible++;
      const picks = view.gpus > 0 ? pickGpus(f) : [];
      let score = 0;
      for (const name of Object.keys(SCORERS) as ScoreName[]) score += this.#weights[name] * (SCORERS[name](f, picks) ?? 0);
      const hash = tieHash(this.#seed >>> 0, podHash, fnv1a(node.name) >>> 0);
      // Highest score; ties by highest hash, then lowest index (the loop's order).
      if (!best || score > best.score || (score === best.score && hash > best.hash)) best = { node, score, hash, picks };
    }
    return {
      nodeName: best?.node.name ?? null, gpuUuids: best?.picks.map((g) => g.gpu.uuid) ?? [],
      score: best?.score ?? 0, feasible, reasons,
    };
  }
}
