// How server/run.ts finds its cluster before opening its Raft member, and what it advertises afterwards.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Advertisement, Discovery } from '../../discovery/advertisement.js';
import { clusterFingerprint } from '../../discovery/locate.js';
import { autoJoin } from './auto-join.js';

export interface JoinPlan {
  /** The member URL to join through; absent: open the existing cluster in the data dir, or bootstrap one. */
  join?: string;
  /** Set when this server won the --join auto election: end the candidacy once the cluster is advertised. */
  withdrawCandidacy?: () => Promise<void>;
}

/**
 * `join` as given to the server: a member URL, "auto" (mDNS, see auto-join.ts), or nothing. A data dir that
 * already holds a cluster (cluster.json) is opened as it is, whatever `join` says.
 */
export async function planJoin(options: { join?: string; secret?: string; dataDir: string; apiUrl: string; discovery?: Discovery; settleMs?: number; log?: (message: string) => void }, signal: AbortSignal): Promise<JoinPlan> {
  if (options.join !== 'auto') return options.join ? { join: options.join } : {};
  if (existsSync(join(options.dataDir, 'cluster.json'))) return {};
  if (!options.secret) throw new Error('--join auto needs --token: the cluster secret shared by the servers');
  if (!options.discovery) throw new Error('--join auto finds servers by mDNS, which is switched off (--no-mdns): give --join URL instead');
  const decision = await autoJoin({
    discovery: options.discovery, secret: options.secret, apiUrl: options.apiUrl,
    ...(options.settleMs !== undefined ? { settleMs: options.settleMs } : {}), ...(options.log ? { log: options.log } : {}),
  }, signal);
  if (decision.action === 'join') {
    options.log?.(`auto-join: joining cluster ${decision.clusterId} through ${decision.url}`);
    return { join: decision.url };
  }
  options.log?.('auto-join: lowest candidate, forming the cluster');
  return { withdrawCandidacy: decision.withdraw };
}

/** What a ready server advertises (over mDNS, and at /.well-known/flotilla for static discovery). */
export function serverAdvertisement(clusterId: string, memberId: number, apiUrl: string, clusterSecret: string): Advertisement {
  return { clusterId, role: 'server', id: String(memberId), apiUrl, fingerprint: clusterFingerprint(clusterSecret) };
}
