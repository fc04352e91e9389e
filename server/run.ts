import { mkdirSync, existsSync, readFileSync, readdirSync, renameSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { Context } from 'hono';
import { serve, type HttpBindings } from '@hono/node-server';
import pino, { type Logger } from 'pino';
import { createApp } from './api/app.js';
import type { ReadinessCheck } from './api/app.js';
import { SERVER_GROUP, identity, serverCertificateIdentity, type Identity } from './api/middleware/auth.js';
import { SqliteStore } from './store/sqlite-store.js';
import { DataCorruptionError } from './store/sqlite-check.js';
import { MEMBERS_RESOURCE, ObjectService, TOKENS_SECRET, resourceKey } from './objects/service.js';
import { DEFAULT_ADDRESS_POOL, LB_SPEAKER_LEASE_NAMESPACE, NETWORK_SETTINGS_CONFIGMAP, SYSTEM_PRIORITY_CLASSES, networkSettingsData, parseNetworkSettings, resourceFor, resourceOfKind, ANNOTATION_DEFAULT_INGRESS_CLASS, DEFAULT_INGRESS_CLASS, INGRESS_CONTROLLER, ANNOTATION_DEFAULT_STORAGE_CLASS, LOCAL_PATH_PROVISIONER, LOCAL_PATH_STORAGE_CLASS, DEFAULT_SERVICE_ACCOUNT } from '../api-types/index.js';
import type { NetworkSettings } from '../api-types/index.js';
import { StoreError } from './store/types.js';
import type { StateStore, StoredObject } from './store/types.js';
import { ClusterMember, MEMBER_FILES } from './cluster/cluster.js';
import { STATE_FILE } from './cluster/backup.js';
import { adminTokenSuperseded, newBearerToken, storeAdminToken, storeTokenAuthenticator } from './tokens/api-tokens.js';
import { heartbeatRoutes } from './api/routes/node-leases.js';
import { NodeHeartbeats } from './cluster/node-heartbeats.js';
import { agentCaller, agentProxy } from './api/routes/agent-proxy.js';
import { nodeImageRoutes } from './api/routes/node-images.js';
import { nodeCertificateRoutes } from './api/routes/node-certificates.js';
import { nodeCertificateIdentity } from './tokens/node-certificates.js';
import { createMdnsDiscovery } from '../discovery/mdns.js';
import type { Advertisement } from '../discovery/advertisement.js';
import { joinTokenRoutes } from './api/routes/join-tokens.js';
import { userTokenRoutes } from './api/routes/user-tokens.js';
import { publicRoutesFirst } from './api/routes/public.js';
import { clusterCaFor, planJoin, serverAdvertisement } from './join/server-membership.js';
import { metricsRoutes, USAGE_REPORT_PATH } from './api/routes/metrics.js';
import { InMemoryMetrics } from './controllers/pod-metrics.js';
import { defaultControllerSettings, type ControllerSettings } from './controllers/controller.js';
import { ensureNamespaceAccounts } from './controllers/serviceaccount.js';
import { ServiceAccountTokens } from './tokens/service-account-tokens.js';
import { authenticateServiceAccountToken } from './tokens/token-requests.js';
import { runLeaderWork } from './cluster/leader-work.js';
import { repairAllocations } from './network/repair.js';
import { networkSettingsUnchanged } from './network/settings-check.js';
import { admitNodeKey } from './tokens/node-identity.js';
import { backupRoutes } from './api/routes/backup.js';
import { createJoinToken, joinTokenRecord } from './tokens/join-tokens.js';
import { certificateSha256, isJoinToken, joinTokenId } from '../discovery/locate.js';
import { formatClusterToken, SERVER_CREDENTIAL_PREFIX } from '../client/tokens.js';
import type { ClientTls } from '../client/client.js';
import type { IssuedCertificate } from './pki/ca.js';
import { ensureServingCertificate, servingAltNames } from './pki/serving.js';
import { BOOTSTRAP_CLUSTER_ROLES, BOOTSTRAP_CLUSTER_ROLE_BINDINGS } from './auth/bootstrap-policy.js';
import { RBAC_RESOURCES } from './auth/rbac.js';
import { DEFAULT_SERVING_LIMITS, httpServerOptions, type ServingLimits } from './api/serving-limits.js';
import { SealedState, SealingProposer, SecretSealer } from './secrets/secret-sealing.js';
import { AuditLogFile, DEFAULT_AUDIT_POLICY, parseAuditPolicy, type AuditOptions } from './api/middleware/audit.js';
import { encryptionKeysFor, secretsEncryptRoutes } from './secrets/secrets-encrypt.js';
import { encryptionConfiguration, loadEncryptionKeys } from './secrets/encryption-config.js';

export const FLOTILLA_VERSION = '0.1.0';
/** The Kubernetes API release whose objects and behaviour this server serves: /version's gitVersion (kubectl checks its skew against it). */
export const KUBERNETES_API_VERSION = '1.32.0';

export interface ServerConfig {
  /** Holds state.db, raft.db, cluster.json, cluster-secret and (first member) admin-token; created when missing. */
  dataDir: string;
  host: string;
  /** 0 picks a free port (tests). */
  port: number;
  /** URL other members use for this one; default https://HOST:PORT. */
  advertiseUrl?: string;
  /**
   * Join the cluster that this member URL belongs to, presenting `token`: the server token that a member printed
   * (client/tokens.ts: the CA hash and the cluster secret); "auto" finds it by mDNS (server/join/auto-join.ts).
   * A server given a token only joins, unless `clusterInit`, where `token` may be a bare secret (see planJoin).
   */
  join?: string;
  token?: string;
  /** Form a new cluster (with `token` as its secret, if given); with join "auto", together with the others started so. */
  clusterInit?: boolean;
  /** How long --join auto without clusterInit looks for its cluster before the server fails (default 30 000 ms). */
  autoJoinTimeoutMs?: number;
  /** mDNS: advertise this server and, with join "auto", find the others (default: on unless the advertised URL is loopback). */
  mdns?: boolean;
  /** Interface name or IPv4 address mDNS runs on (default every IPv4 interface). */
  interface?: string;
  /** How long --join auto candidates wait for the candidate set to settle (default 3 000 ms). */
  autoJoinSettleMs?: number;
  maxBodyBytes?: number;
  /** In-flight limits, watch caps, request and socket timeouts (defaults: DEFAULT_SERVING_LIMITS). */
  servingLimits?: Partial<ServingLimits>;
  /** Raft tick; elections take 10 to 20 ticks. */
  tickMs?: number;
  /** Entries between state-machine snapshots. */
  snapshotEvery?: number;
  /** Node grace period, eviction delay and autoscaler timings (defaults in server/controllers/controller.ts). */
  controllers?: Partial<ControllerSettings>;
  /** Where the server logs (structured, pino); silent when not given. */
  log?: Logger;
  /** Give ServerInfo.localAgentToken: `flotilla up` runs an agent beside this server. */
  localAgentToken?: boolean;
  /**
   * Internal, undocumented, reachable from no CLI flag: 'http-for-benchmarks' serves the API and talks to peers
   * over plain HTTP. It exists only so that bench/api-storm.ts and bench/store.ts can measure what TLS costs
   * against the same build; every real server is 'https' (the default).
   */
  transport?: 'https' | 'http-for-benchmarks';
  /**
   * The network settings a new cluster publishes (ConfigMap kube-system/flotilla-network; default
   * api-types/network.ts). A cluster keeps the settings it was made with: a later leader given others says so in
   * its log and leaves them.
   */
  network?: NetworkSettings;
  /**
   * The ranges of the AddressPool `default` (LoadBalancer addresses), written by every leader at its start:
   * the flag decides that pool, other pools are objects.
   */
  loadBalancerPool?: string[];
  /**
   * The audit log (kube-apiserver's --audit-log-path, --audit-log-maxsize in MB, --audit-log-maxbackup,
   * --audit-policy-file): path "-" writes to standard output. No policy file: every request at Metadata.
   */
  audit?: { path: string; maxSizeMb?: number; maxBackups?: number; policyFile?: string };
}

export interface ServerInfo {
  /** https://HOST:PORT, verified against the cluster CA (caPem). */
  url: string;
  /** The cluster CA certificate (PEM) and its hash, which tokens pin. */
  caPem: string;
  caHash: string;
  /** The full token other servers join with (client/tokens.ts: FLT1<ca hash>::server:<cluster secret>). */
  serverToken: string;
  /**
   * The admin token and its file; only the member that created the cluster has them. `adminToken` is left out
   * when the file no longer holds the cluster's admin token (rotated or revoked since it was written).
   */
  adminToken?: string;
  adminTokenPath?: string;
  clusterId: string;
  memberId: number;
  /**
   * A join token (node role) for the agent running beside this server, when asked for (ServerConfig
   * localAgentToken): made once and kept in <data>/local-agent-token, made again if it was revoked.
   */
  localAgentToken?: string;
}

/** How often a running server checks whether its serving certificate is due for renewal. */
const SERVING_RENEWAL_CHECK_MS = 3_600_000;

/** Namespaces that exist in every cluster, as in Kubernetes. */
const BOOTSTRAP_NAMESPACES = ['default', 'kube-system', 'kube-node-lease'];

/**
 * Runs one API server (a Raft member) until `signal` aborts; resolves after it closed, rejects on a start-up
 * error. `onReady` is called once it listens and is ready (see `readiness`: /readyz answers 200 from then on,
 * barring a lost leader).
 */
export async function run(signal: AbortSignal, config: ServerConfig, onReady?: (info: ServerInfo) => void): Promise<void> {
  const log = config.log ?? pino({ level: 'silent' });
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  ownerOnly(config.dataDir);
  // The Raft log is the durable record; the state machine can lag it across a power cut and catch up from it.
  const statePath = join(config.dataDir, STATE_FILE);
  setAsideDamagedState(statePath, join(config.dataDir, MEMBER_FILES.log), log);
  const store = new SqliteStore({ path: statePath, synchronous: 'NORMAL' });
  const secure = (config.transport ?? 'https') === 'https';
  let handler: (req: Request, env: HttpBindings) => Response | Promise<Response> = () => new Response('starting', { status: 503 });
  const servingLimits = { ...DEFAULT_SERVING_LIMITS, ...config.servingLimits };
  // Until the serving certificate is in place (after the join), TLS handshakes fail: nothing is served before.
  // Client certificates are asked for and checked against the CA, but optional: the auth middleware decides.
  const server = serve({
    // serve() makes an http(s).Server here, never an http2 one: the bindings are node's IncomingMessage.
    fetch: (req, env) => handler(req, env as HttpBindings), hostname: config.host, port: config.port,
    createServer: secure ? https.createServer : http.createServer,
    serverOptions: { ...httpServerOptions(servingLimits), ...(secure ? { requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' as const } : {}) },
  });
  let renewal: NodeJS.Timeout | undefined;
  const auditLog = config.audit && openAuditLog(config.audit);
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('listening', resolve);
      server.once('error', reject);
    });
    const port = (server.address() as AddressInfo).port;
    const url = `${secure ? 'https' : 'http'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
    const advertiseUrl = config.advertiseUrl ?? url;
    // A loopback URL means nothing to other machines: mDNS stays off for it unless asked for.
    const mdns = config.mdns ?? !isLoopbackUrl(advertiseUrl);
    const discovery = !mdns ? undefined : createMdnsDiscovery({ ...(config.interface ? { interface: config.interface } : {}), onWarning: (m) => log.warn({ component: 'mdns' }, m) });
    const plan = await planJoin({
      dataDir: config.dataDir, apiUrl: advertiseUrl, log: (m) => log.info({ component: 'join' }, m),
      ...(config.join ? { join: config.join } : {}), ...(config.token ? { token: config.token } : {}),
      ...(discovery ? { discovery } : {}), ...(config.autoJoinSettleMs !== undefined ? { settleMs: config.autoJoinSettleMs } : {}),
      ...(config.clusterInit ? { clusterInit: true } : {}), ...(config.autoJoinTimeoutMs !== undefined ? { joinTimeoutMs: config.autoJoinTimeoutMs } : {}),
    }, signal);
    const ca = await clusterCaFor(config.dataDir, plan, signal);
    const sealer = new SecretSealer(await encryptionKeysFor(config.dataDir, plan, ca.certPem, signal));
    // Everything but the Raft member reads the state through `state` (Secrets opened) and writes through `proposer` (Secrets sealed).
    const state = new SealedState(store, sealer);
    let serving: IssuedCertificate | undefined;
    let servingSha256: string | undefined;
    const peerTls: ClientTls = { ca: ca.certPem, identity: () => serving };
    const cluster = await ClusterMember.open({
      dataDir: config.dataDir, advertiseUrl, peerTls, ...(secure ? {} : { plainHttpForBenchmarks: true }),
      ...(plan.join ? { join: plan.join } : {}), ...(plan.secret ? { secret: plan.secret } : {}),
      ...(config.tickMs ? { tickMs: config.tickMs } : {}), ...(config.snapshotEvery ? { snapshotEvery: config.snapshotEvery } : {}),
    }, store);
    // The names are looked up again at each check: a machine listening on every address may get new ones.
    const useServing = async () => {
      const next = await ensureServingCertificate(config.dataDir, ca, cluster.identity.memberId, servingAltNames(config.host, [url, advertiseUrl]));
      if (next.certPem === serving?.certPem) return;
      serving = next;
      servingSha256 = certificateSha256(next.certPem);
      if (server instanceof https.Server) server.setSecureContext({ key: next.keyPem, cert: next.certPem, ca: ca.certPem, minVersion: 'TLSv1.2' });
    };
    await useServing();
    // The files made since the start (the Raft log, the keys, the CA, snapshots) are the owner's alone too.
    ownerOnly(config.dataDir);
    // Renewed while running once less than a third of its life is left (ensureServingCertificate decides).
    renewal = setInterval(() => useServing().catch((err: unknown) => log.error({ err }, 'renewing the serving certificate failed')), SERVING_RENEWAL_CHECK_MS);
    renewal.unref();
    const admin = cluster.created || existsSync(join(config.dataDir, 'admin-token')) ? ensureAdminToken(config.dataDir) : undefined;
    const objects = new ObjectService(state, new SealingProposer(cluster.member, sealer), () => new Date(), [
      (r, stored, incoming) => { if (r.group === '' && r.plural === 'nodes') admitNodeKey(stored, incoming); },
      networkSettingsUnchanged,
    ]);
    const tokenAuth = storeTokenAuthenticator(state);
    const serviceAccountTokens = ServiceAccountTokens.fromClusterCa(ca.keyPem);
    const serviceAccountAuth = (token: string): Identity | undefined => {
      const user = authenticateServiceAccountToken(objects, serviceAccountTokens, token, Date.now());
      return user ? identity(user.name, user.groups) : undefined;
    };
    const nodeAuth = nodeCertificateIdentity(state, ca.certPem);
    const identityOf = (c: Context) => c.get('identity' as never) as Identity | undefined;
    const heartbeats = new NodeHeartbeats();
    const lbSpeakers = new NodeHeartbeats(Date.now, LB_SPEAKER_LEASE_NAMESPACE);
    const metrics = new InMemoryMetrics();
    // Heartbeats and usage reports live in memory on the leader: a follower passes each one on.
    const toLeader = (path: string, body: unknown) => {
      if (cluster.leading) return;
      const leaderUrl = cluster.peerUrl(cluster.member.leader);
      if (!leaderUrl) return;
      cluster.peerFetch(`${leaderUrl}${path}`, {
        method: 'PUT', headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body), signal: AbortSignal.timeout(2000),
      }).then((r) => r.body?.cancel(), () => { /* the next report goes through */ });
    };
    // Agents are called with this member's own certificate (O flotilla:servers), the one it serves with.
    const callAgent = agentCaller(objects, () => {
      if (!serving) throw new Error('no serving certificate yet');
      return { ca: ca.certPem, certPem: serving.certPem, keyPem: serving.keyPem };
    });
    const app = createApp({
      log,
      objects,
      readBarrier: () => cluster.member.readBarrier(),
      podProxy: agentProxy(callAgent),
      serviceAccountTokens,
      // Members are known by their server certificates, nodes by their node certificates (while their name is
      // bound to the certificate's key); the cluster secret authenticates only joins (joinRoutes), except over
      // the benchmark-only plain HTTP, where no certificate travels.
      authenticate: ({ token, certificate }) => (certificate ? serverCertificateIdentity(certificate) ?? nodeAuth(certificate) : undefined)
        ?? (!secure && token !== undefined && cluster.isClusterSecret(token) ? identity('flotilla:server:plain-http-benchmark', [SERVER_GROUP]) : undefined)
        ?? (token !== undefined ? tokenAuth(token) ?? serviceAccountAuth(token) : undefined),
      version: { flotilla: FLOTILLA_VERSION, gitVersion: `v${KUBERNETES_API_VERSION}+flotilla-${FLOTILLA_VERSION}` },
      readiness: () => readiness(cluster, store, signal),
      extraRoutes: [
        cluster.routes(identityOf),
        backupRoutes(store, () => cluster.member.readBarrier()),
        joinTokenRoutes({ store: state, objects, caHash: ca.hash }),
        userTokenRoutes({ store: state, objects, clusterId: cluster.identity.clusterId }),
        secretsEncryptRoutes({
          dataDir: config.dataDir, sealer, store, objects, readBarrier: () => cluster.member.readBarrier(), identityOf, peerFetch: cluster.peerFetch,
          peers: () => {
            const conf = cluster.member.node.status().confState;
            return [...conf.voters, ...conf.learners].filter((id) => id !== cluster.identity.memberId).map((id) => cluster.peerUrl(id)).filter((u): u is string => u !== undefined);
          },
        }),
        nodeCertificateRoutes({ objects, ca, identityOf }),
        nodeImageRoutes({ callAgent }),
        heartbeatRoutes(heartbeats, (node, holder, durationS) => toLeader(`/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${encodeURIComponent(node)}`, { spec: { holderIdentity: holder, leaseDurationSeconds: durationS } }),
          Math.max(1, Math.floor((config.controllers?.nodeGracePeriodMs ?? defaultControllerSettings.nodeGracePeriodMs) / 1000))),
        heartbeatRoutes(lbSpeakers, (node, holder, durationS) => toLeader(`/apis/coordination.k8s.io/v1/namespaces/${LB_SPEAKER_LEASE_NAMESPACE}/leases/${encodeURIComponent(node)}`, { spec: { holderIdentity: holder, leaseDurationSeconds: durationS } }),
          undefined, LB_SPEAKER_LEASE_NAMESPACE),
        metricsRoutes(metrics, (node, report) => toLeader(USAGE_REPORT_PATH.replace(':node', encodeURIComponent(node)), report)),
      ],
      ...(config.maxBodyBytes ? { maxBodyBytes: config.maxBodyBytes } : {}),
      servingLimits,
      ...(auditLog ? { audit: auditLog.options } : {}),
    });
    let advertised: Advertisement | undefined;
    handler = publicRoutesFirst({
      clusterId: cluster.identity.clusterId, clusterSecret: cluster.secret, ca, servingCertSha256: () => servingSha256,
      advertisement: () => advertised, joinRoutes: cluster.joinRoutes(objects, ca, () => encryptionConfiguration(loadEncryptionKeys(config.dataDir) ?? [])),
    }, app.fetch);
    let leaderWork: AbortController | undefined;
    cluster.onLeadership((leading) => {
      leaderWork?.abort();
      leaderWork = undefined;
      if (!leading) return;
      leaderWork = new AbortController();
      const work = leaderWork.signal;
      void bootstrap(objects, cluster, admin, config.network ?? parseNetworkSettings(undefined), ca.certPem, log)
        .then(() => (config.loadBalancerPool ? keepDefaultAddressPool(objects, config.loadBalancerPool, log) : undefined))
        .then(() => repairAllocations(objects, log))
        .then(() => runLeaderWork(work, { objects, heartbeats, lbSpeakers, metrics, clusterCaPem: ca.certPem, ...(config.controllers ? { controllerSettings: config.controllers } : {}), log }))
        .catch((err: unknown) => log.error({ err }, 'leader bootstrap failed'));
    });
    signal.addEventListener('abort', () => leaderWork?.abort(), { once: true });
    const running = cluster.run(signal);
    await waitForLeader(cluster, signal);
    advertised = serverAdvertisement(cluster.identity.clusterId, cluster.identity.memberId, advertiseUrl, ca.hash);
    const advertising = discovery?.advertise(advertised, signal).catch((err: unknown) => log.warn({ err }, 'mdns: not advertising'));
    await plan.withdrawCandidacy?.();
    await waitFor(async () => (await readiness(cluster, store, signal)).every((k) => k.failure === undefined), signal);
    const localAgentToken = config.localAgentToken && !signal.aborted ? await ensureLocalAgentToken(config.dataDir, state, objects) : undefined;
    if (!signal.aborted) {
      onReady?.({
        url, caPem: ca.certPem, caHash: ca.hash, serverToken: formatClusterToken(ca.hash, `${SERVER_CREDENTIAL_PREFIX}${cluster.secret}`), clusterId: cluster.identity.clusterId, memberId: cluster.identity.memberId,
        ...(admin ? { adminTokenPath: admin.path, ...(adminTokenSuperseded(state, admin.token, cluster.identity.clusterId) ? {} : { adminToken: admin.token }) } : {}),
        ...(localAgentToken ? { localAgentToken } : {}),
      });
    }
    await running;
    await advertising;
  } finally {
    clearInterval(renewal);
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      // Open watch streams would hold close() forever.
      if ('closeAllConnections' in server) server.closeAllConnections();
    });
    store.close();
    auditLog?.close();
  }
}

/** The audit log's policy and file (or standard output) as ServerConfig.audit says. */
function openAuditLog(audit: NonNullable<ServerConfig['audit']>): { options: AuditOptions; close: () => void } {
  const policy = audit.policyFile ? parseAuditPolicy(readFileSync(audit.policyFile, 'utf8'), audit.policyFile) : DEFAULT_AUDIT_POLICY;
  if (audit.path === '-') return { options: { policy, sink: { write: (line) => process.stdout.write(`${line}\n`) } }, close: () => {} };
  // As kube-apiserver's (lumberjack's): a maximum size of 0 (or none) means 100 MB.
  const file = new AuditLogFile(audit.path, (audit.maxSizeMb || 100) * 1024 * 1024, audit.maxBackups ?? 0);
  return { options: { policy, sink: file }, close: () => file.close() };
}

/**
 * The state is what the Raft log made it: a damaged state file (sqlite-check.ts, SqliteStore.damage) is moved
 * aside (kept as state.db.damaged-<time>, with its WAL) and rebuilt from the last snapshot and the log when the
 * member opens (cluster.ts checkAgainstLog). Without a Raft log there is nothing to rebuild from: refused.
 */
function setAsideDamagedState(statePath: string, logPath: string, log: Logger): void {
  const damage = SqliteStore.damage(statePath);
  if (!damage) return;
  if (!existsSync(logPath)) throw new DataCorruptionError(damage.file, damage.what, 'There is no Raft log to rebuild it from: restore a backup (flotilla restore --data NEW_DIR BACKUP_FILE)');
  const aside = `${statePath}.damaged-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  for (const suffix of ['', '-wal', '-shm']) if (existsSync(`${statePath}${suffix}`)) renameSync(`${statePath}${suffix}`, `${aside}${suffix}`);
  log.error({ file: damage.file, damage: damage.what, movedTo: aside }, 'the state database is damaged: it is rebuilt from the last snapshot and the Raft log');
}

/**
 * Makes `dir` and everything in it the owner's alone (directories 0700, files 0600) whatever the umask or the
 * mode it was made with: it holds the state, the log, keys and tokens. Files made later sit in these directories.
 */
function ownerOnly(dir: string): void {
  chmodSync(dir, 0o700);
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) ownerOnly(path);
    else if (entry.isFile()) chmodSync(path, 0o600);
  }
}

/** Reads `<data>/admin-token`, creating it (mode 0600) at first start. */
export function ensureAdminToken(dataDir: string): { token: string; path: string } {
  const path = join(dataDir, 'admin-token');
  if (existsSync(path)) {
    const token = readFileSync(path, 'utf8').trim();
    if (token.length >= 16) return { token, path };
    throw new Error(`${path} holds no usable token (at least 16 characters); remove it to have a new one made`);
  }
  const token = newBearerToken();
  writeFileSync(path, `${token}\n`, { mode: 0o600, flag: 'wx' });
  chmodSync(path, 0o600);
  return { token, path };
}

const namespaces = resourceFor('', 'v1', 'namespaces')!;
const configMaps = resourceOfKind('ConfigMap');
const priorityClasses = resourceFor('scheduling.k8s.io', 'v1', 'priorityclasses')!;
const PRIORITY_CLASSES = resourceKey(priorityClasses);
const ingressClasses = resourceOfKind('IngressClass');
const storageClasses = resourceOfKind('StorageClass');

/** The built-in default StorageClass, as k3s' local-path: a directory on the node the first consumer lands on. */
const LOCAL_PATH_CLASS: StoredObject = {
  apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass',
  metadata: { name: LOCAL_PATH_STORAGE_CLASS, annotations: { [ANNOTATION_DEFAULT_STORAGE_CLASS]: 'true' } },
  provisioner: LOCAL_PATH_PROVISIONER, reclaimPolicy: 'Delete', volumeBindingMode: 'WaitForFirstConsumer',
} as StoredObject;

/** The local agent's join token from <data>/local-agent-token while the cluster still knows it, else a new one (mode 0600). */
async function ensureLocalAgentToken(dataDir: string, store: StateStore, objects: ObjectService): Promise<string> {
  const path = join(dataDir, 'local-agent-token');
  const kept = existsSync(path) ? readFileSync(path, 'utf8').trim() : '';
  if (isJoinToken(kept) && joinTokenRecord(store, joinTokenId(kept)!)) return kept;
  const { token } = await createJoinToken(objects, { description: 'flotilla up: the local agent' }, Date.now());
  writeFileSync(path, `${token}\n`, { mode: 0o600 });
  chmodSync(path, 0o600);
  return token;
}

/** What a leader makes sure of: its own member record, the built-in namespaces, the admin token's digest (the
 * first time only: storeAdminToken), the built-in PriorityClasses, the default IngressClass and the local-path
 * StorageClass (when missing: a changed one is kept), the published network settings. /readyz waits
 * for all of them. */
async function bootstrap(objects: ObjectService, cluster: ClusterMember, admin: { token: string; path: string } | undefined, network: NetworkSettings, caPem: string, log: Logger): Promise<void> {
  await cluster.registerSelf(objects);
  for (const name of BOOTSTRAP_NAMESPACES) {
    await objects.ensureObject(namespaces, { apiVersion: 'v1', kind: 'Namespace', metadata: { name }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
    await ensureNamespaceAccounts(objects, name, caPem);
  }
  if (admin && !(await storeAdminToken(objects, admin.token, cluster.identity.clusterId, Date.now()))) {
    log.warn({ file: admin.path }, 'this file no longer holds the cluster\'s admin token (rotated or revoked): use the token from flotilla token rotate admin');
  }
  for (const { name, value, description } of SYSTEM_PRIORITY_CLASSES) {
    await objects.ensureObject(priorityClasses, { apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name }, value, description, globalDefault: false, preemptionPolicy: 'PreemptLowerPriority' });
  }
  await objects.ensureObject(ingressClasses, {
    apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass',
    metadata: { name: DEFAULT_INGRESS_CLASS, annotations: { [ANNOTATION_DEFAULT_INGRESS_CLASS]: 'true' } },
    spec: { controller: INGRESS_CONTROLLER },
  });
  await objects.ensureObject(storageClasses, LOCAL_PATH_CLASS);
  // The bootstrap RBAC policy, stored so that it is listed and can be read (a changed one is kept, as with
  // Kubernetes' autoupdate annotation set to "false"); it is in effect before that (server/auth/rbac.ts).
  for (const role of BOOTSTRAP_CLUSTER_ROLES) await objects.ensureObject(RBAC_RESOURCES.clusterRoles, role as StoredObject);
  for (const binding of BOOTSTRAP_CLUSTER_ROLE_BINDINGS) await objects.ensureObject(RBAC_RESOURCES.clusterRoleBindings, binding as StoredObject);
  const data = networkSettingsData(network);
  const { namespace, name } = NETWORK_SETTINGS_CONFIGMAP;
  const published = objects.get(configMaps, namespace, name)?.data;
  if (published === undefined) await objects.ensureObject(configMaps, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { namespace, name }, data });
  else if (Object.entries(data).some(([key, value]) => published[key] !== value)) {
    log.warn({ published, given: data }, `the cluster keeps the network settings it was made with (ConfigMap ${namespace}/${name}), not the ones given to this server`);
  }
}

/** The AddressPool `default` holds exactly the --load-balancer-pool ranges (refused ones are logged: the server still runs). */
async function keepDefaultAddressPool(objects: ObjectService, ranges: string[], log: Logger): Promise<void> {
  const pools = resourceOfKind('AddressPool');
  const current = objects.get(pools, undefined, DEFAULT_ADDRESS_POOL);
  try {
    if (!current) {
      await objects.create(pools, undefined, { apiVersion: 'flotilla.io/v1', kind: 'AddressPool', metadata: { name: DEFAULT_ADDRESS_POOL }, spec: { addresses: ranges } });
    } else if (JSON.stringify(current.spec.addresses) !== JSON.stringify(ranges)) {
      await objects.patch(pools, undefined, DEFAULT_ADDRESS_POOL, { spec: { addresses: ranges } });
    }
  } catch (err) {
    if (!(err instanceof StoreError && err.failure.code < 500)) throw err;
    log.error({ err: err.message }, `--load-balancer-pool: the AddressPool ${DEFAULT_ADDRESS_POOL} was refused`);
  }
}

function isLoopbackUrl(url: string): boolean {
  const host = new URL(url).hostname;
  return host === 'localhost' || host.startsWith('127.') || host === '[::1]';
}

/** A write of the Raft log (one transaction with its fsync) slower than this makes the member not ready until a faster one. */
const SLOW_LOG_WRITE_MS = 5_000;

/** How long /readyz waits for a linearizable read before it calls this member behind. */
const READY_READ_TIMEOUT_MS = 1_000;

/**
 * What /readyz checks. Ready must mean that an authenticated request is served: a leader is known; this member
 * has applied what the leader had committed when asked (a ReadIndex, as linearizable reads wait for), so a far
 * behind follower is not ready; its store holds the bootstrap (the built-in namespaces, the token digests that
 * authentication reads, its own member record); its storage works (no write or read threw, no damaged row was
 * read, the last log write did not stall); and it is not shutting down.
 */
async function readiness(cluster: ClusterMember, store: SqliteStore, signal: AbortSignal): Promise<ReadinessCheck[]> {
  const check = (name: string, failure: string | undefined): ReadinessCheck => ({ name, ...(failure !== undefined ? { failure } : {}) });
  const leader = cluster.member.leader !== 0;
  const caughtUp = !leader ? 'no leader to take the commit index from' : await cluster.member.readBarrier(READY_READ_TIMEOUT_MS).then(() => undefined, (err: unknown) =>
    (err instanceof StoreError && err.failure.code === 504 ? `no linearizable read within ${READY_READ_TIMEOUT_MS} ms (behind the leader's commit index, or no quorum)` : err instanceof Error ? err.message : String(err)));
  const missing = [
    ...BOOTSTRAP_NAMESPACES.filter((name) => !store.get('namespaces', '', name)).map((name) => `namespace ${name}`),
    ...BOOTSTRAP_NAMESPACES.filter((name) => !store.get('serviceaccounts', name, DEFAULT_SERVICE_ACCOUNT)).map((name) => `serviceaccount ${name}/${DEFAULT_SERVICE_ACCOUNT}`),
    ...(store.get('secrets', TOKENS_SECRET.namespace, TOKENS_SECRET.name) ? [] : [`secret ${TOKENS_SECRET.namespace}/${TOKENS_SECRET.name}`]),
    ...(store.get(MEMBERS_RESOURCE, '', String(cluster.identity.memberId)) ? [] : [`the record of member ${cluster.identity.memberId}`]),
    ...SYSTEM_PRIORITY_CLASSES.filter(({ name }) => !store.get(PRIORITY_CLASSES, '', name)).map(({ name }) => `PriorityClass ${name}`),
    ...(store.get('configmaps', NETWORK_SETTINGS_CONFIGMAP.namespace, NETWORK_SETTINGS_CONFIGMAP.name) ? [] : [`configmap ${NETWORK_SETTINGS_CONFIGMAP.namespace}/${NETWORK_SETTINGS_CONFIGMAP.name}`]),
  ];
  const writeMs = cluster.member.lastLogWriteMs;
  const storage = cluster.member.storageFailure ?? store.corruption?.message
    ?? (writeMs > SLOW_LOG_WRITE_MS ? `the last write of the Raft log took ${(writeMs / 1000).toFixed(1)} s (more than ${SLOW_LOG_WRITE_MS / 1000} s): the disk is stalling` : undefined);
  return [
    check('storage', storage),
    check('raft-leader', leader ? undefined : 'no Raft leader is known'),
    check('raft-applied', caughtUp),
    check('bootstrap', missing.length > 0 ? `not in the state yet: ${missing.join(', ')}` : undefined),
    check('shutdown', signal.aborted ? 'the server is shutting down' : undefined),
  ];
}

async function waitForLeader(cluster: ClusterMember, signal: AbortSignal): Promise<void> {
  await waitFor(() => cluster.member.leader !== 0, signal);
}

async function waitFor(cond: () => boolean | Promise<boolean>, signal: AbortSignal): Promise<void> {
  while (!(await cond())) {
    if (signal.aborted) return;
    await new Promise((r) => setTimeout(r, 20));
  }
}
