// The host's view of the scheduler memory map. asm/layout.ts is the single source (plain integer constants,
// valid in both languages); wasm-core.ts checks the compiled module's layout probes against it at load.
import * as layout from '../../asm/layout.js';

export * from '../../asm/layout.js';

/** One node region: byte offset per node of capacity (N_X) and bytes per node, in ascending order. */
export interface NodeRegion { name: string; perNode: number; bytes: number }

/** Node regions derived from the N_* constants, sorted by offset; used to move regions when the table grows. */
export const NODE_REGIONS: readonly NodeRegion[] = (() => {
  const entries = Object.entries(layout)
    .filter(([name]) => name.startsWith('N_'))
    .map(([name, value]) => ({ name, perNode: value as number }))
    .sort((a, b) => a.perNode - b.perNode);
  return entries.map((e, i) => ({ ...e, bytes: (entries[i + 1]?.perNode ?? layout.NODE_BYTES) - e.perNode }));
})();

/** Bytes of linear memory needed for a node table of `capacity` nodes. */
export function memoryBytesFor(capacity: number): number {
  return layout.NODE_BASE + capacity * layout.NODE_BYTES;
}

/** round(1000 * 10^(p/1000)) for p in 0..1000: BestFit v3's 10^free as integers, shared by wasm and reference. */
export function powerTable(): Int32Array {
  const t = new Int32Array(layout.POWER_TABLE_LEN);
  for (let p = 0; p < t.length; p++) t[p] = Math.round(1000 * Math.pow(10, p / 1000));
  return t;
}
