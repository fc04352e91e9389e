// Which cluster CA the agent verifies its servers against: pinned once, kept in <data>/ca.crt, pinned from it
// after every restart. Where it comes from the first time, in order: the CA given to the agent (ca: `flotilla
// up`'s own agent, tests, the locator that verified servers by mDNS); the CA kept in the data directory; the CA a
// server presents at GET /cacerts, accepted only when its hash is the one the token pins (client/tokens.ts).
// A token without a CA hash is refused unless a CA is known: nothing secret goes to an unchecked server.
import { existsSync, readFileSync } from 'node:fs';
import { rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { caHash } from '../client/pki.js';
import { fetchPinnedCa, isClusterToken, parseClusterToken } from '../client/tokens.js';

export const AGENT_CA_FILE = 'ca.crt';

export interface PinnedCa {
  /** The CA certificate (PEM) every connection to a server is verified against. */
  ca: string;
  /** What the agent authenticates with: the credential part of the token (servers never see the CA hash). */
  credential: string;
}

/**
 * The CA and credential for `token`, as described above; waits (retrySeconds doubling up to retryMaxSeconds)
 * while no server answers /cacerts. Rejects at once on a CA that does not match the token's hash, and for a
 * token without one when no CA is known. Undefined when `signal` aborts first.
 */
export async function pinnedClusterCa(dir: string, token: string, server: () => string | undefined, given: string | undefined, signal: AbortSignal,
  o: { retrySeconds: number; retryMaxSeconds: number; log: Logger }): Promise<PinnedCa | undefined> {
  const pinned = isClusterToken(token) ? parseClusterToken(token) : undefined;
  const credential = pinned?.credential ?? token;
  const path = join(dir, AGENT_CA_FILE);
  const kept = existsSync(path) ? readFileSync(path, 'utf8') : undefined;
  const check = (pem: string, from: string) => {
    if (pinned && caHash(pem) !== pinned.caHash) {
      throw new Error(`${from} is CA sha256:${caHash(pem)}, the token pins sha256:${pinned.caHash}: wrong cluster, or a token of another cluster for this data directory`);
    }
    return pem;
  };
  let ca = given !== undefined ? check(given, 'the CA given') : kept !== undefined ? check(kept, path) : undefined;
  if (ca === undefined) {
    if (!pinned) parseClusterToken(token);
    for (let failures = 0; ca === undefined; failures++) {
      if (signal.aborted) return undefined;
      const url = server();
      try {
        if (url === undefined) throw new Error('no server known yet');
        ca = await fetchPinnedCa(url, pinned!.caHash, { signal });
      } catch (err) {
        const message = err instanceof Error ? err.message : String(err);
        if (signal.aborted) return undefined;
        if (/the token pins/.test(message)) throw err;
        const waitMs = Math.min(o.retryMaxSeconds * 1000, o.retrySeconds * 1000 * 2 ** Math.min(failures, 16));
        o.log.warn({ err: message, retryMs: waitMs }, 'waiting for a server to fetch the cluster CA from');
        await new Promise((r) => { const t = setTimeout(r, waitMs); signal.addEventListener('abort', () => { clearTimeout(t); r(undefined); }, { once: true }); });
      }
    }
  }
  if (ca !== kept) {
    await writeFile(`${path}.tmp`, ca, { mode: 0o644 });
    await rename(`${path}.tmp`, path);
  }
  return { ca, credential };
}
