// Kubernetes resource quantities ("500m", "2Gi", "1.5", "1e3"), parsed exactly with bigint arithmetic.
//
// Grammar (as in k8s.io/apimachinery resource.Quantity):
//   quantity  = [sign] number [suffix]
//   number    = digits | digits "." [digits] | "." digits
//   suffix    = binary (Ki Mi Gi Ti Pi Ei) | decimal (n u m k M G T P E) | ("e" | "E") [sign] digits
// "E" alone is exa (10^18); "E" followed by digits is an exponent.

export class QuantityError extends Error {
  override name = 'QuantityError';
}

/**
 * A quantity in thousandths of its unit (millicores for cpu, millibytes for memory). Values finer than a
 * thousandth ("1n", "0.0001") are rounded up to the next thousandth, as Kubernetes' MilliValue does.
 */
export interface Quantity {
  milli: bigint;
}

const QUANTITY = /^([+-]?)(\d+(?:\.\d*)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?\d+|n|u|m|k|M|G|T|P|E)?$/;
/** Largest decimal exponent accepted; beyond it no resource makes sense and bigints would grow without bound. */
const MAX_EXPONENT = 100;

const DECIMAL_SUFFIX: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const BINARY_SUFFIX: Record<string, bigint> = { Ki: 1n, Mi: 2n, Gi: 3n, Ti: 4n, Pi: 5n, Ei: 6n };

/** Ceiling of num / den for den > 0 (bigint division truncates toward zero, which is already the ceiling for num < 0). */
function ceilDiv(num: bigint, den: bigint): bigint {
  const q = num / den;
  return num % den > 0n ? q + 1n : q;
}

/** Parses a quantity; throws QuantityError naming the input when it is not one. */
export function parseQuantity(input: string | number): Quantity {
  let text: string;
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) throw new QuantityError(`invalid quantity ${String(input)}: not a finite number`);
    text = String(input);
  } else if (typeof input === 'string') {
    text = input;
  } else {
    throw new QuantityError(`invalid quantity ${JSON.stringify(input)}: expected a string or a number`);
  }
  const m = QUANTITY.exec(text);
  if (m === null) {
    throw new QuantityError(`invalid quantity "${text}": expected a number with an optional suffix like 500m, 2Gi, 1.5, 1e3`);
  }
  const sign = m[1] === '-' ? -1n : 1n;
  const [whole = '', fraction = ''] = (m[2] ?? '').split('.');
  const suffix = m[3] ?? '';
  // milli = digits * 10^decimalExp; decimalExp starts at 3 (the x1000) minus the digits after the point.
  let digits = BigInt((whole + fraction) || '0');
  let decimalExp = 3 - fraction.length;
  const binaryExp = BINARY_SUFFIX[suffix];
  if (binaryExp !== undefined) {
    digits *= 1024n ** binaryExp;
  } else if (suffix.length > 1 && (suffix[0] === 'e' || suffix[0] === 'E')) {
    const exponent = Number(suffix.slice(1));
    if (Math.abs(exponent) > MAX_EXPONENT) {
      throw new QuantityError(`invalid quantity "${text}": exponent ${exponent} is outside ±${MAX_EXPONENT}`);
    }
    decimalExp += exponent;
  } else {
    decimalExp += DECIMAL_SUFFIX[suffix] ?? 0;
  }
  const scale = 10n ** BigInt(Math.abs(decimalExp));
  const milli = decimalExp >= 0 ? sign * digits * scale : ceilDiv(sign * digits, scale);
  return { milli };
}

/** CPU in whole millicores, rounded up ("100m" -> 100, "0.5" -> 500, "1u" -> 1). */
export function cpuMillis(q: string | number): number {
  return Number(parseQuantity(q).milli);
}

/**
 * Bytes, rounded up to a whole byte ("1Ki" -> 1024, "1.5k" -> 1500, "1500m" -> 2).
 * Beyond Number.MAX_SAFE_INTEGER (8 PiB) the result is the nearest double.
 */
export function bytes(q: string | number): number {
  return Number(ceilDiv(parseQuantity(q).milli, 1000n));
}

const BINARY_UNITS: readonly [string, number][] = [
  ['Ei', 2 ** 60], ['Pi', 2 ** 50], ['Ti', 2 ** 40], ['Gi', 2 ** 30], ['Mi', 2 ** 20], ['Ki', 2 ** 10],
];

/** A whole byte count with the largest binary suffix that divides it exactly: 2Gi, 1536Mi, 1000. */
export function formatBytes(n: number): string {
  if (!Number.isInteger(n)) throw new QuantityError(`formatBytes: ${n} is not a whole number of bytes`);
  if (n === 0) return '0';
  for (const [suffix, unit] of BINARY_UNITS) {
    if (n % unit === 0) return `${n / unit}${suffix}`;
  }
  return String(n);
}

/** Millicores as Kubernetes writes them: whole cores without suffix ("2"), otherwise millicores ("500m"). */
export function formatCpu(m: number): string {
  if (!Number.isInteger(m)) throw new QuantityError(`formatCpu: ${m} is not a whole number of millicores`);
  return m % 1000 === 0 ? String(m / 1000) : `${m}m`;
}
