// `flotilla agent`: turns flags and FLOTILLA_* environment into the agent's typed config and calls
// node-agent/run.ts run(signal, config), or, with --simulate N, runs N hollow nodes (FakeRuntime) in this process.
// Precedence: flags > environment (FLOTILLA_SERVER, FLOTILLA_TOKEN, FLOTILLA_CA, FLOTILLA_DATA, FLOTILLA_NODE_NAME,
// the variables `flotilla agent install` writes) > defaults. The data directory (default ./.flotilla/agent) is
// locked by the agent that uses it, hollow fleets included: a second agent there exits with the holder's pid.
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { serverList } from '../client/client.js';
import type { ServerChoice } from '../client/client.js';
import { createMdnsDiscovery } from '../discovery/mdns.js';
import { isJoinToken, locateServers } from '../discovery/locate.js';
import { fetchPinnedCa, isClusterToken, parseClusterToken } from '../client/tokens.js';
import { bytes, cpuMillis } from '../api-types/index.js';
import { lockDataDir } from '../node-agent/data-dir.js';
import { HollowFleet } from '../node-agent/hollow.js';
import { nodeNameFromHostname } from '../node-agent/node-object.js';
import { stringFlag, UsageError } from './args.js';
import type { ParsedArgs } from './args.js';
import type { CliCommand, Io } from './command.js';
import { createLogger, logFormatFor } from './logger.js';
import type { Logger } from 'pino';
import type { ServiceProxyMode } from '../node-agent/network/service-proxy.js';
import type { AgentRunConfig } from '../node-agent/run.js';

const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** What `flotilla agent` (and `flotilla up` for its local agent) runs with: node-agent/run.ts's config, plus how to find the servers and hollow nodes. */
export interface AgentCommandConfig extends Pick<AgentRunConfig, 'token' | 'ca' | 'dataDir' | 'nodeName' | 'listenHost' | 'listenPort' | 'advertiseAddress' | 'reserved' | 'serviceProxy' | 'podNetwork' | 'dns' | 'ingress'> {
  /** Server URLs to use in turn; empty: find verified servers by mDNS (needs a join token). */
  servers: string[];
  /** Network interface (name or IPv4 address) for mDNS. */
  interface?: string;
  /** Hollow nodes to run instead of one real node. */
  simulate?: number;
  /** Fake NVIDIA GPUs per hollow node. */
  simulateGpus?: number;
}

/** The node name: --name, else FLOTILLA_NODE_NAME, else from the machine's hostname; a UsageError when invalid. */
export function agentNodeName(flag: string | undefined, env: NodeJS.ProcessEnv, machineHostname = hostname()): string {
  const nodeName = flag ?? env.FLOTILLA_NODE_NAME ?? nodeNameFromHostname(machineHostname);
  if (!NODE_NAME.test(nodeName)) throw new UsageError(`--name: "${nodeName}" is not a valid node name (lowercase letters, digits, '.', '-'; at most 253)`);
  return nodeName;
}

const SERVICE_PROXY_MODES: readonly ServiceProxyMode[] = ['auto', 'nftables', 'iptables', 'off'];

/** --service-proxy, else FLOTILLA_SERVICE_PROXY, else auto (nftables where `nft` runs, else iptables-restore). */
export function serviceProxyMode(flag: string | undefined, env: NodeJS.ProcessEnv): ServiceProxyMode {
  const mode = flag ?? env.FLOTILLA_SERVICE_PROXY ?? 'auto';
  const known = SERVICE_PROXY_MODES.find((m) => m === mode);
  if (!known) throw new UsageError(`--service-proxy: "${mode}" is not one of ${SERVICE_PROXY_MODES.join(', ')}`);
  return known;
}

/**
 * The Ingress router's listeners: --ingress on|off (else FLOTILLA_INGRESS, else on), on ports --ingress-http-port
 * (default 80) and --ingress-https-port (default 443); undefined when off.
 */
export function ingressListen(a: ParsedArgs, env: NodeJS.ProcessEnv): AgentCommandConfig['ingress'] {
  const mode = stringFlag(a, 'ingress') ?? env.FLOTILLA_INGRESS ?? 'on';
  if (mode !== 'on' && mode !== 'off') throw new UsageError(`--ingress: "${mode}" is not one of on, off`);
  if (mode === 'off') return undefined;
  const portFlag = (name: string, fallback: number): number => {
    const v = stringFlag(a, name);
    if (v === undefined) return fallback;
    if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 65535) throw new UsageError(`--${name}: "${v}" is not a port (1..65535)`);
    return Number(v);
  };
  const httpPort = portFlag('ingress-http-port', 80);
  const httpsPort = portFlag('ingress-https-port', 443);
  if (httpPort === httpsPort) throw new UsageError(`--ingress-http-port and --ingress-https-port are both ${httpPort}`);
  return { httpPort, httpsPort };
}

/** The typed config, or a UsageError naming the flag that is wrong. */
export function agentConfigFrom(a: ParsedArgs, env: NodeJS.ProcessEnv, machineHostname = hostname()): AgentCommandConfig {
  const servers = (stringFlag(a, 'server') ?? env.FLOTILLA_SERVER ?? '').split(',').map((u) => u.trim()).filter(Boolean);
  for (const server of servers) {
    let url: URL;
    try { url = new URL(server); } catch { throw new UsageError(`--server: "${server}" is not a URL`); }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--server: "${server}" must use http or https`);
  }
  const token = stringFlag(a, 'token') ?? env.FLOTILLA_TOKEN;
  if (!token) throw new UsageError('--token is required (or FLOTILLA_TOKEN)');
  if (servers.length === 0 && !(isClusterToken(token) && isJoinToken(parseClusterToken(token).credential))) {
    throw new UsageError('without --server the agent finds the servers by mDNS, which needs a full join token (FLT1<CA hash>::flt1.…, as "flotilla token create" prints it)');
  }
  const caFile = stringFlag(a, 'ca') ?? env.FLOTILLA_CA;
  let ca: string | undefined;
  if (caFile !== undefined) {
    try { ca = readFileSync(caFile, 'utf8'); } catch (err) { throw new UsageError(`--ca: cannot read ${caFile} (${(err as NodeJS.ErrnoException).code ?? String(err)})`); }
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) throw new UsageError(`--ca: ${caFile} is not a PEM certificate (a server's <data>/pki/ca.crt)`);
  }
  const iface = stringFlag(a, 'interface') ?? env.FLOTILLA_INTERFACE;
  const nodeName = agentNodeName(stringFlag(a, 'name'), env, machineHostname);
  const listen = stringFlag(a, 'listen') ?? '0.0.0.0:10250';
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(listen);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`--listen must be ADDRESS:PORT, got "${listen}"`);
  const config: AgentCommandConfig = {
    servers, token, nodeName, ...(iface ? { interface: iface } : {}), ...(ca ? { ca } : {}),
    dataDir: resolve(stringFlag(a, 'data') ?? env.FLOTILLA_DATA ?? '.flotilla/agent'),
    listenHost: m[1]!.replace(/^\[|\]$/g, ''), listenPort: Number(m[2]),
    serviceProxy: serviceProxyMode(stringFlag(a, 'service-proxy'), env),
    // On unless --no-pod-network: a machine joining a fleet needs its pods reachable from the other nodes.
    podNetwork: a.flags['pod-network'] !== false,
  };
  const ingress = ingressListen(a, env);
  if (ingress) config.ingress = ingress;
  const advertise = stringFlag(a, 'advertise-address');
  if (advertise !== undefined) {
    if (!/^[0-9.]+$|:/.test(advertise)) throw new UsageError(`--advertise-address must be an IP address, got "${advertise}"`);
    config.advertiseAddress = advertise;
  }
  const reservedCpu = stringFlag(a, 'reserved-cpu');
  const reservedMemory = stringFlag(a, 'reserved-memory');
  const quantity = (flag: string, v: string, parse: (q: string) => number) => {
    try { if (parse(v) < 0) throw new Error('negative'); } catch { throw new UsageError(`--${flag}: "${v}" is not a quantity (examples: 500m, 1, 256Mi, 1Gi)`); }
  };
  if (reservedCpu !== undefined) quantity('reserved-cpu', reservedCpu, cpuMillis);
  if (reservedMemory !== undefined) quantity('reserved-memory', reservedMemory, bytes);
  if (reservedCpu !== undefined || reservedMemory !== undefined) {
    config.reserved = { ...(reservedCpu !== undefined ? { cpu: reservedCpu } : {}), ...(reservedMemory !== undefined ? { memory: reservedMemory } : {}) };
  }
  const simulate = stringFlag(a, 'simulate');
  if (simulate !== undefined) {
    if (!/^\d+$/.test(simulate) || Number(simulate) < 1 || Number(simulate) > 10_000) throw new UsageError(`--simulate: "${simulate}" must be a node count in 1..10000`);
    config.simulate = Number(simulate);
  }
  const gpus = stringFlag(a, 'simulate-gpus');
  if (gpus !== undefined) {
    if (config.simulate === undefined) throw new UsageError('--simulate-gpus needs --simulate N');
    if (!/^\d+$/.test(gpus) || Number(gpus) > 16) throw new UsageError(`--simulate-gpus: "${gpus}" must be a GPU count in 0..16`);
    config.simulateGpus = Number(gpus);
  }
  return config;
}

/**
 * Where the agent sends its requests: the given URLs in turn, or servers found by mDNS that proved they know
 * the join token (the token is sent to no other), preferring another one when the current one fails.
 */
async function serverChoiceFor(config: AgentCommandConfig, io: Io, signal: AbortSignal): Promise<{ server: ServerChoice; ca?: string }> {
  if (config.servers.length > 0) return { server: serverList(config.servers) };
  const locator = locateServers(config.token, {
    discovery: createMdnsDiscovery({ ...(config.interface ? { interface: config.interface } : {}), onWarning: (m) => io.err(`${m}\n`) }),
    onWarning: (m) => io.err(`${m}\n`),
  }, signal);
  io.out('Looking for Flotilla servers by mDNS...\n');
  // Bounded: a wrong token should fail fast with the reasons; systemd (Restart=on-failure) tries again later.
  await locator.waitForServer(30_000, signal);
  const ca = locator.ca();
  return { server: { current: () => locator.servers()[0], reportFailure: (url) => locator.reportFailure(url) }, ...(ca ? { ca } : {}) };
}

async function runAgentCommand(a: ParsedArgs, io: Io, signal: AbortSignal): Promise<number> {
  const config = agentConfigFrom(a, io.env);
  if (config.simulate !== undefined) {
    const log = agentLogger(io);
    // The fleet's nodes lock their own folders too; this lock makes a second fleet here fail at once, by name.
    const lock = await lockDataDir(config.dataDir);
    try {
      const choice = await serverChoiceFor(config, io, signal);
      // One check of the CA for the whole fleet, so that a token of another cluster stops it at once, by name.
      const first = choice.server.current();
      const ca = choice.ca ?? config.ca ?? (first ? await fetchPinnedCa(first, parseClusterToken(config.token).caHash, { signal }) : undefined);
      return await runHollowFleet(config, config.simulate, a, io, log, { ...choice, ...(ca ? { ca } : {}) }, signal);
    } finally {
      await lock.release();
    }
  }
  return runNodeAgent(config, io, signal);
}

function agentLogger(io: Io): Logger {
  return createLogger({ level: io.env.FLOTILLA_LOG_LEVEL ?? 'info', format: logFormatFor(io.errIsTty ?? false), write: io.err });
}

/** One agent for this machine (node-agent/run.ts) from its typed config, until the signal aborts: `flotilla agent`, and `flotilla up`'s local agent. */
export async function runNodeAgent(config: AgentCommandConfig, io: Io, signal: AbortSignal): Promise<number> {
  const log = agentLogger(io);
  const { server, ca } = await serverChoiceFor(config, io, signal);
  const { run } = await import('../node-agent/run.js');
  const stopping = () => log.info('shutting down: stopping the agent (its containers keep running)');
  signal.addEventListener('abort', stopping, { once: true });
  await run(signal, { ...config, server, ...(ca ? { ca } : {}), log }, (info) => {
    io.out(`Flotilla agent: node ${info.nodeName}, endpoint ${info.address}:${info.port}, server ${server.current()}, data in ${config.dataDir}.\n`);
  }).finally(() => signal.removeEventListener('abort', stopping));
  if (signal.aborted) log.info('stopped');
  return 0;
}

/** `--simulate N`: N hollow nodes in this process until the signal aborts (node-agent/hollow.ts). */
async function runHollowFleet(config: AgentCommandConfig, count: number, a: ParsedArgs, io: Io, log: Logger, { server, ca }: { server: ServerChoice; ca?: string }, signal: AbortSignal): Promise<number> {
  const fleet = new HollowFleet({
    server, token: config.token, ...(ca ? { ca } : {}), dataDir: resolve(config.dataDir, 'hollow'), count,
    prefix: stringFlag(a, 'name') ?? 'hollow', log,
    ...(config.simulateGpus !== undefined ? { gpus: config.simulateGpus } : {}),
  });
  fleet.start();
  const controlFile = resolve(config.dataDir, 'hollow', 'control');
  const onControl = () => {
    readFile(controlFile, 'utf8').then((text) => fleet.control(text)).then(
      () => log.info({ controlFile }, 'hollow control file applied'),
      (err: unknown) => log.error({ controlFile, err: err instanceof Error ? err.message : String(err) }, 'hollow control file not applied'),
    );
  };
  process.on('SIGUSR2', onControl);
  io.out(`Simulating ${count} hollow nodes (${fleet.names()[0]}..${fleet.names().at(-1)}) against ${server.current()}.\n`
    + `Stop or start single nodes: write "stop NAME" / "start NAME" lines to ${controlFile}, then kill -USR2 ${process.pid}. Stop all with Ctrl-C.\n`);
  await new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));
  process.off('SIGUSR2', onControl);
  log.info(`shutting down: stopping ${count} hollow nodes`);
  await fleet.stopAll();
  log.info('stopped');
  return 0;
}

export const agentCommand: CliCommand = {
  summary: 'run a node agent (registers this machine and runs the pods bound to it); --simulate N runs N hollow nodes',
  usage: 'flotilla agent (--server URL[,URL...] | --interface IF) --token T [--ca FILE] [--data DIR] [--name NODE] [--listen ADDR:PORT] [--advertise-address IP] [--reserved-cpu Q --reserved-memory Q] [--service-proxy auto|nftables|iptables|off] [--no-pod-network] [--ingress on|off] [--ingress-http-port P] [--ingress-https-port P] [--simulate N [--simulate-gpus G]]',
  flags: [
    { name: 'server', kind: 'string' }, { name: 'token', kind: 'string' }, { name: 'ca', kind: 'string' }, { name: 'data', kind: 'string' }, { name: 'name', kind: 'string' }, { name: 'interface', kind: 'string' },
    { name: 'listen', kind: 'string' }, { name: 'advertise-address', kind: 'string' }, { name: 'reserved-cpu', kind: 'string' },
    { name: 'reserved-memory', kind: 'string' }, { name: 'service-proxy', kind: 'string' }, { name: 'simulate', kind: 'string' }, { name: 'simulate-gpus', kind: 'string' },
    { name: 'pod-network', kind: 'boolean' },
    { name: 'ingress', kind: 'string' }, { name: 'ingress-http-port', kind: 'string' }, { name: 'ingress-https-port', kind: 'string' },
  ],
  run: runAgentCommand,
};
