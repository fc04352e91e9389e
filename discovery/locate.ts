// Finding the servers of one's own cluster, and trusting them only once they prove it.
//
// Discovery (mDNS or a static URL list) only proposes servers. Before an agent sends its join token to a
// server, or a server its cluster secret, it asks the server for a proof of membership: a fresh random nonce
// goes out, and the server answers HMAC-SHA256(sha256(token), "flotilla-proof-v1\n<clusterId>\n<tokenId>\n<nonce>").
// Every member can answer, since every member holds the token's digest (join tokens) or the secret itself (the
// cluster secret), and the answer reveals neither. A peer that advertises itself falsely cannot produce it, so it
// never receives the token nor, later, any state.
//
// Token ids: a join token `flt1.<id>.<secret>` is proved under its <id>; any other token is taken to be the
// cluster secret and is proved under the id "cluster".
//
// Residual risk, stated: over plain HTTP a peer that relays the challenge to a genuine member can pass the proof
// and then receive the token. The proof stops impostors, not a man in the middle; TLS with the fingerprint pinned
// is what closes that.
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Discovery, Peer, WarningSink } from './advertisement.js';

export const PROOF_PATH = '/apis/flotilla.io/v1/proof';
/** The token id under which the cluster secret is proved. */
export const CLUSTER_SECRET_TOKEN_ID = 'cluster';
/** The clusterId that servers advertise while they are still forming a cluster with `--join auto`. */
export const PENDING_CLUSTER_ID = 'pending';

const JOIN_TOKEN = /^flt1\.([a-z0-9]{10})\.([A-Za-z0-9_-]{32})$/;
const NONCE = /^[A-Za-z0-9_-]{16,128}$/;

/** A freshly made join token: `flt1.<id>.<secret>`. Only its digest may be stored. */
export function newJoinToken(): { id: string; token: string } {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const id = Array.from(randomBytes(10), (b) => alphabet[b % alphabet.length]).join('');
  return { id, token: `flt1.${id}.${randomBytes(24).toString('base64url')}` };
}

/** The id under which `token` is proved: the id of a join token, else CLUSTER_SECRET_TOKEN_ID. */
export function proofTokenId(token: string): string {
  return JOIN_TOKEN.exec(token)?.[1] ?? CLUSTER_SECRET_TOKEN_ID;
}

export function isJoinToken(token: string): boolean {
  return JOIN_TOKEN.test(token);
}

/** Hex SHA-256 of a token: what the token store keeps and the proof key. */
export function tokenSha256(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The proof for a token whose SHA-256 (hex) is `digestHex`; see the file comment for the construction. */
export function membershipProof(digestHex: string, clusterId: string, tokenId: string, nonce: string): string {
  return createHmac('sha256', Buffer.from(digestHex, 'hex')).update(`flotilla-proof-v1\n${clusterId}\n${tokenId}\n${nonce}`).digest('base64url');
}

/** Public fingerprint of a cluster secret, advertised by servers so that `--join auto` can pick its cluster. */
export function clusterFingerprint(secret: string): string {
  return `sha256:${createHash('sha256').update(`flotilla-cluster-fingerprint\n${secret}`).digest('hex').slice(0, 16)}`;
}

export function checkNonce(nonce: string): void {
  if (!NONCE.test(nonce)) throw new Error('nonce: expected 16-128 characters of [A-Za-z0-9_-]');
}

/** What a server answers at PROOF_PATH. */
export interface ProofAnswer { clusterId: string; tokenId: string; nonce: string; proof: string }

/**
 * Asks the server at `apiUrl` to prove it knows `token`; resolves with the cluster id it proved membership of,
 * rejects with a readable reason (unreachable, does not know the token, wrong proof, other cluster than
 * `expectedClusterId`). Never sends the token.
 */
export async function verifyServer(apiUrl: string, token: string, options: { expectedClusterId?: string; timeoutMs?: number; fetch?: typeof fetch; signal?: AbortSignal } = {}): Promise<string> {
  const tokenId = proofTokenId(token);
  const nonce = randomBytes(18).toString('base64url');
  const url = new URL(PROOF_PATH, apiUrl);
  url.searchParams.set('token-id', tokenId);
  url.searchParams.set('nonce', nonce);
  const signals = [AbortSignal.timeout(options.timeoutMs ?? 3000), ...(options.signal ? [options.signal] : [])];
  let res: Response;
  try {
    res = await (options.fetch ?? fetch)(url, { signal: AbortSignal.any(signals) });
  } catch (err) {
    throw new Error(`unreachable: ${err instanceof Error ? err.message : String(err)}`);
  }
  const body = await res.text();
  if (res.status === 404) {
    throw new Error(tokenId === CLUSTER_SECRET_TOKEN_ID ? 'does not answer proofs (not a Flotilla server of this version)' : `does not know join token ${tokenId} (wrong, revoked or expired token, or another cluster)`);
  }
  if (!res.ok) throw new Error(`answered ${res.status} to the proof request: ${body.slice(0, 200)}`);
  let answer: Partial<ProofAnswer>;
  try {
    answer = JSON.parse(body) as Partial<ProofAnswer>;
  } catch {
    throw new Error('proof answer is not JSON');
  }
  if (typeof answer.clusterId !== 'string' || typeof answer.proof !== 'string' || answer.nonce !== nonce || answer.tokenId !== tokenId) {
    throw new Error('malformed proof answer (missing fields, or not for this nonce and token id)');
  }
  if (options.expectedClusterId !== undefined && answer.clusterId !== options.expectedClusterId) {
    throw new Error(`proved membership of cluster ${answer.clusterId}, but advertises cluster ${options.expectedClusterId}`);
  }
  const expected = Buffer.from(membershipProof(tokenSha256(token), answer.clusterId, tokenId, nonce));
  const got = Buffer.from(answer.proof);
  if (expected.length !== got.length || !timingSafeEqual(expected, got)) {
    throw new Error(tokenId === CLUSTER_SECRET_TOKEN_ID ? 'proof does not match: this server does not hold the cluster secret given' : 'proof does not match: this server does not know the join token given');
  }
  return answer.clusterId;
}

export interface LocateOptions {
  /** Where candidates come from: createMdnsDiscovery(...) or createStaticDiscovery({ urls }). */
  discovery: Discovery;
  /** Accept only servers of this cluster (e.g. the one the agent registered with before). */
  clusterId?: string;
  /** Per proof request (default 3 000 ms). */
  verifyTimeoutMs?: number;
  /** Used for proofs, and by the locator's own `fetch` (default globalThis.fetch). */
  fetch?: typeof fetch;
  onWarning?: WarningSink;
}

export interface ServerLocator {
  /** API URLs of servers that proved membership and are still advertised, the preferred one first. */
  servers(): string[];
  /**
   * Resolves with the preferred verified server, waiting for one to appear. Rejects after `timeoutMs` (or when
   * `signal` aborts) with an Error that lists why each server seen was refused, e.g. a wrong token.
   */
  waitForServer(timeoutMs: number, signal?: AbortSignal): Promise<string>;
  /** Says that `url` failed (connection refused, timeout): another verified server is preferred from now on. */
  reportFailure(url: string): void;
  /**
   * A fetch for clients with a fixed base URL (node-agent's ApiClient takes `fetch`): it sends each request to
   * the preferred verified server (keeping path and query), and reports that server failed when the request
   * cannot be delivered, so the caller's next attempt goes to another one.
   */
  fetch: typeof fetch;
  /** Resolves once `signal` aborted and browsing stopped. */
  done: Promise<void>;
}

/**
 * Browses for servers and keeps the list of those that proved they know `token`, re-evaluated whenever the
 * discovery's view changes: a server whose advertisement disappears (goodbye, TTL expiry, static URL no longer
 * answering) leaves the list; a new or changed one is verified before it enters it. Candidates still forming a
 * cluster (PENDING_CLUSTER_ID) are skipped. Runs until `signal` aborts.
 */
export function locateServers(token: string, options: LocateOptions, signal: AbortSignal): ServerLocator {
  if (token.trim() === '') throw new Error('locateServers: the token is empty');
  const warn = options.onWarning ?? (() => {});
  const doFetch = options.fetch ?? fetch;
  /** Verified peers by apiUrl, in preference order. */
  let verified: string[] = [];
  const refusals = new Map<string, string>();
  /** The advertisement each URL was verified (or refused) for; a changed advertisement is checked again. */
  const checkedFor = new Map<string, string>();
  const waiters = new Set<() => void>();
  const notify = () => { for (const w of [...waiters]) w(); };

  const onPeers = (peers: Peer[]) => {
    const current = new Map<string, Peer>();
    for (const p of peers) if (p.clusterId !== PENDING_CLUSTER_ID) current.set(p.apiUrl, p);
    verified = verified.filter((u) => current.has(u) && checkedFor.get(u) === JSON.stringify(current.get(u)));
    for (const u of [...checkedFor.keys()]) if (!current.has(u)) { checkedFor.delete(u); refusals.delete(u); }
    for (const [url, peer] of current) {
      const key = JSON.stringify(peer);
      if (checkedFor.get(url) === key) continue;
      checkedFor.set(url, key);
      verifyServer(url, token, { expectedClusterId: peer.clusterId, fetch: doFetch, signal, ...(options.verifyTimeoutMs ? { timeoutMs: options.verifyTimeoutMs } : {}) }).then(
        () => {
          if (checkedFor.get(url) !== key || signal.aborted) return;
          refusals.delete(url);
          if (!verified.includes(url)) verified.push(url);
          notify();
        },
        (err: Error) => {
          if (checkedFor.get(url) !== key || signal.aborted) return;
          const reason = `${url} (server ${peer.id} of cluster ${peer.clusterId}): ${err.message}`;
          refusals.set(url, reason);
          warn(`locate: ignoring ${reason}`);
          // An unreachable server may come back: look again on the next change of the discovery's view.
          if (err.message.startsWith('unreachable')) checkedFor.delete(url);
          notify();
        },
      );
    }
    notify();
  };
  const filter = { role: 'server' as const, ...(options.clusterId !== undefined ? { clusterId: options.clusterId } : {}) };
  const done = options.discovery.browse(filter, onPeers, signal).finally(notify);

  const locator: ServerLocator = {
    servers: () => [...verified],
    waitForServer(timeoutMs, waitSignal) {
      return new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => finish(), timeoutMs);
        const check = () => {
          if (verified[0] !== undefined) { finish(); return; }
          if (signal.aborted || waitSignal?.aborted) finish();
        };
        function finish() {
          clearTimeout(timer);
          waiters.delete(check);
          waitSignal?.removeEventListener('abort', check);
          const first = verified[0];
          if (first !== undefined) { resolve(first); return; }
          const why = [...refusals.values()];
          reject(new Error(why.length === 0
            ? `no Flotilla server found${options.clusterId ? ` for cluster ${options.clusterId}` : ''} (is a server running on this network, or give --server URL)`
            : `no server proved it knows ${isJoinToken(token) ? `join token ${proofTokenId(token)}` : 'the cluster secret'}; refused: ${why.join('; ')}`));
        }
        waiters.add(check);
        waitSignal?.addEventListener('abort', check, { once: true });
        check();
      });
    },
    reportFailure(url) {
      const base = new URL(url).origin;
      const i = verified.findIndex((u) => new URL(u).origin === base);
      if (i < 0 || verified.length < 2) return;
      const [failed] = verified.splice(i, 1);
      verified.push(failed!);
      notify();
    },
    fetch: async (input, init) => {
      const requested = new URL(input instanceof Request ? input.url : input.toString());
      const base = verified[0];
      if (base === undefined) throw new Error(`no verified Flotilla server to send ${requested.pathname} to`);
      const target = new URL(`${requested.pathname}${requested.search}`, base);
      try {
        return await doFetch(target, input instanceof Request ? new Request(target, input) : init);
      } catch (err) {
        if (!(init?.signal?.aborted ?? false)) locator.reportFailure(base);
        throw err;
      }
    },
    done,
  };
  return locator;
}
