// A pod's resolv.conf, decided as the kubelet decides it (pkg/kubelet/network/dns): the pod's dnsPolicy picks the
// base (ClusterFirst: the node's DNS server, the cluster search list, ndots:5; Default: the host's resolv.conf;
// None: nothing), the pod's dnsConfig is merged on top (nameservers and searches appended without duplicates,
// options by name, the pod's winning), and the result is cut to resolver limits. A hostNetwork pod with
// ClusterFirst gets the host's settings; ClusterFirstWithHostNet gets the cluster's in any case.
import type { Pod } from '../../api-types/index.js';

export interface ResolvConf {
  nameservers: string[];
  searches: string[];
  options: string[];
}

/** glibc's limits, which the kubelet applies (MaxDNSNameservers, MaxDNSSearchPaths, MaxDNSSearchListChars). */
const MAX_NAMESERVERS = 3;
const MAX_SEARCHES = 32;
const MAX_SEARCH_CHARS = 2048;

/** Reads resolv.conf text: `nameserver`, `search` / `domain` (the last one wins, as in glibc) and `options` lines. */
export function parseResolvConf(text: string): ResolvConf {
  const out: ResolvConf = { nameservers: [], searches: [], options: [] };
  for (const raw of text.split('\n')) {
    const fields = raw.replace(/[#;].*$/, '').trim().split(/\s+/);
    const [key, ...values] = fields;
    if (key === 'nameserver' && values[0]) out.nameservers.push(values[0]);
    else if (key === 'search' || key === 'domain') out.searches = values.filter(Boolean);
    else if (key === 'options') out.options.push(...values.filter(Boolean));
  }
  return out;
}

export interface ClusterDns {
  /** The address pods send their queries to (this node's DNS server). */
  nameserver: string;
  clusterDomain: string;
}

function unique(list: readonly string[]): string[] {
  return [...new Set(list)];
}

/** Options by name, later ones replacing earlier ones of the same name in place (kubelet mergeDNSOptions). */
function mergeOptions(base: readonly string[], extra: ReadonlyArray<{ name: string; value?: string | undefined }>): string[] {
  const byName = new Map<string, string>();
  const split = (op: string): [string, string] => {
    const i = op.indexOf(':');
    return i < 0 ? [op, ''] : [op.slice(0, i), op.slice(i + 1)];
  };
  for (const op of base) byName.set(...split(op));
  for (const op of extra) byName.set(op.name, op.value ?? '');
  return [...byName].map(([name, value]) => (value === '' ? name : `${name}:${value}`));
}

/**
 * The resolv.conf of `pod`'s sandbox. `host` is the node's own resolv.conf (parsed); `cluster` the node's DNS
 * server and domain. Deterministic: the same pod on the same node always gets the same file.
 */
export function podResolvConf(pod: Pick<Pod, 'metadata' | 'spec'>, host: ResolvConf, cluster: ClusterDns): ResolvConf {
  const { dnsPolicy = 'ClusterFirst', hostNetwork, dnsConfig } = pod.spec;
  const clusterFirst = dnsPolicy === 'ClusterFirstWithHostNet' || (dnsPolicy === 'ClusterFirst' && !hostNetwork);
  let conf: ResolvConf;
  if (dnsPolicy === 'None') {
    conf = { nameservers: [], searches: [], options: [] };
  } else if (clusterFirst) {
    const ns = pod.metadata.namespace ?? 'default';
    const domain = cluster.clusterDomain;
    conf = {
      nameservers: [cluster.nameserver],
      searches: unique([`${ns}.svc.${domain}`, `svc.${domain}`, domain, ...host.searches]),
      options: ['ndots:5'],
    };
  } else {
    conf = { nameservers: [...host.nameservers], searches: [...host.searches], options: [...host.options] };
  }
  if (dnsConfig) {
    conf = {
      nameservers: unique([...conf.nameservers, ...(dnsConfig.nameservers ?? [])]),
      searches: unique([...conf.searches, ...(dnsConfig.searches ?? [])]),
      options: mergeOptions(conf.options, dnsConfig.options ?? []),
    };
  }
  return fitLimits(conf);
}

/** The kubelet's formDNSConfigFitsLimits: at most 3 nameservers, 32 search paths and 2048 characters of them. */
function fitLimits(conf: ResolvConf): ResolvConf {
  const searches: string[] = [];
  let chars = -1;
  for (const s of conf.searches.slice(0, MAX_SEARCHES)) {
    if (chars + 1 + s.length > MAX_SEARCH_CHARS) break;
    chars += 1 + s.length;
    searches.push(s);
  }
  return { nameservers: conf.nameservers.slice(0, MAX_NAMESERVERS), searches, options: conf.options };
}
