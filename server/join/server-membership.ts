// How server/run.ts finds its cluster and the cluster CA before opening its Raft member, and what it advertises
// afterwards.
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import type { Advertisement, Discovery } from '../../discovery/advertisement.js';
import { caFingerprint, isJoinToken, joinTokenId } from '../../discovery/locate.js';
import { fetchPinnedCa, isClusterToken, parseClusterToken, serverCredentialSecret } from '../../client/tokens.js';
import { pinnedFetch } from '../../client/client.js';
import { caHash } from '../../client/pki.js';
import { SERVER_TOKEN_HINT, autoJoin } from './auto-join.js';
import { CLUSTER_CA_PATH, MEMBER_FILES, checkClusterSecret } from '../cluster/cluster.js';
import { ClusterCa, PKI_DIR } from '../pki/ca.js';

export interface JoinPlan {
  /** The member URL to join through; absent: open the existing cluster in the data dir, or bootstrap one. */
  join?: string;
  /** With `join`: the hash of the CA the cluster must present (pinned by the server token, or proved with the secret). */
  caHash?: string;
  /** The cluster secret to join with, or to form the new cluster with (--cluster-init --token). */
  secret?: string;
  /** Set when this server won the --join auto election: end the candidacy once the cluster is advertised. */
  withdrawCandidacy?: () => Promise<void>;
}

export interface JoinOptions {
  /** A member URL, "auto" (mDNS, see auto-join.ts), or nothing. */
  join?: string;
  /** The --token given to the server: a server token (FLT1<CA hash>::server:<secret>), or a bare secret with --cluster-init. */
  token?: string;
  /** --cluster-init: this server may form a new cluster (alone, or with --join auto together with the others). */
  clusterInit?: boolean;
  dataDir: string;
  apiUrl: string;
  discovery?: Discovery;
  settleMs?: number;
  /** --join auto without --cluster-init: how long to look for the cluster before failing (default 30 s). */
  joinTimeoutMs?: number;
  log?: (message: string) => void;
}

/** The pinned CA hash and the secret of a --token, or the reason it cannot be used (see planJoin). */
function serverCredentials(token: string, clusterInit: boolean): { caHash?: string; secret: string } {
  const refuseJoinToken = (credential: string) => {
    throw new Error(`--token is an agent join token (flt1.${joinTokenId(credential)}.…): it registers agents, and a server can neither join nor form a cluster with it; ${SERVER_TOKEN_HINT}`);
  };
  if (isClusterToken(token)) {
    const { caHash, credential } = parseClusterToken(token);
    if (isJoinToken(credential)) refuseJoinToken(credential);
    const secret = serverCredentialSecret(credential);
    if (secret === undefined) throw new Error(`--token pins a CA but is no server token (its credential must start with "server:"); ${SERVER_TOKEN_HINT}`);
    if (clusterInit) throw new Error('--cluster-init forms a new cluster with a CA of its own, and this server token pins an existing cluster\'s CA: to join that cluster leave out --cluster-init; to form one together with others, give them all the same bare secret');
    return { caHash, secret };
  }
  if (isJoinToken(token)) refuseJoinToken(token);
  if (!clusterInit) throw new Error(`--token carries no cluster CA hash, and a server sends the cluster secret only to a server whose CA it checked first; ${SERVER_TOKEN_HINT}`);
  checkClusterSecret(token);
  return { secret: token };
}

/**
 * Decides whether this server resumes, joins or forms a cluster; rejects with the reason when it may do none.
 * In order:
 * 1. A data dir that already holds a member (cluster.json) resumes it, whatever the flags say.
 * 2. The token: an agent join token is refused (it registers agents); a server token (FLT1<CA hash>::server:S)
 *    joins the cluster whose CA it pins; a bare secret only forms (--cluster-init), and only a strong one.
 * 3. --join URL joins that member's cluster, and nothing else.
 * 4. --join auto joins the cluster found by mDNS that proves it holds the pinned CA (or, for a bare secret,
 *    the secret), and fails when none does in time. With --cluster-init the servers started that way form it
 *    together instead (see auto-join.ts).
 * 5. No --join: a new cluster is formed. A token without --join and without --cluster-init is refused: a server
 *    given a token only ever joins, and forming with a chosen secret is the explicit --cluster-init.
 */
export async function planJoin(options: JoinOptions, signal: AbortSignal): Promise<JoinPlan> {
  const log = options.log ?? (() => {});
  if (existsSync(join(options.dataDir, MEMBER_FILES.identity))) return {};
  if (options.join && options.join !== 'auto' && options.clusterInit) throw new Error('--cluster-init forms a new cluster and --join URL joins one: give one of them');
  if (options.token !== undefined && !options.join && !options.clusterInit) {
    throw new Error(`--token (or FLOTILLA_CLUSTER_SECRET) without --join: a server given a token only joins (--join URL or --join auto); to form a new cluster with this secret, add --cluster-init`);
  }
  const given = options.token === undefined ? undefined : serverCredentials(options.token, options.clusterInit ?? false);
  if (options.join && options.join !== 'auto') {
    if (!given?.caHash) throw new Error(`--join needs --token: ${SERVER_TOKEN_HINT}`);
    return { join: options.join, caHash: given.caHash, secret: given.secret };
  }
  if (options.join === 'auto') {
    if (!given) throw new Error(`--join auto needs --token: ${SERVER_TOKEN_HINT}`);
    if (!options.discovery) throw new Error('--join auto finds servers by mDNS, which is switched off (--no-mdns): give --join URL instead');
    log(options.clusterInit
      ? 'auto-join: joining the cluster of this secret, or forming it with the servers started with --cluster-init --join auto'
      : `auto-join: looking for the cluster of this token by mDNS (up to ${(options.joinTimeoutMs ?? 30_000) / 1000} s)`);
    const decision = await autoJoin({
      discovery: options.discovery, secret: given.secret, apiUrl: options.apiUrl, log,
      ...(given.caHash ? { caHash: given.caHash } : {}),
      ...(options.clusterInit ? { form: true } : {}),
      ...(options.settleMs !== undefined ? { settleMs: options.settleMs } : {}),
      ...(options.joinTimeoutMs !== undefined ? { joinTimeoutMs: options.joinTimeoutMs } : {}),
    }, signal);
    if (decision.action === 'join') {
      log(`auto-join: joining cluster ${decision.clusterId} through ${decision.url}`);
      return { join: decision.url, caHash: decision.caHash, secret: given.secret };
    }
    log('auto-join: lowest candidate, forming the cluster');
    return { secret: given.secret, withdrawCandidacy: decision.withdraw };
  }
  log(given ? 'forming a new cluster with the cluster secret given (--cluster-init)' : 'forming a new cluster (no --join given)');
  return given ? { secret: given.secret } : {};
}

/**
 * The cluster CA of this server, in `<data>/pki/`: kept from before; or, joining, received from the cluster
 * (receiveClusterCa) and saved; or, forming a cluster (or resuming one whose data dir has none, as after a
 * restore), made now and saved.
 */
export async function clusterCaFor(dataDir: string, plan: JoinPlan, signal: AbortSignal): Promise<ClusterCa> {
  const kept = await ClusterCa.load(dataDir);
  if (!plan.join) {
    if (kept) return kept;
    const ca = await ClusterCa.create(hostname());
    ca.save(dataDir);
    return ca;
  }
  if (kept) {
    if (kept.hash === plan.caHash) return kept;
    throw new Error(`${join(dataDir, PKI_DIR)} holds CA sha256:${kept.hash}, but the cluster to join has CA sha256:${plan.caHash}: remove that folder (this server is not a member yet) and start again`);
  }
  const ca = await receiveClusterCa(plan.join, plan.caHash!, plan.secret!, signal);
  ca.save(dataDir);
  return ca;
}

/**
 * Asks the member at `url` for the cluster CA (certificate and key), which every member holds: the CA it
 * presents at /cacerts is checked against `pinnedHash` first, then the secret goes out only over TLS verified
 * against that CA.
 */
export async function receiveClusterCa(url: string, pinnedHash: string, secret: string, signal: AbortSignal): Promise<ClusterCa> {
  const caPem = await fetchPinnedCa(url, pinnedHash, { signal });
  const fetch = pinnedFetch({ ca: caPem });
  try {
    const res = await fetch(new URL(CLUSTER_CA_PATH, url), { headers: { authorization: `Bearer ${secret}` }, signal: AbortSignal.any([signal, AbortSignal.timeout(15_000)]) });
    const text = await res.text();
    if (!res.ok) throw new Error(`receiving the cluster CA from ${url} failed with ${res.status}: ${text.slice(0, 300)}`);
    const { certPem, keyPem } = JSON.parse(text) as { certPem?: unknown; keyPem?: unknown };
    if (typeof certPem !== 'string' || typeof keyPem !== 'string' || caHash(certPem) !== pinnedHash) throw new Error(`${url} answered another CA than the one it presents`);
    return await ClusterCa.fromPem(certPem, keyPem);
  } finally {
    fetch.close();
  }
}

/** What a ready server advertises (over mDNS, and at /.well-known/flotilla for static discovery): the CA hash is public. */
export function serverAdvertisement(clusterId: string, memberId: number, apiUrl: string, clusterCaHash: string): Advertisement {
  return { clusterId, role: 'server', id: String(memberId), apiUrl, fingerprint: caFingerprint(clusterCaHash) };
}
