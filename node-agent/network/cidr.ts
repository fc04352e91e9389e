// IPv4 CIDR arithmetic of the pod network. The contract of this round puts CIDR helpers in
// api-types/network.ts (branch svc); this file goes once that module is merged and its helpers are used here.
export interface Cidr {
  /** The network address as an unsigned 32-bit number. */
  base: number;
  bits: number;
  /** Normalised text: the network address and the prefix length ("10.42.1.0/24"). */
  text: string;
}

export function ipv4ToNumber(ip: string): number | undefined {
  const parts = ip.split('.');
  if (parts.length !== 4 || parts.some((p) => !/^\d{1,3}$/.test(p) || Number(p) > 255)) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function numberToIpv4(n: number): string {
  return [24, 16, 8, 0].map((s) => (n >>> s) & 255).join('.');
}

/** Parses "A.B.C.D/N" (host bits are cleared); undefined when it is not an IPv4 CIDR. */
export function parseCidr(text: string): Cidr | undefined {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text.trim());
  const ip = m ? ipv4ToNumber(m[1]!) : undefined;
  const bits = Number(m?.[2]);
  if (ip === undefined || !(bits >= 0 && bits <= 32)) return undefined;
  const base = bits === 0 ? 0 : (ip & (~0 << (32 - bits))) >>> 0;
  return { base, bits, text: `${numberToIpv4(base)}/${bits}` };
}

export function cidrContains(cidr: Cidr, ip: string): boolean {
  const n = ipv4ToNumber(ip);
  if (n === undefined) return false;
  return cidr.bits === 0 || (n & (~0 << (32 - cidr.bits))) >>> 0 === cidr.base;
}

/** The n-th address of the block (1: the first host address, a bridge's gateway). */
export function nthAddress(cidr: Cidr, n: number): string {
  return numberToIpv4((cidr.base + n) >>> 0);
}
