// What the Service data path must do on this node, decided once for both ways of writing it into the kernel
// (node-agent/network/nft-ruleset.ts, the default; iptables-ruleset.ts where nft is absent). Pure.
//
// Per service port: which endpoints serve cluster traffic (ClusterIP), which serve external traffic (NodePort,
// external IPs, load-balancer addresses), and what happens when none can:
// - endpoints are the ready ones; when none is ready, the serving ones that are terminating (kube-proxy's
//   fallback, so a rolling update never drops to zero). Conditions left out read as Kubernetes reads nil: ready,
//   serving as ready, not terminating;
// - internalTrafficPolicy Local: cluster traffic only to endpoints on this node; externalTrafficPolicy Local:
//   external traffic only to endpoints on this node, keeping the client source (no masquerade), except traffic
//   from pods and from the node itself, which may use any endpoint (kube-proxy's short-circuit);
// - no endpoint at all: `reject` (the client learns at once); endpoints, but none here for a Local policy: `drop`
//   (as kube-proxy);
// - headless Services (clusterIP None) and ExternalName Services: nothing. IPv4 only (the service CIDR is IPv4;
//   IPv6 slices are ignored).
// Services, ports and endpoints come out sorted, so the same input always gives the same rules.
import { DEFAULT_SESSION_AFFINITY_TIMEOUT_SECONDS, parseIPv4, type Cidr, type EndpointSlice, type Service, type ServicePort } from '../../api-types/index.js';

/** What the data path needs to know about the Services: the read side of node-agent/network/service-cache.ts. */
export interface ServiceSource {
  services(): Service[];
  slicesOf(namespace: string, serviceName: string): EndpointSlice[];
}

export interface NodeFacts {
  /** This node's name: endpoints with this nodeName are local (the traffic policies' Local). */
  nodeName: string;
  /** The cluster (pod) CIDR: traffic from outside it to a ClusterIP is masqueraded. */
  clusterCIDR: Cidr;
}

export interface Endpoint {
  ip: string;
  port: number;
  local: boolean;
}

export type NoEndpointVerdict = 'reject' | 'drop';

export interface PortPlan {
  /** `namespace/name/protocol/port-name` (the port number for an unnamed port): unique per service port. */
  id: string;
  /** Lowercase, as nft and iptables write it: tcp, udp, sctp. */
  proto: string;
  clusterIP: string;
  port: number;
  nodePort: number | undefined;
  /** externalIPs and load-balancer ingress addresses, sorted. */
  externalIPs: string[];
  /** Every usable endpoint, sorted by address then port. */
  endpoints: Endpoint[];
  /** Those that cluster traffic goes to (internalTrafficPolicy applied). */
  clusterEndpoints: Endpoint[];
  /** Those on this node. */
  localEndpoints: Endpoint[];
  /** externalTrafficPolicy Local. */
  externalLocal: boolean;
  /** What cluster traffic gets when clusterEndpoints is empty. */
  noClusterEndpoint: NoEndpointVerdict | undefined;
  /** What external traffic gets when no endpoint may take it (undefined: some may). */
  noExternalEndpoint: NoEndpointVerdict | undefined;
  /** sessionAffinity ClientIP: how long a client stays pinned (seconds). */
  affinitySeconds: number | undefined;
}

/** A UDP destination and one endpoint behind it: conntrack entries of flows no longer here must go. */
export interface UdpFlow {
  /** The ClusterIP / external IP, or undefined for a NodePort (any local address). */
  ip?: string;
  port: number;
  endpoint: string;
}

export function planServices(source: ServiceSource, facts: NodeFacts): PortPlan[] {
  return sortedServices(source).flatMap((svc) => planService(svc, slicesOf(source, svc), facts));
}

/** `namespace/name`: the order of Services in the rules (byCodePoint), and the key a compiler caches one Service's rules by. */
export function serviceKey(svc: Service): string {
  return `${svc.metadata.namespace ?? 'default'}/${svc.metadata.name ?? ''}`;
}

/** Code-point order (cheap, and the same on every machine, unlike localeCompare). */
export function byCodePoint(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function sortedServices(source: ServiceSource): Service[] {
  return source.services().map((svc) => [serviceKey(svc), svc] as const).sort(([a], [b]) => byCodePoint(a, b)).map(([, svc]) => svc);
}

/** The EndpointSlices of a Service. */
export function slicesOf(source: ServiceSource, svc: Service): EndpointSlice[] {
  return source.slicesOf(svc.metadata.namespace ?? 'default', svc.metadata.name ?? '');
}

/** Whether a plan has external entry points (NodePort, external IPs, load-balancer addresses). */
export function hasExternal(plan: PortPlan): boolean {
  return plan.nodePort !== undefined || plan.externalIPs.length > 0;
}

/** The UDP flows the plans route, per destination and endpoint. */
export function udpFlows(plans: PortPlan[]): UdpFlow[] {
  const flows: UdpFlow[] = [];
  for (const plan of plans) {
    if (plan.proto !== 'udp') continue;
    for (const e of plan.endpoints) {
      flows.push({ ip: plan.clusterIP, port: plan.port, endpoint: e.ip });
      for (const ip of plan.externalIPs) flows.push({ ip, port: plan.port, endpoint: e.ip });
      if (plan.nodePort !== undefined) flows.push({ port: plan.nodePort, endpoint: e.ip });
    }
  }
  return flows;
}

/** Flows of `before` whose destination no longer leads to that endpoint in `after`. */
export function staleUdpFlows(before: UdpFlow[], after: UdpFlow[]): UdpFlow[] {
  const key = (f: UdpFlow): string => `${f.ip ?? '*'}:${f.port}>${f.endpoint}`;
  const kept = new Set(after.map(key));
  return before.filter((f) => !kept.has(key(f)));
}

function isIPv4(s: string | undefined): s is string {
  return s !== undefined && parseIPv4(s) !== undefined;
}

/** Only for addresses isIPv4 accepted. */
function compareIPs(a: string, b: string): number {
  return parseIPv4(a)! - parseIPv4(b)!;
}

/** The plan of one Service's ports, from the Service and its EndpointSlices (slicesOf). */
export function planService(svc: Service, serviceSlices: EndpointSlice[], facts: NodeFacts): PortPlan[] {
  const spec = svc.spec ?? {};
  const clusterIP = spec.clusterIP;
  if (spec.type === 'ExternalName' || !isIPv4(clusterIP)) return [];
  const namespace = svc.metadata.namespace ?? 'default';
  const name = svc.metadata.name ?? '';
  const slices = serviceSlices.filter((s) => s.addressType === 'IPv4');
  const externalIPs = [...new Set([...(spec.externalIPs ?? []), ...(svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip)].filter(isIPv4))]
    .sort(compareIPs);
  const withNodePorts = spec.type === 'NodePort' || spec.type === 'LoadBalancer';
  const externalLocal = spec.externalTrafficPolicy === 'Local';
  const internalLocal = spec.internalTrafficPolicy === 'Local';
  const affinitySeconds = spec.sessionAffinity === 'ClientIP'
    ? spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_SESSION_AFFINITY_TIMEOUT_SECONDS
    : undefined;
  return (spec.ports ?? []).map((p): PortPlan => {
    const proto = (p.protocol ?? 'TCP').toLowerCase();
    const endpoints = endpointsFor(slices, p, facts.nodeName);
    const localEndpoints = endpoints.filter((e) => e.local);
    const clusterEndpoints = internalLocal ? localEndpoints : endpoints;
    const none = (usable: Endpoint[]): NoEndpointVerdict | undefined => usable.length > 0 ? undefined : endpoints.length > 0 ? 'drop' : 'reject';
    return {
      id: `${namespace}/${name}/${proto}/${p.name || String(p.port)}`,
      proto,
      clusterIP,
      port: p.port,
      nodePort: withNodePorts && p.nodePort ? p.nodePort : undefined,
      externalIPs,
      endpoints,
      clusterEndpoints,
      localEndpoints,
      externalLocal,
      noClusterEndpoint: none(clusterEndpoints),
      noExternalEndpoint: none(externalLocal ? localEndpoints : endpoints),
      affinitySeconds,
    };
  });
}

function endpointsFor(slices: EndpointSlice[], port: ServicePort, nodeName: string): Endpoint[] {
  const ready = new Map<string, Endpoint>();
  const terminating = new Map<string, Endpoint>();
  const proto = port.protocol ?? 'TCP';
  for (const slice of slices) {
    const sp = (slice.ports ?? []).find((x) => (x.name ?? '') === (port.name ?? '') && (x.protocol ?? 'TCP') === proto);
    if (typeof sp?.port !== 'number') continue;
    for (const ep of slice.endpoints) {
      const ip = ep.addresses[0];
      if (!isIPv4(ip)) continue;
      const isReady = ep.conditions?.ready ?? true;
      const serving = ep.conditions?.serving ?? isReady;
      const isTerminating = ep.conditions?.terminating ?? false;
      const e: Endpoint = { ip, port: sp.port, local: ep.nodeName === nodeName };
      if (isReady) ready.set(`${ip}:${sp.port}`, e);
      else if (serving && isTerminating) terminating.set(`${ip}:${sp.port}`, e);
    }
  }
  const chosen = ready.size > 0 ? ready : terminating;
  return [...chosen.values()].sort((a, b) => compareIPs(a.ip, b.ip) || a.port - b.port);
}
