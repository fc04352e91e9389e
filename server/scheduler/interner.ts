// String interning for the node table: label keys and values, GPU vendor/model pairs, architectures and zones
// become the small integers the placement core compares. An id, once given, stands for its string for the
// table's whole life, so what was encoded before stays valid.
import * as L from './layout.js';
import { LABEL_ZONE } from '../../api-types/index.js';

export class Interner {
  #strings = new Map<string, number>();
  #arches = new Map<string, number>();
  #zones = new Map<string, number>();
  #models = new Map<string, number>();
  #modelNames: { vendor: string; model: string }[] = [];
  readonly #onString: (id: number, value: number) => void;

  /** `onString(id, value)` is told each new string's integer value (NaN when it is not an integer). */
  constructor(onString: (id: number, value: number) => void) { this.#onString = onString; }

  /** Interned id (>= 1) of a string. */
  intern(s: string): number {
    let id = this.#strings.get(s);
    if (id !== undefined) return id;
    id = this.#strings.size + 1;
    if (id >= L.MAX_STRINGS) throw new Error(`scheduler: more than ${L.MAX_STRINGS - 1} distinct label keys and values`);
    this.#strings.set(s, id);
    this.#onString(id, /^[+-]?\d+$/.test(s) ? Number(s) : NaN);
    return id;
  }

  /** Id of an architecture, a bit position of the pod's architecture mask. */
  archId(arch: string): number {
    let id = this.#arches.get(arch);
    if (id === undefined) {
      id = this.#arches.size;
      // The last id stands for "node reports no architecture", which no image-arch list matches.
      if (id >= L.MAX_ARCHES - 1) throw new Error(`scheduler: more than ${L.MAX_ARCHES - 1} distinct architectures`);
      this.#arches.set(arch, id);
    }
    return id;
  }
  /** Id of a zone (>= 1), 0 for a node without one. */
  zoneId(zone: string | undefined): number {
    if (zone === undefined) return 0;
    let id = this.#zones.get(zone);
    if (id === undefined) {
      id = this.#zones.size + 1;
      if (id >= L.MAX_ZONES) throw new Error(`scheduler: more than ${L.MAX_ZONES - 1} distinct ${LABEL_ZONE} values`);
      this.#zones.set(zone, id);
    }
    return id;
  }
  /** Id of a GPU vendor/model pair (< MAX_MODELS). */
  modelId(vendor: string, model: string): number {
    const key = `${vendor}/${model}`;
    let id = this.#models.get(key);
    if (id === undefined) {
      id = this.#models.size;
      if (id >= L.MAX_MODELS) throw new Error(`scheduler: more than ${L.MAX_MODELS} distinct GPU models`);
      this.#models.set(key, id);
      this.#modelNames.push({ vendor, model });
    }
    return id;
  }
  /** Per-model-id bitmap: 1 where vendor matches and the model matches the pattern (evaluated here, not in wasm). */
  modelBitmap(vendor: string, pattern: string | null): Int32Array {
    const re = pattern === null ? null : new RegExp(pattern);
    const bits = new Int32Array(L.MAX_MODELS);
    this.#modelNames.forEach((m, id) => { bits[id] = m.vendor === vendor && (re === null || re.test(m.model)) ? 1 : 0; });
    return bits;
  }
}
