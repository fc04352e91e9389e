// Cluster DNS on one node: the DNS server on the node's DNS address (node-agent/network/dns.ts) serving the zone
// of the cluster domain from the agent's ServiceView, and what the pod workers need from it: each pod's
// resolv.conf (node-agent/network/pod-dns.ts) and the Services for their environment variables. The cluster
// domain and networks are the network settings (ConfigMap kube-system/flotilla-network) that node-agent/run.ts
// reads until a server answers; the defaults serve meanwhile, so a node that starts without its servers still
// answers.
//
// The DNS address defaults to the node's address (clusterDNS "node"): pods reach it through their bridge's
// gateway, and it needs no address of its own (node-agent/run.ts turns DNS off for a loopback node address, which
// pods cannot reach). A taken port is logged and the agent runs without DNS; pods then get the host's
// resolv.conf, as the kubelet does without a cluster DNS. The server answers the pods (the cluster CIDR), the
// node itself (its addresses, loopback) and the networks named in `clients`; anyone else on the LAN is REFUSED.
import type { Logger } from 'pino';
import { networkInterfaces } from 'node:os';
import type { Pod, Service } from '../../api-types/index.js';
import { cidrContains, parseCidr, parseIPv4, parseNetworkSettings, type Cidr, type NetworkSettings } from '../../api-types/network.js';
import { readFile } from 'node:fs/promises';
import { DnsClients, hostUpstreams, startDnsServer, type DnsServer } from './dns.js';
import { runCommand, type CommandRunner } from './pod-network.js';
import type { ZoneSettings } from './dns-zone.js';
import { parseResolvConf, podResolvConf, type ResolvConf } from './pod-dns.js';
import type { ServiceView } from './service-cache.js';

export const DNS_PORT = 53;

export interface ClusterDnsOptions {
  view: ServiceView;
  /** The network settings once read (undefined: never, the agent stopped first); the defaults serve until then. */
  settings: Promise<NetworkSettings | undefined>;
  /** Where the server listens and what ClusterFirst pods name as their nameserver (default: the node's address). */
  address: string;
  /** Default 53; 0 picks a free port (tests that query it themselves). */
  port?: number;
  /** The host's resolver configuration: upstreams, and what Default pods get (default /etc/resolv.conf). */
  resolvConfPath?: string;
  /** Networks answered besides the cluster CIDR, the node's addresses and loopback (`flotilla up`: Docker's bridge). */
  clients?: Cidr[];
  log: Logger;
}

/** The resolv.conf the pods of dnsPolicy Default get: the host's, without loopback resolvers a pod cannot reach. */
async function readHostResolvConf(path: string): Promise<ResolvConf> {
  let conf = parseResolvConf(await readFile(path, 'utf8').catch(() => ''));
  // systemd-resolved's stub (127.0.0.53) is the host's only: its real resolvers are listed beside it, as the
  // kubelet and Docker read them.
  if (conf.nameservers.some(isLoopback) && path === '/etc/resolv.conf') {
    const real = parseResolvConf(await readFile('/run/systemd/resolve/resolv.conf', 'utf8').catch(() => ''));
    if (real.nameservers.length) conf = real;
  }
  return { ...conf, nameservers: conf.nameservers.filter((ns) => !isLoopback(ns)) };
}

export function isLoopback(ip: string): boolean {
  return ip.startsWith('127.') || ip === '::1' || ip === 'localhost';
}

const LOOPBACK = parseCidr('127.0.0.0/8');

/**
 * Who a node's DNS server answers: the pods (the cluster CIDR), the node itself (loopback and every address of
 * its interfaces, as they are when the server starts or the settings change) and `extra` networks.
 */
/** The fields of `docker network inspect` that defaultBridgeDns reads. */
export interface DockerNetworkInfo {
  IPAM?: { Config?: Array<{ Subnet?: string; Gateway?: string }> };
  Options?: Record<string, string>;
}

/**
 * The IPv4 addresses of the interface `name`, up or down (`ip -j -4 addr show dev NAME`; Node's
 * networkInterfaces() leaves out an interface without carrier, as Docker's bridge is while no container runs).
 */
export async function interfaceAddresses(name: string, run: CommandRunner = runCommand): Promise<string[]> {
  const r = await run('ip', ['-j', '-4', 'addr', 'show', 'dev', name]).catch(() => undefined);
  if (!r || r.code !== 0) return [];
  try {
    return (JSON.parse(r.stdout) as Array<{ addr_info?: Array<{ local?: string }> }>).flatMap((l) => (l.addr_info ?? []).map((a) => a.local ?? '')).filter(Boolean);
  } catch {
    return [];
  }
}

/**
 * Where a node whose pods are on Docker's default bridge (no pod network, as under `flotilla up`) serves DNS, and
 * whom it answers besides the node: the bridge's gateway, the host's address on the bridge that its pods reach,
 * and the bridge's IPv4 subnet. Docker 20.10 leaves Gateway out of the default bridge's IPAM config: the gateway is
 * then the address of the bridge's interface (option com.docker.network.bridge.name) inside the subnet.
 * Undefined when neither is known.
 */
export async function defaultBridgeDns(info: DockerNetworkInfo, addressesOf = interfaceAddresses): Promise<{ address: string; clients: Cidr[] } | undefined> {
  for (const config of info.IPAM?.Config ?? []) {
    let subnet: Cidr;
    try {
      subnet = parseCidr(config.Subnet ?? '');
    } catch {
      continue;
    }
    const inSubnet = (ip: string | undefined): ip is string => {
      const n = ip === undefined ? undefined : parseIPv4(ip);
      return n !== undefined && cidrContains(subnet, n);
    };
    const bridge = info.Options?.['com.docker.network.bridge.name'];
    const address = inSubnet(config.Gateway) ? config.Gateway : bridge ? (await addressesOf(bridge)).find(inSubnet) : undefined;
    if (address) return { address, clients: [subnet] };
  }
  return undefined;
}

export function nodeDnsClients(clusterCIDR: Cidr, extra: readonly Cidr[] = [], interfaces = networkInterfaces()): DnsClients {
  const own = Object.values(interfaces).flatMap((list) => (list ?? []).map((a) => a.address));
  return new DnsClients([clusterCIDR, LOOPBACK, ...extra], ['::1', ...own]);
}

export class ClusterDns {
  private settings: NetworkSettings = parseNetworkSettings(undefined);
  private server: DnsServer | undefined;
  private hostConf: ResolvConf = { nameservers: [], searches: [], options: [] };
  private markReady!: () => void;
  /** Resolves once the server listens, or is known not to (run() logged why). */
  readonly ready = new Promise<void>((resolve) => { this.markReady = resolve; });

  constructor(private readonly options: ClusterDnsOptions) {}

  /** The port the server listens on; undefined while it does not. */
  get port(): number | undefined {
    return this.server?.port;
  }

  /** The pod's resolv.conf: ClusterFirst pods name this node's DNS server while it runs, the host's otherwise. */
  resolvConf(pod: Pod): ResolvConf {
    const cluster = { nameserver: this.options.address, clusterDomain: this.settings.clusterDomain };
    if (this.server) return podResolvConf(pod, this.hostConf, cluster);
    return podResolvConf({ ...pod, spec: { ...pod.spec, dnsPolicy: pod.spec.dnsPolicy === 'None' ? 'None' : 'Default' } }, this.hostConf, cluster);
  }

  services(): Service[] {
    return this.options.view.services();
  }

  /** Serves until the signal aborts; a server that cannot start is logged, and the agent goes on without it. */
  async run(signal: AbortSignal): Promise<void> {
    const { options } = this;
    const path = options.resolvConfPath ?? '/etc/resolv.conf';
    try {
      this.hostConf = await readHostResolvConf(path);
      this.server = await startDnsServer({
        host: options.address, port: options.port ?? DNS_PORT, view: options.view, zone: this.zone(), clients: this.clients(),
        upstreams: await hostUpstreams(options.address, path), log: options.log,
      });
    } catch (err) {
      options.log.error({ err: (err as Error).message }, 'cluster DNS is off; pods get the host\'s resolv.conf');
      return;
    } finally {
      this.markReady();
    }
    try {
      const settings = await options.settings;
      if (settings) {
        this.settings = settings;
        this.server.setZone(this.zone());
        this.server.setClients(this.clients());
      }
      await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
    } finally {
      await this.server.close();
      this.server = undefined;
    }
  }

  private clients(): DnsClients {
    return nodeDnsClients(this.settings.clusterCIDR, this.options.clients);
  }

  private zone(): ZoneSettings {
    return { domain: this.settings.clusterDomain, reverseNetworks: [this.settings.clusterCIDR, this.settings.serviceCIDR], serverAddress: this.options.address };
  }
}
