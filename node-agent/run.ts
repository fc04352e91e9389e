// The agent process: lock the data directory, pin the cluster CA (node-agent/cluster-ca.ts), load the machine's
// key (node-agent/identity.ts) and get the node certificate with the join token (node-agent/node-certificate.ts;
// from then on every call authenticates with the certificate), learn the cluster it belongs to (node-agent/data-dir.ts), probe the hardware, run the
// preflight checks, open the agent endpoint (logs, exec for the servers, over mutual TLS), start the pod network where asked (node-agent/network/pod-network.ts), then run the agent
// loop and the certificate renewals against the servers until the signal aborts. run(signal, config) is what
// `flotilla agent` calls; tests call it with a FakeRuntime and a fixed inventory.
import { serverList, type ServerChoice } from '../client/client.js';
import { NETWORK_SETTINGS_CONFIGMAP, formatCidr, parseNetworkSettings, type Cidr, type NetworkSettings, type Pod } from '../api-types/index.js';
import { readdir } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import pino, { type Logger } from 'pino';
import { DEFAULT_CLUSTER_CIDR } from '../api-types/index.js';
import { normaliseInventory, type NodeInventory } from '../hardware/inventory.js';
import { readPreflightInputs, runPreflight, type Finding, type PreflightFacts } from '../hardware/preflight.js';
import { probeHardware } from '../hardware/probe.js';
import { delay, runAgent, type AgentConfig } from './agent.js';
import { ApiClient, NodeApi, type NodeEvent } from './api-client.js';
import { clusterIdOf, lockDataDir } from './data-dir.js';
import { pinnedClusterCa } from './cluster-ca.js';
import { startEndpoint } from './endpoint.js';
import { peerImageSource } from './images/peer-fetch.js';
import { loadNodeIdentity, withNodeKey, type NodeIdentity } from './identity.js';
import { NodeCertificates } from './node-certificate.js';
import { PodNetwork, runCommand, runPodNetwork } from './network/pod-network.js';
import { buildNodeObject } from './node-object.js';
import { ClusterDns, isLoopback } from './network/cluster-dns.js';
import { ServiceCache } from './network/service-cache.js';
import { LinuxLink, LoadBalancerAnnouncer, interfaceOf } from './network/lb-announcer.js';
import { chooseBackend, runServiceProxy, type ProxyBackend, type ServiceProxyMode } from './network/service-proxy.js';
import { commandRunner } from './network/nft-applier.js';
import { DockerRuntime } from './runtime/docker.js';
import { runIngressService } from './ingress/serve.js';
import type { RouterListen } from './ingress/router.js';
import { LABEL_CLUSTER, LABEL_NODE, type ContainerRuntime } from './runtime/types.js';

/** How long an agent start waits for the first list of Services before starting pods without them. */
const SERVICES_SYNC_WAIT_MS = 5000;

export interface AgentRunConfig {
  /** A server URL, or a choice among several (client/client.ts ServerChoice). */
  server: string | ServerChoice;
  /**
   * A full join token (FLT1<CA hash>::<credential>, client/tokens.ts), whose CA is checked before the credential
   * goes anywhere; or a bare credential when `ca` is given or kept in the data directory (node-agent/cluster-ca.ts).
   * Sent only to ask for the node certificate, when the agent has none yet (or the admin token, in tests).
   */
  token: string;
  /** The cluster CA (PEM) to pin, when the caller knows it already. */
  ca?: string;
  dataDir: string;
  nodeName: string;
  /** Where the agent endpoint listens (default 0.0.0.0:10250; port 0 picks one). */
  listenHost: string;
  listenPort: number;
  /** The InternalIP published for the servers; default: the listen host when specific, else the first non-loopback IPv4. */
  advertiseAddress?: string;
  /** Kept back from allocatable for the OS and the agent (quantities). */
  reserved?: { cpu?: string; memory?: string };
  /** Default: Docker through its socket (DOCKER_HOST honoured). */
  runtime?: ContainerRuntime;
  /** Default: probed from this machine. */
  inventory?: NodeInventory;
  /** Default: the preflight checks of this machine. */
  findings?: Finding[];
  /**
   * Cluster DNS (node-agent/network/cluster-dns.ts) and the Service environment variables, fed by the service
   * cache. Default: on when the advertised address is not a loopback one, the DNS server on that address, port 53.
   * false: off (pods get the host's resolv.conf and no Service variables). `clients`: networks it answers besides
   * the cluster CIDR and the node's own addresses (pods outside the pod network, such as on Docker's bridge).
   */
  dns?: false | { address?: string; port?: number; resolvConfPath?: string; clients?: Cidr[] };
  /**
   * Loop settings (heartbeat, usage reports, retry, fencing, pod workers, the clock of the fencing and renewal
   * decisions, how often the certificate's renewal time is checked: default 60 s).
   */
  tuning?: Partial<Pick<AgentConfig, 'heartbeatSeconds' | 'nodeStatusSeconds' | 'usageSeconds' | 'simulatedUsage' | 'retrySeconds' | 'retryMaxSeconds' | 'fenceAfterSeconds' | 'podWorkers' | 'now'>> & { certificateCheckSeconds?: number };
  /**
   * The Service data path (node-agent/network/service-proxy.ts): default `off`, so that agents a test runs in its
   * own network namespace are the only ones touching packet rules; `flotilla agent` passes `auto`.
   */
  serviceProxy?: ServiceProxyMode;
  /**
   * Run the pod network (node-agent/network/pod-network.ts: a bridge per podCIDR, routes to the other nodes,
   * iptables rules; needs the Docker runtime, root and this machine's network namespace). Off: pods join Docker's
   * default bridge, which is what tests that share one engine and one namespace use.
   */
  podNetwork?: boolean;
  /**
   * The Ingress router (node-agent/ingress/serve.ts): the address and ports it listens on. Default off, as for the
   * service proxy; `flotilla agent` passes ports 80 and 443 unless told `--ingress off`.
   */
  ingress?: RouterListen;
  log?: Logger;
}

export interface AgentRunInfo {
  nodeName: string;
  /** Port of the agent endpoint. */
  port: number;
  address: string;
  findings: Finding[];
  /** The node's cluster DNS, when on (its port, for tests that query it). */
  dns?: ClusterDns;
  /** The Ingress router's ports, when on. */
  ingress?: { httpPort?: number; httpsPort?: number };
}

/**
 * Resolves when the signal aborts (containers keep running) or rejects when the agent cannot start: among other
 * reasons, when another live agent holds the data directory (DataDirInUseError).
 */
export async function run(signal: AbortSignal, config: AgentRunConfig, onReady?: (info: AgentRunInfo) => void): Promise<void> {
  const log = config.log ?? pino({ level: 'info' });
  const server = typeof config.server === 'string' ? serverList([config.server]) : config.server;
  const retry = { retrySeconds: config.tuning?.retrySeconds ?? 1, retryMaxSeconds: config.tuning?.retryMaxSeconds ?? 30, log };
  const lock = await lockDataDir(config.dataDir);
  try {
    const pinned = await pinnedClusterCa(config.dataDir, config.token, () => server.current(), config.ca, signal, retry);
    if (pinned === undefined) return;
    const identity = await loadNodeIdentity(config.dataDir);
    const address = config.advertiseAddress ?? advertisedAddress(config.listenHost);
    const bootstrap = new NodeApi(new ApiClient(server, pinned.credential, { tls: { ca: pinned.ca } }));
    let certs: NodeCertificates | undefined;
    try {
      certs = await NodeCertificates.obtain({
        dataDir: config.dataDir, nodeName: config.nodeName, identity, addresses: [address], caPem: pinned.ca, ...retry,
        ...(config.tuning?.now ? { now: config.tuning.now } : {}),
      }, bootstrap, signal);
    } finally {
      bootstrap.client.close();
    }
    if (!certs) return;
    const current = certs;
    // From here on the certificate is the only credential: the join token is never sent again.
    const api = new NodeApi(new ApiClient(server, undefined, { tls: { ca: pinned.ca, identity: () => current.current } }));
    try {
      const clusterId = await clusterIdOf(config.dataDir, (s) => api.clusterId(s), signal, retry);
      if (clusterId !== undefined) await runAs({ clusterId, api, certs, identity, address, log }, signal, config, onReady);
    } finally {
      api.client.close();
    }
  } finally {
    await lock.release();
  }
}

interface Joined { clusterId: string; api: NodeApi; certs: NodeCertificates; identity: NodeIdentity; address: string; log: Logger }

async function runAs({ clusterId, api, certs, identity, address, log }: Joined, signal: AbortSignal, config: AgentRunConfig, onReady?: (info: AgentRunInfo) => void): Promise<void> {
  const runtime = config.runtime ?? new DockerRuntime();
  await warnOfUnownedContainers(runtime, clusterId, config.nodeName, log);
  const inventory = config.inventory ?? normaliseInventory(await probeHardware(), {
    ...(config.nodeName.length <= 63 ? { hostname: config.nodeName } : {}),
    ...(config.reserved ? { reserved: config.reserved } : {}),
  });
  const runtimeVersion = await runtimeVersionOf(runtime);
  const findings = config.findings ?? await machineFindings(runtime, inventory, config.podNetwork === true);
  for (const f of findings) log.warn({ check: f.id, fix: f.fix }, f.message);

  const podNetwork = config.podNetwork ? await startPodNetwork(runtime, clusterId, api, log, config.nodeName, signal) : undefined;
  const endpoint = await startEndpoint({ runtime, clusterId, nodeName: config.nodeName, dataDir: config.dataDir, tls: certs.current, host: config.listenHost, port: config.listenPort, log });
  certs.onRenewed((m) => endpoint.setCertificate(m));
  const readySince = new Date();
  const { certificateCheckSeconds = 60, ...tuning } = config.tuning ?? {};
  const proxyMode = config.serviceProxy ?? 'off';
  const backend = await chooseBackend(proxyMode).catch((err: unknown) => {
    if (proxyMode !== 'auto') throw err;
    log.error({ err: (err as Error).message }, 'no service proxy on this node: Services are not reachable from it');
    return undefined;
  });
  const dns = config.dns === false ? undefined : config.dns ?? {};
  const dnsAddress = dns && (dns.address ?? (isLoopback(address) ? undefined : address));
  if (dns && dnsAddress === undefined) {
    log.warn({ address }, 'cluster DNS is off: the node address is a loopback address, which pods cannot reach (set the DNS address); pods get the host\'s resolv.conf');
  }
  // The service proxy and the cluster DNS share one view of Services and EndpointSlices; all three stop when
  // the agent loop ends, by abort or by error.
  const network = new AbortController();
  const stopNetwork = (): void => network.abort();
  signal.addEventListener('abort', stopNetwork, { once: true });
  const retry = { retrySeconds: config.tuning?.retrySeconds ?? 1, retryMaxSeconds: config.tuning?.retryMaxSeconds ?? 30 };
  const cache = backend || dnsAddress !== undefined || config.ingress ? new ServiceCache(api, { log, ...retry }) : undefined;
  const settings = cache ? readNetworkSettings(api, log, retry, network.signal) : undefined;
  const clusterDns = cache && settings && dnsAddress !== undefined ? new ClusterDns({
    view: cache, settings, address: dnsAddress, log,
    ...(dns?.port !== undefined ? { port: dns.port } : {}),
    ...(dns?.resolvConfPath ? { resolvConfPath: dns.resolvConfPath } : {}),
    ...(dns?.clients ? { clients: dns.clients } : {}),
  }) : undefined;
  // The ingress router stops with the network; a port it cannot listen on is logged, the agent runs on without it.
  let ingressPorts: { httpPort?: number; httpsPort?: number } | undefined;
  let ingressListening: () => void = () => {};
  const ingressStarted = new Promise<void>((resolve) => { ingressListening = resolve; });
  const ingressDone = config.ingress && cache
    ? runIngressService(network.signal, {
      api, services: cache, nodeName: config.nodeName, listen: config.ingress, log, ...retry,
      onListening: (ports) => { ingressPorts = ports; ingressListening(); },
    }).catch((err: unknown) => log.error({ err: (err as Error).message }, 'the ingress router stopped')).finally(ingressListening)
    : undefined;
  if (!ingressDone) ingressListening();
  const networkDone = Promise.all([
    cache?.run(network.signal),
    ingressDone,
    cache && settings && backend ? startServiceProxy(cache, settings, backend, config, log, network.signal) : undefined,
    clusterDns?.run(network.signal),
    cache && backend && !isLoopback(address) ? startAnnouncer(cache, api, config.nodeName, address, log, network.signal) : undefined,
  ]).catch((err: unknown) => log.error({ err }, 'the service view, proxy or DNS stopped'));
  await ingressStarted;
  // Pods the agent starts from its cache at once must find the DNS server up (or known to be off) and, when a
  // server answers, the Services listed (their environment variables are those of the Services that exist as a
  // container starts); a node that starts without its servers waits at most SERVICES_SYNC_WAIT_MS for that.
  await clusterDns?.ready;
  if (clusterDns && cache) await Promise.race([cache.synced, delay(SERVICES_SYNC_WAIT_MS, network.signal)]);
  const renewing = new AbortController();
  const renewals = certs.renewals(api, AbortSignal.any([signal, renewing.signal]), certificateCheckSeconds);
  try {
    onReady?.({ nodeName: config.nodeName, port: endpoint.port, address, findings, ...(clusterDns ? { dns: clusterDns } : {}), ...(ingressPorts ? { ingress: ingressPorts } : {}) });
    await runAgent(signal, {
      ...tuning,
      podWorkers: {
        // Images missing here come from the nodes that hold them (node-agent/images/peer-fetch.ts).
        peerImages: peerImageSource({
          runtime, nodeName: config.nodeName, dataDir: config.dataDir, nodes: async () => (await api.listNodes()).items,
          tls: () => certs.current, signal, log,
        }),
        ...tuning.podWorkers,
        ...(clusterDns ? { resolvConf: (pod: Pod) => clusterDns.resolvConf(pod), services: () => clusterDns.services() } : {}),
        ...(podNetwork ? { sandboxNetwork: () => podNetwork.network.sandboxNetwork() } : {}),
      },
      clusterId,
      nodeName: config.nodeName,
      api,
      runtime,
      dataDir: config.dataDir,
      hostIP: address,
      nodeKey: identity,
      events: findings.filter((f) => f.severity !== 'info').map((f): NodeEvent => ({ type: 'Warning', reason: `Preflight-${f.id}`, message: `${f.message}. Fix: ${f.fix}` })),
      node: () => withNodeKey(buildNodeObject({ nodeName: config.nodeName, inventory, address, port: endpoint.port, containerRuntimeVersion: runtimeVersion, readySince }), identity),
      log,
    });
  } finally {
    signal.removeEventListener('abort', stopNetwork);
    network.abort();
    await networkDone;
    renewing.abort();
    await renewals;
    await endpoint.close();
    await podNetwork?.done;
  }
}

/**
 * The network settings the leader publishes (ConfigMap kube-system/flotilla-network; the defaults while it does
 * not exist), read until a server answers: the one read the service proxy and the cluster DNS both wait on.
 * Undefined when the signal aborts first.
 */
export async function readNetworkSettings(api: NodeApi, log: Logger, retry: { retrySeconds: number; retryMaxSeconds: number }, signal: AbortSignal): Promise<NetworkSettings | undefined> {
  for (let failures = 0; !signal.aborted;) {
    try {
      const cm = await api.getConfigMap(NETWORK_SETTINGS_CONFIGMAP.namespace, NETWORK_SETTINGS_CONFIGMAP.name);
      return parseNetworkSettings(cm?.data);
    } catch (err) {
      const waitMs = Math.min(retry.retryMaxSeconds * 1000, retry.retrySeconds * 1000 * 2 ** Math.min(failures++, 16));
      log.warn({ err: (err as Error).message, retryMs: waitMs }, 'reading the network settings failed; retrying (the service proxy waits, the cluster DNS serves the defaults)');
      await delay(waitMs, signal);
    }
  }
  return undefined;
}

/**
 * Announces the LoadBalancer pool addresses the servers give this node (node-agent/network/lb-announcer.ts), on
 * the interface holding the node's address; part of the Service data path, so only where the service proxy runs
 * and the node has a LAN address (a loopback one announces nothing to anybody).
 */
async function startAnnouncer(cache: ServiceCache, api: NodeApi, nodeName: string, address: string, log: Logger, signal: AbortSignal): Promise<void> {
  const run = commandRunner();
  const iface = await interfaceOf(run, address).catch((err: unknown) => { log.error({ err }, 'load balancer: listing the interfaces failed'); return undefined; });
  if (iface === undefined) {
    log.warn({ address }, 'load balancer: no interface holds the node address; this node announces no LoadBalancer address');
    return;
  }
  const announcer = new LoadBalancerAnnouncer({
    nodeName, view: cache, link: new LinuxLink(run, iface), log,
    renew: () => api.renewSpeakerLease(nodeName).then(() => undefined),
    event: (service, event) => api.serviceEvent(nodeName, service, event),
  });
  await announcer.run(signal);
}

/** Keeps this node's rules for the Services and EndpointSlices of the view, with the cluster CIDR of the network settings. Never rejects. */
async function startServiceProxy(cache: ServiceCache, settingsRead: Promise<NetworkSettings | undefined>, backend: ProxyBackend, config: AgentRunConfig, log: Logger, signal: AbortSignal): Promise<void> {
  const retry = { retrySeconds: config.tuning?.retrySeconds ?? 1, retryMaxSeconds: config.tuning?.retryMaxSeconds ?? 30 };
  const settings = await settingsRead;
  if (settings) {
    log.info({ backend: backend.name, clusterCIDR: formatCidr(settings.clusterCIDR) }, 'service proxy started');
    await runServiceProxy(signal, { view: cache, synced: cache.synced, facts: { nodeName: config.nodeName, clusterCIDR: settings.clusterCIDR }, backend, log, ...retry });
  }
}

/**
 * The pod network of this node, kept converged in the background until the signal aborts. A node whose
 * address other nodes' addresses are not on-link with is told so by a Warning Event on the Node.
 */
async function startPodNetwork(runtime: ContainerRuntime, clusterId: string, api: NodeApi, log: Logger, nodeName: string, signal: AbortSignal): Promise<{ network: PodNetwork; done: Promise<void> }> {
  if (!(runtime instanceof DockerRuntime)) throw new Error('the pod network needs the Docker runtime');
  const network = new PodNetwork({
    docker: runtime.docker, clusterId, nodeName, log,
    onOffLink: (_node, message) => {
      api.nodeEvent(nodeName, undefined, { type: 'Warning', reason: 'PodNetworkNotOnLink', message })
        .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'posting the pod network event failed'));
    },
  });
  await network.start();
  return { network, done: runPodNetwork(signal, { api, network, log }) };
}

/**
 * Containers of this node's name that carry no cluster label were made before agents labelled their cluster
 * (or by an agent of another cluster that predates it). Docker cannot add a label to a container, and nothing
 * tells whose they are, so they are left alone: the agent says so once, and the user removes them when they are
 * this node's old ones. Pods this agent runs get new, labelled containers.
 */
async function warnOfUnownedContainers(runtime: ContainerRuntime, clusterId: string, nodeName: string, log: Logger): Promise<void> {
  const unlabelled = (await runtime.listContainers({ [LABEL_NODE]: nodeName }).catch(() => []))
    .filter((c) => c.labels[LABEL_CLUSTER] === undefined);
  if (unlabelled.length === 0) return;
  log.warn({ count: unlabelled.length, clusterId, containers: unlabelled.map((c) => c.name || c.id) },
    `containers labelled ${LABEL_NODE}=${nodeName} without ${LABEL_CLUSTER} are left alone (made before containers carried their cluster); remove them with "docker rm -f" if they are this node's old ones`);
}

async function runtimeVersionOf(runtime: ContainerRuntime): Promise<string> {
  if (!(runtime instanceof DockerRuntime)) return `${runtime.name}://0`;
  const v = await runtime.docker.version().catch(() => undefined);
  return `docker://${v?.Version ?? 'unknown'}`;
}

async function machineFindings(runtime: ContainerRuntime, inventory: NodeInventory, podNetwork: boolean): Promise<Finding[]> {
  const info = runtime instanceof DockerRuntime ? await runtime.docker.info().catch(() => undefined) as { Runtimes?: Record<string, unknown> } | undefined : undefined;
  return runPreflight(await readPreflightInputs(), {
    dockerReachable: !(runtime instanceof DockerRuntime) || info !== undefined,
    dockerRuntimes: Object.keys(info?.Runtimes ?? {}),
    cdiSpecs: await cdiSpecFiles(),
    hasNvidiaGpu: inventory.gpus.some((g) => g.vendor === 'nvidia'),
    ...(podNetwork ? { podNetwork: await podNetworkFacts() } : {}),
  });
}

/** The firewall facts preflight judges the pod network by (hardware/preflight.ts podNetworkFindings). */
async function podNetworkFacts(): Promise<NonNullable<PreflightFacts['podNetwork']>> {
  const forward = await runCommand('iptables', ['-w', '-S', 'FORWARD']).catch(() => undefined);
  const tables = await runCommand('nft', ['list', 'tables']).catch(() => undefined);
  const policy = /^-P FORWARD (\S+)/m.exec(forward?.stdout ?? '')?.[1];
  return {
    clusterCidr: DEFAULT_CLUSTER_CIDR,
    iptablesFound: forward !== undefined,
    ...(policy ? { forwardPolicy: policy } : {}),
    firewalld: /\btable inet firewalld\b/.test(tables?.stdout ?? ''),
  };
}

async function cdiSpecFiles(): Promise<string[]> {
  const found: string[] = [];
  for (const dir of ['/etc/cdi', '/var/run/cdi']) {
    for (const f of await readdir(dir).catch(() => [] as string[])) if (/\.(json|ya?ml)$/.test(f)) found.push(`${dir}/${f}`);
  }
  return found;
}

function advertisedAddress(listenHost: string): string {
  if (listenHost !== '0.0.0.0' && listenHost !== '::' && listenHost !== '') return listenHost;
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return '127.0.0.1';
}
