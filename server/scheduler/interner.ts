// String interning for the node table: label keys and values, GPU vendors, GPU vendor/model pairs,
// architectures and zones become the small integers the placement core compares.
//
// Contract: only nodes hold ids. Each value is counted by the nodes that refer to it (acquire on upsert,
// release on the next upsert or removal), and an id whose count drops to zero is given again, smallest first.
// So the tables never fill, however many values nodes cycle through; an id stands for one value while any node
// refers to it, which is as long as any encoding that used it can be read. Pods only look ids up: a value no
// node has gets STRING_UNKNOWN (strings) or no id at all, which matches no node, as it should.
import type { GpuModelPattern } from '../../api-types/index.js';
import * as L from './layout.js';

/** Values to ids >= `first`, reference counted, released ids reused smallest first. A new id is at most
 * `first` + (values in use) - 1 when it is given. */
export class IdTable {
  readonly #ids = new Map<string, number>();
  readonly #values: (string | undefined)[] = [];
  readonly #refs: number[] = [];
  readonly #free: number[] = []; // min-heap of released ids
  #next: number;
  #version = 0;
  constructor(first: number) { this.#next = first; }

  /** Id of `value` while some holder refers to it. */
  get(value: string): number | undefined { return this.#ids.get(value); }
  value(id: number): string | undefined { return this.#values[id]; }
  /** Ids are below `span`: one past the largest id ever given. */
  get span(): number { return this.#next; }
  /** Values in use. */
  get size(): number { return this.#ids.size; }
  /** Changes whenever an id is given to a value or freed. */
  get version(): number { return this.#version; }

  /** Id of `value`, counting one more reference to it. */
  acquire(value: string): number {
    let id = this.#ids.get(value);
    if (id === undefined) {
      id = this.#free.length > 0 ? this.#popFree() : this.#next++;
      this.#ids.set(value, id); this.#values[id] = value; this.#refs[id] = 0; this.#version++;
    }
    this.#refs[id]! += 1;
    return id;
  }

  /** Drops one reference taken by acquire; the last one frees the id. */
  release(id: number): void {
    const refs = this.#refs[id];
    const value = this.#values[id];
    if (refs === undefined || value === undefined) throw new Error(`scheduler: release of unknown id ${id}`);
    if (refs > 1) { this.#refs[id] = refs - 1; return; }
    this.#ids.delete(value); this.#values[id] = undefined; this.#refs[id] = 0; this.#version++;
    this.#pushFree(id);
  }

  #pushFree(id: number): void {
    const h = this.#free; h.push(id);
    for (let i = h.length - 1; i > 0;) {
      const parent = (i - 1) >> 1;
      if (h[parent]! <= h[i]!) break;
      [h[parent], h[i]] = [h[i]!, h[parent]!]; i = parent;
    }
  }
  #popFree(): number {
    const h = this.#free; const top = h[0]!; const last = h.pop()!;
    if (h.length === 0) return top;
    h[0] = last;
    for (let i = 0; ;) {
      const l = 2 * i + 1; const r = l + 1; let m = i;
      if (l < h.length && h[l]! < h[m]!) m = l;
      if (r < h.length && h[r]! < h[m]!) m = r;
      if (m === i) break;
      [h[m], h[i]] = [h[i]!, h[m]!]; i = m;
    }
    return top;
  }
}

/** A bit set over ids, in the pod-section form of asm/layout.ts: bit id & 31 of word id >> 5. */
export function idSet(span: number, has: (id: number) => boolean): number[] {
  const words = new Array<number>(Math.ceil(span / 32)).fill(0);
  for (let id = 0; id < span; id++) if (has(id)) words[id >> 5]! |= 1 << (id & 31);
  return words;
}

const MODEL_SETS_CACHED = 256;

export class Interner {
  /** Label keys and values, taint keys and values, GPU vendors; from 2 (1 is STRING_UNKNOWN). */
  readonly strings = new IdTable(L.STRING_UNKNOWN + 1);
  /** kubernetes.io/arch values; from 1 (0: the node reports none, in no pod's architecture set). */
  readonly arches = new IdTable(1);
  /** topology.kubernetes.io/zone values; from 1 (0: no zone). */
  readonly zones = new IdTable(1);
  /** GPU vendor/model pairs; from 0. */
  readonly models = new IdTable(0);
  #modelNames: { vendor: string; model: string }[] = []; // by model id, valid while models.value(id) is set
  // Pods' model sets by vendor and pattern, for the model table at #modelSetsVersion.
  #modelSets = new Map<string, number[]>();
  #modelSetsVersion = -1;

  /** Id of a pod-side string: the node-side id, or STRING_UNKNOWN, which no node has. */
  lookup(s: string): number { return this.strings.get(s) ?? L.STRING_UNKNOWN; }

  /** Id of a GPU vendor/model pair, counting one reference. */
  acquireModel(vendor: string, model: string): number {
    const id = this.models.acquire(JSON.stringify([vendor, model]));
    this.#modelNames[id] = { vendor, model };
    return id;
  }

  /** Bit set of the model ids whose vendor is `vendor` and whose model `pattern` matches (null: any model). */
  modelSet(vendor: string, pattern: GpuModelPattern | null): number[] {
    // Bounded: patterns come from pods, any number of distinct ones.
    if (this.#modelSetsVersion !== this.models.version || this.#modelSets.size >= MODEL_SETS_CACHED) {
      this.#modelSets.clear(); this.#modelSetsVersion = this.models.version;
    }
    const key = pattern === null ? vendor : `${vendor}\n${pattern.source}`;
    let set = this.#modelSets.get(key);
    if (!set) {
      set = idSet(this.models.span, (id) => {
        const m = this.models.value(id) === undefined ? undefined : this.#modelNames[id];
        return m !== undefined && m.vendor === vendor && (pattern === null || pattern.test(m.model));
      });
      this.#modelSets.set(key, set);
    }
    return set;
  }
}
