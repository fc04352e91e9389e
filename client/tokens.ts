// Cluster tokens: a credential together with the hash of the cluster CA it may be sent to (k3s' K10 tokens,
// with our own prefix). The one place tokens are parsed and formatted; the agent, the CLI and the servers use it.
//
//   FLT1<ca-hash: 64 lower-case hex>::<credential>
//
// The credential of a join token is `flt1.<id>.<secret>` (discovery/locate.ts makes those), the server token's is
// `server:<cluster secret>`. Servers store and check only the credential; the CA hash is for the holder, who
// checks the CA a server presents (GET /cacerts, fetchPinnedCa below) before sending the credential anywhere.
import https from 'node:https';
import { caHash } from './pki.js';

/** The public route that serves the cluster CA certificate (PEM), as k3s serves /cacerts. */
export const CA_CERTS_PATH = '/cacerts';
/** What a server token's credential starts with; the rest is the cluster secret. */
export const SERVER_CREDENTIAL_PREFIX = 'server:';

const CLUSTER_TOKEN = /^FLT1([0-9a-f]{64})::(.+)$/s;

export interface ClusterToken { caHash: string; credential: string }

/** Splits a full token; throws, naming the fix, when the text is not `FLT1<ca-hash>::<credential>`. */
export function parseClusterToken(text: string): ClusterToken {
  const m = CLUSTER_TOKEN.exec(text.trim());
  if (!m) {
    throw new Error('the token carries no cluster CA hash (expected FLT1<64 hex>::<credential>): use the full token that "flotilla token create" '
      + 'prints (agents) or that the first server printed at start (servers)');
  }
  return { caHash: m[1]!, credential: m[2]! };
}

export function formatClusterToken(hash: string, credential: string): string {
  if (!/^[0-9a-f]{64}$/.test(hash)) throw new Error(`not a CA hash (64 lower-case hex): "${hash}"`);
  if (credential === '') throw new Error('empty credential');
  return `FLT1${hash}::${credential}`;
}

export function isClusterToken(text: string): boolean {
  return CLUSTER_TOKEN.test(text.trim());
}

/** The cluster secret of a server token's credential (`server:<secret>`), or undefined for any other credential. */
export function serverCredentialSecret(credential: string): string | undefined {
  return credential.startsWith(SERVER_CREDENTIAL_PREFIX) ? credential.slice(SERVER_CREDENTIAL_PREFIX.length) : undefined;
}

/**
 * Fetches the CA a server presents at CA_CERTS_PATH and checks it against the hash the token pins; resolves with
 * the CA certificate (PEM), from then on the one to verify that server with. Sends no credential: the connection
 * cannot be trusted before the check (nothing but the public CA travels on it). Rejects with a message naming
 * both hashes on a mismatch.
 */
export async function fetchPinnedCa(serverUrl: string, pinnedHash: string, options: { timeoutMs?: number; signal?: AbortSignal } = {}): Promise<string> {
  const url = new URL(CA_CERTS_PATH, serverUrl);
  if (url.protocol !== 'https:') throw new Error(`${serverUrl}: a Flotilla server is reached over https, not ${url.protocol}`);
  const signals = [AbortSignal.timeout(options.timeoutMs ?? 5_000), ...(options.signal ? [options.signal] : [])];
  const pem = await new Promise<string>((resolve, reject) => {
    // The one request without CA verification: what it returns is trusted only through the hash check below.
    const req = https.get(url, { rejectUnauthorized: false, signal: AbortSignal.any(signals), headers: { accept: 'application/x-pem-file' } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode !== 200) reject(new Error(`${url.origin}${CA_CERTS_PATH} answered ${res.statusCode}: ${text.slice(0, 200)}`));
        else resolve(text);
      });
      res.on('error', reject);
    });
    req.on('error', (err) => reject(new Error(`cannot fetch the cluster CA from ${url.origin}: ${err.message}`)));
  });
  let presented: string;
  try {
    presented = caHash(pem);
  } catch {
    throw new Error(`${url.origin}${CA_CERTS_PATH} did not answer a PEM certificate`);
  }
  if (presented !== pinnedHash) {
    throw new Error(`the server at ${url.origin} presents CA sha256:${presented}, the token pins sha256:${pinnedHash}: wrong cluster or a man in the middle`);
  }
  return pem;
}
