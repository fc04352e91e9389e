// The pure core of the pod network, flannel host-gw style: which kernel routes a node needs (one per other
// node's podCIDR, via that node's InternalIP), what to change to get there from the routes the kernel holds,
// which nodes cannot be reached that way (not on a directly connected subnet), the Docker bridge network of the
// node's podCIDR, and the iptables rules beside it. No I/O here: node-agent/network/pod-network.ts applies it.
import { cidrContains, formatCidr, formatIPv4, nthAddress, parseCidr, parseIPv4, type Cidr, type Node } from '../../api-types/index.js';

/**
 * The routing protocol number our routes carry (`ip route ... proto 152`): what tells the agent's routes from
 * an administrator's, so that only ours are ever removed. Numbers 1-4 are the kernel's, names in
 * /etc/iproute2/rt_protos go up to 99 on most systems; 152 is unassigned there.
 */
export const ROUTE_PROTOCOL = 152;

/** The fields of a Node the pod network reads. */
export type NetworkNode = { metadata: Pick<Node['metadata'], 'name'>; spec?: Pick<NonNullable<Node['spec']>, 'podCIDR' | 'podCIDRs'>; status?: Pick<NonNullable<Node['status']>, 'addresses'> };

/** One route of the kernel's main table as `ip -j route show` prints it (the fields used here). */
export interface KernelRoute {
  dst: string;
  gateway?: string;
  dev?: string;
  protocol?: string | number;
}

export interface RouteChanges {
  /** `ip route replace DST via GATEWAY proto ROUTE_PROTOCOL`, in DST order. */
  replace: { dst: string; gateway: string }[];
  /** `ip route del DST proto ROUTE_PROTOCOL`: ours, and no node's podCIDR now (a deleted node's). */
  remove: string[];
}

/** An IPv4 CIDR in its normal form, or undefined for anything else (an IPv6 one, garbage). */
function ipv4Cidr(text: string): Cidr | undefined {
  try {
    return parseCidr(text);
  } catch {
    return undefined;
  }
}

/** The IPv4 podCIDR of a node: podCIDRs' first IPv4 entry, else podCIDR. */
export function podCidrOf(node: NetworkNode): string | undefined {
  const candidates = [...(node.spec?.podCIDRs ?? []), ...(node.spec?.podCIDR ? [node.spec.podCIDR] : [])];
  for (const c of candidates) {
    const parsed = ipv4Cidr(c);
    if (parsed) return formatCidr(parsed);
  }
  return undefined;
}

export function internalIpOf(node: NetworkNode): string | undefined {
  return node.status?.addresses?.find((a) => a.type === 'InternalIP' && /^\d+\.\d+\.\d+\.\d+$/.test(a.address))?.address;
}

/** podCIDR -> the node address it is reached through, for every node but `self` that has both. */
export function desiredRoutes(self: string, nodes: readonly NetworkNode[]): Map<string, string> {
  const routes = new Map<string, string>();
  for (const node of nodes) {
    if (node.metadata.name === self) continue;
    const cidr = podCidrOf(node);
    const address = internalIpOf(node);
    if (cidr && address) routes.set(cidr, address);
  }
  return routes;
}

/** What turns the kernel's routes of ROUTE_PROTOCOL into `desired`: a route via the wrong gateway is replaced. */
export function planRouteChanges(desired: ReadonlyMap<string, string>, current: readonly KernelRoute[]): RouteChanges {
  const ours = new Map(current.filter(isOurs).map((r) => [normalisedDst(r.dst), r.gateway]));
  const replace = [...desired].filter(([dst, gateway]) => ours.get(dst) !== gateway).map(([dst, gateway]) => ({ dst, gateway }));
  const remove = [...ours.keys()].filter((dst) => !desired.has(dst));
  replace.sort((a, b) => a.dst.localeCompare(b.dst));
  return { replace, remove: remove.sort() };
}

function isOurs(route: KernelRoute): boolean {
  return String(route.protocol) === String(ROUTE_PROTOCOL);
}

function normalisedDst(dst: string): string {
  const parsed = ipv4Cidr(dst.includes('/') ? dst : `${dst}/32`);
  return parsed ? formatCidr(parsed) : dst;
}

/** An IPv4 address on one of this machine's interfaces, with its prefix length (`ip -j addr`'s addr_info). */
export interface LocalAddress {
  address: string;
  prefixLength: number;
}

/**
 * Nodes whose InternalIP is on none of this machine's directly connected subnets: a host-gw route via them
 * cannot work (the kernel refuses a gateway that is not on-link), so the pod network needs one L2 segment.
 */
export function offLinkNodes(routes: ReadonlyMap<string, string>, local: readonly LocalAddress[]): { cidr: string; gateway: string }[] {
  const subnets = local.flatMap((a) => {
    const ip = parseIPv4(a.address);
    if (ip === undefined || !(a.prefixLength >= 0 && a.prefixLength <= 32)) return [];
    const size = 2 ** (32 - a.prefixLength);
    return [{ base: ip - (ip % size), prefix: a.prefixLength }];
  });
  return [...routes].filter(([, gateway]) => {
    const ip = parseIPv4(gateway);
    return ip === undefined || !subnets.some((s) => cidrContains(s, ip));
  }).map(([cidr, gateway]) => ({ cidr, gateway }));
}

/** The fix named when nodes are not on one L2 segment. */
export const OFF_LINK_FIX = 'put the nodes on one Ethernet segment (one subnet, no router between them), '
  + 'or give each node an address on a shared subnet with flotilla agent --advertise-address IP';

/** What the agent creates in Docker for its podCIDR. */
export interface BridgeNetworkSpec {
  name: string;
  /** The Linux bridge device (at most 15 characters). */
  bridge: string;
  subnet: string;
  gateway: string;
  options: Record<string, string>;
}

/**
 * The Docker bridge network of a podCIDR: gateway .1, Docker's own masquerade off (pod IPs stay the source
 * between pods; the agent masquerades only what leaves the cluster CIDR). Docker 28 and later filter packets
 * from other interfaces addressed to container IPs ("direct routing"); gateway mode nat-unprotected turns that
 * filter off for this network, which is what lets another node's pods reach these pods. Older engines do not
 * know the option, so it is only sent to 28+.
 */
export function bridgeNetworkSpec(podCidr: string, engineVersion: string): BridgeNetworkSpec {
  const parsed = parseCidr(podCidr);
  const options: Record<string, string> = {
    'com.docker.network.bridge.name': `fl${parsed.base.toString(16).padStart(8, '0')}-${parsed.prefix}`,
    'com.docker.network.bridge.enable_ip_masquerade': 'false',
  };
  const major = Number.parseInt(engineVersion, 10);
  if (major >= 28) options['com.docker.network.bridge.gateway_mode_ipv4'] = 'nat-unprotected';
  return {
    name: `flotilla-pods-${formatCidr(parsed).replace('/', '-')}`,
    bridge: options['com.docker.network.bridge.name']!,
    subnet: formatCidr(parsed),
    gateway: formatIPv4(nthAddress(parsed, 1)),
    options,
  };
}

/** Our iptables chains: jumped to from Docker's DOCKER-USER (filter) and from POSTROUTING (nat). */
export const FORWARD_CHAIN = 'FLOTILLA-FORWARD';
export const MASQUERADE_CHAIN = 'FLOTILLA-MASQ';

/**
 * The rules of our chains, as iptables arguments after `-A CHAIN`. Forward: Docker 20.10 sets the FORWARD
 * policy to DROP and drops traffic into its bridges that it did not publish, so traffic to and from the cluster
 * CIDR is accepted first. Masquerade: what leaves this node's pods for outside the cluster CIDR gets the node's
 * address; between pods the source stays the pod IP.
 */
export function chainRules(clusterCidr: string, podCidr: string): { forward: string[][]; masquerade: string[][] } {
  return {
    forward: [
      ['-s', clusterCidr, '-m', 'comment', '--comment', 'flotilla pod network', '-j', 'ACCEPT'],
      ['-d', clusterCidr, '-m', 'comment', '--comment', 'flotilla pod network', '-j', 'ACCEPT'],
    ],
    masquerade: [
      ['-s', podCidr, '!', '-d', clusterCidr, '-m', 'comment', '--comment', 'flotilla pods leaving the cluster CIDR', '-j', 'MASQUERADE'],
    ],
  };
}

/**
 * Which iptables the host uses: the one Docker's chains are in (`iptables-legacy -S` / `iptables-nft -S` output,
 * undefined where that command is missing or failed). Rules in the other one would be evaluated in a separate
 * set of tables, beside Docker's rather than before them, so the two are never mixed. Neither holds Docker's
 * chains (Docker runs with --iptables=false): the `iptables` of the PATH.
 */
export function iptablesOfDocker(legacy: string | undefined, nft: string | undefined): 'iptables-legacy' | 'iptables-nft' | 'iptables' {
  const hasDocker = (s: string | undefined) => s !== undefined && /^-N DOCKER(-USER)?$/m.test(s);
  if (hasDocker(nft)) return 'iptables-nft';
  if (hasDocker(legacy)) return 'iptables-legacy';
  return 'iptables';
}
