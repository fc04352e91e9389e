// Finding the servers of one's own cluster, and trusting them only once they prove it.
//
// Discovery (mDNS or a static URL list) only proposes servers. Before an agent sends its join token to a
// server, or a server its cluster secret, the server proves that it holds the cluster CA's private key, the one
// thing no node, client or stolen SD card of an agent has:
//   1. The client opens a TLS connection and notes the SHA-256 of the certificate the server presents.
//   2. It asks PROOF_PATH for a fresh random nonce, its purpose and that certificate hash; the server refuses to
//      answer for a certificate that is not its own (a relay cannot pass its own channel off as the server's).
//   3. The server answers the CA certificate and an ECDSA signature with the CA key (ClusterCa.sign) over
//      proofData(clusterId, purpose, certificate hash, nonce).
//   4. The client checks the CA against the hash its token pins (client/tokens.ts), the server certificate
//      against that CA, and the signature against the CA's key (verifyCaSignature). Only then is the server
//      used, over connections verified against that CA.
// A relayed answer names another certificate than the one the client saw, so it does not verify. Nothing a
// node can read (token digests, its own certificate) produces a signature.
//
// Servers forming a cluster together (`--cluster-init --join auto --token S`) have no CA hash to pin: the
// candidate that joins a formed server asks it for a proof keyed by the secret as well (`secretProof`: HMAC
// keyed by SHA-256 of S over the same data and the CA hash), which binds the CA it is shown to the holder of S.
// Anyone can ask a formed server for such proofs: the one offline oracle left is over S, which a server only
// accepts long and varied (checkClusterSecret, server/cluster/cluster.ts), too long to guess.
import { createHash, createHmac, randomBytes, timingSafeEqual, X509Certificate } from 'node:crypto';
import http from 'node:http';
import tls from 'node:tls';
import { caHash, issuedBy, verifyCaSignature } from '../client/pki.js';
import { parseClusterToken } from '../client/tokens.js';
import type { Discovery, Peer, WarningSink } from './advertisement.js';

export const PROOF_PATH = '/apis/flotilla.io/v1/proof';
/** The clusterId that servers advertise while they are still forming a cluster with `--join auto`. */
export const PENDING_CLUSTER_ID = 'pending';

const JOIN_TOKEN = /^flt1\.([a-z0-9]{10})\.([A-Za-z0-9_-]{32})$/;
const NONCE = /^[A-Za-z0-9_-]{16,128}$/;

/** What a proof is asked for: an agent about to send its join token, a server about to send the cluster secret. */
export type ProofPurpose = 'agent-join' | 'server-join';
export const PROOF_PURPOSES: readonly ProofPurpose[] = ['agent-join', 'server-join'];

/** A freshly made join token credential: `flt1.<id>.<secret>`. Only its digest may be stored. */
export function newJoinToken(): { id: string; token: string } {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  const id = Array.from(randomBytes(10), (b) => alphabet[b % alphabet.length]).join('');
  return { id, token: `flt1.${id}.${randomBytes(24).toString('base64url')}` };
}

/** The id of a join token credential (`flt1.<id>.<secret>`), or undefined for anything else. */
export function joinTokenId(credential: string): string | undefined {
  return JOIN_TOKEN.exec(credential)?.[1];
}

export function isJoinToken(credential: string): boolean {
  return JOIN_TOKEN.test(credential);
}

/** Hex SHA-256 of a token credential: what the token store keeps. */
export function tokenSha256(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Hex SHA-256 of a certificate's DER bytes (what the client saw on its TLS connection). */
export function certificateSha256(cert: X509Certificate | string): string {
  return createHash('sha256').update((typeof cert === 'string' ? new X509Certificate(cert) : cert).raw).digest('hex');
}

/** What the CA signature of a proof covers. */
export function proofData(clusterId: string, purpose: ProofPurpose, certSha256: string, nonce: string): string {
  return `flotilla-proof-v2\n${clusterId}\n${purpose}\n${certSha256}\n${nonce}`;
}

/** The proof keyed by the cluster secret, for servers forming a cluster (see the file comment). */
export function secretProof(secret: string, data: string, ca: string): string {
  return createHmac('sha256', createHash('sha256').update(secret).digest()).update(`${data}\n${ca}`).digest('base64url');
}

/** Public fingerprint of a cluster secret, advertised only by candidates forming a cluster with `--join auto`. */
export function clusterFingerprint(secret: string): string {
  return `sha256:${createHash('sha256').update(`flotilla-cluster-fingerprint\n${secret}`).digest('hex').slice(0, 16)}`;
}

/** What a formed server advertises as its fingerprint: the hash of its cluster CA (public). */
export function caFingerprint(hash: string): string {
  return `sha256:${hash}`;
}

export function checkNonce(nonce: string): void {
  if (!NONCE.test(nonce)) throw new Error('nonce: expected 16-128 characters of [A-Za-z0-9_-]');
}

/** What a server answers at PROOF_PATH. */
export interface ProofAnswer {
  clusterId: string; purpose: ProofPurpose; nonce: string; certSha256: string;
  /** The cluster CA certificate (PEM). */
  ca: string;
  /** ClusterCa.sign(proofData(...)). */
  signature: string;
  /** Only when asked with key=cluster-secret: secretProof(S, proofData(...), caHash(ca)). */
  secretProof?: string;
}

/** How the client pins the server: the CA hash of a full token, or (forming a cluster) the bare cluster secret. */
export type ServerPin = { caHash: string } | { clusterSecret: string };

/**
 * One proof request on a fresh TLS connection: `path(certSha256)` is asked of the server once the TLS handshake
 * showed its certificate. The certificate is checked later, against the CA of the answer (the client has
 * nothing to check it against before). Tests replace it to play other networks.
 */
export type ProofExchange = (apiUrl: string, path: (certSha256: string) => string, signal: AbortSignal) => Promise<{ status: number; body: string; certificate: X509Certificate }>;

export const tlsProofExchange: ProofExchange = (apiUrl, path, signal) => new Promise((resolve, reject) => {
  const url = new URL(apiUrl);
  if (url.protocol !== 'https:') { reject(new Error(`${apiUrl} is not an https URL`)); return; }
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const socket = tls.connect({ host, port: Number(url.port || 443), rejectUnauthorized: false, minVersion: 'TLSv1.2', ...(/^[\d.]+$|:/.test(host) ? {} : { servername: host }) });
  const fail = (err: Error) => { socket.destroy(); reject(err); };
  signal.addEventListener('abort', () => fail(new Error(String(signal.reason ?? 'aborted'))), { once: true });
  socket.once('error', fail);
  socket.once('secureConnect', () => {
    const certificate = socket.getPeerX509Certificate();
    if (!certificate) { fail(new Error('the server presented no certificate')); return; }
    const req = http.request({ host, path: path(certificateSha256(certificate)), createConnection: () => socket, headers: { host: url.host, connection: 'close' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => { socket.destroy(); resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), certificate }); });
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end();
  });
});

/**
 * Asks the server at `apiUrl` to prove it holds the private key of the cluster CA that `pin` names; resolves with
 * the cluster id and the CA certificate (PEM) to verify that server with from now on, or rejects with a readable
 * reason (unreachable, another CA than the token pins, a certificate not of that CA, a wrong signature, another
 * cluster than `expectedClusterId`). Never sends a credential.
 */
export async function verifyServer(apiUrl: string, pin: ServerPin, options: { purpose: ProofPurpose; expectedClusterId?: string; timeoutMs?: number; signal?: AbortSignal; exchange?: ProofExchange }): Promise<{ clusterId: string; caPem: string }> {
  const nonce = randomBytes(18).toString('base64url');
  const signals = [AbortSignal.timeout(options.timeoutMs ?? 3000), ...(options.signal ? [options.signal] : [])];
  const bySecret = 'clusterSecret' in pin;
  let exchanged: Awaited<ReturnType<ProofExchange>>;
  try {
    exchanged = await (options.exchange ?? tlsProofExchange)(apiUrl, (certSha256) => {
      const q = new URLSearchParams({ nonce, purpose: options.purpose, 'cert-sha256': certSha256, ...(bySecret ? { key: 'cluster-secret' } : {}) });
      return `${PROOF_PATH}?${q}`;
    }, AbortSignal.any(signals));
  } catch (err) {
    throw new Error(`unreachable: ${err instanceof Error ? err.message : String(err)}`);
  }
  const { status, body, certificate } = exchanged;
  if (status === 404) throw new Error('does not answer proofs (not a Flotilla server of this version)');
  if (status !== 200) throw new Error(`answered ${status} to the proof request: ${body.slice(0, 200)}`);
  let answer: Partial<ProofAnswer>;
  try {
    answer = JSON.parse(body) as Partial<ProofAnswer>;
  } catch {
    throw new Error('proof answer is not JSON');
  }
  const seen = certificateSha256(certificate);
  if (typeof answer.clusterId !== 'string' || typeof answer.signature !== 'string' || typeof answer.ca !== 'string' || answer.nonce !== nonce || answer.purpose !== options.purpose) {
    throw new Error('malformed proof answer (missing fields, or not for this nonce and purpose)');
  }
  if (answer.certSha256 !== seen) throw new Error(`the proof is for another TLS certificate (sha256:${String(answer.certSha256)}) than this connection's (sha256:${seen}): a relayed answer`);
  let presented: string;
  try {
    presented = caHash(answer.ca);
  } catch {
    throw new Error('the proof answer carries no PEM CA certificate');
  }
  const data = proofData(answer.clusterId, options.purpose, seen, nonce);
  if (!bySecret && presented !== pin.caHash) {
    throw new Error(`the server at ${new URL(apiUrl).origin} presents CA sha256:${presented}, the token pins sha256:${pin.caHash}: wrong cluster or a man in the middle`);
  }
  if (bySecret) {
    const expected = Buffer.from(secretProof(pin.clusterSecret, data, presented));
    const got = Buffer.from(answer.secretProof ?? '');
    if (expected.length !== got.length || !timingSafeEqual(expected, got)) throw new Error('proof does not match: this server does not hold the cluster secret given');
  }
  if (!issuedBy(certificate, answer.ca)) throw new Error(`the server's TLS certificate is not issued by its CA sha256:${presented}`);
  if (!(await verifyCaSignature(answer.ca, data, answer.signature).catch(() => false))) {
    throw new Error(`proof does not match: this server does not hold the key of CA sha256:${presented}`);
  }
  if (options.expectedClusterId !== undefined && answer.clusterId !== options.expectedClusterId) {
    throw new Error(`proved membership of cluster ${answer.clusterId}, but advertises cluster ${options.expectedClusterId}`);
  }
  return { clusterId: answer.clusterId, caPem: answer.ca };
}

export interface LocateOptions {
  /** Where candidates come from: createMdnsDiscovery(...) or createStaticDiscovery({ urls }). */
  discovery: Discovery;
  /** Accept only servers of this cluster (e.g. the one the agent registered with before). */
  clusterId?: string;
  /** Per proof request (default 3 000 ms). */
  verifyTimeoutMs?: number;
  /** How proofs are exchanged (default tlsProofExchange). */
  exchange?: ProofExchange;
  onWarning?: WarningSink;
}

export interface ServerLocator {
  /** API URLs of servers that proved they hold the pinned CA and are still advertised, the preferred one first. */
  servers(): string[];
  /** The cluster CA (PEM) the verified servers proved, to verify every connection to them; undefined before one did. */
  ca(): string | undefined;
  /**
   * Resolves with the preferred verified server, waiting for one to appear. Rejects after `timeoutMs` (or when
   * `signal` aborts) with an Error that lists why each server seen was refused, e.g. a wrong token.
   */
  waitForServer(timeoutMs: number, signal?: AbortSignal): Promise<string>;
  /** Says that `url` failed (connection refused, timeout): another verified server is preferred from now on. */
  reportFailure(url: string): void;
  /** Resolves once `signal` aborted and browsing stopped. */
  done: Promise<void>;
}

/**
 * Browses for servers and keeps the list of those that proved they hold the CA that `token` (a full cluster
 * token, client/tokens.ts) pins, re-evaluated whenever the discovery's view changes: a server whose
 * advertisement disappears (goodbye, TTL expiry, static URL no longer answering) leaves the list; a new or
 * changed one is verified before it enters it. Candidates still forming a cluster (PENDING_CLUSTER_ID) are
 * skipped. Throws at once for a token without a CA hash. Runs until `signal` aborts.
 */
export function locateServers(token: string, options: LocateOptions, signal: AbortSignal): ServerLocator {
  const pin = { caHash: parseClusterToken(token).caHash };
  const warn = options.onWarning ?? (() => {});
  let caPem: string | undefined;
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
      verifyServer(url, pin, {
        purpose: 'agent-join', expectedClusterId: peer.clusterId, signal,
        ...(options.verifyTimeoutMs ? { timeoutMs: options.verifyTimeoutMs } : {}), ...(options.exchange ? { exchange: options.exchange } : {}),
      }).then(
        (proved) => {
          if (checkedFor.get(url) !== key || signal.aborted) return;
          caPem = proved.caPem;
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

  return {
    servers: () => [...verified],
    ca: () => caPem,
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
            : `no server proved it holds the cluster CA sha256:${pin.caHash} that the token pins; refused: ${why.join('; ')}`));
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
    done,
  };
}
