// The Service data path as one nftables table, compiled from the Services and EndpointSlices the agent sees
// (pure: no I/O; node-agent/network/nft-applier.ts puts it in the kernel). The shape is kube-proxy's nftables
// proxier, trimmed to what Flotilla serves:
//
// - Lookups cost the same for 1 or 5,000 Services: verdict maps keyed by (ip . proto . port) for ClusterIPs,
//   external IPs and load-balancer addresses (`service-ips`), and by (proto . port) for NodePorts on any local
//   address (`service-nodeports`, `fib daddr type local`, loopback excluded as kube-proxy does).
// - Per service port, a chain `svc-NS/NAME/PROTO/PORT` picks a ready endpoint at random
//   (`numgen random mod N vmap`) and goes to its chain `ep-...__IP/PORT`, which DNATs. Hairpin (an endpoint
//   reaching its own Service) is masqueraded in the endpoint chain, since the reply would otherwise never pass
//   back through the node; traffic from outside the cluster CIDR to a ClusterIP is masqueraded too.
// - sessionAffinity ClientIP: a dynamic set per endpoint (`aff-...`, timeout = timeoutSeconds) that the
//   endpoint chain updates with the client address and the service chain consults before choosing at random.
// - External traffic (NodePort, external IPs, load-balancer addresses) enters through `ext-...`: with
//   externalTrafficPolicy Cluster it is masqueraded and goes to the service chain; with Local it keeps the client
//   source and goes to `local-...` (endpoints on this node only), except traffic from pods and from the node
//   itself, which goes to the service chain (kube-proxy's short-circuit).
// - No usable endpoint: the destination goes into `no-endpoint-services` / `no-endpoint-nodeports`, checked by
//   filter chains before DNAT would have happened: `reject` (the client learns at once), or `drop` for external
//   traffic of an externalTrafficPolicy Local Service with no endpoint on this node (as kube-proxy).
// - Headless Services (clusterIP None) and ExternalName Services get nothing.
//
// The output is deterministic (services, ports, endpoints and map elements sorted), so an unchanged input gives
// byte-identical text and the applier can skip the kernel. IPv4 only: the service CIDR is IPv4; IPv6 slices are
// ignored.
import { DEFAULT_SESSION_AFFINITY_TIMEOUT_SECONDS, type EndpointSlice, type Service, type ServicePort } from '../../api-types/index.js';

export const TABLE_FAMILY = 'inet';
export const TABLE_NAME = 'flotilla';
/** The packet mark bit that asks the postrouting chain to masquerade (kube-proxy's 0x4000). */
const MASQ_MARK = '0x4000';
/** Maps whose elements a sync replaces wholesale: the applier flushes them before the new table text. */
export const VERDICT_MAPS = ['service-ips', 'service-nodeports', 'no-endpoint-services', 'no-endpoint-nodeports'] as const;

/** What the compiler needs to know about the Services: the read side of node-agent/network/service-cache.ts. */
export interface ServiceSource {
  services(): Service[];
  slicesOf(namespace: string, serviceName: string): EndpointSlice[];
}

export interface NodeFacts {
  /** This node's name: endpoints with this nodeName are local (externalTrafficPolicy / internalTrafficPolicy Local). */
  nodeName: string;
  /** The cluster (pod) CIDR: traffic from outside it to a ClusterIP is masqueraded. */
  clusterCIDR: string;
}

/** A UDP destination and one endpoint behind it: conntrack entries of flows no longer here must go. */
export interface UdpFlow {
  /** The ClusterIP / external IP, or undefined for a NodePort (any local address). */
  ip?: string;
  port: number;
  endpoint: string;
}

export interface CompiledRuleset {
  /** One `table inet flotilla { ... }`, ending with a newline. */
  text: string;
  udpFlows: UdpFlow[];
}

interface Endpoint {
  ip: string;
  port: number;
  local: boolean;
}

/** A service port with the endpoints that serve it, ready to be written out. */
interface PortPlan {
  id: string;
  proto: string;
  clusterIP: string;
  port: number;
  nodePort: number | undefined;
  externalIPs: string[];
  endpoints: Endpoint[];
  externalLocal: boolean;
  internalLocal: boolean;
  affinitySeconds: number | undefined;
}

export function compileRuleset(source: ServiceSource, facts: NodeFacts): CompiledRuleset {
  const plans: PortPlan[] = [];
  const services = [...source.services()].sort((a, b) => keyOf(a).localeCompare(keyOf(b)));
  for (const svc of services) plans.push(...planService(svc, source, facts));
  return render(plans, facts);
}

function keyOf(svc: Service): string {
  return `${svc.metadata.namespace ?? 'default'}/${svc.metadata.name ?? ''}`;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

function isIPv4(s: string | undefined): s is string {
  const m = s === undefined ? null : IPV4.exec(s);
  return m !== null && m.slice(1).every((o) => Number(o) <= 255);
}

function planService(svc: Service, source: ServiceSource, facts: NodeFacts): PortPlan[] {
  const spec = svc.spec ?? {};
  const clusterIP = spec.clusterIP;
  if (spec.type === 'ExternalName' || !isIPv4(clusterIP)) return [];
  const namespace = svc.metadata.namespace ?? 'default';
  const name = svc.metadata.name ?? '';
  const slices = source.slicesOf(namespace, name).filter((s) => s.addressType === 'IPv4');
  const externalIPs = [...(spec.externalIPs ?? []), ...(svc.status?.loadBalancer?.ingress ?? []).map((i) => i.ip)]
    .filter(isIPv4);
  const withNodePorts = spec.type === 'NodePort' || spec.type === 'LoadBalancer';
  const affinitySeconds = spec.sessionAffinity === 'ClientIP'
    ? spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? DEFAULT_SESSION_AFFINITY_TIMEOUT_SECONDS
    : undefined;
  return (spec.ports ?? []).map((p) => {
    const proto = (p.protocol ?? 'TCP').toLowerCase();
    return {
      id: `${namespace}/${name}/${proto}/${p.name || String(p.port)}`,
      proto,
      clusterIP,
      port: p.port,
      nodePort: withNodePorts && p.nodePort ? p.nodePort : undefined,
      externalIPs: [...new Set(externalIPs)].sort(compareIPs),
      endpoints: endpointsFor(slices, p, facts.nodeName),
      externalLocal: spec.externalTrafficPolicy === 'Local',
      internalLocal: spec.internalTrafficPolicy === 'Local',
      affinitySeconds,
    };
  });
}

/**
 * The endpoints serving one service port: the ready ones; when none is ready, the serving ones that are
 * terminating (kube-proxy's terminating-endpoints fallback, so a rolling update never drops to zero).
 * Conditions left out mean ready / serving as ready / not terminating (Kubernetes' reading of nil).
 */
function endpointsFor(slices: EndpointSlice[], port: ServicePort, nodeName: string): Endpoint[] {
  const ready = new Map<string, Endpoint>();
  const terminating = new Map<string, Endpoint>();
  const proto = port.protocol ?? 'TCP';
  for (const slice of slices) {
    const sp = (slice.ports ?? []).find((x) => (x.name ?? '') === (port.name ?? '') && (x.protocol ?? 'TCP') === proto);
    if (sp?.port === undefined || sp.port === null) continue;
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

function compareIPs(a: string, b: string): number {
  const na = a.split('.').map(Number);
  const nb = b.split('.').map(Number);
  for (let i = 0; i < 4; i++) if (na[i] !== nb[i]) return na[i]! - nb[i]!;
  return 0;
}

const epChain = (plan: PortPlan, e: Endpoint): string => `ep-${plan.id}__${e.ip}/${e.port}`;
const affinitySet = (plan: PortPlan, e: Endpoint): string => `aff-${plan.id}__${e.ip}/${e.port}`;

function render(plans: PortPlan[], facts: NodeFacts): CompiledRuleset {
  const serviceIps: string[] = [];
  const nodePorts: string[] = [];
  const noEndpointIps: string[] = [];
  const noEndpointNodePorts: string[] = [];
  const sets: string[] = [];
  const chains: string[] = [];
  const udpFlows: UdpFlow[] = [];

  for (const plan of plans) {
    const svcChain = `svc-${plan.id}`;
    const clusterEndpoints = plan.internalLocal ? plan.endpoints.filter((e) => e.local) : plan.endpoints;
    const localEndpoints = plan.endpoints.filter((e) => e.local);
    const hasExternal = plan.nodePort !== undefined || plan.externalIPs.length > 0;

    // External traffic goes through the service chain too (all endpoints, whatever internalTrafficPolicy says).
    if (plan.endpoints.length > 0) {
      const chosen = clusterEndpoints.length > 0 ? clusterEndpoints : plan.endpoints;
      chains.push(chain(svcChain, [
        `ip saddr != ${facts.clusterCIDR} jump mark-for-masquerade`,
        ...affinityRules(plan, chosen),
        pick(plan, chosen),
      ]));
    }
    if (clusterEndpoints.length > 0) serviceIps.push(`${plan.clusterIP} . ${plan.proto} . ${plan.port} : goto ${svcChain}`);
    else noEndpointIps.push(`${plan.clusterIP} . ${plan.proto} . ${plan.port} : ${plan.internalLocal && plan.endpoints.length > 0 ? 'drop' : 'goto reject-chain'}`);

    if (hasExternal) {
      const extChain = `ext-${plan.id}`;
      const noExternal = plan.endpoints.length === 0 ? 'goto reject-chain' : plan.externalLocal && localEndpoints.length === 0 ? 'drop' : undefined;
      if (plan.endpoints.length > 0) {
        if (plan.externalLocal) {
          const localChain = `local-${plan.id}`;
          chains.push(chain(extChain, [
            `ip saddr ${facts.clusterCIDR} goto ${svcChain}`,
            'fib saddr type local jump mark-for-masquerade',
            `fib saddr type local goto ${svcChain}`,
            ...(localEndpoints.length > 0 ? [`goto ${localChain}`] : []),
          ]));
          if (localEndpoints.length > 0) chains.push(chain(localChain, [...affinityRules(plan, localEndpoints), pick(plan, localEndpoints)]));
        } else {
          chains.push(chain(extChain, ['jump mark-for-masquerade', `goto ${svcChain}`]));
        }
      }
      for (const ip of plan.externalIPs) {
        if (plan.endpoints.length > 0) serviceIps.push(`${ip} . ${plan.proto} . ${plan.port} : goto ${extChain}`);
        if (noExternal) noEndpointIps.push(`${ip} . ${plan.proto} . ${plan.port} : ${noExternal}`);
      }
      if (plan.nodePort !== undefined) {
        if (plan.endpoints.length > 0) nodePorts.push(`${plan.proto} . ${plan.nodePort} : goto ${extChain}`);
        if (noExternal) noEndpointNodePorts.push(`${plan.proto} . ${plan.nodePort} : ${noExternal}`);
      }
    }

    for (const e of plan.endpoints) {
      const rules = [`ip saddr ${e.ip} jump mark-for-masquerade`];
      if (plan.affinitySeconds !== undefined) {
        sets.push(`\tset ${affinitySet(plan, e)} {\n\t\ttype ipv4_addr\n\t\tflags dynamic,timeout\n\t\ttimeout ${plan.affinitySeconds}s\n\t}\n`);
        rules.push(`update @${affinitySet(plan, e)} { ip saddr }`);
      }
      rules.push(`meta l4proto ${plan.proto} dnat ip to ${e.ip}:${e.port}`);
      chains.push(chain(epChain(plan, e), rules));
      if (plan.proto === 'udp') {
        udpFlows.push({ ip: plan.clusterIP, port: plan.port, endpoint: e.ip });
        for (const ip of plan.externalIPs) udpFlows.push({ ip, port: plan.port, endpoint: e.ip });
        if (plan.nodePort !== undefined) udpFlows.push({ port: plan.nodePort, endpoint: e.ip });
      }
    }
  }

  const text = [
    `table ${TABLE_FAMILY} ${TABLE_NAME} {\n`,
    verdictMap('service-ips', 'ipv4_addr . inet_proto . inet_service', serviceIps),
    verdictMap('service-nodeports', 'inet_proto . inet_service', nodePorts),
    verdictMap('no-endpoint-services', 'ipv4_addr . inet_proto . inet_service', noEndpointIps),
    verdictMap('no-endpoint-nodeports', 'inet_proto . inet_service', noEndpointNodePorts),
    ...sets,
    chain('nat-prerouting', ['type nat hook prerouting priority dstnat; policy accept;', 'jump services']),
    chain('nat-output', ['type nat hook output priority dstnat; policy accept;', 'jump services']),
    chain('nat-postrouting', ['type nat hook postrouting priority srcnat; policy accept;', 'jump masquerading']),
    // At dstnat - 10 (nft takes no priority name there), new connections only: what no endpoint can take.
    chain('filter-input', ['type filter hook input priority -110; policy accept;', 'ct state new jump nodeport-endpoints-check', 'ct state new jump service-endpoints-check']),
    chain('filter-forward', ['type filter hook forward priority -110; policy accept;', 'ct state new jump service-endpoints-check']),
    chain('filter-output', ['type filter hook output priority -110; policy accept;', 'ct state new jump service-endpoints-check']),
    chain('services', [
      'ip daddr . meta l4proto . th dport vmap @service-ips',
      'fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports',
    ]),
    chain('service-endpoints-check', ['ip daddr . meta l4proto . th dport vmap @no-endpoint-services']),
    chain('nodeport-endpoints-check', ['fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports']),
    chain('reject-chain', ['reject']),
    chain('mark-for-masquerade', [`meta mark set meta mark | ${MASQ_MARK}`]),
    chain('masquerading', [`meta mark & ${MASQ_MARK} == 0 return`, `meta mark set meta mark ^ ${MASQ_MARK}`, 'masquerade fully-random']),
    ...chains,
    '}\n',
  ].join('');
  return { text, udpFlows };
}

function affinityRules(plan: PortPlan, endpoints: Endpoint[]): string[] {
  if (plan.affinitySeconds === undefined) return [];
  return endpoints.map((e) => `ip saddr @${affinitySet(plan, e)} goto ${epChain(plan, e)}`);
}

function pick(plan: PortPlan, endpoints: Endpoint[]): string {
  if (endpoints.length === 1) return `goto ${epChain(plan, endpoints[0]!)}`;
  return `numgen random mod ${endpoints.length} vmap { ${endpoints.map((e, i) => `${i} : goto ${epChain(plan, e)}`).join(', ')} }`;
}

function chain(name: string, rules: string[]): string {
  return `\tchain ${name} {\n${rules.map((r) => `\t\t${r}\n`).join('')}\t}\n`;
}

function verdictMap(name: string, type: string, elements: string[]): string {
  const sorted = [...elements].sort();
  const body = sorted.length === 0 ? '' : `\t\telements = {\n${sorted.map((e) => `\t\t\t${e},\n`).join('')}\t\t}\n`;
  return `\tmap ${name} {\n\t\ttype ${type} : verdict\n${body}\t}\n`;
}

/** Flows of `before` whose destination no longer leads to that endpoint in `after`. */
export function staleUdpFlows(before: UdpFlow[], after: UdpFlow[]): UdpFlow[] {
  const key = (f: UdpFlow): string => `${f.ip ?? '*'}:${f.port}>${f.endpoint}`;
  const kept = new Set(after.map(key));
  return before.filter((f) => !kept.has(key(f)));
}
