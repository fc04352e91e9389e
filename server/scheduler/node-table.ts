// NodeTable: the column store. The cluster as the placement core sees it, kept struct-of-arrays in one memory
// image (wasm linear memory, or a plain ArrayBuffer when the wasm cannot load) in the ./layout map, updated
// incrementally, with strings interned by ./interner and bound pods recorded by their ./pod-request.
//
// Invariants:
// - nodes occupy indices [0, count) densely; removeNode moves the last node into the hole.
// - usage of a node (cpu, memory, pods, GPU holders, host ports, pod-term counts) is exactly the sum over the
//   pods recorded as bound to its name; pods bound to an unknown node are kept and counted when it appears.
// - typed-array views are rebuilt whenever the underlying buffer changed (memory.grow detaches them).
import { LABEL_GPU_SHARING, LABEL_HOSTNAME, LABEL_OS, LABEL_ZONE } from '../../api-types/index.js';
import type { LabelSelectorSpec, Node, NodeSelectorTerm, Pod, PodAffinityTerm, Toleration } from '../../api-types/index.js';
import { fnv1a } from './hash.js';
import { nodeArchitecture } from './image-platforms.js';
import { Interner, idSet } from './interner.js';
import * as L from './layout.js';
import {
  emptyNodeSelectorTerm, selectorKey, selectorMatches, topologyOf,
  type AntiAffinityTerm, type PodRequest,
} from './pod-request.js';
import { parseBytes, parseMillicores, parseQuantity } from './quantity.js';

const OPERATORS: Record<string, number> = { In: L.OP_IN, NotIn: L.OP_NOT_IN, Exists: L.OP_EXISTS, DoesNotExist: L.OP_DOES_NOT_EXIST, Gt: L.OP_GT, Lt: L.OP_LT };
const EFFECTS: Record<string, number> = { NoSchedule: L.E_NO_SCHEDULE, PreferNoSchedule: L.E_PREFER_NO_SCHEDULE, NoExecute: L.E_NO_EXECUTE };

interface BoundPod { request: PodRequest; nodeName: string; gpuUuids: string[] }
// The interned ids a node's encoding refers to, one reference each, released when it is replaced or removed.
interface NodeIds { strings: number[]; models: number[]; arch: number; zone: number }
// A column `id` of N_TERM_COUNTS: per node, the bound pods for which `matches` holds (pods matching a
// pod-affinity selector, or pods carrying given anti-affinity terms). The columns are a cache: a column
// unused by the pod being encoded may be evicted (least recently used) and reused.
interface TrackedTerm { id: number; matches: (r: PodRequest) => boolean; lastUsed: number }
// A required anti-affinity term some bound pods carry, and which pods (keys) those are.
interface BoundAntiTerm { term: AntiAffinityTerm; carriers: Set<string> }

/** Memory image the table lives in: wasm linear memory, or a growable ArrayBuffer for the fallback. */
export interface TableMemory {
  readonly buffer: ArrayBuffer;
  /** Makes the image at least `bytes` long, keeping its contents. */
  ensure(bytes: number): void;
}

export function wasmTableMemory(memory: WebAssembly.Memory): TableMemory {
  return {
    get buffer() { return memory.buffer; },
    ensure(bytes: number) {
      const missing = bytes - memory.buffer.byteLength;
      if (missing > 0) memory.grow(Math.ceil(missing / 65536));
    },
  };
}

export function plainTableMemory(): TableMemory {
  let buffer = new ArrayBuffer(65536);
  return {
    get buffer() { return buffer; },
    ensure(bytes: number) {
      if (bytes <= buffer.byteLength) return;
      const next = new ArrayBuffer(Math.ceil(bytes / 65536) * 65536);
      new Uint8Array(next).set(new Uint8Array(buffer));
      buffer = next;
    },
  };
}

export class NodeTable {
  #mem: TableMemory;
  #i32!: Int32Array;
  #f64!: Float64Array;
  #u8!: Uint8Array;
  #cap = 0;
  #names: string[] = [];
  #index = new Map<string, number>();
  #gpuUuids: string[][] = [];
  #nodeIds: NodeIds[] = []; // by node index, as #names
  #interner = new Interner();
  #terms = new Map<string, TrackedTerm>();
  #pods = new Map<string, BoundPod>();
  #podsByLabel = new Map<string, Set<string>>(); // "key=value" -> bound pod keys, narrows term registration
  #antiTerms = new Map<string, BoundAntiTerm>(); // AntiAffinityTerm.key -> carriers among bound pods
  // First matchLabels pair of each bound anti-affinity term ("key=value", "" without matchLabels) -> term
  // keys: a pod to place checks only the terms that can match its labels.
  #antiByLabel = new Map<string, Set<string>>();
  #encodeEpoch = 0; // incremented per writePod; terms used in the current epoch are never evicted
  #podsByNode = new Map<string, Set<string>>();

  constructor(mem: TableMemory, initialCapacity = 64) {
    this.#mem = mem;
    mem.ensure(L.memoryBytesFor(initialCapacity));
    this.#refreshViews();
    this.#i32.fill(0, L.FIXED_BASE >> 2);
    this.#cap = initialCapacity;
    this.#i32[L.CONFIG_CAP >> 2] = initialCapacity;
    this.#i32.set(L.powerTable(), L.POWER_TABLE >> 2);
  }

  /** Views over the current memory image; valid until the next table change. */
  get views(): { i32: Int32Array; f64: Float64Array } { this.#refreshViews(); return { i32: this.#i32, f64: this.#f64 }; }
  get count(): number { return this.#names.length; }
  get capacity(): number { return this.#cap; }
  nodeName(index: number): string { return this.#names[index]!; }
  nodeIndex(name: string): number | undefined { return this.#index.get(name); }
  gpuUuid(node: number, slot: number): string { return this.#gpuUuids[node]![slot]!; }
  /** The pod recorded under `key`; its `request` is the very object last given to podBound for it. */
  boundPod(key: string): { request: PodRequest; nodeName: string; gpuUuids: string[] } | undefined { return this.#pods.get(key); }

  #refreshViews(): void {
    const b = this.#mem.buffer;
    if (this.#u8?.buffer === b) return;
    this.#i32 = new Int32Array(b); this.#f64 = new Float64Array(b); this.#u8 = new Uint8Array(b);
  }

  // Element addresses in words (i32) or doubles (f64) for node n, slot i of a region with `slots` per node.
  #w(region: number, n: number, slots = 1, i = 0): number { return ((L.NODE_BASE + this.#cap * region) >> 2) + n * slots + i; }
  #d(region: number, n: number, slots = 1, i = 0): number { return ((L.NODE_BASE + this.#cap * region) >> 3) + n * slots + i; }

  /** Grows the node table to hold at least `needed` nodes, moving each region to its new offset. */
  #reserve(needed: number): void {
    if (needed <= this.#cap) return;
    let next = this.#cap;
    while (next < needed) next *= 2;
    this.#mem.ensure(L.memoryBytesFor(next));
    this.#refreshViews();
    const old = this.#cap;
    // Regions only move up; moving the last first never overwrites a region not yet moved.
    for (let r = L.NODE_REGIONS.length - 1; r >= 0; r--) {
      const region = L.NODE_REGIONS[r]!;
      const from = L.NODE_BASE + old * region.perNode; const to = L.NODE_BASE + next * region.perNode;
      this.#u8.copyWithin(to, from, from + old * region.bytes);
      this.#u8.fill(0, to + old * region.bytes, to + next * region.bytes);
    }
    this.#cap = next;
    this.#i32[L.CONFIG_CAP >> 2] = next;
  }

  /** Adds or replaces a node from its Kubernetes-shaped object. Throws naming the field on bad input. */
  upsertNode(node: Node): void {
    const name = node.metadata?.name;
    if (!name) throw new Error('node: metadata.name is required');
    const what = `node ${name}`;
    const labels = node.metadata.labels ?? {};
    const labelEntries = Object.entries(labels);
    if (labelEntries.length > L.MAX_LABELS) throw new Error(`${what}: ${labelEntries.length} labels, at most ${L.MAX_LABELS}`);
    const taints = node.spec?.taints ?? [];
    if (taints.length > L.MAX_TAINTS) throw new Error(`${what}: ${taints.length} taints, at most ${L.MAX_TAINTS}`);
    const gpus = node.status?.gpus ?? [];
    if (gpus.length > L.MAX_GPUS) throw new Error(`${what}: ${gpus.length} GPUs, at most ${L.MAX_GPUS}`);
    const alloc = node.status?.allocatable ?? node.status?.capacity ?? {};
    const cpu = alloc.cpu === undefined ? 0 : parseMillicores(alloc.cpu, `${what}: status.allocatable.cpu`);
    if (cpu > 2 ** 30) throw new Error(`${what}: status.allocatable.cpu ${alloc.cpu} is too large`);
    const memory = alloc.memory === undefined ? 0 : parseBytes(alloc.memory, `${what}: status.allocatable.memory`);
    const pods = alloc.pods === undefined ? 110 : parseQuantity(alloc.pods, `${what}: status.allocatable.pods`);
    const arch = nodeArchitecture(node);
    const ready = (node.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
    // Validate everything before touching the tables or memory, so a bad node leaves the table unchanged.
    taints.forEach((t, i) => {
      if (EFFECTS[t.effect] === undefined) throw new Error(`${what}: spec.taints[${i}].effect "${t.effect}" is not NoSchedule, PreferNoSchedule or NoExecute`);
      if (!t.key) throw new Error(`${what}: spec.taints[${i}].key is required`);
    });
    const gpuMemory = gpus.map((g, i) => {
      if (!g.uuid) throw new Error(`${what}: status.gpus[${i}].uuid is required`);
      return parseBytes(g.memory, `${what}: status.gpus[${i}].memory`);
    });

    let n = this.#index.get(name);
    if (n === undefined) {
      this.#reserve(this.#names.length + 1);
      n = this.#names.length;
      this.#names.push(name); this.#index.set(name, n); this.#gpuUuids.push([]);
      this.#nodeIds.push({ strings: [], models: [], arch: 0, zone: 0 });
    } else {
      this.#releaseIds(this.#nodeIds[n]!); // before acquiring, so zone ids stay <= the nodes holding zones
    }
    // Kubernetes' Gt/Lt compare the label value parsed as an integer; NaN compares false either way.
    const labelIds = labelEntries.map(([k, v]) => [this.#acquire(n, k), this.#acquire(n, v), /^[+-]?\d+$/.test(v) ? Number(v) : NaN] as const);
    const taintIds = taints.map((t) => [this.#acquire(n, t.key), t.value ? this.#acquire(n, t.value) : 0, EFFECTS[t.effect]!] as const);
    const ids = this.#nodeIds[n]!;
    const gpuRows = gpus.map((g, i) => {
      const model = this.#interner.acquireModel(g.vendor, g.model);
      ids.models.push(model);
      return { uuid: g.uuid, vendor: this.#acquire(n, g.vendor), model, memory: gpuMemory[i]!, healthy: g.health === 'Healthy' ? 1 : 0 };
    });
    const archId = ids.arch = arch ? this.#interner.arches.acquire(arch) : 0;
    const zone = ids.zone = labels[LABEL_ZONE] === undefined ? 0 : this.#interner.zones.acquire(labels[LABEL_ZONE]);

    this.#refreshViews();
    const I = this.#i32; const F = this.#f64;
    F[this.#d(L.N_MEM_ALLOC, n)] = memory;
    I[this.#w(L.N_CPU_ALLOC, n)] = cpu;
    I[this.#w(L.N_PODS_ALLOC, n)] = pods;
    I[this.#w(L.N_FLAGS, n)] = (ready ? L.F_READY : 0) | (node.spec?.unschedulable ? L.F_UNSCHEDULABLE : 0)
      | (labels[LABEL_GPU_SHARING] === 'shared' ? L.F_GPU_SHARED : 0);
    I[this.#w(L.N_ARCH, n)] = archId;
    I[this.#w(L.N_ZONE, n)] = zone;
    I[this.#w(L.N_HASH, n)] = fnv1a(name);
    I[this.#w(L.N_LABEL_COUNT, n)] = labelIds.length;
    labelIds.forEach(([k, v, num], i) => {
      I[this.#w(L.N_LABEL_KEYS, n, L.MAX_LABELS, i)] = k; I[this.#w(L.N_LABEL_VALUES, n, L.MAX_LABELS, i)] = v;
      F[this.#d(L.N_LABEL_NUMBERS, n, L.MAX_LABELS, i)] = num;
    });
    I[this.#w(L.N_TAINT_COUNT, n)] = taintIds.length;
    taintIds.forEach(([k, v, e], i) => {
      I[this.#w(L.N_TAINT_KEYS, n, L.MAX_TAINTS, i)] = k; I[this.#w(L.N_TAINT_VALUES, n, L.MAX_TAINTS, i)] = v;
      I[this.#w(L.N_TAINT_EFFECTS, n, L.MAX_TAINTS, i)] = e;
    });
    I[this.#w(L.N_GPU_COUNT, n)] = gpuRows.length;
    gpuRows.forEach((g, i) => {
      I[this.#w(L.N_GPU_VENDOR, n, L.MAX_GPUS, i)] = g.vendor; I[this.#w(L.N_GPU_MODEL, n, L.MAX_GPUS, i)] = g.model;
      I[this.#w(L.N_GPU_HEALTHY, n, L.MAX_GPUS, i)] = g.healthy; F[this.#d(L.N_GPU_MEMORY, n, L.MAX_GPUS, i)] = g.memory;
    });
    this.#gpuUuids[n] = gpuRows.map((g) => g.uuid);
    this.#recomputeUsage(n);
  }

  /** String id of `s`, counted as referred to by node n. */
  #acquire(n: number, s: string): number {
    const id = this.#interner.strings.acquire(s);
    this.#nodeIds[n]!.strings.push(id);
    return id;
  }

  /** Drops every reference a node's encoding holds, emptying `ids`. */
  #releaseIds(ids: NodeIds): void {
    for (const id of ids.strings) this.#interner.strings.release(id);
    for (const id of ids.models) this.#interner.models.release(id);
    if (ids.arch !== 0) this.#interner.arches.release(ids.arch);
    if (ids.zone !== 0) this.#interner.zones.release(ids.zone);
    ids.strings = []; ids.models = []; ids.arch = 0; ids.zone = 0;
  }

  /** Values in use per interned table: what the nodes refer to now, never what they referred to before. */
  get internedCounts(): { strings: number; models: number; arches: number; zones: number } {
    const t = this.#interner;
    return { strings: t.strings.size, models: t.models.size, arches: t.arches.size, zones: t.zones.size };
  }

  removeNode(name: string): void {
    const n = this.#index.get(name);
    if (n === undefined) return;
    this.#releaseIds(this.#nodeIds[n]!);
    const last = this.#names.length - 1;
    if (n !== last) {
      const moved = this.#names[last]!;
      for (const region of L.NODE_REGIONS) {
        const base = L.NODE_BASE + this.#cap * region.perNode;
        this.#u8.copyWithin(base + n * region.bytes, base + last * region.bytes, base + (last + 1) * region.bytes);
      }
      this.#names[n] = moved; this.#index.set(moved, n); this.#gpuUuids[n] = this.#gpuUuids[last]!;
      this.#nodeIds[n] = this.#nodeIds[last]!;
    }
    this.#names.pop(); this.#gpuUuids.pop(); this.#nodeIds.pop(); this.#index.delete(name);
  }

  /** Rewrites a node's usage from the pods recorded on it. */
  #recomputeUsage(n: number): void {
    const I = this.#i32; const F = this.#f64;
    I[this.#w(L.N_CPU_USED, n)] = 0; F[this.#d(L.N_MEM_USED, n)] = 0; I[this.#w(L.N_PODS_USED, n)] = 0;
    I.fill(0, this.#w(L.N_GPU_HOLDERS, n, L.MAX_GPUS), this.#w(L.N_GPU_HOLDERS, n + 1, L.MAX_GPUS));
    I.fill(0, this.#w(L.N_GPU_EXCLUSIVE, n, L.MAX_GPUS), this.#w(L.N_GPU_EXCLUSIVE, n + 1, L.MAX_GPUS));
    I[this.#w(L.N_PORT_COUNT, n)] = 0;
    I.fill(0, this.#w(L.N_TERM_COUNTS, n, L.MAX_TERMS), this.#w(L.N_TERM_COUNTS, n + 1, L.MAX_TERMS));
    for (const key of this.#podsByNode.get(this.#names[n]!) ?? []) this.#applyPod(n, this.#pods.get(key)!, 1);
  }

  /** Adds (sign 1) or removes (sign -1) a pod's usage on node n. */
  #applyPod(n: number, p: BoundPod, sign: 1 | -1): void {
    const I = this.#i32; const F = this.#f64; const r = p.request;
    I[this.#w(L.N_CPU_USED, n)]! += sign * r.cpuMilli;
    F[this.#d(L.N_MEM_USED, n)]! += sign * r.memoryBytes;
    I[this.#w(L.N_PODS_USED, n)]! += sign;
    const uuids = this.#gpuUuids[n]!;
    for (const uuid of p.gpuUuids) {
      const i = uuids.indexOf(uuid);
      if (i < 0) continue; // the GPU left the inventory; nothing to account on this node
      I[this.#w(L.N_GPU_HOLDERS, n, L.MAX_GPUS, i)]! += sign;
      if (!r.gpuShared) I[this.#w(L.N_GPU_EXCLUSIVE, n, L.MAX_GPUS, i)]! += sign;
    }
    for (const port of r.hostPorts) this.#adjustPort(n, port, sign);
    for (const term of this.#terms.values()) {
      if (term.matches(r)) I[this.#w(L.N_TERM_COUNTS, n, L.MAX_TERMS, term.id)]! += sign;
    }
  }

  #adjustPort(n: number, port: number, sign: 1 | -1): void {
    const I = this.#i32; const count = I[this.#w(L.N_PORT_COUNT, n)]!;
    for (let j = 0; j < count; j++) {
      if (I[this.#w(L.N_PORTS, n, L.MAX_PORTS, j)] !== port) continue;
      const refs = I[this.#w(L.N_PORT_REFS, n, L.MAX_PORTS, j)]! + sign;
      if (refs > 0) { I[this.#w(L.N_PORT_REFS, n, L.MAX_PORTS, j)] = refs; return; }
      I[this.#w(L.N_PORTS, n, L.MAX_PORTS, j)] = I[this.#w(L.N_PORTS, n, L.MAX_PORTS, count - 1)]!;
      I[this.#w(L.N_PORT_REFS, n, L.MAX_PORTS, j)] = I[this.#w(L.N_PORT_REFS, n, L.MAX_PORTS, count - 1)]!;
      I[this.#w(L.N_PORT_COUNT, n)] = count - 1;
      return;
    }
    if (sign < 0) return;
    if (count >= L.MAX_PORTS) throw new Error(`node ${this.#names[n]}: more than ${L.MAX_PORTS} host ports in use`);
    I[this.#w(L.N_PORTS, n, L.MAX_PORTS, count)] = port;
    I[this.#w(L.N_PORT_REFS, n, L.MAX_PORTS, count)] = 1;
    I[this.#w(L.N_PORT_COUNT, n)] = count + 1;
  }

  /** Records a pod as running on nodeName holding gpuUuids, and adds its usage. Idempotent per pod key.
   * Throws, leaving the pod unrecorded, when the node cannot hold one more distinct host port. */
  podBound(request: PodRequest, nodeName: string, gpuUuids: string[]): void {
    this.podRemoved(request.key);
    const n = this.#index.get(nodeName);
    if (n !== undefined && request.hostPorts.length > 0) {
      this.#refreshViews();
      const I = this.#i32; const count = I[this.#w(L.N_PORT_COUNT, n)]!;
      const inUse = new Set<number>();
      for (let j = 0; j < count; j++) inUse.add(I[this.#w(L.N_PORTS, n, L.MAX_PORTS, j)]!);
      for (const port of request.hostPorts) inUse.add(port);
      if (inUse.size > L.MAX_PORTS) throw new Error(`node ${nodeName}: more than ${L.MAX_PORTS} host ports in use`);
    }
    const p: BoundPod = { request, nodeName, gpuUuids };
    this.#pods.set(request.key, p);
    for (const label of Object.entries(request.labels)) {
      const k = label.join('=');
      let keys = this.#podsByLabel.get(k);
      if (!keys) { keys = new Set(); this.#podsByLabel.set(k, keys); }
      keys.add(request.key);
    }
    let set = this.#podsByNode.get(nodeName);
    if (!set) { set = new Set(); this.#podsByNode.set(nodeName, set); }
    set.add(request.key);
    for (const term of request.antiAffinity) {
      let bound = this.#antiTerms.get(term.key);
      if (!bound) {
        bound = { term, carriers: new Set() };
        this.#antiTerms.set(term.key, bound);
        const label = Object.entries(term.selector.matchLabels ?? {})[0]?.join('=') ?? '';
        let keys = this.#antiByLabel.get(label);
        if (!keys) { keys = new Set(); this.#antiByLabel.set(label, keys); }
        keys.add(term.key);
      }
      bound.carriers.add(request.key);
    }
    if (n !== undefined) { this.#refreshViews(); this.#applyPod(n, p, 1); }
  }

  /** Forgets a bound pod and removes its usage. Unknown keys are ignored. */
  podRemoved(key: string): void {
    const p = this.#pods.get(key);
    if (!p) return;
    this.#pods.delete(key);
    for (const label of Object.entries(p.request.labels)) this.#podsByLabel.get(label.join('='))?.delete(key);
    this.#podsByNode.get(p.nodeName)?.delete(key);
    for (const term of p.request.antiAffinity) {
      const bound = this.#antiTerms.get(term.key);
      if (!bound) continue;
      bound.carriers.delete(key);
      if (bound.carriers.size > 0) continue;
      this.#antiTerms.delete(term.key);
      this.#antiByLabel.get(Object.entries(term.selector.matchLabels ?? {})[0]?.join('=') ?? '')?.delete(term.key);
    }
    const n = this.#index.get(p.nodeName);
    if (n !== undefined) { this.#refreshViews(); this.#applyPod(n, p, -1); }
  }

  /** Column of the tracked pod-affinity term (selector over pods in `namespaces`), registering it on first use. */
  termId(selector: LabelSelectorSpec, namespaces: string[]): number {
    const ns = [...new Set(namespaces)].sort();
    return this.#column(`selector|${selectorKey(selector, ns)}`, () => {
      selectorMatches(selector, {}); // validates the operators before a column is taken
      const inNamespaces = new Set(ns);
      const first = Object.entries(selector.matchLabels ?? {})[0];
      return {
        matches: (r) => inNamespaces.has(r.namespace) && selectorMatches(selector, r.labels),
        candidates: first ? this.#podsByLabel.get(first.join('=')) ?? [] : this.#pods.keys(),
      };
    });
  }

  /** Per topology, the keys of bound pods' required anti-affinity terms that match the pod `r`. */
  #antiTermsMatching(r: PodRequest): Map<number, Set<string>> {
    const found = new Map<number, Set<string>>();
    if (this.#antiTerms.size === 0) return found;
    const visit = (keys: Set<string> | undefined): void => {
      for (const key of keys ?? []) {
        const { term } = this.#antiTerms.get(key)!;
        if (!term.namespaces.includes(r.namespace) || !selectorMatches(term.selector, r.labels)) continue;
        let set = found.get(term.topology);
        if (!set) { set = new Set(); found.set(term.topology, set); }
        set.add(key);
      }
    };
    visit(this.#antiByLabel.get(''));
    for (const label of Object.entries(r.labels)) visit(this.#antiByLabel.get(label.join('=')));
    return found;
  }

  /** Column counting the bound pods that carry any of the anti-affinity terms `keys`, registering it on first use. */
  #carriersColumn(keys: Set<string>): number {
    return this.#column(`carriers|${[...keys].sort().join('\n')}`, () => {
      const candidates = new Set<string>();
      for (const k of keys) for (const p of this.#antiTerms.get(k)!.carriers) candidates.add(p);
      return { matches: (r) => r.antiAffinity.some((a) => keys.has(a.key)), candidates };
    });
  }

  /** Id of the tracked column `key`. On first use `register` (which may throw, before anything changes) says
   * which bound pods count; a free (or the least recently used) column is taken and counted per node. */
  #column(key: string, register: () => { matches: (r: PodRequest) => boolean; candidates: Iterable<string> }): number {
    let term = this.#terms.get(key);
    if (term) { term.lastUsed = this.#encodeEpoch; return term.id; }
    const { matches, candidates } = register();
    let id = this.#terms.size;
    if (id >= L.MAX_TERMS) {
      let victim: [string, TrackedTerm] | undefined;
      for (const entry of this.#terms) if (!victim || entry[1].lastUsed < victim[1].lastUsed) victim = entry;
      if (!victim || victim[1].lastUsed === this.#encodeEpoch) throw new Error(`scheduler: one pod uses more than ${L.MAX_TERMS} pod affinity selectors`);
      this.#terms.delete(victim[0]);
      id = victim[1].id;
    }
    term = { id, matches, lastUsed: this.#encodeEpoch };
    this.#terms.set(key, term);
    this.#refreshViews();
    for (let n = 0; n < this.#names.length; n++) this.#i32[this.#w(L.N_TERM_COUNTS, n, L.MAX_TERMS, id)] = 0;
    for (const podKey of candidates) {
      const p = this.#pods.get(podKey)!;
      const n = this.#index.get(p.nodeName);
      if (n !== undefined && matches(p.request)) this.#i32[this.#w(L.N_TERM_COUNTS, n, L.MAX_TERMS, id)]! += 1;
    }
    return id;
  }

  /** Writes the pod into the pod input region. Throws naming the field on bad input. */
  writePod(pod: Pod, r: PodRequest): void {
    const name = `pod ${r.namespace}/${pod.metadata.name}`;
    this.#encodeEpoch++;
    const words: number[] = [];
    const header = new Int32Array(L.P_VAR_BASE);
    const section = (offField: number, countField: number, count: number, body: number[]): void => {
      header[offField] = L.P_VAR_BASE + words.length; header[countField] = count;
      for (const w of body) words.push(w);
    };
    const exprs = (term: NodeSelectorTerm, path: string): number[] => {
      const out: number[] = [(term.matchExpressions ?? []).length];
      (term.matchExpressions ?? []).forEach((e, i) => {
        const op = OPERATORS[e.operator];
        if (op === undefined) throw new Error(`${name}: ${path}.matchExpressions[${i}].operator "${e.operator}" is not In, NotIn, Exists, DoesNotExist, Gt or Lt`);
        if (!e.key) throw new Error(`${name}: ${path}.matchExpressions[${i}].key is required`);
        const values = e.values ?? [];
        if (op === L.OP_GT || op === L.OP_LT) {
          const v = values.length === 1 && /^[+-]?\d+$/.test(values[0]!) ? Number(values[0]) : NaN;
          if (!(Math.abs(v) < 2 ** 31)) throw new Error(`${name}: ${path}.matchExpressions[${i}] ${e.operator} needs one integer value`);
          out.push(op, this.#interner.lookup(e.key), 1, v);
        } else {
          out.push(op, this.#interner.lookup(e.key), values.length, ...values.map((s) => this.#interner.lookup(s)));
        }
      });
      return out;
    };
    const hash = fnv1a(`${r.namespace}/${pod.metadata.name}`);
    header[L.P_CPU] = r.cpuMilli;
    header[L.P_GPU_COUNT] = r.gpus;
    header[L.P_GPU_SHARED] = r.gpuShared ? 1 : 0;
    header[L.P_GPU_VENDOR] = this.#interner.lookup(r.gpuVendor);
    // Architectures no node has get no id: they add nothing to the set, and the list still limits (an empty
    // list admits no node).
    header[L.P_ARCH_LIMITED] = r.arches !== null ? 1 : 0;
    const archIds = new Set((r.arches ?? []).map((a) => this.#interner.arches.get(a)));
    const archSet = r.arches !== null ? idSet(this.#interner.arches.span, (id) => archIds.has(id)) : [];
    section(L.P_ARCH_OFF, L.P_ARCH_WORDS, archSet.length, archSet);
    header[L.P_STRATEGY] = r.strategy === 'spread' ? L.STRATEGY_SPREAD : L.STRATEGY_BINPACK;
    header[L.P_HASH] = hash;
    // spec.os.name asks for nodes of that OS, as a selector on their kubernetes.io/os label.
    const sel = Object.entries(pod.spec.nodeSelector ?? {});
    const os = pod.spec.os?.name;
    if (os && pod.spec.nodeSelector?.[LABEL_OS] !== os) sel.push([LABEL_OS, os]);
    section(L.P_SEL_OFF, L.P_SEL_COUNT, sel.length, sel.flatMap(([k, v]) => [this.#interner.lookup(k), this.#interner.lookup(v)]));
    const na = pod.spec.affinity?.nodeAffinity;
    const req = na?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? [];
    // A term without requirements matches no node: encoded as one "In" with no values, which nothing matches.
    section(L.P_REQ_OFF, L.P_REQ_COUNT, req.length, req.flatMap((t, i) => emptyNodeSelectorTerm(t)
      ? [1, L.OP_IN, this.#interner.lookup(LABEL_HOSTNAME), 0]
      : exprs(t, `spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[${i}]`)));
    // A preference without requirements counts for nothing, its weight included: it is left out.
    const pref = (na?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((t, i) => ({ ...t, i }))
      .filter((t) => !emptyNodeSelectorTerm(t.preference ?? {}));
    section(L.P_PREF_OFF, L.P_PREF_COUNT, pref.length, pref.flatMap((t) => {
      const path = `spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[${t.i}]`;
      if (!Number.isInteger(t.weight) || t.weight < 1 || t.weight > 100) throw new Error(`${name}: ${path}.weight ${t.weight} is not 1..100`);
      return [t.weight, ...exprs(t.preference ?? {}, `${path}.preference`)];
    }));
    const tols = pod.spec.tolerations ?? [];
    section(L.P_TOL_OFF, L.P_TOL_COUNT, tols.length, tols.flatMap((t: Toleration, i) => {
      const op = t.operator ?? 'Equal';
      if (op !== 'Equal' && op !== 'Exists') throw new Error(`${name}: spec.tolerations[${i}].operator "${op}" is not Equal or Exists`);
      const effect = t.effect ? EFFECTS[t.effect] : 0;
      if (effect === undefined) throw new Error(`${name}: spec.tolerations[${i}].effect "${t.effect}" is not NoSchedule, PreferNoSchedule or NoExecute`);
      return [t.key ? this.#interner.lookup(t.key) : 0, op === 'Exists' ? L.TOL_EXISTS : L.TOL_EQUAL, t.value ? this.#interner.lookup(t.value) : 0, effect];
    }));
    section(L.P_PORT_OFF, L.P_PORT_COUNT, r.hostPorts.length, r.hostPorts);
    const terms: number[] = []; let termCount = 0;
    const addTerms = (list: PodAffinityTerm[] | undefined, kind: number, weights: number[] | null, path: string): void => {
      (list ?? []).forEach((t, i) => {
        const topo = topologyOf(t.topologyKey);
        if (topo < 0) throw new Error(`${name}: ${path}[${i}].topologyKey "${t.topologyKey}" is not ${LABEL_HOSTNAME} or ${LABEL_ZONE}`);
        const selector = t.labelSelector ?? {};
        const namespaces = t.namespaces?.length ? t.namespaces : [r.namespace];
        const weight = weights ? weights[i]! : 0;
        if (weights && (!Number.isInteger(weight) || weight < 1 || weight > 100)) throw new Error(`${name}: ${path}[${i}].weight ${weight} is not 1..100`);
        if (++termCount > L.MAX_POD_TERMS) throw new Error(`${name}: more than ${L.MAX_POD_TERMS} pod affinity terms`);
        const self = namespaces.includes(r.namespace) && selectorMatches(selector, r.labels) ? 1 : 0;
        terms.push(kind, this.termId(selector, namespaces), topo, weight, self);
      });
    };
    const pa = pod.spec.affinity?.podAffinity; const paa = pod.spec.affinity?.podAntiAffinity;
    addTerms(pa?.requiredDuringSchedulingIgnoredDuringExecution, L.T_REQUIRED_AFFINITY, null,
      'spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution');
    addTerms(paa?.requiredDuringSchedulingIgnoredDuringExecution, L.T_REQUIRED_ANTI, null,
      'spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution');
    const pp = pa?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
    addTerms(pp.map((w) => w.podAffinityTerm), L.T_PREFERRED_AFFINITY, pp.map((w) => w.weight),
      'spec.affinity.podAffinity.preferredDuringSchedulingIgnoredDuringExecution');
    const pap = paa?.preferredDuringSchedulingIgnoredDuringExecution ?? [];
    addTerms(pap.map((w) => w.podAffinityTerm), L.T_PREFERRED_ANTI, pap.map((w) => w.weight),
      'spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution');
    // Symmetric anti-affinity: one slot per topology for the bound pods whose required terms match this pod.
    const repelled = this.#antiTermsMatching(r);
    for (const topo of [L.TOPO_HOSTNAME, L.TOPO_ZONE]) {
      const keys = repelled.get(topo);
      if (!keys) continue;
      terms.push(L.T_EXISTING_ANTI, this.#carriersColumn(keys), topo, 0, 0);
      termCount++;
    }
    section(L.P_TERM_OFF, L.P_TERM_COUNT, termCount, terms);
    // A UUID is unique in the fleet: pinned GPUs resolve to one node and a mask of its slots (node -1 when
    // no node holds them all).
    header[L.P_GPU_PIN_MASK] = 0; header[L.P_GPU_PIN_NODE] = -1;
    if (r.gpuIds !== null && r.gpuIds.length > 0) {
      const first = r.gpuIds[0]!;
      const node = this.#gpuUuids.findIndex((uuids) => uuids.includes(first));
      const slots = node < 0 ? [] : r.gpuIds.map((id) => this.#gpuUuids[node]!.indexOf(id));
      header[L.P_GPU_PIN_NODE] = node >= 0 && slots.every((i) => i >= 0) ? node : -1;
      header[L.P_GPU_PIN_MASK] = slots.reduce((mask, i) => (i >= 0 ? mask | (1 << i) : mask), 0) || 1;
    }
    const models = r.gpus > 0 ? this.#interner.modelSet(r.gpuVendor, r.gpuModel) : [];
    section(L.P_MODEL_OFF, L.P_MODEL_WORDS, models.length, models);
    if (L.P_VAR_BASE + words.length > L.POD_WORDS) throw new Error(`${name}: scheduling constraints too large (${words.length} words, at most ${L.POD_WORDS - L.P_VAR_BASE})`);

    this.#refreshViews();
    const base = L.POD_I32 >> 2;
    this.#i32.set(header, base);
    this.#i32.set(words, base + L.P_VAR_BASE);
    this.#f64[(L.POD_F64 >> 3) + L.PF_MEMORY] = r.memoryBytes;
    this.#f64[(L.POD_F64 >> 3) + L.PF_GPU_MEMORY_MIN] = r.gpuMemoryMin;
  }

  /** Sets the tie-break seed and scorer weights (NUM_SCORES integers). */
  configure(seed: number, weights: readonly number[]): void {
    if (weights.length !== L.NUM_SCORES || weights.some((w) => !Number.isInteger(w) || w < 0 || w > 1000)) {
      throw new Error(`scheduler: weights must be ${L.NUM_SCORES} integers in 0..1000`);
    }
    this.#refreshViews();
    this.#i32[L.CONFIG_SEED >> 2] = seed | 0;
    this.#i32.set(weights, L.CONFIG_WEIGHTS >> 2);
  }

  /** The architecture of node n (kubernetes.io/arch); '' when it reports none. */
  nodeArch(n: number): string { this.#refreshViews(); return this.#interner.arches.value(this.#i32[this.#w(L.N_ARCH, n)]!) ?? ''; }

  /** Reason code each node got in the last scheduling pass. */
  nodeReason(n: number): number { this.#refreshViews(); return this.#i32[this.#w(L.N_REASON, n)]!; }
}
