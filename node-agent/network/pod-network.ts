// The pod network of one node, flannel host-gw style (the plan is node-agent/network/host-gw.ts): a Docker
// bridge network for the node's podCIDR that every pod sandbox joins, a kernel route to every other node's
// podCIDR via that node's address, and iptables rules (in the iptables Docker uses) that let pod traffic through
// Docker's FORWARD filtering and masquerade only what leaves the cluster CIDR.
//
// Contract
// - sync() is idempotent and converges: run it on every Node change and periodically (runPodNetwork does both),
//   it changes only what differs (a chain is rewritten only when its rules differ, a route only when its gateway
//   does), and it removes only what is ours (routes of ROUTE_PROTOCOL, networks with our owner labels).
// - sandboxNetwork() names the network sandboxes join, or throws PodNetworkNotReady saying what is missing. A
//   network this agent made before (it survives reboots in Docker) is used from start(), before any server
//   answers, so cached pods start again on a node whose servers are away.
// - Nodes whose address is not on a directly connected subnet get no route; onOffLink is called once per node
//   and address with the fix (a Warning Event and a log line, see run.ts).
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import type Docker from 'dockerode';
import type { Logger } from 'pino';
import {
  FORWARD_CHAIN,
  MASQUERADE_CHAIN,
  OFF_LINK_FIX,
  ROUTE_PROTOCOL,
  bridgeNetworkSpec,
  chainRules,
  desiredRoutes,
  iptablesOfDocker,
  offLinkNodes,
  planRouteChanges,
  podCidrOf,
  type BridgeNetworkSpec,
  type KernelRoute,
  type LocalAddress,
  type NetworkNode,
} from './host-gw.js';
import { NETWORK_SETTINGS_CONFIGMAP, formatCidr, parseNetworkSettings } from '../../api-types/index.js';
import { delay } from '../agent.js';
import type { NodeApi } from '../api-client.js';
import { ownerLabels } from '../runtime/types.js';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to completion (never rejects for a non-zero exit; rejects when it cannot start, ENOENT). */
export type CommandRunner = (cmd: string, args: readonly string[]) => Promise<CommandResult>;

export const runCommand: CommandRunner = (cmd, args) => new Promise((resolve, reject) => {
  execFile(cmd, args, { timeout: 15_000, maxBuffer: 16 << 20 }, (error, stdout, stderr) => {
    if (error && typeof error.code !== 'number') return reject(error);
    resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
  });
});

/** Pod sandboxes cannot be created yet; the message says what is missing. */
export class PodNetworkNotReady extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PodNetworkNotReady';
  }
}

export interface PodNetworkOptions {
  docker: Docker;
  clusterId: string;
  nodeName: string;
  log: Logger;
  run?: CommandRunner;
  /** Called once per node and address that host-gw cannot route to (not on a directly connected subnet). */
  onOffLink?: (node: { cidr: string; gateway: string }, message: string) => void;
}

export interface SyncInput {
  clusterCidr: string;
  nodes: readonly NetworkNode[];
}

export interface SyncOutcome {
  /** The node's podCIDR, when it has one. */
  podCidr?: string;
  network?: string;
  routesReplaced: number;
  routesRemoved: number;
  iptables?: string;
}

export class PodNetwork {
  private network: string | undefined;
  private notReady = 'the pod network is not set up yet (waiting for the node list from a server)';
  private iptables: string | undefined;
  private readonly warnedOffLink = new Set<string>();
  private readonly run: CommandRunner;
  private engineVersion: string | undefined;

  constructor(private readonly options: PodNetworkOptions) {
    this.run = options.run ?? runCommand;
  }

  private get owner(): Record<string, string> {
    return ownerLabels(this.options);
  }

  /** The Docker network pod sandboxes join; throws PodNetworkNotReady while there is none. */
  sandboxNetwork(): string {
    if (this.network === undefined) throw new PodNetworkNotReady(this.notReady);
    return this.network;
  }

  /** Adopts the network this agent made before, so that pods start before a server answers. */
  async start(): Promise<void> {
    const ours = await this.options.docker.listNetworks({ filters: { label: labelFilter(this.owner) } });
    if (ours.length === 1) this.network = ours[0]!.Name;
  }

  async sync(input: SyncInput): Promise<SyncOutcome> {
    const { nodeName, log } = this.options;
    const self = input.nodes.find((n) => n.metadata.name === nodeName);
    const podCidr = self ? podCidrOf(self) : undefined;
    if (!podCidr) {
      // Keep a network adopted at start: the servers may not list this node yet (it registers after this).
      this.notReady = `node ${nodeName} has no spec.podCIDR yet (the servers assign one from the cluster CIDR ${input.clusterCidr})`;
      return { routesReplaced: 0, routesRemoved: 0 };
    }
    const spec = bridgeNetworkSpec(podCidr, await this.dockerVersion());
    await this.ensureBridge(spec);
    this.network = spec.name;
    const iptables = await this.ensureRules(input.clusterCidr, podCidr);
    const routes = desiredRoutes(nodeName, input.nodes);
    for (const bad of offLinkNodes(routes, await this.localAddresses())) {
      routes.delete(bad.cidr);
      const key = `${bad.cidr} ${bad.gateway}`;
      if (this.warnedOffLink.has(key)) continue;
      this.warnedOffLink.add(key);
      const message = `pod network: no route to pods ${bad.cidr}: their node's address ${bad.gateway} is not on a subnet this node is directly connected to, `
        + 'and host-gw routing needs every node on one L2 segment';
      log.error({ podCIDR: bad.cidr, nodeAddress: bad.gateway, fix: OFF_LINK_FIX }, message);
      this.options.onOffLink?.(bad, `${message}. Fix: ${OFF_LINK_FIX}`);
    }
    const changes = planRouteChanges(routes, await this.kernelRoutes());
    for (const r of changes.replace) await this.must('ip', ['route', 'replace', r.dst, 'via', r.gateway, 'proto', String(ROUTE_PROTOCOL)]);
    for (const dst of changes.remove) await this.must('ip', ['route', 'del', dst, 'proto', String(ROUTE_PROTOCOL)]);
    if (changes.replace.length + changes.remove.length > 0) log.info({ replaced: changes.replace, removed: changes.remove }, 'pod network routes changed');
    return { podCidr, network: spec.name, routesReplaced: changes.replace.length, routesRemoved: changes.remove.length, iptables };
  }

  private async dockerVersion(): Promise<string> {
    this.engineVersion ??= (await this.options.docker.version()).Version;
    return this.engineVersion;
  }

  /** Creates the network when missing; removes networks of ours for another podCIDR (the node's changed) once empty. */
  private async ensureBridge(spec: BridgeNetworkSpec): Promise<void> {
    const { docker, log } = this.options;
    const ours = await docker.listNetworks({ filters: { label: labelFilter(this.owner) } });
    for (const stale of ours.filter((n) => n.Name !== spec.name)) {
      await docker.getNetwork(stale.Id).remove().then(
        () => log.info({ network: stale.Name }, 'removed the pod network of a former podCIDR'),
        (err: unknown) => log.warn({ network: stale.Name, err: (err as Error).message }, 'the pod network of a former podCIDR is still in use'),
      );
    }
    if (ours.some((n) => n.Name === spec.name)) return;
    try {
      await docker.createNetwork({
        Name: spec.name, Driver: 'bridge', CheckDuplicate: true, Labels: this.owner, Options: spec.options,
        IPAM: { Driver: 'default', Config: [{ Subnet: spec.subnet, Gateway: spec.gateway }] },
      });
      log.info({ network: spec.name, subnet: spec.subnet, bridge: spec.bridge }, 'created the pod network');
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 409) throw new Error(`creating Docker network ${spec.name} (${spec.subnet}): ${(err as Error).message}`);
    }
  }

  /** The iptables Docker's rules are in (host-gw.ts iptablesOfDocker), found once. */
  private async iptablesCommand(): Promise<string> {
    if (this.iptables) return this.iptables;
    const listing = async (cmd: string) => {
      const r = await this.run(cmd, ['-w', '-S']).catch(() => undefined);
      return r?.code === 0 ? r.stdout : undefined;
    };
    // Listing with iptables-legacy loads the legacy tables into this namespace (and iptables-nft then warns of
    // them): it is asked only when the kernel already holds legacy tables here.
    const legacyLoaded = ((await readFile('/proc/net/ip_tables_names', 'utf8').catch(() => '')).trim() !== '');
    this.iptables = iptablesOfDocker(legacyLoaded ? await listing('iptables-legacy') : undefined, await listing('iptables-nft'));
    this.options.log.info({ iptables: this.iptables }, 'pod network: using the iptables that holds Docker\'s rules');
    return this.iptables;
  }

  private async ensureRules(clusterCidr: string, podCidr: string): Promise<string> {
    const ipt = await this.iptablesCommand();
    const rules = chainRules(clusterCidr, podCidr);
    const filterParent = (await this.run(ipt, ['-w', '-S', 'DOCKER-USER'])).code === 0 ? 'DOCKER-USER' : 'FORWARD';
    await this.ensureChain(ipt, 'filter', FORWARD_CHAIN, rules.forward, filterParent);
    await this.ensureChain(ipt, 'nat', MASQUERADE_CHAIN, rules.masquerade, 'POSTROUTING');
    return ipt;
  }

  /** Makes `chain` hold exactly `rules` (rewritten only when they differ) and `parent` jump to it first. */
  private async ensureChain(ipt: string, table: string, chain: string, rules: string[][], parent: string): Promise<void> {
    const t = ['-w', '-t', table];
    const listed = await this.run(ipt, [...t, '-S', chain]);
    if (listed.code !== 0) await this.must(ipt, [...t, '-N', chain]);
    const want = rules.map((r) => `-A ${chain} ${r.map(quoteForListing).join(' ')}`);
    const have = listed.code === 0 ? listed.stdout.split('\n').filter((l) => l.startsWith(`-A ${chain} `)) : [];
    if (want.join('\n') !== have.join('\n')) {
      await this.must(ipt, [...t, '-F', chain]);
      for (const r of rules) await this.must(ipt, [...t, '-A', chain, ...r]);
    }
    const parentRules = (await this.must(ipt, [...t, '-S', parent])).stdout.split('\n').filter((l) => l.startsWith('-A '));
    if (parentRules[0] !== `-A ${parent} -j ${chain}`) {
      // Docker re-inserts its own jumps at the top when it restarts: ours is moved back in front.
      if (parentRules.includes(`-A ${parent} -j ${chain}`)) await this.must(ipt, [...t, '-D', parent, '-j', chain]);
      await this.must(ipt, [...t, '-I', parent, '1', '-j', chain]);
    }
  }

  private async kernelRoutes(): Promise<KernelRoute[]> {
    const r = await this.must('ip', ['-j', 'route', 'show', 'proto', String(ROUTE_PROTOCOL)]);
    return (JSON.parse(r.stdout || '[]') as KernelRoute[]).map((route) => ({ ...route, protocol: route.protocol ?? ROUTE_PROTOCOL }));
  }

  private async localAddresses(): Promise<LocalAddress[]> {
    const r = await this.must('ip', ['-j', '-4', 'addr', 'show']);
    const links = JSON.parse(r.stdout || '[]') as { addr_info?: { family?: string; local?: string; prefixlen?: number }[] }[];
    return links.flatMap((l) => (l.addr_info ?? []).filter((a) => a.family === 'inet' && a.local && a.prefixlen !== undefined)
      .map((a) => ({ address: a.local!, prefixLength: a.prefixlen! })));
  }

  private async must(cmd: string, args: readonly string[]): Promise<CommandResult> {
    const r = await this.run(cmd, args);
    if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.code}`}`);
    return r;
  }
}

/** How `iptables -S` prints an argument: quoted when it has spaces. */
function quoteForListing(arg: string): string {
  return /\s/.test(arg) ? `"${arg}"` : arg;
}

function labelFilter(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}


export interface PodNetworkLoopOptions {
  api: Pick<NodeApi, 'listNodes' | 'watchNodes' | 'getConfigMap'>;
  network: PodNetwork;
  log: Logger;
  /** Re-check everything at least this often, even without Node changes (default 30 s). */
  resyncMs?: number;
  /** First wait after a failed round (default 1 s), doubled per failure up to resyncMs. */
  retryMs?: number;
}

/**
 * Keeps the pod network converged until the signal aborts: lists the Nodes and reads the network settings,
 * syncs, then watches the Nodes and syncs again on the first change or after resyncMs, whichever comes first.
 * Never rejects; a failed round is logged and retried with back-off (the routes stay in the kernel meanwhile).
 */
export async function runPodNetwork(signal: AbortSignal, options: PodNetworkLoopOptions): Promise<void> {
  const { api, network, log } = options;
  const resyncMs = options.resyncMs ?? 30_000;
  let failures = 0;
  while (!signal.aborted) {
    try {
      const settings = parseNetworkSettings((await api.getConfigMap(NETWORK_SETTINGS_CONFIGMAP.namespace, NETWORK_SETTINGS_CONFIGMAP.name))?.data);
      const list = await api.listNodes();
      await network.sync({ clusterCidr: formatCidr(settings.clusterCIDR), nodes: list.items });
      failures = 0;
      await untilNodeChange(api, list.metadata.resourceVersion ?? '0', resyncMs, signal);
    } catch (err) {
      if (signal.aborted) return;
      const waitMs = Math.min(resyncMs, (options.retryMs ?? 1000) * 2 ** Math.min(failures++, 16));
      log.warn({ err: (err as Error).message, retryMs: waitMs }, 'pod network sync failed; retrying');
      await delay(waitMs, signal);
    }
  }
}

/** Resolves at the first Node event after resourceVersion, after timeoutMs, or when the signal aborts. */
async function untilNodeChange(api: PodNetworkLoopOptions['api'], resourceVersion: string, timeoutMs: number, signal: AbortSignal): Promise<void> {
  const watch = new AbortController();
  const stop = () => watch.abort();
  const timer = setTimeout(stop, timeoutMs);
  signal.addEventListener('abort', stop, { once: true });
  try {
    await api.watchNodes(resourceVersion, (e) => { if (e.type !== 'BOOKMARK') stop(); }, watch.signal);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', stop);
  }
}
