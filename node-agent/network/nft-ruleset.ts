// The Service data path as one nftables table (pure: node-agent/network/nft-applier.ts puts it in the kernel),
// written from the plan of node-agent/network/service-plan.ts, which decides what each service port does. The
// shape is kube-proxy's nftables proxier, trimmed to what Flotilla serves:
//
// - Lookups cost the same for 1 or 5,000 Services: verdict maps keyed by (ip . proto . port) for ClusterIPs,
//   external IPs and load-balancer addresses (`service-ips`), and by (proto . port) for NodePorts on any local
//   address (`service-nodeports`, `fib daddr type local`, loopback excluded as kube-proxy does).
// - Per service port, a chain `svc-NS/NAME/PROTO/PORT` picks an endpoint at random (a `numgen random` cascade, see pick())
//   and goes to its chain `ep-...__IP/PORT`, which DNATs. Hairpin (an endpoint reaching its own Service) is
//   masqueraded in the endpoint chain, since the reply would otherwise never pass back through the node; traffic
//   from outside the cluster CIDR to a ClusterIP is masqueraded too.
// - sessionAffinity ClientIP: a dynamic set per endpoint (`aff-...`, timeout = timeoutSeconds) that the
//   endpoint chain updates with the client address and the service chain consults before choosing at random.
// - External traffic enters through `ext-...`: externalTrafficPolicy Cluster masquerades it and goes to the
//   service chain; Local keeps the client source and goes to `local-...` (this node's endpoints), pods and the
//   node itself going to the service chain.
// - No usable endpoint: the destination goes into `no-endpoint-services` / `no-endpoint-nodeports`, which filter
//   chains consult for new connections that were not DNATed: `reject` or `drop` as the plan says.
//
// The text is deterministic, so an unchanged input gives byte-identical text and the applier can skip the kernel.
import { formatCidr } from '../../api-types/index.js';
import { hasExternal, planServices, udpFlows, type Endpoint, type NodeFacts, type PortPlan, type ServiceSource, type UdpFlow } from './service-plan.js';

export const TABLE_FAMILY = 'inet';
export const TABLE_NAME = 'flotilla';
/** The packet mark bit that asks the postrouting chain to masquerade (kube-proxy's 0x4000). */
export const MASQ_MARK = '0x4000';
/** Maps whose elements a sync replaces wholesale: the applier flushes them before the new table text. */
export const VERDICT_MAPS = ['service-ips', 'service-nodeports', 'no-endpoint-services', 'no-endpoint-nodeports'] as const;

export interface CompiledRuleset {
  /** One `table inet flotilla { ... }`, ending with a newline. */
  text: string;
  udpFlows: UdpFlow[];
}

export function compileRuleset(source: ServiceSource, facts: NodeFacts): CompiledRuleset {
  const plans = planServices(source, facts);
  return { text: render(plans, facts), udpFlows: udpFlows(plans) };
}

const epChain = (plan: PortPlan, e: Endpoint): string => `ep-${plan.id}__${e.ip}/${e.port}`;
const affinitySet = (plan: PortPlan, e: Endpoint): string => `aff-${plan.id}__${e.ip}/${e.port}`;
const verdict = (v: 'reject' | 'drop'): string => (v === 'reject' ? 'goto reject-chain' : 'drop');

function render(plans: PortPlan[], facts: NodeFacts): string {
  const clusterCIDR = formatCidr(facts.clusterCIDR);
  const serviceIps: string[] = [];
  const nodePorts: string[] = [];
  const noEndpointIps: string[] = [];
  const noEndpointNodePorts: string[] = [];
  const sets: string[] = [];
  const chains: string[] = [];

  for (const plan of plans) {
    const svcChain = `svc-${plan.id}`;
    const key = `${plan.proto} . ${plan.port}`;
    // External traffic goes through the service chain too (to any endpoint, whatever internalTrafficPolicy says).
    if (plan.endpoints.length > 0) {
      const chosen = plan.clusterEndpoints.length > 0 ? plan.clusterEndpoints : plan.endpoints;
      chains.push(chain(svcChain, [`ip saddr != ${clusterCIDR} jump mark-for-masquerade`, ...affinityRules(plan, chosen), ...pick(plan, chosen)]));
    }
    if (plan.noClusterEndpoint) noEndpointIps.push(`${plan.clusterIP} . ${key} : ${verdict(plan.noClusterEndpoint)}`);
    else serviceIps.push(`${plan.clusterIP} . ${key} : goto ${svcChain}`);

    if (hasExternal(plan)) {
      const extChain = `ext-${plan.id}`;
      if (plan.endpoints.length > 0) {
        if (plan.externalLocal) {
          const localChain = `local-${plan.id}`;
          chains.push(chain(extChain, [
            `ip saddr ${clusterCIDR} goto ${svcChain}`,
            'fib saddr type local jump mark-for-masquerade',
            `fib saddr type local goto ${svcChain}`,
            ...(plan.localEndpoints.length > 0 ? [`goto ${localChain}`] : []),
          ]));
          if (plan.localEndpoints.length > 0) chains.push(chain(localChain, [...affinityRules(plan, plan.localEndpoints), ...pick(plan, plan.localEndpoints)]));
        } else {
          chains.push(chain(extChain, ['jump mark-for-masquerade', `goto ${svcChain}`]));
        }
        for (const ip of plan.externalIPs) serviceIps.push(`${ip} . ${key} : goto ${extChain}`);
        if (plan.nodePort !== undefined) nodePorts.push(`${plan.proto} . ${plan.nodePort} : goto ${extChain}`);
      }
      if (plan.noExternalEndpoint) {
        for (const ip of plan.externalIPs) noEndpointIps.push(`${ip} . ${key} : ${verdict(plan.noExternalEndpoint)}`);
        if (plan.nodePort !== undefined) noEndpointNodePorts.push(`${plan.proto} . ${plan.nodePort} : ${verdict(plan.noExternalEndpoint)}`);
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
    }
  }

  return [
    `table ${TABLE_FAMILY} ${TABLE_NAME} {\n`,
    verdictMap('service-ips', 'ipv4_addr . inet_proto . inet_service', serviceIps),
    verdictMap('service-nodeports', 'inet_proto . inet_service', nodePorts),
    verdictMap('no-endpoint-services', 'ipv4_addr . inet_proto . inet_service', noEndpointIps),
    verdictMap('no-endpoint-nodeports', 'inet_proto . inet_service', noEndpointNodePorts),
    ...sets,
    chain('nat-prerouting', ['type nat hook prerouting priority dstnat; policy accept;', 'jump services']),
    chain('nat-output', ['type nat hook output priority -100; policy accept;', 'jump services']),
    chain('nat-postrouting', ['type nat hook postrouting priority srcnat; policy accept;', 'jump masquerading']),
    // Numbers where nft 1.0 takes no priority name: dstnat (-100) in output; dstnat - 10 for the checks of new
    // connections that were not DNATed (what no endpoint can take).
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
}

function affinityRules(plan: PortPlan, endpoints: Endpoint[]): string[] {
  if (plan.affinitySeconds === undefined) return [];
  return endpoints.map((e) => `ip saddr @${affinitySet(plan, e)} goto ${epChain(plan, e)}`);
}

/**
 * A uniform random choice as a cascade: endpoint i of n is taken with probability 1/(n-i) when the ones before
 * it were not (each rule draws its own number), which makes 1/n for every endpoint. Not one
 * `numgen random mod n vmap { ... }` per service: each such rule is an anonymous set, and the kernel finds a free
 * name for a new anonymous set by walking every set of the table, so 5,000 Services took over a minute to load
 * (measured, kernel 6.18, nft 1.0.6) where the cascade takes well under two seconds.
 */
function pick(plan: PortPlan, endpoints: Endpoint[]): string[] {
  return endpoints.map((e, i) => {
    const left = endpoints.length - i;
    return left > 1 ? `numgen random mod ${left} == 0 goto ${epChain(plan, e)}` : `goto ${epChain(plan, e)}`;
  });
}

function chain(name: string, rules: string[]): string {
  return `\tchain ${name} {\n${rules.map((r) => `\t\t${r}\n`).join('')}\t}\n`;
}

function verdictMap(name: string, type: string, elements: string[]): string {
  const sorted = [...elements].sort();
  const body = sorted.length === 0 ? '' : `\t\telements = {\n${sorted.map((e) => `\t\t\t${e},\n`).join('')}\t\t}\n`;
  return `\tmap ${name} {\n\t\ttype ${type} : verdict\n${body}\t}\n`;
}
