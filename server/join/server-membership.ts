// How server/run.ts finds its cluster before opening its Raft member, and what it advertises afterwards.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Advertisement, Discovery } from '../../discovery/advertisement.js';
import { clusterFingerprint, isJoinToken, proofTokenId } from '../../discovery/locate.js';
import { SERVER_TOKEN_HINT, autoJoin } from './auto-join.js';
import { MEMBER_FILES } from '../cluster/cluster.js';

export interface JoinPlan {
  /** The member URL to join through; absent: open the existing cluster in the data dir, or bootstrap one. */
  join?: string;
  /** Set when this server won the --join auto election: end the candidacy once the cluster is advertised. */
  withdrawCandidacy?: () => Promise<void>;
}

export interface JoinOptions {
  /** A member URL, "auto" (mDNS, see auto-join.ts), or nothing. */
  join?: string;
  /** The --token given to the server. */
  secret?: string;
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

/**
 * Decides whether this server resumes, joins or forms a cluster; rejects with the reason when it may do none.
 * In order:
 * 1. A data dir that already holds a member (cluster.json) resumes it, whatever the flags say.
 * 2. An agent join token (flt1.…) is refused: it registers agents; a server needs the cluster secret.
 * 3. --join URL joins that member's cluster, and nothing else.
 * 4. --join auto joins the cluster found by mDNS that proves it holds the secret, and fails when none does in
 *    time. With --cluster-init the servers started that way form it together instead (see auto-join.ts).
 * 5. No --join: a new cluster is formed. A token without --join and without --cluster-init is refused: a server
 *    given a token only ever joins, and forming with a chosen secret is the explicit --cluster-init.
 */
export async function planJoin(options: JoinOptions, signal: AbortSignal): Promise<JoinPlan> {
  const log = options.log ?? (() => {});
  if (existsSync(join(options.dataDir, MEMBER_FILES.identity))) return {};
  if (options.secret !== undefined && isJoinToken(options.secret)) {
    throw new Error(`--token is an agent join token (flt1.${proofTokenId(options.secret)}.…): it registers agents, and a server can neither join nor form a cluster with it; ${SERVER_TOKEN_HINT}`);
  }
  if (options.join && options.join !== 'auto') {
    if (options.clusterInit) throw new Error('--cluster-init forms a new cluster and --join URL joins one: give one of them');
    return { join: options.join };
  }
  if (options.join === 'auto') {
    if (!options.secret) throw new Error(`--join auto needs --token: ${SERVER_TOKEN_HINT}`);
    if (!options.discovery) throw new Error('--join auto finds servers by mDNS, which is switched off (--no-mdns): give --join URL instead');
    log(options.clusterInit
      ? 'auto-join: joining the cluster of this secret, or forming it with the servers started with --cluster-init --join auto'
      : `auto-join: looking for the cluster of this secret by mDNS (up to ${(options.joinTimeoutMs ?? 30_000) / 1000} s)`);
    const decision = await autoJoin({
      discovery: options.discovery, secret: options.secret, apiUrl: options.apiUrl, log,
      ...(options.clusterInit ? { form: true } : {}),
      ...(options.settleMs !== undefined ? { settleMs: options.settleMs } : {}),
      ...(options.joinTimeoutMs !== undefined ? { joinTimeoutMs: options.joinTimeoutMs } : {}),
    }, signal);
    if (decision.action === 'join') {
      log(`auto-join: joining cluster ${decision.clusterId} through ${decision.url}`);
      return { join: decision.url };
    }
    log('auto-join: lowest candidate, forming the cluster');
    return { withdrawCandidacy: decision.withdraw };
  }
  if (options.secret !== undefined && !options.clusterInit) {
    throw new Error(`--token (or FLOTILLA_CLUSTER_SECRET) without --join: a server given a token only joins (--join URL or --join auto); to form a new cluster with this secret, add --cluster-init`);
  }
  log(options.secret !== undefined ? 'forming a new cluster with the cluster secret given (--cluster-init)' : 'forming a new cluster (no --join given)');
  return {};
}

/** What a ready server advertises (over mDNS, and at /.well-known/flotilla for static discovery). */
export function serverAdvertisement(clusterId: string, memberId: number, apiUrl: string, clusterSecret: string): Advertisement {
  return { clusterId, role: 'server', id: String(memberId), apiUrl, fingerprint: clusterFingerprint(clusterSecret) };
}
