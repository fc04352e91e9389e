// Batch placement over a NodeTable: converts pods, runs the placement core (wasm, or the TypeScript
// fallback core), reads the decision, and renders kube-scheduler-style explanations.
import type { Node, Pod } from '../../api-types/index.js';
import { fallbackSchedule } from './fallback-core.js';
import { ImagePlatforms, type ImageArchConstraint } from './image-platforms.js';
import * as L from './layout.js';
import { NodeTable, plainTableMemory, wasmTableMemory } from './node-table.js';
import { intersectArches, resolvePodRequest, type PodRequest } from './pod-request.js';
import { formatBytes } from './quantity.js';
import { loadWasmCore, type PlacementEngine } from './wasm-core.js';
import { GPU_RESOURCE_NVIDIA, platformName } from '../../api-types/index.js';

export type ScoreName = 'resources' | 'balanced' | 'nodeAffinity' | 'taint' | 'podAffinity' | 'gpuFit';
const SCORE_INDEX: Record<ScoreName, number> = {
  resources: L.S_RESOURCES, balanced: L.S_BALANCED, nodeAffinity: L.S_NODE_AFFINITY,
  taint: L.S_TAINT, podAffinity: L.S_POD_AFFINITY, gpuFit: L.S_GPU_FIT,
};
/** Default scorer weights: packing first, with a strong CPU/memory balance term that cuts two-dimensional
 * fragmentation (measured by bench/scheduler.ts); GPU fit keeps GPU nodes for GPU pods. */
export const DEFAULT_WEIGHTS: Readonly<Record<ScoreName, number>> = {
  resources: 10, balanced: 8, nodeAffinity: 2, taint: 1, podAffinity: 2, gpuFit: 3,
};

export interface SchedulerOptions {
  /** 'auto' (default) loads the wasm core and falls back to the TypeScript core if it cannot load. */
  engine?: 'auto' | 'wasm' | 'fallback';
  seed?: number;
  /** Cluster default placement; a pod overrides it with annotation flotilla.io/placement. */
  strategy?: 'binpack' | 'spread';
  weights?: Partial<Record<ScoreName, number>>;
  initialCapacity?: number;
  /** Called once when 'auto' falls back to the TypeScript core. */
  onFallback?: (error: Error) => void;
}

export interface Placement {
  pod: Pod;
  /** null when the pod itself is malformed (see error). */
  request: PodRequest | null;
  nodeName: string | null;
  gpuUuids: string[];
  score: number;
  feasible: number;
  nodes: number;
  /** Rejected-node counts by reason code (R_*), only codes with a count. */
  reasons: { code: number; count: number }[];
  /** What the pod's images asked of the node's architecture (null: nothing known of them). */
  imageArch: ImageArchConstraint | null;
  /** The nodes rejected for their architecture (R_ARCH), counted by architecture, most first. */
  archSkipped: { arch: string; count: number }[];
  error?: string;
}

export class Scheduler {
  readonly table: NodeTable;
  readonly engine: PlacementEngine;
  /** The TypeScript core over the same table (the engine itself when the wasm cannot load). */
  readonly fallback: PlacementEngine;
  readonly strategy: 'binpack' | 'spread';
  /** What is known of the images' platforms: from the nodes (upsertNode) and from the registry (learn). */
  readonly images = new ImagePlatforms();

  constructor(options: SchedulerOptions = {}) {
    const mode = options.engine ?? 'auto';
    let core: ReturnType<typeof loadWasmCore> | null = null;
    if (mode !== 'fallback') {
      try { core = loadWasmCore(); } catch (e) {
        if (mode === 'wasm') throw e;
        options.onFallback?.(e as Error);
      }
    }
    this.table = new NodeTable(core ? wasmTableMemory(core.memory) : plainTableMemory(), options.initialCapacity ?? 64);
    this.fallback = { name: 'fallback', schedule: (n) => fallbackSchedule(this.table.views, n) };
    this.engine = core?.engine ?? this.fallback;
    this.strategy = options.strategy ?? 'binpack';
    const weights = { ...DEFAULT_WEIGHTS, ...options.weights };
    const list = new Array<number>(L.NUM_SCORES).fill(0);
    for (const [name, w] of Object.entries(weights)) {
      const i = SCORE_INDEX[name as ScoreName];
      if (i === undefined) throw new Error(`scheduler: unknown score weight "${name}" (known: ${Object.keys(SCORE_INDEX).join(', ')})`);
      list[i] = w;
    }
    this.table.configure(options.seed ?? 0, list);
  }

  upsertNode(node: Node): void { this.table.upsertNode(node); this.images.upsertNode(node); }
  removeNode(name: string): void { this.table.removeNode(name); this.images.removeNode(name); }
  /** Records a pod already bound (from the cluster) so its usage counts. */
  podBound(pod: Pod, nodeName: string, gpuUuids: string[]): void {
    this.table.podBound(resolvePodRequest(pod, this.strategy), nodeName, gpuUuids);
  }
  podRemoved(key: string): void { this.table.podRemoved(key); }

  /** Chooses a node and GPUs for one pod without recording it. */
  place(pod: Pod, engine: PlacementEngine = this.engine): Placement {
    const nodes = this.table.count;
    let request: PodRequest;
    const imageArch = this.images.constraintOf(pod);
    try {
      request = resolvePodRequest(pod, this.strategy);
      if (imageArch) request.arches = intersectArches(request.arches, imageArch.arches);
      this.table.writePod(pod, request);
    } catch (e) {
      return { pod, request: null, nodeName: null, gpuUuids: [], score: 0, feasible: 0, nodes, reasons: [], imageArch, archSkipped: [], error: (e as Error).message };
    }
    const chosen = engine.schedule(nodes);
    if (chosen === -2) throw new Error(`scheduler: ${engine.name} core refused the encoded pod (host/core layout mismatch)`);
    const I = this.table.views.i32; const out = L.OUT >> 2;
    const reasons: { code: number; count: number }[] = [];
    for (let code = 1; code < L.NUM_REASONS; code++) {
      const count = I[out + L.O_REASON_COUNTS + code]!;
      if (count > 0) reasons.push({ code, count });
    }
    const gpuUuids: string[] = [];
    if (chosen >= 0) for (let k = 0; k < request.gpus; k++) gpuUuids.push(this.table.gpuUuid(chosen, I[out + L.O_PICKS + k]!));
    const archSkipped = new Map<string, number>();
    if (reasons.some((r) => r.code === L.R_ARCH)) {
      for (let n = 0; n < nodes; n++) {
        if (this.table.nodeReason(n) !== L.R_ARCH) continue;
        const arch = this.table.nodeArch(n) || 'unknown';
        archSkipped.set(arch, (archSkipped.get(arch) ?? 0) + 1);
      }
    }
    return {
      pod, request, nodeName: chosen >= 0 ? this.table.nodeName(chosen) : null, gpuUuids,
      score: I[out + L.O_SCORE]!, feasible: I[out + L.O_FEASIBLE]!, nodes, reasons, imageArch,
      archSkipped: [...archSkipped].map(([arch, count]) => ({ arch, count })).sort((a, b) => b.count - a.count || (a.arch < b.arch ? -1 : 1)),
    };
  }

  /** Records a placement as bound (assumed) so later placements see its usage. */
  assume(p: Placement): void {
    if (p.request && p.nodeName) this.table.podBound(p.request, p.nodeName, p.gpuUuids);
  }

  /**
   * Forgets an assumed placement whose bind did not happen, but only while the table still holds that very
   * assumption: a watch event may have replaced it in the meantime with the cluster's own binding of the pod
   * (a competing writer's, or ours confirmed), which must keep counting.
   */
  unassume(p: Placement): void {
    if (!p.request) return;
    if (this.table.boundPod(p.request.key)?.request === p.request) this.table.podRemoved(p.request.key);
  }

  /** Places pods in order; each placed pod is assumed before the next is placed. A placement the table cannot
   * record (a node limit, such as distinct host ports) comes back without a node and with the error. */
  scheduleBatch(pods: readonly Pod[], engine: PlacementEngine = this.engine): Placement[] {
    return pods.map((pod) => {
      const p = this.place(pod, engine);
      try { this.assume(p); } catch (e) {
        return { ...p, nodeName: null, gpuUuids: [], error: `placed on ${p.nodeName} but not recordable: ${(e as Error).message}` };
      }
      return p;
    });
  }
}

/** kube-scheduler-style summary: "0/5 nodes are available: 3 Insufficient memory, 2 no GPU with >= 16Gi." */
export function explain(p: Placement): string {
  const name = `${p.pod.metadata.namespace ?? 'default'}/${p.pod.metadata.name}`;
  if (p.error) return `pod ${name} cannot be scheduled: ${p.error}`;
  if (p.nodeName) {
    const gpus = p.gpuUuids.length ? ` with GPUs ${p.gpuUuids.join(',')}` : '';
    return `pod ${name} assigned to ${p.nodeName}${gpus} (score ${p.score}, ${p.feasible}/${p.nodes} nodes feasible)`;
  }
  const parts = [...p.reasons].sort((a, b) => b.count - a.count || a.code - b.code)
    .map((r) => `${r.count} ${reasonMessage(r.code, p.request)}`);
  const arch = archDetail(p);
  return `0/${p.nodes} nodes are available${parts.length ? `: ${parts.join(', ')}` : ''}.${arch ? ` ${arch}.` : ''}`;
}

/** Why nodes were skipped for their architecture, when images are why: "image web:1 has linux/amd64 only;
 * 3 arm64 nodes skipped" ('' when nothing was skipped, or only annotation flotilla.io/image-arch says so). */
export function archDetail(p: Placement): string {
  const skipped = p.archSkipped.map((s) => s.arch);
  const causes = (p.imageArch?.images ?? [])
    .filter((i) => skipped.some((a) => !i.platforms.some((pl) => pl.architecture === a)))
    .map((i) => `image ${i.image} has ${i.platforms.map(platformName).join(', ')} only`);
  if (causes.length === 0) return '';
  const total = p.archSkipped.reduce((a, s) => a + s.count, 0);
  const counts = p.archSkipped.map((s) => `${s.count} ${s.arch}`).join(', ');
  return `${causes.join(', ')}; ${counts} node${total === 1 ? '' : 's'} skipped`;
}

/** The pod's pinned GPUs (flotilla.io/gpu-ids) as the subject of `one` or `many`. */
function pinnedGpus(r: PodRequest | null, one: string, many: string): string {
  const ids = r?.gpuIds ?? [];
  return ids.length === 1 ? `GPU ${ids[0]} ${one}` : `GPUs ${ids.join(', ')} ${many}`;
}

/** Message for one reason code, completed with what the pod asked for. */
export function reasonMessage(code: number, r: PodRequest | null): string {
  switch (code) {
    case L.R_NOT_READY: return 'node(s) were not ready';
    case L.R_UNSCHEDULABLE: return 'node(s) were unschedulable';
    case L.R_ARCH: return "node(s) didn't match the image architecture";
    case L.R_NODE_SELECTOR: return "node(s) didn't match Pod's node selector";
    case L.R_NODE_AFFINITY: return "node(s) didn't match Pod's node affinity";
    case L.R_TAINT: return 'node(s) had untolerated taint';
    case L.R_PODS: return 'Too many pods';
    case L.R_CPU: return 'Insufficient cpu';
    case L.R_MEMORY: return 'Insufficient memory';
    case L.R_HOST_PORT: return "node(s) didn't have free ports for the requested pod ports";
    case L.R_POD_AFFINITY: return "node(s) didn't match pod affinity rules";
    case L.R_POD_ANTI_AFFINITY: return "node(s) didn't match pod anti-affinity rules";
    case L.R_GPU_COUNT: return `Insufficient ${r?.gpuResource ?? GPU_RESOURCE_NVIDIA}`;
    case L.R_GPU_MODEL: return `no GPU matching model "${r?.gpuModel?.source ?? ''}"`;
    case L.R_GPU_MEMORY: return `no GPU with >= ${formatBytes(r?.gpuMemoryMin ?? 0)}`;
    case L.R_GPU_ID_ABSENT: return pinnedGpus(r, 'is not on this node', 'are not all on this node');
    case L.R_GPU_ID_HELD: return pinnedGpus(r, 'is held by another pod', 'are held, one or more, by another pod');
    default: return `unknown reason ${code}`;
  }
}
