// `flotilla server --join auto --token SERVER_TOKEN`: find the cluster the token pins, and join it.
//
// Join only (the default): browse for servers; one of a formed cluster that advertises the CA hash the server
// token pins (formed servers advertise sha256:<CA hash>) and proves it holds that CA's key
// (discovery/locate.ts) is joined. A false advertisement fails the proof and is ignored (with a warning); a
// server of another cluster advertises another CA and is never asked. When none is found within
// `joinTimeoutMs`, the search fails with what it saw (no server at all, servers of other clusters only,
// impostors): a server given a token never forms a cluster of its own.
//
// Forming together (`form`, the server's --cluster-init with --join auto and a bare secret S): every server
// started that way is a candidate, and they form ONE cluster:
// 1. Each advertises itself as a candidate: clusterId PENDING_CLUSTER_ID, role server, a random candidate id,
//    and the public fingerprint of S; and browses for servers with that fingerprint.
// 2. A formed cluster wins: the candidates have no CA hash to look for, so each formed server seen is asked for
//    a proof keyed by S and bound to its CA and to the TLS certificate it presents (locate.ts `secretProof`);
//    the first that passes is joined, and its CA pinned from then on. Candidates answer no proofs (they serve
//    nothing before they form or join), so the only oracle is a formed server's secretProof, over an S that
//    servers accept only long and varied (checkClusterSecret): too long to guess.
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
import { PENDING_CLUSTER_ID, caFingerprint, clusterFingerprint, verifyServer, type ProofExchange } from '../../discovery/locate.js';
import { caHash as caHashOf } from '../../client/pki.js';

export interface AutoJoinOptions {
  discovery: Discovery;
  /** The cluster secret given with --token. */
  secret: string;
  /** The CA hash the server token pins; absent when forming with a bare secret. */
  caHash?: string;
  /** This server's API URL, advertised with the candidacy. */
  apiUrl: string;
  /** Form the cluster with the other candidates when no formed one is seen (rules 1-4); default: join only. */
  form?: boolean;
  /** How long the candidate set must stay unchanged before the lowest bootstraps (default 3 000 ms). */
  settleMs?: number;
  /** Join only: how long to look for a cluster that accepts the secret before failing (default 30 000 ms). */
  joinTimeoutMs?: number;
  /** Candidate id; default random. Ordering is plain string order. */
  candidateId?: string;
  exchange?: ProofExchange;
  log?: (message: string) => void;
}

export type AutoJoinDecision =
  | { action: 'join'; url: string; clusterId: string; caHash: string }
  /** Only with `form`. `withdraw()` ends the candidacy: call it once the new cluster is advertised. */
  | { action: 'bootstrap'; withdraw: () => Promise<void> };

/** Which token a server needs, for every message that refuses one. */
export const SERVER_TOKEN_HINT = 'a server joins with the server token (FLT1<CA hash>::server:<secret>) that every member prints at start ("Server token: ..."); it is made of the SHA-256 of <data>/pki/ca.crt and <data>/cluster-secret of any member';

/** Candidate ids: sortable, valid advertisement ids. */
export function newCandidateId(): string {
  return `c-${randomBytes(8).toString('hex')}`;
}

/**
 * Decides by the rules above. Resolves with the decision; rejects when `signal` aborts first, or (join only) when
 * no cluster accepted the secret in time, with the reason. The candidacy is withdrawn before resolving with
 * "join", and left to the caller with "bootstrap".
 */
export async function autoJoin(options: AutoJoinOptions, signal: AbortSignal): Promise<AutoJoinDecision> {
  const settleMs = options.settleMs ?? 3000;
  const joinTimeoutMs = options.joinTimeoutMs ?? 30_000;
  const deadline = Date.now() + joinTimeoutMs;
  const fingerprint = clusterFingerprint(options.secret);
  const formedFingerprint = options.caHash === undefined ? undefined : caFingerprint(options.caHash);
  const pin = options.caHash === undefined ? { clusterSecret: options.secret } : { caHash: options.caHash };
  const self = options.candidateId ?? newCandidateId();
  const log = options.log ?? (() => {});
  const candidacy = new AbortController();
  const browsing = new AbortController();
  const stopOnAbort = () => { candidacy.abort(); browsing.abort(); };
  signal.addEventListener('abort', stopOnAbort, { once: true });
  // Only a server that may form the cluster is a candidate; one that only joins stays silent.
  const advertising = options.form
    ? options.discovery.advertise({ clusterId: PENDING_CLUSTER_ID, role: 'server', id: self, apiUrl: options.apiUrl, fingerprint }, candidacy.signal)
    : undefined;
  advertising?.catch(() => { /* reported by the decision below */ });
  const withdraw = async () => { candidacy.abort(); await advertising?.catch(() => {}); };

  let peers: Peer[] = [];
  let candidates = '';
  let stableSince = Date.now();
  /** URLs whose proof failed for the advertisement seen (`ad`), with why; a changed advertisement is tried again. */
  const refused = new Map<string, { ad: string; reason: string }>();
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
        const formed = peers.filter((p) => p.clusterId !== PENDING_CLUSTER_ID && (formedFingerprint === undefined || p.fingerprint === formedFingerprint));
        for (const p of formed) {
          const key = JSON.stringify(p);
          if (trying.has(p.apiUrl) || refused.get(p.apiUrl)?.ad === key) continue;
          trying.add(p.apiUrl);
          verifyServer(p.apiUrl, pin, { purpose: 'server-join', expectedClusterId: p.clusterId, signal, ...(options.exchange ? { exchange: options.exchange } : {}) }).then(
            ({ clusterId, caPem }) => finish({ action: 'join', url: p.apiUrl, clusterId, caHash: caHashOf(caPem) }),
            (err: Error) => {
              refused.set(p.apiUrl, { ad: key, reason: err.message });
              log(`auto-join: ignoring server ${p.id} at ${p.apiUrl} (advertises cluster ${p.clusterId}): ${err.message}`);
            },
          ).finally(() => trying.delete(p.apiUrl));
        }
        if (formed.some((p) => !refused.has(p.apiUrl) || trying.has(p.apiUrl))) return;
        if (!options.form) {
          if (Date.now() >= deadline) finish(new Error(noClusterFound(peers, fingerprint, formedFingerprint, refused, joinTimeoutMs)));
          return;
        }
        const ids = [...new Set([self, ...peers.filter((p) => p.fingerprint === fingerprint && p.clusterId === PENDING_CLUSTER_ID).map((p) => p.id)])].sort();
        const key = ids.join(',');
        if (key !== candidates) { candidates = key; stableSince = Date.now(); log(`auto-join: candidates ${key}`); }
        if (ids[0] === self && Date.now() - stableSince >= settleMs) finish({ action: 'bootstrap', withdraw });
      };
      const timer = setInterval(evaluate, Math.max(50, Math.min(250, settleMs / 4)));
      options.discovery.browse({ role: 'server' }, (list) => { peers = list; evaluate(); }, browsing.signal).catch((err: unknown) => finish(err instanceof Error ? err : new Error(String(err))));
      advertising?.catch((err: unknown) => finish(new Error(`auto-join: cannot advertise this candidate: ${err instanceof Error ? err.message : String(err)}`)));
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

/** Why a join-only search found nothing to join, from what it saw. */
function noClusterFound(peers: Peer[], fingerprint: string, formedFingerprint: string | undefined, refused: Map<string, { reason: string }>, timeoutMs: number): string {
  const seen: string[] = [];
  const impostors = [...refused].map(([url, r]) => `${url}: ${r.reason}`);
  if (impostors.length > 0) seen.push(`servers advertising this token's cluster failed the proof (${impostors.join('; ')})`);
  if (peers.some((p) => p.fingerprint === fingerprint && p.clusterId === PENDING_CLUSTER_ID)) {
    seen.push('servers with this secret are still forming a cluster (--cluster-init --join auto) and none has formed it yet');
  }
  const others = peers.filter((p) => p.fingerprint !== formedFingerprint && p.clusterId !== PENDING_CLUSTER_ID);
  if (others.length > 0) seen.push(`the servers found belong to clusters with another CA (${others.map((p) => `${p.apiUrl}, cluster ${p.clusterId}`).join('; ')})`);
  if (seen.length === 0) seen.push('no Flotilla server answered on mDNS (is multicast blocked on this network? then give --join URL)');
  return `no cluster accepted the token within ${timeoutMs / 1000} s: ${seen.join('; ')}. A server given --token only joins; ${SERVER_TOKEN_HINT}, and --cluster-init forms a new cluster`;
}
