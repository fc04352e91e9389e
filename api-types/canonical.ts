// Canonical JSON: the one text form in which equal content compares (and hashes) equal.

/**
 * JSON with object keys sorted, so that equal content gives the same text whatever order its keys were written
 * in. Stable across releases: pod-template-hash labels are hashes of it, and the store compares writes by it.
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v);
}
