// `flotilla server --join auto --token CLUSTER_SECRET`: find the cluster the secret belongs to, or form it.
//
// The rule (servers without an existing cluster, all started with --join auto and the same secret):
// 1. Each advertises itself as a candidate: clusterId PENDING_CLUSTER_ID, role server, a random candidate id,
//    and the public fingerprint of the secret; and browses for servers with that fingerprint.
// 2. A formed cluster wins: as soon as a server of a real cluster with the same fingerprint is seen and proves
//    it holds the secret (discovery/locate.ts), the candidate joins it. A false fingerprint fails the proof and
//    is ignored (with a warning); a server of another cluster has another fingerprint and is never considered.
// 3. Otherwise the candidate with the lowest id bootstraps, once the set of candidates it sees has not changed
//    for `settleMs`. It keeps advertising as a candidate until its cluster is advertised (the caller withdraws
//    the candidacy then), so the others never see a gap in which the next-lowest would bootstrap too.
// 4. Everyone else waits for the formed cluster of rule 2. If the lowest candidate vanishes without forming
//    one, the set changes, and after another settle period the next-lowest bootstraps.
// Races that remain: candidates that cannot hear each other (multicast blocked between them) each bootstrap a
// cluster of their own. A cluster that has formed never merges into another; start servers on one segment, or
// join them with --join URL.
import { randomBytes } from 'node:crypto';
import type { Discovery, Peer } from '../../discovery/advertisement.js';
import { PENDING_CLUSTER_ID, clusterFingerprint, verifyServer } from '../../discovery/locate.js';

export interface AutoJoinOptions {
  discovery: Discovery;
  /** The cluster secret given with --token. */
  secret: string;
  /** This server's API URL, advertised with the candidacy. */
  apiUrl: string;
  /** How long the candidate set must stay unchanged before the lowest bootstraps (default 3 000 ms). */
  settleMs?: number;
  /** Candidate id; default random. Ordering is plain string order. */
  candidateId?: string;
  fetch?: typeof fetch;
  log?: (message: string) => void;
}

export type AutoJoinDecision =
  | { action: 'join'; url: string; clusterId: string }
  /** `withdraw()` ends the candidacy: call it once the new cluster is advertised. */
  | { action: 'bootstrap'; withdraw: () => Promise<void> };

/** Candidate ids: sortable, valid advertisement ids. */
export function newCandidateId(): string {
  return `c-${randomBytes(8).toString('hex')}`;
}

/**
 * Decides between joining and bootstrapping by the rule above. Resolves with the decision; rejects when `signal`
 * aborts first. The candidacy is withdrawn before resolving with "join", and left to the caller with "bootstrap".
 */
export async function autoJoin(options: AutoJoinOptions, signal: AbortSignal): Promise<AutoJoinDecision> {
  const settleMs = options.settleMs ?? 3000;
  const fingerprint = clusterFingerprint(options.secret);
  const self = options.candidateId ?? newCandidateId();
  const log = options.log ?? (() => {});
  const candidacy = new AbortController();
  const browsing = new AbortController();
  const stopOnAbort = () => { candidacy.abort(); browsing.abort(); };
  signal.addEventListener('abort', stopOnAbort, { once: true });
  const advertising = options.discovery.advertise({ clusterId: PENDING_CLUSTER_ID, role: 'server', id: self, apiUrl: options.apiUrl, fingerprint }, candidacy.signal);
  advertising.catch(() => { /* reported by the decision below */ });
  const withdraw = async () => { candidacy.abort(); await advertising.catch(() => {}); };

  let peers: Peer[] = [];
  let candidates = '';
  let stableSince = Date.now();
  /** URLs whose proof failed for the advertisement seen, keyed by URL; a changed advertisement is tried again. */
  const refused = new Map<string, string>();
  const trying = new Set<string>();

  try {
    const decision = await new Promise<AutoJoinDecision>((resolve, reject) => {
      let decided = false;
      const finish = (d: AutoJoinDecision | Error) => {
        if (decided) return;
        decided = true;
        clearInterval(timer);
        browsing.abort();
        if (d instanceof Error) reject(d); else resolve(d);
      };
      const evaluate = () => {
        if (decided) return;
        if (signal.aborted) { finish(new Error('stopped before joining or forming a cluster')); return; }
        const formed = peers.filter((p) => p.fingerprint === fingerprint && p.clusterId !== PENDING_CLUSTER_ID);
        for (const p of formed) {
          const key = JSON.stringify(p);
          if (trying.has(p.apiUrl) || refused.get(p.apiUrl) === key) continue;
          trying.add(p.apiUrl);
          verifyServer(p.apiUrl, options.secret, { expectedClusterId: p.clusterId, signal, ...(options.fetch ? { fetch: options.fetch } : {}) }).then(
            (clusterId) => finish({ action: 'join', url: p.apiUrl, clusterId }),
            (err: Error) => {
              refused.set(p.apiUrl, key);
              log(`auto-join: ignoring server ${p.id} at ${p.apiUrl} (advertises cluster ${p.clusterId}): ${err.message}`);
            },
          ).finally(() => trying.delete(p.apiUrl));
        }
        if (formed.some((p) => !refused.has(p.apiUrl) || trying.has(p.apiUrl))) return;
        const ids = [...new Set([self, ...peers.filter((p) => p.fingerprint === fingerprint && p.clusterId === PENDING_CLUSTER_ID).map((p) => p.id)])].sort();
        const key = ids.join(',');
        if (key !== candidates) { candidates = key; stableSince = Date.now(); log(`auto-join: candidates ${key}`); }
        if (ids[0] === self && Date.now() - stableSince >= settleMs) finish({ action: 'bootstrap', withdraw });
      };
      const timer = setInterval(evaluate, Math.max(50, Math.min(250, settleMs / 4)));
      options.discovery.browse({ role: 'server' }, (list) => { peers = list; evaluate(); }, browsing.signal).catch((err: unknown) => finish(err instanceof Error ? err : new Error(String(err))));
      advertising.catch((err: unknown) => finish(new Error(`auto-join: cannot advertise this candidate: ${err instanceof Error ? err.message : String(err)}`)));
      evaluate();
    });
    if (decision.action === 'join') await withdraw();
    return decision;
  } catch (err) {
    await withdraw();
    throw err;
  } finally {
    signal.removeEventListener('abort', stopOnAbort);
  }
}
