// The agent process: lock the data directory, learn the cluster it belongs to (node-agent/data-dir.ts), probe
// the hardware, run the preflight checks, start the pod network where asked (node-agent/network/pod-network.ts),
// open the agent endpoint (logs, exec for the servers), then run the agent loop against the servers until the
// signal aborts. run(signal, config) is what `flotilla agent` calls; tests call it with a FakeRuntime and a fixed
// inventory.
import type { ServerChoice } from '../client/client.js';
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { networkInterfaces } from 'node:os';
import pino, { type Logger } from 'pino';
import { DEFAULT_CLUSTER_CIDR } from '../api-types/index.js';
import { normaliseInventory, type NodeInventory } from '../hardware/inventory.js';
import { readPreflightInputs, runPreflight, type Finding, type PreflightFacts } from '../hardware/preflight.js';
import { probeHardware } from '../hardware/probe.js';
import { runAgent, type AgentConfig } from './agent.js';
import { ApiClient, NodeApi, type NodeEvent } from './api-client.js';
import { clusterIdOf, lockDataDir } from './data-dir.js';
import { startEndpoint } from './endpoint.js';
import { PodNetwork, runCommand, runPodNetwork } from './network/pod-network.js';
import { buildNodeObject } from './node-object.js';
import { DockerRuntime } from './runtime/docker.js';
import { LABEL_CLUSTER, LABEL_NODE, type ContainerRuntime } from './runtime/types.js';

export interface AgentRunConfig {
  /** A server URL, or a choice among several (client/client.ts ServerChoice). */
  server: string | ServerChoice;
  token: string;
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
   * Run the pod network (node-agent/network/pod-network.ts: a bridge per podCIDR, routes to the other nodes,
   * iptables rules; needs the Docker runtime, root and this machine's network namespace). Off: pods join Docker's
   * default bridge, which is what tests that share one engine and one namespace use.
   */
  podNetwork?: boolean;
  /** Loop settings (heartbeat, usage reports, retry, fencing, pod workers, the clock of the fencing decisions). */
  tuning?: Partial<Pick<AgentConfig, 'heartbeatSeconds' | 'nodeStatusSeconds' | 'usageSeconds' | 'simulatedUsage' | 'retrySeconds' | 'retryMaxSeconds' | 'fenceAfterSeconds' | 'podWorkers' | 'now'>>;
  log?: Logger;
}

export interface AgentRunInfo {
  nodeName: string;
  /** Port of the agent endpoint. */
  port: number;
  address: string;
  findings: Finding[];
}

/**
 * Resolves when the signal aborts (containers keep running) or rejects when the agent cannot start: among other
 * reasons, when another live agent holds the data directory (DataDirInUseError).
 */
export async function run(signal: AbortSignal, config: AgentRunConfig, onReady?: (info: AgentRunInfo) => void): Promise<void> {
  const log = config.log ?? pino({ level: 'info' });
  const api = new NodeApi(new ApiClient(config.server, config.token));
  try {
    const lock = await lockDataDir(config.dataDir);
    try {
      const clusterId = await clusterIdOf(config.dataDir, (s) => api.clusterId(s), signal, {
        retrySeconds: config.tuning?.retrySeconds ?? 1, retryMaxSeconds: config.tuning?.retryMaxSeconds ?? 30, log,
      });
      if (clusterId !== undefined) await runAs(clusterId, api, log, signal, config, onReady);
    } finally {
      await lock.release();
    }
  } finally {
    api.client.close();
  }
}

async function runAs(clusterId: string, api: NodeApi, log: Logger, signal: AbortSignal, config: AgentRunConfig, onReady?: (info: AgentRunInfo) => void): Promise<void> {
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
  const token = randomBytes(32).toString('base64url');
  const endpoint = await startEndpoint({ runtime, clusterId, nodeName: config.nodeName, token, host: config.listenHost, port: config.listenPort, log });
  const address = config.advertiseAddress ?? advertisedAddress(config.listenHost);
  const readySince = new Date();
  try {
    onReady?.({ nodeName: config.nodeName, port: endpoint.port, address, findings });
    await runAgent(signal, {
      ...config.tuning,
      ...(podNetwork ? { podWorkers: { ...config.tuning?.podWorkers, sandboxNetwork: () => podNetwork.network.sandboxNetwork() } } : {}),
      clusterId,
      nodeName: config.nodeName,
      api,
      runtime,
      dataDir: config.dataDir,
      hostIP: address,
      endpointToken: token,
      events: findings.filter((f) => f.severity !== 'info').map((f): NodeEvent => ({ type: 'Warning', reason: `Preflight-${f.id}`, message: `${f.message}. Fix: ${f.fix}` })),
      node: () => buildNodeObject({ nodeName: config.nodeName, inventory, address, port: endpoint.port, containerRuntimeVersion: runtimeVersion, readySince }),
      log,
    });
  } finally {
    await endpoint.close();
    await podNetwork?.done;
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
