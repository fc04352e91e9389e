// The cluster's DNS zone, as the Kubernetes DNS-Based Service Discovery specification (schema 1.0.1) defines it,
// built from the Services and EndpointSlices an agent sees. Pure: a ClusterZone is an index rebuilt from a
// snapshot; lookup() answers one question from it. Names compare case-insensitively; answers carry the name as
// asked. Records (TTL 5 s, as CoreDNS's kubernetes plugin):
//   dns-version.<zone>                              TXT "1.0.1"
//   <svc>.<ns>.svc.<zone>                           A/AAAA ClusterIP(s); headless: one per ready endpoint address
//                                                   (every endpoint when publishNotReadyAddresses), and no name at
//                                                   all (NXDOMAIN) when it has none; ExternalName: CNAME
//   <hostname>.<svc>.<ns>.svc.<zone>                headless: A/AAAA of the endpoints with that hostname; an
//                                                   endpoint without hostname is named by its dashed address
//   _<port>._<proto>.<svc>.<ns>.svc.<zone>          SRV per named port (headless: per ready endpoint and port)
//   <reversed ClusterIP / endpoint IP>.in-addr.arpa PTR (ip6.arpa for IPv6)
//   <a-b-c-d>.<ns>.pod.<zone>                       A a.b.c.d (the deprecated pod record the spec still requires)
// A name that exists with no record of the asked type (a Service asked for AAAA, an empty non-terminal such as
// <ns>.svc.<zone>) is NODATA: NOERROR, no answer, the zone's SOA in authority; a name that does not exist is
// NXDOMAIN with the SOA. Everything under the zone and the reverse names of the cluster's and the service
// network's addresses is answered here and never forwarded.
import type { Answer, SrvData } from 'dns-packet';
import type { EndpointSlice, Service } from '../../api-types/index.js';
import { cidrContains, parseIPv4, type Cidr } from '../../api-types/network.js';
import type { ServiceView } from './service-cache.js';
import { ipv6Groups, TYPE } from './dns-wire.js';

/** TTL of every record and of negative answers (the SOA minimum). */
export const DNS_TTL = 5;
/** The schema version the zone implements, published as dns-version.<zone> TXT. */
export const DNS_SCHEMA_VERSION = '1.0.1';
const TOLERATE_UNREADY = 'service.alpha.kubernetes.io/tolerate-unready-endpoints';
/** How deep a CNAME chain inside the zone is followed (ExternalName pointing at another Service). */
const MAX_CHAIN = 8;

export interface ZoneSettings {
  /** The cluster domain, e.g. cluster.local (no trailing dot). */
  domain: string;
  /** Networks whose reverse names are answered here only: the cluster CIDR and the service CIDR. */
  reverseNetworks: Cidr[];
  /** The DNS server's own IPv4 address: the A record of ns.dns.<zone>, the zone's name server. */
  serverAddress?: string;
}

interface Node {
  a?: string[];
  aaaa?: string[];
  srv?: SrvData[];
  cname?: string;
  ptr?: string[];
  txt?: string;
}

export interface ZoneAnswer {
  rcode: 'NOERROR' | 'NXDOMAIN';
  answers: Answer[];
  authorities: Answer[];
  additionals: Answer[];
  /** An ExternalName's target outside the zone: the server resolves it upstream and appends the answers. */
  chase?: string;
}

function lower(name: string): string {
  return (name.endsWith('.') ? name.slice(0, -1) : name).toLowerCase();
}

/** The dashed form of an address, as an endpoint without hostname is named (10.42.0.5 -> 10-42-0-5). */
function dashed(ip: string): string {
  return ip.replaceAll(/[.:]/g, '-');
}

/** The reverse-lookup name of an address (no trailing dot); undefined for something that is not an address. */
export function reverseName(ip: string): string | undefined {
  if (parseIPv4(ip) !== undefined) return `${ip.split('.').reverse().join('.')}.in-addr.arpa`;
  const groups = ipv6Groups(ip);
  return groups && `${[...groups.join('')].reverse().join('.')}.ip6.arpa`;
}

/** The IPv4 address a full in-addr.arpa name stands for. */
function reverseIPv4(name: string): number | undefined {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\.in-addr\.arpa$/.exec(name);
  return m ? parseIPv4(`${m[4]}.${m[3]}.${m[2]}.${m[1]}`) : undefined;
}

function isHeadless(s: Service): boolean {
  return s.spec?.clusterIP === 'None';
}

export class ClusterZone {
  private readonly names = new Map<string, Node>();
  private readonly domain: string;
  /** ".<domain>": what the names below the apex end in. */
  private readonly below: string;
  /** The zone's SOA record, the authority of its negative answers. */
  readonly soa: Answer;

  constructor(private readonly settings: ZoneSettings, services: readonly Service[], slicesOf: ServiceView['slicesOf']) {
    this.domain = lower(settings.domain);
    this.below = `.${this.domain}`;
    const d = this.domain;
    this.soa = {
      type: 'SOA', name: d, ttl: DNS_TTL, class: 'IN',
      data: { mname: `ns.dns.${d}`, rname: `hostmaster.${d}`, serial: 1, refresh: 7200, retry: 1800, expire: 86400, minimum: DNS_TTL },
    };
    this.node(d);
    this.node(`svc.${d}`);
    this.node(`pod.${d}`);
    this.node(`dns-version.${d}`).txt = DNS_SCHEMA_VERSION;
    if (settings.serverAddress && parseIPv4(settings.serverAddress) !== undefined) this.node(`ns.dns.${d}`).a = [settings.serverAddress];
    for (const s of services) this.addService(s, slicesOf(s.metadata.namespace ?? 'default', s.metadata.name ?? ''));
  }

  /** The node of `name`, made with its empty non-terminals up to the zone apex when missing. */
  private node(name: string): Node {
    let n = this.names.get(name);
    if (n) return n;
    n = {};
    this.names.set(name, n);
    const dot = name.indexOf('.');
    if (name !== this.domain && name.endsWith(this.below) && dot >= 0) this.node(name.slice(dot + 1));
    return n;
  }

  private addAddress(name: string, ip: string): void {
    const n = this.node(name);
    if (parseIPv4(ip) !== undefined) (n.a ??= []).push(ip);
    else if (ipv6Groups(ip)) (n.aaaa ??= []).push(ip);
  }

  private addPtr(ip: string, target: string): void {
    const rev = reverseName(ip);
    if (!rev) return;
    const n = this.names.get(rev) ?? {};
    this.names.set(rev, n);
    if (!(n.ptr ??= []).includes(target)) n.ptr.push(target);
  }

  private addService(s: Service, slices: readonly EndpointSlice[]): void {
    const ns = (s.metadata.namespace ?? 'default').toLowerCase();
    const fqdn = `${(s.metadata.name ?? '').toLowerCase()}.${ns}.svc.${this.domain}`;
    const spec = s.spec ?? {};
    if (spec.type === 'ExternalName') {
      if (spec.externalName) this.node(fqdn).cname = lower(spec.externalName);
      return;
    }
    const namedPorts = (spec.ports ?? []).filter((p) => p.name);
    if (!isHeadless(s)) {
      const ips = spec.clusterIPs?.length ? spec.clusterIPs : spec.clusterIP ? [spec.clusterIP] : [];
      if (ips.length === 0) return;
      for (const ip of ips) {
        this.addAddress(fqdn, ip);
        this.addPtr(ip, fqdn);
      }
      for (const p of namedPorts) {
        (this.node(`_${p.name!.toLowerCase()}._${(p.protocol ?? 'TCP').toLowerCase()}.${fqdn}`).srv ??= [])
          .push({ priority: 0, weight: 100, port: p.port, target: fqdn });
      }
      return;
    }
    const everyEndpoint = spec.publishNotReadyAddresses === true || s.metadata.annotations?.[TOLERATE_UNREADY] === 'true';
    const srvs = new Map<string, SrvData[]>();
    for (const slice of slices) {
      if (slice.addressType === 'FQDN') continue;
      for (const e of slice.endpoints) {
        if (!everyEndpoint && e.conditions?.ready === false) continue;
        for (const ip of e.addresses) {
          const host = `${(e.hostname ?? dashed(ip)).toLowerCase()}.${fqdn}`;
          this.addAddress(fqdn, ip);
          this.addAddress(host, ip);
          this.addPtr(ip, host);
          for (const sp of slice.ports ?? []) {
            if (!sp.name || sp.port === undefined) continue;
            const name = `_${sp.name.toLowerCase()}._${(sp.protocol ?? 'TCP').toLowerCase()}.${fqdn}`;
            const list = srvs.get(name) ?? [];
            srvs.set(name, list);
            if (!list.some((x) => x.target === host && x.port === sp.port)) list.push({ priority: 0, weight: 0, port: sp.port, target: host });
          }
        }
      }
    }
    // RFC 2782: equal priority, weights sharing 100 between the targets.
    for (const [name, list] of srvs) {
      for (const x of list) x.weight = Math.floor(100 / list.length);
      this.node(name).srv = list;
    }
  }

  /**
   * Whether a name (lower case, no trailing dot) belongs here, never forwarded: the zone, and reverse names of the
   * cluster's networks.
   */
  isLocal(name: string): boolean {
    if (this.inZone(name)) return true;
    if (this.names.has(name)) return true;
    const ip = reverseIPv4(name);
    return ip !== undefined && this.settings.reverseNetworks.some((c) => cidrContains(c, ip));
  }

  /** Whether a name (lower case, no trailing dot) is the zone's apex or below it. */
  inZone(name: string): boolean {
    return name === this.domain || name.endsWith(this.below);
  }

  /** Whether the zone holds records (or children) under `name` (lower case, no trailing dot). */
  has(name: string): boolean {
    return this.names.has(name);
  }

  /** The answer to `qname` (any case; the records are owned by it as given) of type `qtype` (TYPE) for a name isLocal() accepts. */
  lookup(qname: string, qtype: number): ZoneAnswer {
    const out: ZoneAnswer = { rcode: 'NOERROR', answers: [], authorities: [], additionals: [] };
    let owner = qname.replace(/\.$/, '');
    let name = lower(owner);
    // The rcode and the negative SOA are those of the last name of a CNAME chain (RFC 6604).
    for (let depth = 0; depth < MAX_CHAIN; depth++) {
      const node = this.names.get(name) ?? this.podRecord(name);
      if (!node) {
        out.rcode = 'NXDOMAIN';
        out.authorities.push(this.soa);
        return out;
      }
      if (node.cname !== undefined && qtype !== TYPE.CNAME) {
        out.answers.push({ type: 'CNAME', name: owner, ttl: DNS_TTL, class: 'IN', data: node.cname });
        if (qtype === TYPE.ANY) return out;
        owner = name = node.cname;
        if (this.isLocal(name)) continue;
        out.chase = name;
        return out;
      }
      if (!this.records(owner, name, node, qtype, out)) out.authorities.push(this.soa);
      return out;
    }
    return out;
  }

  /** Appends the records of `node` of type `qtype`; whether there was any. */
  private records(owner: string, name: string, node: Node, qtype: number, out: ZoneAnswer): boolean {
    const before = out.answers.length;
    const want = (t: number): boolean => qtype === t || qtype === TYPE.ANY;
    const rr = { name: owner, ttl: DNS_TTL, class: 'IN' as const };
    if (want(TYPE.A)) for (const ip of node.a ?? []) out.answers.push({ ...rr, type: 'A', data: ip });
    if (want(TYPE.AAAA)) for (const ip of node.aaaa ?? []) out.answers.push({ ...rr, type: 'AAAA', data: ip });
    if (want(TYPE.CNAME) && node.cname !== undefined) out.answers.push({ ...rr, type: 'CNAME', data: node.cname });
    if (want(TYPE.PTR)) for (const target of node.ptr ?? []) out.answers.push({ ...rr, type: 'PTR', data: target });
    if (want(TYPE.TXT) && node.txt !== undefined) out.answers.push({ ...rr, type: 'TXT', data: [node.txt] });
    if (name === this.domain) {
      if (want(TYPE.SOA)) out.answers.push({ ...this.soa, name: owner });
      if (want(TYPE.NS)) out.answers.push({ ...rr, type: 'NS', data: `ns.dns.${this.domain}` });
    }
    if (want(TYPE.SRV)) {
      for (const srv of node.srv ?? []) {
        out.answers.push({ ...rr, type: 'SRV', data: srv });
        const target = this.names.get(srv.target);
        for (const ip of target?.a ?? []) out.additionals.push({ name: srv.target, ttl: DNS_TTL, class: 'IN', type: 'A', data: ip });
        for (const ip of target?.aaaa ?? []) out.additionals.push({ name: srv.target, ttl: DNS_TTL, class: 'IN', type: 'AAAA', data: ip });
      }
    }
    return out.answers.length > before;
  }

  /** `<a-b-c-d>.<ns>.pod.<zone>` (any namespace label, as CoreDNS's "pods insecure"), and `<ns>.pod.<zone>`. */
  private podRecord(name: string): Node | undefined {
    const suffix = `.pod.${this.domain}`;
    if (!name.endsWith(suffix)) return undefined;
    const labels = name.slice(0, -suffix.length).split('.');
    if (labels.length === 1) return /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(labels[0]!) ? {} : undefined;
    if (labels.length !== 2) return undefined;
    const ip = labels[0]!.replaceAll('-', '.');
    return parseIPv4(ip) !== undefined ? { a: [ip] } : undefined;
  }
}
