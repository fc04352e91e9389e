// Kubernetes quantities ("500m", "2", "1.5Gi", "24G", "1e3"). Local until api-types/quantity.ts exists.
const SUFFIX: Record<string, number> = {
  '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3, Ti: 1024 ** 4, Pi: 1024 ** 5, Ei: 1024 ** 6,
};
const PATTERN = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(?:([eE][+-]?\d+)|(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei))?$/;

/** Value of a quantity in base units (bytes, cores, devices). Throws naming `what` on malformed input. */
export function parseQuantity(value: string | number, what: string): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`${what}: quantity ${value} is not finite`);
    return value;
  }
  const m = PATTERN.exec(value.trim());
  if (!m) throw new Error(`${what}: "${value}" is not a quantity (examples: 500m, 2, 16Gi)`);
  const base = Number(m[1]);
  if (m[2]) return Number(m[1] + m[2]);
  return base * (SUFFIX[m[3] ?? ''] ?? 1);
}

/** CPU quantity as integer millicores (rounded up, as Kubernetes does). */
export function parseMillicores(value: string | number, what: string): number {
  return Math.ceil(Math.round(parseQuantity(value, what) * 1e6) / 1e3);
}

/** Memory quantity as integer bytes (rounded up). */
export function parseBytes(value: string | number, what: string): number {
  return Math.ceil(parseQuantity(value, what));
}

/** Bytes as a short binary quantity for messages ("16Gi", "512Mi", "1000"). */
export function formatBytes(bytes: number): string {
  for (const [suffix, size] of [['Ti', 1024 ** 4], ['Gi', 1024 ** 3], ['Mi', 1024 ** 2], ['Ki', 1024]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${suffix}`;
  }
  for (const [suffix, size] of [['Ti', 1024 ** 4], ['Gi', 1024 ** 3], ['Mi', 1024 ** 2]] as const) {
    if (bytes >= size) return `${(bytes / size).toFixed(1)}${suffix}`;
  }
  return String(bytes);
}
