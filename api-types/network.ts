// The cluster's network settings (what the leader publishes in ConfigMap kube-system/flotilla-network) and the
// IPv4 CIDR arithmetic every part uses on them: the server's allocators, the agent's pod network, its Service
// data path and its DNS. One definition of each; nothing else parses a CIDR.

/** Where the leader publishes the settings at bootstrap (server/run.ts); agents and the servers' allocators read them there. */
export const NETWORK_SETTINGS_CONFIGMAP = { namespace: 'kube-system', name: 'flotilla-network' } as const;

export const DEFAULT_CLUSTER_CIDR = '10.42.0.0/16';
export const DEFAULT_SERVICE_CIDR = '10.43.0.0/16';
export const DEFAULT_NODE_PORT_RANGE = '30000-32767';
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';
/** clusterDNS "node": every agent answers DNS on its own node address (pods' resolv.conf names that address). */
export const CLUSTER_DNS_NODE = 'node';
/** The prefix length of each Node's podCIDR (Kubernetes' --node-cidr-mask-size for IPv4). */
export const NODE_CIDR_MASK_SIZE = 24;

/** An IPv4 network: `base` is its first address as an unsigned 32-bit number (host bits zero), `prefix` 0..32. */
export interface Cidr { base: number; prefix: number }

export interface PortRange { min: number; max: number }

/** The ConfigMap's data keys, parsed. */
export interface NetworkSettings {
  clusterCIDR: Cidr;
  serviceCIDR: Cidr;
  nodePortRange: PortRange;
  clusterDomain: string;
  /** CLUSTER_DNS_NODE, or an IPv4 address every pod uses as its name server. */
  clusterDNS: string;
}

/** The data of the ConfigMap, by key: what `--cluster-cidr`, `--service-cidr` and `--service-node-port-range` set. */
export type NetworkSettingsData = Record<'clusterCIDR' | 'serviceCIDR' | 'nodePortRange' | 'clusterDomain' | 'clusterDNS', string>;

export const DEFAULT_NETWORK_SETTINGS_DATA: Readonly<NetworkSettingsData> = Object.freeze({
  clusterCIDR: DEFAULT_CLUSTER_CIDR,
  serviceCIDR: DEFAULT_SERVICE_CIDR,
  nodePortRange: DEFAULT_NODE_PORT_RANGE,
  clusterDomain: DEFAULT_CLUSTER_DOMAIN,
  clusterDNS: CLUSTER_DNS_NODE,
});

// ---- addresses and CIDRs -------------------------------------------------------------------------------

const OCTET = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)$/;

/** A dotted-quad IPv4 address as an unsigned 32-bit number; undefined for anything else (leading zeros included). */
export function parseIPv4(text: string): number | undefined {
  const parts = text.split('.');
  if (parts.length !== 4 || !parts.every((p) => OCTET.test(p))) return undefined;
  return parts.reduce((n, p) => n * 256 + Number(p), 0);
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** "10.42.0.0/16" as a Cidr; throws an Error naming what is wrong (host bits set, bad prefix, not IPv4). */
export function parseCidr(text: string): Cidr {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(text.trim());
  const base = m ? parseIPv4(m[1]!) : undefined;
  const prefix = m ? Number(m[2]) : NaN;
  if (base === undefined || !(prefix >= 0 && prefix <= 32)) throw new Error(`"${text}" is not an IPv4 CIDR such as 10.42.0.0/16`);
  if (base % cidrSize({ base: 0, prefix }) !== 0) {
    throw new Error(`"${text}" has host bits set: the network is ${formatCidr({ base: base - (base % cidrSize({ base: 0, prefix })), prefix })}`);
  }
  return { base, prefix };
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.base)}/${c.prefix}`;
}

/** How many addresses the network holds, network and broadcast address included. */
export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function cidrContains(c: Cidr, ip: number): boolean {
  return ip >= c.base && ip < c.base + cidrSize(c);
}

/** The n-th address of the network (0 is the network address itself); throws outside it. */
export function nthAddress(c: Cidr, n: number): number {
  if (!Number.isInteger(n) || n < 0 || n >= cidrSize(c)) throw new Error(`address ${n} is outside ${formatCidr(c)}`);
  return c.base + n;
}

/** The n-th subnet of prefix length `prefix` inside `c` (the 3rd /24 of 10.42.0.0/16 is 10.42.3.0/24). */
export function nthSubnet(c: Cidr, prefix: number, n: number): Cidr {
  if (prefix < c.prefix || prefix > 32) throw new Error(`a /${prefix} is not a subnet of ${formatCidr(c)}`);
  return { base: nthAddress(c, n * cidrSize({ base: 0, prefix })), prefix };
}

/** How many subnets of length `prefix` `c` holds. */
export function subnetCount(c: Cidr, prefix: number): number {
  return prefix < c.prefix ? 0 : 2 ** (prefix - c.prefix);
}

/** Whether the two networks share an address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  return a.base < b.base + cidrSize(b) && b.base < a.base + cidrSize(a);
}

// ---- settings ------------------------------------------------------------------------------------------

/** "30000-32767" as a PortRange; throws naming what is wrong. */
export function parsePortRange(text: string): PortRange {
  const m = /^(\d{1,5})-(\d{1,5})$/.exec(text.trim());
  const min = m ? Number(m[1]) : NaN;
  const max = m ? Number(m[2]) : NaN;
  if (!(min >= 1 && max <= 65535 && min <= max)) throw new Error(`"${text}" is not a port range such as 30000-32767`);
  return { min, max };
}

export function formatPortRange(r: PortRange): string {
  return `${r.min}-${r.max}`;
}

/**
 * Parses the ConfigMap's data (missing keys take the defaults). Throws an Error naming the key and what is
 * wrong; the cluster and service CIDRs must not overlap, and the cluster CIDR must hold at least one podCIDR.
 */
export function parseNetworkSettings(data: Partial<Record<string, string>> | undefined): NetworkSettings {
  const value = (key: keyof NetworkSettingsData): string => data?.[key] ?? DEFAULT_NETWORK_SETTINGS_DATA[key];
  const field = <T>(key: keyof NetworkSettingsData, parse: (s: string) => T): T => {
    try { return parse(value(key)); } catch (e) { throw new Error(`network settings: ${key}: ${(e as Error).message}`); }
  };
  const clusterCIDR = field('clusterCIDR', parseCidr);
  const serviceCIDR = field('serviceCIDR', parseCidr);
  const nodePortRange = field('nodePortRange', parsePortRange);
  if (clusterCIDR.prefix > NODE_CIDR_MASK_SIZE) throw new Error(`network settings: clusterCIDR: ${formatCidr(clusterCIDR)} is smaller than one /${NODE_CIDR_MASK_SIZE} podCIDR`);
  if (serviceCIDR.prefix > 30) throw new Error(`network settings: serviceCIDR: ${formatCidr(serviceCIDR)} is too small (at most /30)`);
  if (cidrsOverlap(clusterCIDR, serviceCIDR)) throw new Error(`network settings: clusterCIDR ${formatCidr(clusterCIDR)} and serviceCIDR ${formatCidr(serviceCIDR)} overlap`);
  const clusterDomain = value('clusterDomain');
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(clusterDomain)) {
    throw new Error(`network settings: clusterDomain: "${clusterDomain}" is not a DNS domain such as cluster.local`);
  }
  const clusterDNS = value('clusterDNS');
  if (clusterDNS !== CLUSTER_DNS_NODE && parseIPv4(clusterDNS) === undefined) {
    throw new Error(`network settings: clusterDNS: must be "${CLUSTER_DNS_NODE}" or an IPv4 address, not "${clusterDNS}"`);
  }
  return { clusterCIDR, serviceCIDR, nodePortRange, clusterDomain, clusterDNS };
}

/** The ConfigMap data of `s`, in the form parseNetworkSettings reads. */
export function networkSettingsData(s: NetworkSettings): NetworkSettingsData {
  return {
    clusterCIDR: formatCidr(s.clusterCIDR), serviceCIDR: formatCidr(s.serviceCIDR), nodePortRange: formatPortRange(s.nodePortRange),
    clusterDomain: s.clusterDomain, clusterDNS: s.clusterDNS,
  };
}

/** The ClusterIP of the `kubernetes` Service in `default`: the first address after the service network's own. */
export function kubernetesServiceIP(s: Pick<NetworkSettings, 'serviceCIDR'>): string {
  return formatIPv4(nthAddress(s.serviceCIDR, 1));
}
