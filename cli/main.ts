import { stringify as toYaml } from 'yaml';
import { readFileSync, createWriteStream, renameSync, rmSync } from 'node:fs';
import { resolve, join } from 'node:path';
import { apiPath, CATEGORY_ALL, isKind, parseCidr, parseNetworkSettings, parsePortRange, resourceByCliName, resourceOfKind } from '../api-types/index.js';
import type { DeleteOptions, DeletionPropagation, Endpoints, Event, KubeObject, List, NetworkSettings, NetworkSettingsData, ResourceInfo } from '../api-types/index.js';
import { ApiClientError } from '../client/client.js';
import { parseArgs, stringFlag, boolFlag, listFlag, UsageError } from './args.js';
import type { FlagSpec, ParsedArgs } from './args.js';
import { ConfigError, DEFAULT_SERVER, localDataDir, saveUpContext, writePrivateFile } from './config.js';
import { configCommand } from './config-command.js';
import { clientFor, connectionFlags } from './command.js';
import type { CliCommand, Io } from './command.js';
import { rolloutCommand } from './rollout.js';
import { createCommand } from './create.js';
import { cordonCommand, uncordonCommand, drainCommand } from './node-commands.js';
import { authCommand } from './auth.js';
import { topCommand } from './top.js';
import { tokenCommand } from './token.js';
import { KUBECONFIG_FILE, kubeconfigClusterName, kubeconfigCommand, kubeconfigDocument } from './kubeconfig.js';
import { agentCommand, agentNodeName, runNodeAgent, serviceProxyMode, type AgentCommandConfig } from './agent-command.js';
import { createLogger, logFormatFor } from './logger.js';
import { DockerRuntime } from '../node-agent/runtime/docker.js';
import { defaultBridgeDns, type DockerNetworkInfo } from '../node-agent/network/cluster-dns.js';
import { parseAddressRange } from '../server/network/load-balancer-pools.js';
import { CA_CERT_FILE, PKI_DIR } from '../server/pki/ca.js';
import type { ServingLimits } from '../server/api/serving-limits.js';
import type { ServerConfig } from '../server/run.js';
import { logsCommand } from './logs.js';
import { execCommand } from './exec.js';
import { agentInstallCommand } from './agent-install.js';
import { nodeReplaceCommand } from './node-replace.js';
import { readManifests, ManifestError, applyManifests, qualifiedName } from './manifests.js';
import { DELETE_WAIT_MS, waitUntilGone } from './deletion.js';
import { BULK_REQUESTS, deleteObject, inParallel, inWaves } from './apply.js';
import { DataCorruptionError } from '../server/store/sqlite-check.js';
import { formatObjects, parseOutputFormat, renderTable } from './printers.js';
import type { OutputFormat } from './printers.js';
import { describeObject } from './describe.js';
import { serviceCommand } from './service-url.js';
import { imageCommand } from './image.js';
import { secretsEncryptCommand } from './secrets-encrypt.js';
import { ENCRYPTION_CONFIG_FILE } from '../server/secrets/encryption-config.js';
import { composeCommand } from './compose/command.js';

const processIo: Io = {
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  env: process.env,
  readStdin: () => readFileSync(0, 'utf8'),
  isTty: Boolean(process.stdout.isTTY),
  errIsTty: Boolean(process.stderr.isTTY),
};


const nsFlags: FlagSpec[] = [{ name: 'namespace', short: 'n', kind: 'string' }, { name: 'all-namespaces', short: 'A', kind: 'boolean' }];

/** How long a silent node stays Ready, and how long its pods then wait before they are moved. */
const controllerFlags: FlagSpec[] = [{ name: 'node-grace-period', kind: 'string' }, { name: 'pod-eviction-delay', kind: 'string' }];

/** The audit log, as kube-apiserver's flags name it (server/api/middleware/audit.ts). */
const auditFlags: FlagSpec[] = [{ name: 'audit-log-path', kind: 'string' }, { name: 'audit-log-maxsize', kind: 'string' }, { name: 'audit-log-maxbackup', kind: 'string' }, { name: 'audit-policy-file', kind: 'string' }];

const AUDIT_USAGE = '[--audit-log-path FILE|- [--audit-log-maxsize MB] [--audit-log-maxbackup N] [--audit-policy-file FILE]]';

/** The audit flags as the server's audit configuration; undefined without --audit-log-path. */
function auditConfigOf(a: ParsedArgs): ServerConfig['audit'] {
  const count = (flag: string): number | undefined => {
    const text = stringFlag(a, flag);
    if (text !== undefined && !/^\d+$/.test(text)) throw new UsageError(`--${flag} must be a whole number, got "${text}"`);
    return text === undefined ? undefined : Number(text);
  };
  const path = stringFlag(a, 'audit-log-path');
  const maxSizeMb = count('audit-log-maxsize');
  const maxBackups = count('audit-log-maxbackup');
  const policyFile = stringFlag(a, 'audit-policy-file');
  if (!path) {
    if (maxSizeMb !== undefined || maxBackups !== undefined || policyFile !== undefined) throw new UsageError('--audit-log-maxsize, --audit-log-maxbackup and --audit-policy-file need --audit-log-path');
    return undefined;
  }
  return { path: path === '-' ? '-' : resolve(path), ...(maxSizeMb !== undefined ? { maxSizeMb } : {}), ...(maxBackups !== undefined ? { maxBackups } : {}), ...(policyFile ? { policyFile: resolve(policyFile) } : {}) };
}

/** The network settings a new cluster publishes (api-types/network.ts). */
const networkFlags: FlagSpec[] = [{ name: 'cluster-cidr', kind: 'string' }, { name: 'service-cidr', kind: 'string' }, { name: 'service-node-port-range', kind: 'string' }, { name: 'load-balancer-pool', kind: 'string' }];

/** The network flags as settings (undefined when none is given); a bad value is a UsageError naming its flag. */
function networkSettingsOf(a: ParsedArgs): NetworkSettings | undefined {
  const data: Partial<NetworkSettingsData> = {};
  const flags = [['cluster-cidr', 'clusterCIDR', parseCidr], ['service-cidr', 'serviceCIDR', parseCidr], ['service-node-port-range', 'nodePortRange', parsePortRange]] as const;
  for (const [flag, key, parse] of flags) {
    const value = stringFlag(a, flag);
    if (value === undefined) continue;
    try { parse(value); } catch (err) { throw new UsageError(`--${flag}: ${(err as Error).message}`); }
    data[key] = value;
  }
  if (Object.keys(data).length === 0) return undefined;
  try {
    return parseNetworkSettings(data);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

/** "30s", "2m", "1500ms" or plain seconds, as milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(text.trim());
  if (!m) throw new UsageError(`--${flag} must be a duration like 30s, 2m or 1500ms, got "${text}"`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] ?? 's']!;
  return Math.round(Number(m[1]) * unit);
}

/** kube-apiserver's in-flight limits and request timeout, and the watch caps (server/api/serving-limits.ts). */
const servingFlags: FlagSpec[] = [
  { name: 'max-requests-inflight', kind: 'string' }, { name: 'max-mutating-requests-inflight', kind: 'string' }, { name: 'request-timeout', kind: 'string' },
  { name: 'max-watches', kind: 'string' }, { name: 'max-watches-per-client', kind: 'string' },
];

/** The serving flags given; the in-flight limits take 0 for none, as in Kubernetes. */
function servingLimitsOf(a: ParsedArgs): Partial<ServingLimits> {
  const count = (flag: string, zeroAllowed: boolean): number | undefined => {
    const text = stringFlag(a, flag);
    if (text === undefined) return undefined;
    if (!(zeroAllowed ? /^\d+$/ : /^[1-9]\d*$/).test(text)) throw new UsageError(`--${flag} must be a ${zeroAllowed ? 'non-negative' : 'positive'} whole number, got "${text}"`);
    return Number(text);
  };
  const timeout = stringFlag(a, 'request-timeout');
  const limits: Partial<ServingLimits> = {
    maxRequestsInFlight: count('max-requests-inflight', true), maxMutatingRequestsInFlight: count('max-mutating-requests-inflight', true),
    maxWatches: count('max-watches', false), maxWatchesPerClient: count('max-watches-per-client', false),
    requestTimeoutMs: timeout === undefined ? undefined : parseDuration(timeout, 'request-timeout'),
  };
  if (limits.requestTimeoutMs === 0) throw new UsageError('--request-timeout must be longer than 0');
  return Object.fromEntries(Object.entries(limits).filter(([, v]) => v !== undefined));
}

function controllerSettingsOf(a: ParsedArgs): { nodeGracePeriodMs?: number; podEvictionDelayMs?: number } {
  const grace = stringFlag(a, 'node-grace-period');
  const delay = stringFlag(a, 'pod-eviction-delay');
  return { ...(grace ? { nodeGracePeriodMs: parseDuration(grace, 'node-grace-period') } : {}), ...(delay ? { podEvictionDelayMs: parseDuration(delay, 'pod-eviction-delay') } : {}) };
}

const commands: Record<string, CliCommand> = {
  up: {
    summary: 'run an all-in-one cluster (server + local agent) in the foreground',
    usage: 'flotilla up [--data DIR] [--listen HOST:PORT] [--node-grace-period 15s] [--pod-eviction-delay 30s] [--cluster-cidr 10.42.0.0/16] [--service-cidr 10.43.0.0/16] [--service-node-port-range 30000-32767] [--load-balancer-pool 192.168.1.240-192.168.1.250] ' + AUDIT_USAGE,
    flags: [{ name: 'data', kind: 'string' }, { name: 'listen', kind: 'string' }, ...controllerFlags, ...networkFlags, ...auditFlags],
    run: (a, io, signal) => runServerCommand(a, io, signal, { writeConfig: true, localAgent: true, formsCluster: true }),
  },
  server: {
    summary: 'run a control-plane member (a new cluster, or --join one)',
    usage: 'flotilla server --data DIR --listen HOST:PORT [--advertise URL] [--join URL|auto --token CLUSTER_SECRET | --cluster-init [--token SECRET] [--join auto]] [--interface IF] [--no-mdns] [--snapshot-every ENTRIES] [--node-grace-period 15s] [--pod-eviction-delay 30s] [--cluster-cidr 10.42.0.0/16] [--service-cidr 10.43.0.0/16] [--service-node-port-range 30000-32767] [--load-balancer-pool 192.168.1.240-192.168.1.250] [--max-requests-inflight 200] [--max-mutating-requests-inflight 100] [--request-timeout 1m] [--max-watches 2000] [--max-watches-per-client 100] ' + AUDIT_USAGE,
    flags: [
      { name: 'data', kind: 'string' }, { name: 'listen', kind: 'string' }, { name: 'advertise', kind: 'string' }, { name: 'join', kind: 'string' },
      { name: 'token', kind: 'string' }, { name: 'cluster-init', kind: 'boolean' }, { name: 'snapshot-every', kind: 'string' }, { name: 'mdns', kind: 'boolean' }, { name: 'interface', kind: 'string' },
      ...controllerFlags, ...networkFlags, ...servingFlags, ...auditFlags,
    ],
    run: (a, io, signal) => runServerCommand(a, io, signal, { writeConfig: false, localAgent: false, formsCluster: false }),
  },
  apply: {
    summary: 'create or update objects from files, folders or stdin (-f -)',
    usage: 'flotilla apply -f FILE|DIR|- [-f ...] [-R] [-n NAMESPACE]',
    flags: [...connectionFlags, { name: 'filename', short: 'f', kind: 'list' }, { name: 'recursive', short: 'R', kind: 'boolean' }, { name: 'namespace', short: 'n', kind: 'string' }],
    run: apply,
  },
  create: createCommand,
  get: {
    summary: 'list objects, or show some by name',
    usage: 'flotilla get TYPE[,TYPE...]|all [NAME...] [-o wide|yaml|json|name] [-l SELECTOR] [--field-selector F] [-n NS | -A] [-w] [--show-labels] [--no-headers]',
    flags: [...connectionFlags, ...nsFlags, { name: 'output', short: 'o', kind: 'string' }, { name: 'selector', short: 'l', kind: 'string' }, { name: 'field-selector', kind: 'string' }, { name: 'watch', short: 'w', kind: 'boolean' }, { name: 'no-headers', kind: 'boolean' }, { name: 'show-labels', kind: 'boolean' }],
    run: get,
  },
  describe: {
    summary: 'show an object in detail, with its events',
    usage: 'flotilla describe TYPE NAME [-n NS]',
    flags: [...connectionFlags, ...nsFlags],
    run: describe,
  },
  delete: {
    summary: 'delete objects named in files, by name, or by label selector, and wait until they are gone',
    usage: 'flotilla delete (-f FILE|DIR | TYPE NAME... | TYPE -l SELECTOR) [-n NS] [--ignore-not-found] [--grace-period N | --now] [--force] [--cascade=background|foreground|orphan] [--wait=false] [--timeout 5m]',
    flags: [
      ...connectionFlags, ...nsFlags, { name: 'filename', short: 'f', kind: 'list' }, { name: 'recursive', short: 'R', kind: 'boolean' }, { name: 'selector', short: 'l', kind: 'string' },
      { name: 'ignore-not-found', kind: 'boolean' }, { name: 'grace-period', kind: 'string' }, { name: 'now', kind: 'boolean' }, { name: 'force', kind: 'boolean' },
      { name: 'cascade', kind: 'string' }, { name: 'wait', kind: 'boolean' }, { name: 'timeout', kind: 'string' },
    ],
    run: remove,
  },
  scale: {
    summary: 'set the replica count of a Deployment, ReplicaSet or StatefulSet',
    usage: 'flotilla scale TYPE/NAME --replicas N [-n NS]',
    flags: [...connectionFlags, { name: 'namespace', short: 'n', kind: 'string' }, { name: 'replicas', kind: 'string' }],
    run: scale,
  },
  agent: agentCommand,
  logs: logsCommand,
  exec: execCommand,
  token: tokenCommand,
  kubeconfig: kubeconfigCommand,
  node: nodeReplaceCommand,
  rollout: rolloutCommand,
  cordon: cordonCommand,
  uncordon: uncordonCommand,
  drain: drainCommand,
  top: topCommand,
  auth: authCommand,
  service: serviceCommand,
  image: imageCommand,
  compose: composeCommand,
  config: configCommand,
  'secrets-encrypt': secretsEncryptCommand,
  cluster: {
    summary: 'show the control-plane members (status), remove one, or hand leadership to one (transfer)',
    usage: 'flotilla cluster status [-o json] | flotilla cluster remove MEMBER_ID | flotilla cluster transfer MEMBER_ID',
    flags: [...connectionFlags, { name: 'output', short: 'o', kind: 'string' }],
    run: cluster,
  },
  backup: {
    summary: 'save the cluster state to a file (a consistent SQLite copy)',
    usage: 'flotilla backup FILE',
    flags: [...connectionFlags],
    run: backup,
  },
  restore: {
    summary: 'make a new one-member cluster from a backup file or an old member\'s data dir (lost quorum)',
    usage: 'flotilla restore --data NEW_DIR [--encryption-config FILE] (BACKUP_FILE | OLD_MEMBER_DATA_DIR)',
    flags: [{ name: 'data', kind: 'string' }, { name: 'encryption-config', kind: 'string' }],
    run: restore,
  },
  version: {
    summary: 'print the client and server versions',
    usage: 'flotilla version [--client]',
    flags: [...connectionFlags, { name: 'client', kind: 'boolean' }],
    run: version,
  },
};

export const CLIENT_VERSION = '0.1.0';

/** Runs the CLI; resolves to the exit code. Only this module reads argv and the environment. */
export async function main(argv: string[], io: Io = processIo): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    io.out(helpText());
    return name ? 0 : 2;
  }
  // `agent install` is a command of its own with its own flags; `agent` alone runs the agent.
  const command = name === 'agent' && rest[0] === 'install' ? agentInstallCommand : commands[name];
  if (!command) {
    io.err(`flotilla: unknown command "${name}"\n\n${helpText()}`);
    return 2;
  }
  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    if (rest.includes('--help') || rest.includes('-h')) {
      io.out(`${command.summary}\n\nUsage: ${command.usage}\n`);
      return 0;
    }
    return await command.run(parseArgs(rest, command.flags), io, controller.signal);
  } catch (err) {
    if (err instanceof UsageError) {
      io.err(`flotilla ${name}: ${err.message}\nUsage: ${command.usage}\n`);
      return 2;
    }
    if (err instanceof ManifestError || err instanceof ApiClientError || err instanceof ConfigError || err instanceof DataCorruptionError) {
      io.err(`flotilla ${name}: ${err.message}\n`);
      return 1;
    }
    throw err;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function helpText(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length));
  return `flotilla: a container orchestrator for edge and bare-metal fleets\n\nCommands:\n${Object.entries(commands).map(([n, c]) => `  ${n.padEnd(width + 2)}${c.summary}`).join('\n')}\n\n`
    + 'Commands that talk to a server take it and its token from --server/--token, then FLOTILLA_SERVER/FLOTILLA_TOKEN, then\n'
    + 'the context --context NAME names or else the current context of the config file: FLOTILLA_CONFIG, default\n'
    + '~/.flotilla/config ("flotilla config get-contexts" lists them; "flotilla up" adds its own and switches to it).\n'
    + 'With more than one context there, a command says on stderr which one it talks to. The cluster CA that the server is\n'
    + 'verified against comes from --ca FILE, then FLOTILLA_CA, then the context, then ./.flotilla/pki/ca.crt.\n\n'
    + 'Run "flotilla COMMAND --help" for a command\'s flags.\n';
}

function resourceArg(name: string | undefined): ResourceInfo {
  if (!name) throw new UsageError('a resource type is required (e.g. pods, deployments, nodes)');
  const r = resourceByCliName(name);
  if (!r) throw new UsageError(`the server doesn't have a resource type "${name}"`);
  return r;
}

function namespaceOf(a: ParsedArgs): string {
  return stringFlag(a, 'namespace') ?? 'default';
}

/** `formsCluster`: `flotilla up`, which always forms its one-member cluster (as --cluster-init). */
async function runServerCommand(a: ParsedArgs, io: Io, signal: AbortSignal, opts: { writeConfig: boolean; localAgent: boolean; formsCluster: boolean }): Promise<number> {
  const { run } = await import('../server/run.js');
  const listen = stringFlag(a, 'listen') ?? new URL(DEFAULT_SERVER).host;
  const m = /^(\[[^\]]+\]|[^:]+):(\d+)$/.exec(listen);
  if (!m || Number(m[2]) > 65535) throw new UsageError(`--listen must be HOST:PORT, got "${listen}"`);
  const dataDir = localDataDir(stringFlag(a, 'data'));
  const joinUrl = stringFlag(a, 'join');
  const token = stringFlag(a, 'token') ?? io.env.FLOTILLA_CLUSTER_SECRET;
  if (joinUrl && !token) throw new UsageError('--join needs --token (the server token a member printed at start: FLT1<CA hash>::server:<secret>)');
  if (joinUrl && joinUrl !== 'auto' && !/^https:\/\//.test(joinUrl)) throw new UsageError(`--join takes a member's URL (https://HOST:PORT) or "auto", not "${joinUrl}"`);
  // Which of join, form and resume applies is decided by server/join/server-membership.ts (planJoin).
  const clusterInit = opts.formsCluster || boolFlag(a, 'cluster-init');
  if (clusterInit && joinUrl && joinUrl !== 'auto') throw new UsageError('--cluster-init forms a new cluster and --join URL joins one: give one of them');
  const advertise = stringFlag(a, 'advertise');
  const snapshotText = stringFlag(a, 'snapshot-every');
  if (snapshotText !== undefined && !/^[1-9]\d*$/.test(snapshotText)) throw new UsageError(`--snapshot-every must be a positive number of log entries, got "${snapshotText}"`);
  const iface = stringFlag(a, 'interface');
  const mdns = a.flags.mdns;
  const network = networkSettingsOf(a);
  const auditConfig = auditConfigOf(a);
  const lbPool = stringFlag(a, 'load-balancer-pool')?.split(',').map((r) => r.trim()).filter(Boolean);
  if (lbPool?.length === 0) throw new UsageError('--load-balancer-pool takes ranges such as 192.168.1.240-192.168.1.250 or 192.168.1.240/28, comma-separated');
  for (const range of lbPool ?? []) {
    try { parseAddressRange(range); } catch (err) { throw new UsageError(`--load-balancer-pool: ${JSON.stringify(range)}: ${(err as Error).message}`); }
  }
  // `up`'s local agent says its own (agent-command.ts); "stopped" follows once both are down.
  const stopping = () => io.err('shutting down: closing the API server and the Raft member...\n');
  signal.addEventListener('abort', stopping, { once: true });
  let localAgent: Promise<void> | undefined;
  await run(signal, {
    dataDir, host: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]),
    ...(joinUrl ? { join: joinUrl } : {}), ...(token ? { token } : {}), ...(clusterInit ? { clusterInit } : {}), ...(advertise ? { advertiseUrl: advertise } : {}),
    ...(snapshotText ? { snapshotEvery: Number(snapshotText) } : {}), ...(iface ? { interface: iface } : {}), ...(typeof mdns === 'boolean' ? { mdns } : {}),
    controllers: controllerSettingsOf(a), servingLimits: servingLimitsOf(a), ...(opts.localAgent ? { localAgentToken: true } : {}), ...(network ? { network } : {}),
    ...(lbPool ? { loadBalancerPool: lbPool } : {}), ...(auditConfig ? { audit: auditConfig } : {}),
    log: createLogger({ level: io.env.FLOTILLA_LOG_LEVEL ?? 'info', format: logFormatFor(io.errIsTty ?? false), write: io.err }),
  }, (info) => {
    let configNote = '';
    if (opts.writeConfig && info.adminToken) {
      try {
        const saved = saveUpContext(io.env, dataDir, { server: info.url, token: info.adminToken, ca: join(dataDir, PKI_DIR, CA_CERT_FILE), cluster: info.clusterId });
        // kubectl's own file, beside the data as k3s writes its k3s.yaml: the user's ~/.kube/config is theirs (flotilla kubeconfig --merge).
        const kubeconfig = join(dataDir, KUBECONFIG_FILE);
        writePrivateFile(kubeconfig, toYaml(kubeconfigDocument({ clusterName: kubeconfigClusterName(info.clusterId), server: info.url, caPem: info.caPem, userName: 'admin', token: info.adminToken })));
        configNote = `\nThe CLI is configured in ${saved.path} (context ${saved.name}).${saved.switched ? ` Switched to context "${saved.name}".` : ''}\nkubectl: KUBECONFIG=${kubeconfig} kubectl get nodes`;
      } catch (err) {
        // A broken CLI config must not stop the cluster: say so, and leave the file for the user to fix.
        configNote = `\nThe CLI config was not changed: ${err instanceof Error ? err.message : String(err)}`;
      }
    }
    const tokenNote = !info.adminTokenPath ? 'Use the admin token of the member that created the cluster.'
      : info.adminToken ? `Admin token: ${info.adminTokenPath}` : `${info.adminTokenPath} no longer holds the admin token (rotated or revoked): use the one flotilla token rotate admin gave.`;
    io.out(`Flotilla ${CLIENT_VERSION} listening on ${info.url} (data in ${dataDir}; cluster ${info.clusterId}, member ${info.memberId})\n${tokenNote}${configNote}\n`
      + `Cluster CA: ${join(dataDir, PKI_DIR, CA_CERT_FILE)} (sha256:${info.caHash})\nServer token (other servers join with --token): ${info.serverToken}\n\nTry:\n  flotilla apply -f examples/\n  flotilla get deployments\n  flotilla get pods -o wide\n\nStop with Ctrl-C.\n`);
    if (opts.localAgent && info.localAgentToken) localAgent = startLocalAgent(info.url, info.localAgentToken, info.caPem, join(dataDir, 'agent'), io, signal);
  }).finally(() => signal.removeEventListener('abort', stopping));
  await localAgent;
  if (signal.aborted) io.err('stopped\n');
  return 0;
}

/**
 * `flotilla up`'s agent for the local Docker engine, in the same process, until `signal` aborts: a node like any
 * other, joined with its own join token (ServerInfo.localAgentToken), listening on loopback only. Without a
 * Docker engine the control plane still runs; the user is told why there is no node. Never rejects.
 */
function startLocalAgent(server: string, joinToken: string, ca: string, dataDir: string, io: Io, signal: AbortSignal): Promise<void> {
  const noAgent = (why: string) => io.err(`flotilla up: no local agent (${why}); the control plane runs without a node. Start Docker and run "flotilla up" again, or add agents with "flotilla agent".\n`);
  const runtime = new DockerRuntime();
  return runtime.listContainers({ 'io.flotilla.node': '' })
    .then(async () => {
      // The node's address is loopback and there is no pod network: pods are on Docker's default bridge, which
      // cannot reach loopback. Cluster DNS serves on the bridge's gateway (this host's address on it) and answers
      // the bridge's subnet, so that those pods resolve Services; without a gateway known the agent says DNS is off.
      const dns = await defaultBridgeDns(await runtime.docker.getNetwork('bridge').inspect().catch(() => ({})) as DockerNetworkInfo);
      const config: AgentCommandConfig = {
        servers: [server], token: joinToken, ca, dataDir, nodeName: agentNodeName(undefined, io.env),
        listenHost: '127.0.0.1', listenPort: 0, advertiseAddress: '127.0.0.1', serviceProxy: serviceProxyMode(undefined, io.env),
        ...(dns ? { dns } : {}),
      };
      await runNodeAgent(config, io, signal);
    }, (err: unknown) => { noAgent(`no Docker engine answers: ${err instanceof Error ? err.message : String(err)}`); })
    .catch((err: unknown) => noAgent(err instanceof Error ? err.message : String(err)));
}

async function apply(a: ParsedArgs, io: Io): Promise<number> {
  const files = listFlag(a, 'filename');
  if (files.length === 0) throw new UsageError('-f FILE|DIR|- is required');
  const ns = stringFlag(a, 'namespace');
  const manifests = readManifests(files, { readStdin: io.readStdin, recursive: boolFlag(a, 'recursive'), ...(ns ? { namespace: ns } : {}) });
  const client = clientFor(a, io);
  try {
    return await applyManifests(client, manifests, io) > 0 ? 1 : 0;
  } finally {
    client.close();
  }
}

function listPath(r: ResourceInfo, a: ParsedArgs, extra: Record<string, string | undefined> = {}): string {
  const all = boolFlag(a, 'all-namespaces');
  const base = apiPath(r, r.namespaced && !all ? namespaceOf(a) : undefined);
  const q = new URLSearchParams();
  const sel = stringFlag(a, 'selector');
  const fsel = stringFlag(a, 'field-selector');
  if (sel) q.set('labelSelector', sel);
  if (fsel) q.set('fieldSelector', fsel);
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) q.set(k, v);
  const qs = q.toString();
  return qs ? `${base}?${qs}` : base;
}

async function get(a: ParsedArgs, io: Io, signal: AbortSignal): Promise<number> {
  const format = parseOutputFormat(stringFlag(a, 'output'));
  const [typeArg, ...names] = a.positionals;
  if (typeArg?.includes(',') || typeArg === 'all') return getTypes(a, io, typeArg.split(','), names, format);
  const r = resourceArg(typeArg);
  const withNamespace = boolFlag(a, 'all-namespaces') && r.namespaced;
  const client = clientFor(a, io);
  try {
    let items: KubeObject[];
    let revision = '0';
    if (names.length > 0) {
      items = [];
      for (const n of names) items.push(await client.request<KubeObject>('GET', apiPath(r, r.namespaced ? namespaceOf(a) : undefined, n)));
    } else {
      const list = await client.request<{ items: KubeObject[]; metadata: { resourceVersion: string } }>('GET', listPath(r, a));
      items = list.items;
      revision = list.metadata.resourceVersion;
    }
    const opts = { withNamespace, single: names.length === 1, noHeaders: boolFlag(a, 'no-headers'), showLabels: boolFlag(a, 'show-labels') };
    if (items.length === 0 && (format === 'table' || format === 'wide')) {
      io.err(boolFlag(a, 'all-namespaces') || !r.namespaced ? 'No resources found\n' : `No resources found in ${namespaceOf(a)} namespace.\n`);
    } else {
      io.out(formatObjects(r, items, format, opts));
    }
    if (!boolFlag(a, 'watch')) return 0;
    const wanted = new Set(names);
    await client.watch<KubeObject>(listPath(r, a, { watch: 'true', resourceVersion: revision === '0' ? undefined : revision }), (e) => {
      if (e.type === 'ERROR') throw new ApiClientError(e.object.message ?? 'watch failed', 410, 'Expired');
      if (wanted.size > 0 && !wanted.has(e.object.metadata.name ?? '')) return;
      io.out(formatObjects(r, [e.object], format, { ...opts, noHeaders: true, single: true }));
    }, signal);
    return 0;
  } finally {
    client.close();
  }
}

/** `get TYPE,TYPE...` as kubectl: a table per type with TYPE/NAME names, blank-line separated; one List for -o json|yaml. */
async function getTypes(a: ParsedArgs, io: Io, typeNames: string[], names: string[], format: OutputFormat): Promise<number> {
  if (names.length > 0 || boolFlag(a, 'watch')) throw new UsageError('several resource types take neither names nor --watch');
  // "all" is Kubernetes' category: the workload kinds, in kube-apiserver's order.
  const types = typeNames.flatMap((n) => (n === 'all' ? [...CATEGORY_ALL] : [n])).map(resourceArg);
  const client = clientFor(a, io);
  try {
    const lists = [];
    for (const r of types) lists.push({ r, items: (await client.request<{ items: KubeObject[] }>('GET', listPath(r, a))).items });
    if (format === 'json' || format === 'yaml') {
      io.out(formatObjects(types[0]!, lists.flatMap((l) => l.items), format, { withNamespace: false }));
      return 0;
    }
    const tables = lists.filter((l) => l.items.length > 0)
      .map((l) => formatObjects(l.r, l.items, format, { withNamespace: boolFlag(a, 'all-namespaces') && l.r.namespaced, noHeaders: boolFlag(a, 'no-headers'), showLabels: boolFlag(a, 'show-labels'), qualifiedNames: true }));
    if (tables.length === 0) io.err(boolFlag(a, 'all-namespaces') ? 'No resources found\n' : `No resources found in ${namespaceOf(a)} namespace.\n`);
    else io.out(tables.join(format === 'name' ? '' : '\n'));
    return 0;
  } finally {
    client.close();
  }
}

async function describe(a: ParsedArgs, io: Io): Promise<number> {
  const [typeArg, ...names] = a.positionals;
  const r = resourceArg(typeArg);
  const client = clientFor(a, io);
  try {
    const objects: KubeObject[] = [];
    if (names.length > 0) {
      for (const n of names) objects.push(await client.request<KubeObject>('GET', apiPath(r, r.namespaced ? namespaceOf(a) : undefined, n)));
    } else {
      objects.push(...(await client.request<{ items: KubeObject[] }>('GET', listPath(r, a))).items);
    }
    const out: string[] = [];
    for (const o of objects) {
      const q = new URLSearchParams({ fieldSelector: `involvedObject.name=${o.metadata.name},involvedObject.kind=${o.kind}` });
      const eventsPath = `${apiPath(resourceOfKind('Event'), o.metadata.namespace ?? 'default')}?${q}`;
      const events = (await client.request<List<Event>>('GET', eventsPath)).items;
      const endpoints = isKind(o, 'Service') ? await client.request<Endpoints>('GET', apiPath(resourceOfKind('Endpoints'), o.metadata.namespace ?? 'default', o.metadata.name)).catch((err: unknown) => {
        if (err instanceof ApiClientError && err.code === 404) return undefined;
        throw err;
      }) : undefined;
      out.push(describeObject(o, events, Date.now(), endpoints ? { endpoints } : {}));
    }
    io.out(out.join('\n\n'));
    return 0;
  } finally {
    client.close();
  }
}

/** The DeleteOptions kubectl sends for --grace-period, --now, --force and --cascade, with its rules. */
export function deleteOptionsOf(a: ParsedArgs): DeleteOptions {
  const graceText = stringFlag(a, 'grace-period');
  if (graceText !== undefined && !/^-?\d+$/.test(graceText)) throw new UsageError(`--grace-period must be a whole number of seconds, got "${graceText}"`);
  // Negative means the object's own grace period, as in kubectl.
  let grace = graceText === undefined || Number(graceText) < 0 ? undefined : Number(graceText);
  const force = boolFlag(a, 'force');
  if (boolFlag(a, 'now')) {
    if (graceText !== undefined) throw new UsageError('--now and --grace-period cannot be specified together');
    grace = 1;
  }
  // Only --force deletes without waiting for the containers to stop; --grace-period=0 alone means 1 second.
  if (grace === 0 && !force) grace = 1;
  if (force && grace === undefined) grace = 0;
  const cascade = stringFlag(a, 'cascade') ?? 'background';
  const policies: Record<string, DeletionPropagation> = { background: 'Background', foreground: 'Foreground', orphan: 'Orphan', true: 'Background', false: 'Orphan' };
  const propagationPolicy = policies[cascade];
  if (!propagationPolicy) throw new UsageError(`invalid cascade value (${cascade}). Must be "background", "foreground", or "orphan".`);
  return { kind: 'DeleteOptions', apiVersion: 'v1', propagationPolicy, ...(grace !== undefined ? { gracePeriodSeconds: grace } : {}) };
}

async function remove(a: ParsedArgs, io: Io, signal: AbortSignal): Promise<number> {
  const files = listFlag(a, 'filename');
  const ignoreMissing = boolFlag(a, 'ignore-not-found');
  const options = deleteOptionsOf(a);
  const forced = options.gracePeriodSeconds === 0;
  const wait = a.flags.wait !== false;
  const timeoutText = stringFlag(a, 'timeout');
  const timeoutMs = (timeoutText === undefined ? 0 : parseDuration(timeoutText, 'timeout')) || DELETE_WAIT_MS;
  const targets: { r: ResourceInfo; namespace: string | undefined; name: string; source?: string }[] = [];
  const client = clientFor(a, io);
  try {
    if (files.length > 0) {
      if (a.positionals.length > 0) throw new UsageError('give either -f or TYPE NAME, not both');
      const ns = stringFlag(a, 'namespace');
      for (const m of readManifests(files, { readStdin: io.readStdin, recursive: boolFlag(a, 'recursive'), ...(ns ? { namespace: ns } : {}) })) {
        targets.push({ r: m.resource, namespace: m.resource.namespaced ? m.object.metadata.namespace ?? 'default' : undefined, name: m.name, source: m.source });
      }
    } else {
      const [typeArg, ...names] = a.positionals;
      const r = resourceArg(typeArg);
      if (names.length === 0 && !stringFlag(a, 'selector')) throw new UsageError('name the objects to delete, or select them with -l');
      if (names.length > 0) for (const name of names) targets.push({ r, namespace: r.namespaced ? namespaceOf(a) : undefined, name });
      else {
        for (const o of (await client.request<{ items: KubeObject[] }>('GET', listPath(r, a))).items) {
          targets.push({ r, namespace: o.metadata.namespace, name: o.metadata.name ?? '' });
        }
        if (targets.length === 0) io.err('No resources found\n');
      }
    }
    if (forced && targets.length > 0) io.err('Warning: Immediate deletion does not wait for confirmation that the running resource has been terminated. The resource may continue to run on the cluster indefinitely.\n');
    let failed = 0;
    const deleted: { path: string; what: string; uid: string | undefined }[] = [];
    for (const wave of inWaves(targets, (t) => t.r, false)) await inParallel(wave, BULK_REQUESTS, (t) => deleteObject(client, apiPath(t.r, t.namespace, t.name), options), (t, outcome) => {
      if (outcome.ok) {
        io.out(`${qualifiedName(t.r, t.name)} ${forced ? 'force deleted' : 'deleted'}\n`);
        // An object answered without deletionTimestamp was removed at once: there is nothing to wait for.
        if (outcome.value.metadata?.deletionTimestamp !== undefined) deleted.push({ path: apiPath(t.r, t.namespace, t.name), what: `${t.r.plural}/${t.name}`, uid: outcome.value.metadata?.uid });
        return;
      }
      const err = outcome.error;
      if (!(err instanceof ApiClientError) || err.code === 0) throw err;
      if (err.code === 404 && ignoreMissing) return;
      failed++;
      io.err(`${t.source ? `${t.source}: ` : ''}${err.message}\n`);
    });
    if (wait) failed += await waitUntilGone(client, deleted, Date.now() + timeoutMs, io, signal);
    return failed > 0 ? 1 : 0;
  } finally {
    client.close();
  }
}

async function scale(a: ParsedArgs, io: Io): Promise<number> {
  const replicasText = stringFlag(a, 'replicas');
  if (replicasText === undefined || !/^\d+$/.test(replicasText)) throw new UsageError(`--replicas must be a non-negative integer${replicasText === undefined ? '' : `, got "${replicasText}"`}`);
  const [first, second] = a.positionals;
  const [typeArg, name] = first?.includes('/') ? first.split('/', 2) : [first, second];
  const r = resourceArg(typeArg);
  if (!r.subresources.includes('scale')) throw new UsageError(`${r.plural} cannot be scaled`);
  if (!name) throw new UsageError('name the object to scale (TYPE/NAME)');
  const client = clientFor(a, io);
  try {
    await client.request('PATCH', `${apiPath(r, namespaceOf(a), name)}/scale`, { spec: { replicas: Number(replicasText) } }, { contentType: 'application/merge-patch+json' });
    io.out(`${qualifiedName(r, name)} scaled\n`);
    return 0;
  } finally {
    client.close();
  }
}

interface ClusterStatusView {
  clusterId: string; leader: number; term: number; commitIndex: number; appliedIndex: number;
  members: { id: number; peerUrl?: string; role: string; matchIndex?: number; healthy?: boolean }[];
}

async function cluster(a: ParsedArgs, io: Io): Promise<number> {
  const [sub, id] = a.positionals;
  const client = clientFor(a, io);
  try {
    if (sub === 'status') {
      const st = await client.request<ClusterStatusView>('GET', '/cluster/status');
      if (stringFlag(a, 'output') === 'json') { io.out(`${JSON.stringify(st, null, 2)}\n`); return 0; }
      io.out(`Cluster ${st.clusterId}: leader ${st.leader || '<none>'}, term ${st.term}, commit index ${st.commitIndex}\n\n`);
      io.out(renderTable(['MEMBER', 'ROLE', 'LEADER', 'MATCH', 'HEALTHY', 'URL'], st.members.map((m) => [
        String(m.id), m.role, m.id === st.leader ? '*' : '', m.matchIndex === undefined ? '?' : String(m.matchIndex),
        m.healthy === undefined ? '?' : m.healthy ? 'yes' : 'no', m.peerUrl ?? '<unknown>',
      ])));
      return 0;
    }
    if (sub === 'remove') {
      if (!id || !/^\d+$/.test(id)) throw new UsageError('cluster remove needs the numeric member id (see flotilla cluster status)');
      await client.request('POST', `/cluster/v1/members/${id}/remove`, {});
      io.out(`member ${id} removed\n`);
      return 0;
    }
    if (sub === 'transfer') {
      if (!id || !/^\d+$/.test(id)) throw new UsageError('cluster transfer needs the numeric member id to lead (see flotilla cluster status)');
      await client.request('POST', '/cluster/v1/leader', { id: Number(id) });
      io.out(`member ${id} is the leader\n`);
      return 0;
    }
    throw new UsageError(`unknown cluster subcommand "${sub ?? ''}" (status, remove, transfer)`);
  } finally {
    client.close();
  }
}

async function backup(a: ParsedArgs, io: Io): Promise<number> {
  const [file, ...extra] = a.positionals;
  if (!file || extra.length > 0) throw new UsageError('name one file to write the backup to');
  const client = clientFor(a, io);
  const partial = `${file}.partial`;
  try {
    const headers = await client.download('/cluster/v1/backup', createWriteStream(partial, { mode: 0o600 }));
    renameSync(partial, file);
    io.out(`backup of revision ${String(headers['x-flotilla-revision'] ?? '?')} written to ${file}\n`
      + `Its Secrets are encrypted: keep the ${ENCRYPTION_CONFIG_FILE} of a server's data dir with it, apart from it, and restore with flotilla restore --encryption-config FILE\n`);
    return 0;
  } catch (err) {
    rmSync(partial, { force: true });
    throw err;
  } finally {
    client.close();
  }
}

async function restore(a: ParsedArgs, io: Io): Promise<number> {
  const [source, ...extra] = a.positionals;
  const data = stringFlag(a, 'data');
  if (!source || extra.length > 0 || !data) throw new UsageError('give --data NEW_DIR and one backup file or old data dir');
  const { restoreDataDir } = await import('../server/cluster/backup.js');
  let result: ReturnType<typeof restoreDataDir>;
  try {
    const keys = stringFlag(a, 'encryption-config');
    result = restoreDataDir(resolve(source), resolve(data), keys === undefined ? undefined : resolve(keys));
  } catch (err) {
    io.err(`flotilla restore: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  io.out(`restored revision ${result.revision} into ${resolve(data)} as the new cluster ${result.identity.clusterId}\nStart it with: flotilla server --data ${data} --listen HOST:PORT (admin token: ${join(resolve(data), 'admin-token')})\n`);
  return 0;
}

async function version(a: ParsedArgs, io: Io): Promise<number> {
  io.out(`Client Version: v${CLIENT_VERSION}\n`);
  if (boolFlag(a, 'client')) return 0;
  const client = clientFor(a, io);
  try {
    const v = await client.request<{ gitVersion: string; platform: string; flotilla: string }>('GET', '/version');
    io.out(`Server Version: v${v.flotilla} (Kubernetes API ${v.gitVersion}, ${v.platform})\n`);
    return 0;
  } finally {
    client.close();
  }
}
