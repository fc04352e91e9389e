// The Service data path as one nftables table (pure: node-agent/network/nft-applier.ts puts it in the kernel),
// written from the plan of node-agent/network/service-plan.ts, which decides what each service port does. The
// shape is kube-proxy's nftables proxier, trimmed to what Flotilla serves:
//
// - Lookups cost the same for 1 or 5,000 Services: verdict maps keyed by (ip . proto . port) for ClusterIPs,
//   external IPs and load-balancer addresses (`service-ips`), and by (proto . port) for NodePorts on any local
//   address (`service-nodeports`, `fib daddr type local`, loopback excluded as kube-proxy does).
// - Per service port, a chain `svc-NS/NAME/PROTO/PORT` picks an endpoint at random (a `numgen random` cascade, see
//   pick()) and DNATs to it in the same rule. No chain per endpoint (kube-proxy has one, for its hairpin rule):
//   what a change costs in nft and in the kernel grows with the number of chains (see nft-applier.ts), and one
//   chain per endpoint made 20,000 chains of 5,000 Services x 3 endpoints instead of 5,000. Hairpin (an endpoint
//   reaching its own Service) is masqueraded in postrouting instead, since the reply would otherwise never pass
//   back through the node: a DNATed packet whose source and destination are one endpoint's address is in the
//   set `hairpin` (an element `IP . IP` per endpoint address). Traffic from outside the cluster CIDR to a
//   ClusterIP is masqueraded too.
// - sessionAffinity ClientIP: a dynamic set per endpoint (`aff-...`, timeout = timeoutSeconds) that the rule
//   choosing the endpoint updates with the client address and that the service chain consults before choosing at
//   random.
// - External traffic enters through `ext-...`: externalTrafficPolicy Cluster masquerades it and goes to the
//   service chain; Local keeps the client source and goes to `local-...` (this node's endpoints), pods and the
//   node itself going to the service chain.
// - No usable endpoint: the destination goes into `no-endpoint-services` / `no-endpoint-nodeports`, which filter
//   chains consult for new connections that were not DNATed: `reject` or `drop` as the plan says.
//
// Compiled per Service (ServiceRules: its sets, chains and elements; no other Service's rules refer to them, and
// only elements, of `hairpin` or of a map, can be another Service's too),
// so a RulesetCompiler recompiles only the Services whose objects changed (looking at only those the service cache
// names after a change) and the applier (nft-applier.ts) sends only the difference of those. The text of the whole
// table is deterministic: an unchanged input gives byte-identical text.
import { formatCidr, type EndpointSlice, type Service } from '../../api-types/index.js';
import type { ChangedServices } from './service-cache.js';
import { byCodePoint, hasExternal, planService, serviceKey, slicesOf, staleUdpFlows, udpFlows, type Endpoint, type NodeFacts, type PortPlan, type ServiceSource, type UdpFlow } from './service-plan.js';

export const TABLE_FAMILY = 'inet';
export const TABLE_NAME = 'flotilla';
/** The packet mark bit that asks the postrouting chain to masquerade (kube-proxy's 0x4000). */
export const MASQ_MARK = '0x4000';
/**
 * The maps and sets Services put elements in, in the order the table declares them: `map` (a verdict map, elements
 * `key : verdict`) or `set` (elements are keys), and the key type.
 */
export const ELEMENT_SETS = {
  'service-ips': ['map', 'ipv4_addr . inet_proto . inet_service'],
  'service-nodeports': ['map', 'inet_proto . inet_service'],
  'no-endpoint-services': ['map', 'ipv4_addr . inet_proto . inet_service'],
  'no-endpoint-nodeports': ['map', 'inet_proto . inet_service'],
  'hairpin': ['set', 'ipv4_addr . ipv4_addr'],
} as const;
export type ElementSet = keyof typeof ELEMENT_SETS;

/** How an element is written: `key : verdict` in a map, `key` in a set. */
export function elementText(set: ElementSet, key: string, value: string): string {
  return ELEMENT_SETS[set][0] === 'map' ? `${key} : ${value}` : key;
}

/** The declaration of a map or set of ELEMENT_SETS, for `map NAME { ... }` / `set NAME { ... }`. */
export function elementSetType(set: ElementSet): string {
  const [kind, type] = ELEMENT_SETS[set];
  return kind === 'map' ? `type ${type} : verdict` : `type ${type}`;
}

/** One Service's part of the table. Names of its sets and chains carry the service port's id: unique to it. */
export interface ServiceRules {
  /** Affinity sets in table order: name -> declaration lines ("type ipv4_addr", "flags ...", "timeout ...s"). */
  sets: ReadonlyMap<string, readonly string[]>;
  /** Chains in table order: name -> rules. */
  chains: ReadonlyMap<string, readonly string[]>;
  /** Elements: map or set -> key -> verdict ('' in a set). */
  elements: ReadonlyMap<ElementSet, ReadonlyMap<string, string>>;
  udpFlows: readonly UdpFlow[];
}

export interface CompiledRuleset {
  /** Every Service's rules by serviceKey (a Service with no rules is left out); rulesetText orders them by key. */
  services: ReadonlyMap<string, ServiceRules>;
  /** Set by RulesetCompiler: what tells the difference to another ruleset without a walk over every Service. */
  lineage?: Lineage;
}

export interface Lineage {
  /** This compile's number, unique in the process. */
  generation: number;
  /** The compile this one was made from, and the keys of the Services whose rules may differ from it. */
  since?: { generation: number; keys: ReadonlySet<string> };
  /** How many Services have each element: right only while `generation` is its compiler's latest compile. */
  owners: ElementOwners;
}

let generations = 0;

/**
 * How many Services have each element (set, key, value): a Service's endpoint can be another one's too (a pod
 * behind two Services is in `hairpin` once), and such an element stays while one of them has it.
 */
export class ElementOwners {
  /** The compile these counts are those of. */
  generation = 0;
  /** Per map or set, by element text (elementText: the key alone in a set, so no new string for most of them). */
  readonly #counts = new Map<ElementSet, Map<string, number>>();

  /** Whether a Service of ruleset `generation` has the element; undefined when the counts are of another compile. */
  has(generation: number, set: ElementSet, key: string, value: string): boolean | undefined {
    return generation === this.generation ? this.#counts.get(set)?.has(elementText(set, key, value)) ?? false : undefined;
  }

  /** One Service's rules went from `was` to `now`. */
  replace(was: ServiceRules | undefined, now: ServiceRules | undefined): void {
    for (const [set, elements] of was?.elements ?? []) {
      const counts = this.#counts.get(set)!;
      for (const [k, v] of elements) {
        const id = elementText(set, k, v);
        const n = counts.get(id)! - 1;
        if (n === 0) counts.delete(id);
        else counts.set(id, n);
      }
    }
    for (const [set, elements] of now?.elements ?? []) {
      let counts = this.#counts.get(set);
      if (!counts) this.#counts.set(set, counts = new Map());
      for (const [k, v] of elements) {
        const id = elementText(set, k, v);
        counts.set(id, (counts.get(id) ?? 0) + 1);
      }
    }
  }

  clear(): void {
    this.#counts.clear();
  }
}

/** The whole ruleset of `source` for this node; RulesetCompiler when it is compiled again and again. */
export function compileRuleset(source: ServiceSource, facts: NodeFacts): CompiledRuleset {
  return new RulesetCompiler().compile(source, facts);
}

interface CacheEntry { service: Service; slices: EndpointSlice[]; rules: ServiceRules | undefined }

/**
 * Compiles rulesets, reusing the ServiceRules of every Service whose Service object and EndpointSlice objects are
 * the very objects of the last compile (the service cache replaces an object when it changes, never edits it).
 * Told which Services changed since its last compile (ChangedServices), it looks at only those: the cost of a
 * compile after one change is then one Service's rules, whatever the number of Services.
 */
export class RulesetCompiler {
  #facts: NodeFacts | undefined;
  #cache = new Map<string, CacheEntry>();
  #last: CompiledRuleset | undefined;
  readonly #owners = new ElementOwners();

  /** `changed`: the Services that changed since the last compile of `source` (all are looked at without it). */
  compile(source: ServiceSource, facts: NodeFacts, changed?: ChangedServices): CompiledRuleset {
    const clusterCIDR = formatCidr(facts.clusterCIDR);
    if (this.#facts === undefined || this.#facts.nodeName !== facts.nodeName || formatCidr(this.#facts.clusterCIDR) !== clusterCIDR) {
      this.#cache.clear();
      this.#owners.clear();
      this.#last = undefined;
    }
    this.#facts = facts;
    const entry = (key: string, service: Service): CacheEntry => {
      const slices = slicesOf(source, service);
      const hit = this.#cache.get(key);
      if (hit && hit.service === service && sameObjects(hit.slices, slices)) return hit;
      const made = { service, slices, rules: serviceRules(planService(service, slices, facts), clusterCIDR) };
      this.#owners.replace(hit?.rules, made.rules);
      this.#cache.set(key, made);
      return made;
    };
    const last = this.#last;
    const generation = ++generations;
    let result: CompiledRuleset;
    if (changed && last?.lineage) {
      const services = new Map(last.services);
      for (const [key, service] of changed) {
        const rules = service ? entry(key, service).rules : this.#forget(key);
        if (rules) services.set(key, rules);
        else services.delete(key);
      }
      result = { services, lineage: { generation, since: { generation: last.lineage.generation, keys: new Set(changed.keys()) }, owners: this.#owners } };
    } else {
      const seen = new Set<string>();
      const services = new Map<string, ServiceRules>();
      for (const service of source.services()) {
        const key = serviceKey(service);
        seen.add(key);
        const rules = entry(key, service).rules;
        if (rules) services.set(key, rules);
      }
      for (const key of [...this.#cache.keys()]) if (!seen.has(key)) this.#forget(key);
      result = { services, lineage: { generation, owners: this.#owners } };
    }
    this.#owners.generation = generation;
    this.#last = result;
    return result;
  }

  /** Drops a Service that is gone; undefined (its rules now). */
  #forget(key: string): undefined {
    this.#owners.replace(this.#cache.get(key)?.rules, undefined);
    this.#cache.delete(key);
    return undefined;
  }
}

function sameObjects<T>(a: readonly T[], b: readonly T[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * The keys of the Services whose rules may differ from `before` to `after`: those `after` says changed when it was
 * compiled from `before`, else those whose rules are not the same object in both (a walk over every Service).
 */
export function changedServices(before: CompiledRuleset, after: CompiledRuleset): Iterable<string> {
  const since = after.lineage?.since;
  if (since && since.generation === before.lineage?.generation) return since.keys;
  const keys: string[] = [];
  for (const [key, rules] of before.services) if (after.services.get(key) !== rules) keys.push(key);
  for (const key of after.services.keys()) if (!before.services.has(key)) keys.push(key);
  return keys;
}

/** The UDP flows a ruleset routes (see service-plan.ts udpFlows). */
export function rulesetUdpFlows(r: CompiledRuleset): UdpFlow[] {
  return [...r.services.values()].flatMap((s) => s.udpFlows);
}

/**
 * The UDP flows of `before` that `after` no longer routes, looking only at the Services whose rules are not the
 * same object in both (the others route what they routed).
 */
export function staleUdpFlowsBetween(before: CompiledRuleset | undefined, after: CompiledRuleset): UdpFlow[] {
  if (!before) return [];
  const gone: UdpFlow[] = [];
  for (const key of changedServices(before, after)) {
    const was = before.services.get(key);
    const now = after.services.get(key);
    if (was && now !== was) gone.push(...staleUdpFlows([...was.udpFlows], [...(now?.udpFlows ?? [])]));
  }
  // A flow can be routed by another Service too (a shared external IP): only the whole picture says it is stale.
  return gone.length === 0 ? gone : staleUdpFlows(gone, rulesetUdpFlows(after));
}

const affinitySet = (plan: PortPlan, e: Endpoint): string => `aff-${plan.id}__${e.ip}/${e.port}`;
const verdict = (v: 'reject' | 'drop'): string => (v === 'reject' ? 'goto reject-chain' : 'drop');

/** One Service's rules from the plans of its ports; undefined when it has none (headless, ExternalName). */
function serviceRules(plans: PortPlan[], clusterCIDR: string): ServiceRules | undefined {
  if (plans.length === 0) return undefined;
  const elements = new Map<ElementSet, Map<string, string>>();
  const element = (map: ElementSet, key: string, value: string): void => {
    let m = elements.get(map);
    if (!m) elements.set(map, m = new Map());
    m.set(key, value);
  };
  const sets = new Map<string, string[]>();
  const chains = new Map<string, string[]>();

  for (const plan of plans) {
    const svcChain = `svc-${plan.id}`;
    const key = `${plan.proto} . ${plan.port}`;
    // External traffic goes through the service chain too (to any endpoint, whatever internalTrafficPolicy says).
    if (plan.endpoints.length > 0) {
      const chosen = plan.clusterEndpoints.length > 0 ? plan.clusterEndpoints : plan.endpoints;
      chains.set(svcChain, [`ip saddr != ${clusterCIDR} jump mark-for-masquerade`, ...affinityRules(plan, chosen), ...pick(plan, chosen)]);
    }
    if (plan.noClusterEndpoint) element('no-endpoint-services', `${plan.clusterIP} . ${key}`, verdict(plan.noClusterEndpoint));
    else element('service-ips', `${plan.clusterIP} . ${key}`, `goto ${svcChain}`);

    if (hasExternal(plan)) {
      const extChain = `ext-${plan.id}`;
      if (plan.endpoints.length > 0) {
        if (plan.externalLocal) {
          const localChain = `local-${plan.id}`;
          chains.set(extChain, [
            `ip saddr ${clusterCIDR} goto ${svcChain}`,
            'fib saddr type local jump mark-for-masquerade',
            `fib saddr type local goto ${svcChain}`,
            ...(plan.localEndpoints.length > 0 ? [`goto ${localChain}`] : []),
          ]);
          if (plan.localEndpoints.length > 0) chains.set(localChain, [...affinityRules(plan, plan.localEndpoints), ...pick(plan, plan.localEndpoints)]);
        } else {
          chains.set(extChain, ['jump mark-for-masquerade', `goto ${svcChain}`]);
        }
        for (const ip of plan.externalIPs) element('service-ips', `${ip} . ${key}`, `goto ${extChain}`);
        if (plan.nodePort !== undefined) element('service-nodeports', `${plan.proto} . ${plan.nodePort}`, `goto ${extChain}`);
      }
      if (plan.noExternalEndpoint) {
        for (const ip of plan.externalIPs) element('no-endpoint-services', `${ip} . ${key}`, verdict(plan.noExternalEndpoint));
        if (plan.nodePort !== undefined) element('no-endpoint-nodeports', `${plan.proto} . ${plan.nodePort}`, verdict(plan.noExternalEndpoint));
      }
    }

    for (const e of plan.endpoints) {
      element('hairpin', `${e.ip} . ${e.ip}`, '');
      if (plan.affinitySeconds !== undefined) sets.set(affinitySet(plan, e), ['type ipv4_addr', 'flags dynamic,timeout', `timeout ${plan.affinitySeconds}s`]);
    }
  }
  return { sets, chains, elements, udpFlows: udpFlows(plans) };
}

/** The chains every table has, whatever the Services: hooks, the lookups in the verdict maps, masquerading. */
const FIXED_CHAINS: ReadonlyArray<[string, string[]]> = [
  ['nat-prerouting', ['type nat hook prerouting priority dstnat; policy accept;', 'jump services']],
  ['nat-output', ['type nat hook output priority -100; policy accept;', 'jump services']],
  ['nat-postrouting', ['type nat hook postrouting priority srcnat; policy accept;', 'jump masquerading']],
  // Numbers where nft 1.0 takes no priority name: dstnat (-100) in output; dstnat - 10 for the checks of new
  // connections that were not DNATed (what no endpoint can take).
  ['filter-input', ['type filter hook input priority -110; policy accept;', 'ct state new jump nodeport-endpoints-check', 'ct state new jump service-endpoints-check']],
  ['filter-forward', ['type filter hook forward priority -110; policy accept;', 'ct state new jump service-endpoints-check']],
  ['filter-output', ['type filter hook output priority -110; policy accept;', 'ct state new jump service-endpoints-check']],
  ['services', [
    'ip daddr . meta l4proto . th dport vmap @service-ips',
    'fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @service-nodeports',
  ]],
  ['service-endpoints-check', ['ip daddr . meta l4proto . th dport vmap @no-endpoint-services']],
  ['nodeport-endpoints-check', ['fib daddr type local ip daddr != 127.0.0.0/8 meta l4proto . th dport vmap @no-endpoint-nodeports']],
  ['reject-chain', ['reject']],
  ['mark-for-masquerade', [`meta mark set meta mark | ${MASQ_MARK}`]],
  ['masquerading', [
    `ct status dnat ip saddr . ip daddr @hairpin meta mark set meta mark | ${MASQ_MARK}`,
    `meta mark & ${MASQ_MARK} == 0 return`, `meta mark set meta mark ^ ${MASQ_MARK}`, 'masquerade fully-random',
  ]],
];

/** The whole table as one `table inet flotilla { ... }` block, ending with a newline. */
export function rulesetText(r: CompiledRuleset): string {
  const services = [...r.services.keys()].sort(byCodePoint).map((k) => r.services.get(k)!);
  const out = [`table ${TABLE_FAMILY} ${TABLE_NAME} {\n`];
  for (const set of Object.keys(ELEMENT_SETS) as ElementSet[]) {
    // Another Service's endpoint can be this one's too (a pod behind two Services): an element is written once.
    const elements = new Set<string>();
    for (const s of services) for (const [k, v] of s.elements.get(set) ?? []) elements.add(elementText(set, k, v));
    out.push(elementSet(set, [...elements]));
  }
  for (const s of services) for (const [name, decl] of s.sets) out.push(`\tset ${name} {\n${decl.map((l) => `\t\t${l}\n`).join('')}\t}\n`);
  for (const [name, rules] of FIXED_CHAINS) out.push(chain(name, rules));
  for (const s of services) for (const [name, rules] of s.chains) out.push(chain(name, rules));
  out.push('}\n');
  return out.join('');
}

/** DNAT to endpoint `e`, refreshing the client's entry in its affinity set when the Service has affinity. */
function toEndpoint(plan: PortPlan, e: Endpoint): string {
  const affinity = plan.affinitySeconds !== undefined ? `update @${affinitySet(plan, e)} { ip saddr } ` : '';
  return `${affinity}dnat ip to ${e.ip}:${e.port}`;
}

function affinityRules(plan: PortPlan, endpoints: Endpoint[]): string[] {
  if (plan.affinitySeconds === undefined) return [];
  return endpoints.map((e) => `meta l4proto ${plan.proto} ip saddr @${affinitySet(plan, e)} ${toEndpoint(plan, e)}`);
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
    return `meta l4proto ${plan.proto} ${left > 1 ? `numgen random mod ${left} == 0 ` : ''}${toEndpoint(plan, e)}`;
  });
}

function chain(name: string, rules: readonly string[]): string {
  return `\tchain ${name} {\n${rules.map((r) => `\t\t${r}\n`).join('')}\t}\n`;
}

function elementSet(name: ElementSet, elements: string[]): string {
  const sorted = [...elements].sort();
  const body = sorted.length === 0 ? '' : `\t\telements = {\n${sorted.map((e) => `\t\t\t${e},\n`).join('')}\t\t}\n`;
  return `\t${ELEMENT_SETS[name][0]} ${name} {\n\t\t${elementSetType(name)}\n${body}\t}\n`;
}
