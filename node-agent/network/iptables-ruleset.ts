// The Service data path for machines without `nft`: the plan of node-agent/network/service-plan.ts written as
// kube-proxy's iptables mode writes it, in our own FLOTILLA-* chains of the nat and filter tables, and applied
// with one `iptables-restore --noflush` (each table's chains are replaced in one commit; chains of ours that
// went away are deleted in it; the built-in chains only gain one jump each, added once). Same semantics as the
// nftables ruleset, at the cost iptables has: a rule list walked per packet instead of verdict maps.
import { createHash } from 'node:crypto';
import { formatCidr } from '../../api-types/index.js';
import { MASQ_MARK } from './nft-ruleset.js';
import { NftApplyError, clearConntrack, type RunCommand } from './nft-applier.js';
import { hasExternal, planServices, staleUdpFlows, udpFlows, type Endpoint, type NodeFacts, type NoEndpointVerdict, type PortPlan, type ServiceSource, type UdpFlow } from './service-plan.js';
import type { ProxyBackend } from './service-proxy.js';

const PREFIX = 'FLOTILLA-';
const SERVICES = 'FLOTILLA-SERVICES';
const NODEPORTS = 'FLOTILLA-NODEPORTS';
const EXTERNAL = 'FLOTILLA-EXTERNAL';
const MARK_MASQ = 'FLOTILLA-MARK-MASQ';
const POSTROUTING = 'FLOTILLA-POSTROUTING';

/** The jumps from built-in chains into ours: table, built-in chain, rule. */
const HOOKS: Array<[string, string, string[]]> = [
  ['nat', 'PREROUTING', ['-j', SERVICES]],
  ['nat', 'OUTPUT', ['-j', SERVICES]],
  ['nat', 'POSTROUTING', ['-j', POSTROUTING]],
  ['filter', 'INPUT', ['-m', 'conntrack', '--ctstate', 'NEW', '-j', EXTERNAL]],
  ['filter', 'INPUT', ['-m', 'conntrack', '--ctstate', 'NEW', '-j', SERVICES]],
  ['filter', 'FORWARD', ['-m', 'conntrack', '--ctstate', 'NEW', '-j', SERVICES]],
  ['filter', 'OUTPUT', ['-m', 'conntrack', '--ctstate', 'NEW', '-j', SERVICES]],
];

export interface IptablesRuleset {
  /** Our chains and rules per table, in iptables-restore syntax without the table line and COMMIT. */
  nat: { chains: string[]; rules: string[] };
  filter: { chains: string[]; rules: string[] };
  udpFlows: UdpFlow[];
}

/** Chain names are at most 28 characters: a hash of what the chain serves, as kube-proxy names them. */
function hashed(kind: string, what: string): string {
  return `${PREFIX}${kind}-${createHash('sha256').update(what).digest('base64url').replace(/[-_]/g, 'x').slice(0, 12).toUpperCase()}`;
}

const svcChain = (p: PortPlan): string => hashed('SVC', p.id);
const extChain = (p: PortPlan): string => hashed('EXT', p.id);
const localChain = (p: PortPlan): string => hashed('LCL', p.id);
const sepChain = (p: PortPlan, e: Endpoint): string => hashed('SEP', `${p.id}__${e.ip}/${e.port}`);
const reject = (v: NoEndpointVerdict): string[] => (v === 'reject' ? ['-j', 'REJECT'] : ['-j', 'DROP']);

export function compileIptables(source: ServiceSource, facts: NodeFacts): IptablesRuleset {
  const plans = planServices(source, facts);
  const cidr = formatCidr(facts.clusterCIDR);
  const nat: string[][] = [];
  const filter: string[][] = [];
  const natChains = [SERVICES, NODEPORTS, MARK_MASQ, POSTROUTING];
  const comment = (p: PortPlan): string[] => ['-m', 'comment', '--comment', p.id];

  nat.push([MARK_MASQ, '-j', 'MARK', '--or-mark', MASQ_MARK]);
  nat.push([POSTROUTING, '-m', 'mark', '!', '--mark', `${MASQ_MARK}/${MASQ_MARK}`, '-j', 'RETURN']);
  nat.push([POSTROUTING, '-j', 'MARK', '--xor-mark', MASQ_MARK]);
  nat.push([POSTROUTING, '-j', 'MASQUERADE', '--random-fully']);
  const nodePortRules: string[][] = [];

  for (const p of plans) {
    const dst = (ip: string): string[] => ['-d', `${ip}/32`, '-p', p.proto, '-m', p.proto, '--dport', String(p.port)];
    if (p.endpoints.length > 0) {
      const chosen = p.clusterEndpoints.length > 0 ? p.clusterEndpoints : p.endpoints;
      natChains.push(svcChain(p));
      nat.push([svcChain(p), '!', '-s', cidr, '-j', MARK_MASQ]);
      nat.push(...pick(p, svcChain(p), chosen));
      for (const e of p.endpoints) {
        const sep = sepChain(p, e);
        natChains.push(sep);
        nat.push([sep, '-s', `${e.ip}/32`, '-j', MARK_MASQ]);
        const affinity = p.affinitySeconds !== undefined ? ['-m', 'recent', '--name', sep, '--set'] : [];
        nat.push([sep, '-p', p.proto, ...affinity, '-j', 'DNAT', '--to-destination', `${e.ip}:${e.port}`]);
      }
    }
    if (p.noClusterEndpoint) filter.push([SERVICES, ...comment(p), ...dst(p.clusterIP), ...reject(p.noClusterEndpoint)]);
    else nat.push([SERVICES, ...comment(p), ...dst(p.clusterIP), '-j', svcChain(p)]);
    if (!hasExternal(p)) continue;
    if (p.endpoints.length > 0) {
      const ext = extChain(p);
      natChains.push(ext);
      if (p.externalLocal) {
        nat.push([ext, '-s', cidr, '-j', svcChain(p)]);
        nat.push([ext, '-m', 'addrtype', '--src-type', 'LOCAL', '-j', MARK_MASQ]);
        nat.push([ext, '-m', 'addrtype', '--src-type', 'LOCAL', '-j', svcChain(p)]);
        if (p.localEndpoints.length > 0) {
          natChains.push(localChain(p));
          nat.push([ext, '-j', localChain(p)]);
          nat.push(...pick(p, localChain(p), p.localEndpoints));
        }
      } else {
        nat.push([ext, '-j', MARK_MASQ], [ext, '-j', svcChain(p)]);
      }
      for (const ip of p.externalIPs) nat.push([SERVICES, ...comment(p), ...dst(ip), '-j', ext]);
      if (p.nodePort !== undefined) nodePortRules.push([NODEPORTS, ...comment(p), '-p', p.proto, '-m', p.proto, '--dport', String(p.nodePort), '-j', ext]);
    }
    if (p.noExternalEndpoint) {
      for (const ip of p.externalIPs) filter.push([SERVICES, ...comment(p), ...dst(ip), ...reject(p.noExternalEndpoint)]);
      if (p.nodePort !== undefined) {
        filter.push([EXTERNAL, ...comment(p), '-m', 'addrtype', '--dst-type', 'LOCAL', '!', '-d', '127.0.0.0/8', '-p', p.proto, '-m', p.proto, '--dport', String(p.nodePort), ...reject(p.noExternalEndpoint)]);
      }
    }
  }
  // NodePorts last: a ClusterIP match must win over "any local address".
  nat.push(...nodePortRules, [SERVICES, '-m', 'addrtype', '--dst-type', 'LOCAL', '!', '-d', '127.0.0.0/8', '-j', NODEPORTS]);
  return {
    nat: { chains: natChains, rules: nat.map(rule) },
    filter: { chains: [SERVICES, EXTERNAL], rules: filter.map(rule) },
    udpFlows: udpFlows(plans),
  };
}

/** Chooses among endpoints as kube-proxy does: affinity first, then probability 1/n, 1/(n-1), ..., 1. */
function pick(p: PortPlan, chain: string, endpoints: Endpoint[]): string[][] {
  const rules: string[][] = [];
  if (p.affinitySeconds !== undefined) {
    for (const e of endpoints) rules.push([chain, '-m', 'recent', '--name', sepChain(p, e), '--rcheck', '--seconds', String(p.affinitySeconds), '--reap', '-j', sepChain(p, e)]);
  }
  endpoints.forEach((e, i) => {
    const left = endpoints.length - i;
    rules.push(left > 1
      ? [chain, '-m', 'statistic', '--mode', 'random', '--probability', (1 / left).toFixed(10), '-j', sepChain(p, e)]
      : [chain, '-j', sepChain(p, e)]);
  });
  return rules;
}

function rule([chain, ...args]: string[]): string {
  return `-A ${chain} ${args.map((a) => (/^[\w./:!-]+$/.test(a) ? a : `"${a}"`)).join(' ')}`;
}

/** The iptables-restore input that makes `next` the state of our chains, given the chains of ours that exist. */
export function restoreInput(next: IptablesRuleset, existing: { nat: Set<string>; filter: Set<string> }): string {
  const table = (name: 'nat' | 'filter'): string => {
    const t = next[name];
    const keep = new Set(t.chains);
    const stale = [...existing[name]].filter((c) => !keep.has(c)).sort();
    return [
      `*${name}`,
      ...t.chains.map((c) => `:${c} - [0:0]`),
      // Stale chains are emptied first (declared), then deleted once nothing of ours jumps to them.
      ...stale.map((c) => `:${c} - [0:0]`),
      ...t.rules,
      ...stale.map((c) => `-X ${c}`),
      'COMMIT',
    ].join('\n');
  };
  return `${table('nat')}\n${table('filter')}\n`;
}

export class IptablesBackend implements ProxyBackend {
  readonly name = 'iptables';
  #applied: IptablesRuleset | undefined;
  #appliedText: string | undefined;
  #hooked = false;

  constructor(private readonly run: RunCommand) {}

  async sync(source: ServiceSource, facts: NodeFacts): Promise<boolean> {
    const next = compileIptables(source, facts);
    const text = JSON.stringify([next.nat, next.filter]);
    if (text === this.#appliedText) return false;
    const existing = { nat: await this.#ourChains('nat'), filter: await this.#ourChains('filter') };
    const res = await this.run('iptables-restore', ['--noflush', '--wait'], restoreInput(next, existing));
    if (res.code !== 0) throw new NftApplyError(`iptables-restore refused the rules (the ones in force stay): ${res.stderr.trim()}`);
    if (!this.#hooked) await this.#hook();
    const before = this.#applied;
    this.#applied = next;
    this.#appliedText = text;
    await clearConntrack(this.run, staleUdpFlows(before?.udpFlows ?? [], next.udpFlows));
    return true;
  }

  async #ourChains(table: string): Promise<Set<string>> {
    const res = await this.run('iptables-save', ['-t', table]);
    if (res.code !== 0) throw new NftApplyError(`iptables-save -t ${table} failed: ${res.stderr.trim()}`);
    return new Set([...res.stdout.matchAll(/^:(FLOTILLA-\S+) /gm)].map((m) => m[1]!));
  }

  /** Each jump from a built-in chain, added (first in the chain) unless there already. */
  async #hook(): Promise<void> {
    for (const [table, chain, args] of HOOKS) {
      if ((await this.run('iptables', ['-w', '-t', table, '-C', chain, ...args])).code === 0) continue;
      const res = await this.run('iptables', ['-w', '-t', table, '-I', chain, '1', ...args]);
      if (res.code !== 0) throw new NftApplyError(`iptables -t ${table} -I ${chain} failed: ${res.stderr.trim()}`);
    }
    this.#hooked = true;
  }
}
