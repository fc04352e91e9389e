// The address arithmetic of LoadBalancer pools (flotilla.io/v1 AddressPool): IPv4 and IPv6 addresses as
// bigints, the range forms an AddressPool lists, overlap, and the pool index the allocator keeps.
//
// Range forms: "192.168.1.240-192.168.1.250", "192.168.1.240-250" (IPv4: the end replaces the last octet),
// "192.168.1.240/28", "fd00:1::/120", "fd00:1::10-fd00:1::20", or one address. Every address of a CIDR is
// handed out (as MetalLB does): a pool on a LAN is rarely a whole subnet with its own broadcast address.
// Addresses are written canonically (IPv6 as RFC 5952: lower case, the longest run of zero groups as "::"),
// so one address is always one allocation row.
import { isIPv6 } from 'node:net';
import { formatIPv4, parseIPv4 } from '../../api-types/index.js';

export type Family = 4 | 6;
export interface Address { family: Family; value: bigint }
/** first..last inclusive, one family. */
export interface AddressRange { family: Family; first: bigint; last: bigint }

const BITS: Record<Family, number> = { 4: 32, 6: 128 };

function parseIPv6(text: string): bigint | undefined {
  if (!isIPv6(text) || text.includes('%')) return undefined;
  let s = text.toLowerCase();
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (dotted) {
    const n = parseIPv4(dotted[1]!);
    if (n === undefined) return undefined;
    s = `${s.slice(0, -dotted[1]!.length)}${(n >>> 16).toString(16)}:${(n & 0xffff).toString(16)}`;
  }
  const [head = '', tail] = s.split('::');
  const h = head ? head.split(':') : [];
  const t = tail === undefined ? [] : tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

function formatIPv6(value: bigint): string {
  const groups = Array.from({ length: 8 }, (_, i) => Number((value >> BigInt(16 * (7 - i))) & 0xffffn));
  let best = { at: -1, len: 1 };
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > best.len) best = { at: i, len: j - i };
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best.at < 0) return hex.join(':');
  return `${hex.slice(0, best.at).join(':')}::${hex.slice(best.at + best.len).join(':')}`;
}

/** An IPv4 (dotted quad) or IPv6 address; undefined for anything else. */
export function parseAddress(text: string): Address | undefined {
  const v4 = parseIPv4(text.trim());
  if (v4 !== undefined) return { family: 4, value: BigInt(v4) };
  const v6 = parseIPv6(text.trim());
  return v6 === undefined ? undefined : { family: 6, value: v6 };
}

export function formatAddress(a: Address): string {
  return a.family === 4 ? formatIPv4(Number(a.value)) : formatIPv6(a.value);
}

/** The canonical text of an address, or undefined when `text` is none. */
export function canonicalAddress(text: string): string | undefined {
  const a = parseAddress(text);
  return a && formatAddress(a);
}

/** One entry of spec.addresses as a range; throws an Error saying what is wrong with it. */
export function parseAddressRange(text: string): AddressRange {
  const t = text.trim();
  const cidr = /^([^/]+)\/(\d{1,3})$/.exec(t);
  if (cidr) {
    const base = parseAddress(cidr[1]!);
    if (!base) throw new Error(`${JSON.stringify(cidr[1])} is not an IPv4 or IPv6 address`);
    const prefix = Number(cidr[2]);
    const bits = BITS[base.family];
    if (prefix > bits) throw new Error(`prefix /${prefix} is longer than an IPv${base.family} address (/${bits})`);
    const size = 1n << BigInt(bits - prefix);
    if (base.value % size !== 0n) {
      throw new Error(`host bits are set: the network is ${formatAddress({ family: base.family, value: base.value - (base.value % size) })}/${prefix}`);
    }
    return { family: base.family, first: base.value, last: base.value + size - 1n };
  }
  const dash = t.indexOf('-');
  const firstText = dash < 0 ? t : t.slice(0, dash).trim();
  const first = parseAddress(firstText);
  if (!first) throw new Error(`${JSON.stringify(firstText)} is not an IPv4 or IPv6 address (a range is FIRST-LAST, a CIDR is ADDRESS/PREFIX)`);
  if (dash < 0) return { family: first.family, first: first.value, last: first.value };
  const lastText = t.slice(dash + 1).trim();
  let last = parseAddress(lastText);
  if (!last && first.family === 4 && /^\d{1,3}$/.test(lastText) && Number(lastText) <= 255) {
    last = { family: 4, value: (first.value & ~0xffn) | BigInt(Number(lastText)) };
  }
  if (!last) throw new Error(`${JSON.stringify(lastText)} is not an IPv${first.family} address`);
  if (last.family !== first.family) throw new Error('both ends of a range must be of one family');
  if (last.value < first.value) throw new Error(`the range ends (${formatAddress(last)}) before it starts (${formatAddress(first)})`);
  return { family: first.family, first: first.value, last: last.value };
}

/** The range written canonically: "A-B", or "A" for one address. */
export function formatRange(r: AddressRange): string {
  const a = formatAddress({ family: r.family, value: r.first });
  return r.first === r.last ? a : `${a}-${formatAddress({ family: r.family, value: r.last })}`;
}

export function rangesOverlap(a: AddressRange, b: AddressRange): boolean {
  return a.family === b.family && a.first <= b.last && b.first <= a.last;
}

export function rangeContains(r: AddressRange, a: Address): boolean {
  return r.family === a.family && r.first <= a.value && a.value <= r.last;
}

/** What the allocator remembers of one AddressPool (its index row), sorted by name. */
export interface IndexedPool { name: string; autoAssign: boolean; ranges: string[] }

/** The pool holding `address`, if any. */
export function poolOfAddress(pools: readonly IndexedPool[], address: Address): IndexedPool | undefined {
  return pools.find((p) => p.ranges.some((r) => rangeContains(parseAddressRange(r), address)));
}

/**
 * Dynamic allocation walks at most this many addresses of each range (an IPv6 /64 is a pool too); an address
 * beyond it can still be asked for by name.
 */
export const DYNAMIC_RANGE_LIMIT = 65_536;

/** The addresses of a pool as one index space for the allocator's cursor: its ranges in order, each capped. */
export function poolIndexSpace(pool: IndexedPool): { size: number; key(index: number): string } {
  const ranges = pool.ranges.map(parseAddressRange);
  const sizes = ranges.map((r) => Number(r.last - r.first + 1n > BigInt(DYNAMIC_RANGE_LIMIT) ? BigInt(DYNAMIC_RANGE_LIMIT) : r.last - r.first + 1n));
  return {
    size: sizes.reduce((a, b) => a + b, 0),
    key(index: number): string {
      let i = index;
      for (const [n, r] of ranges.entries()) {
        if (i < sizes[n]!) return formatAddress({ family: r.family, value: r.first + BigInt(i) });
        i -= sizes[n]!;
      }
      throw new Error(`address index ${index} outside pool ${pool.name}`);
    },
  };
}

/** The number of addresses of each family a pool holds (counted exactly, capped at Number.MAX_SAFE_INTEGER). */
export function poolSize(pool: IndexedPool): Record<Family, number> {
  const total: Record<Family, bigint> = { 4: 0n, 6: 0n };
  for (const r of pool.ranges.map(parseAddressRange)) total[r.family] += r.last - r.first + 1n;
  const cap = (n: bigint) => Number(n > BigInt(Number.MAX_SAFE_INTEGER) ? BigInt(Number.MAX_SAFE_INTEGER) : n);
  return { 4: cap(total[4]), 6: cap(total[6]) };
}
