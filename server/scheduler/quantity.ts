// Quantities for the scheduler: api-types/quantity.ts does the parsing; these wrappers name the field in
// errors and return plain numbers.
import { bytes, cpuMillis, formatBytes, parseQuantity as parseExact } from '../../api-types/quantity.js';

export { formatBytes };

function withField<T>(what: string, parse: () => T): T {
  try { return parse(); } catch (e) { throw new Error(`${what}: ${(e as Error).message}`); }
}

/** Value of a quantity in base units (cores, devices, pods). Throws naming `what` on malformed input. */
export function parseQuantity(value: string | number, what: string): number {
  return withField(what, () => Number(parseExact(value).milli) / 1000);
}

/** CPU quantity as integer millicores (rounded up, as Kubernetes does). */
export function parseMillicores(value: string | number, what: string): number {
  return withField(what, () => cpuMillis(value));
}

/** Memory quantity as integer bytes (rounded up). */
export function parseBytes(value: string | number, what: string): number {
  return withField(what, () => bytes(value));
}
