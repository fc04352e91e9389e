// Hashes shared by the host encoding and every placement core, so that the tie-break is the same everywhere.

/** FNV-1a of a string as a signed 32-bit integer. */
export function fnv1a(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 0x01000193); }
  return h | 0;
}

/** murmur3 fmix32 over seed, pod and node hashes: the seeded tie-break (identical to the wasm one). */
export function tieHash(seed: number, pod: number, node: number): number {
  let h = (seed ^ pod ^ Math.imul(node, 0x9e3779b1)) >>> 0;
  h = (h ^ (h >>> 16)) >>> 0; h = Math.imul(h, 0x85ebca6b) >>> 0;
  h = (h ^ (h >>> 13)) >>> 0; h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}
