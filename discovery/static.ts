// Discovery from a fixed list of API URLs, for networks that block multicast (`--server URL`).
//
// Browsing asks each URL for its advertisement (GET <url>/.well-known/flotilla, a JSON Advertisement) every
// refreshMs; a URL that does not answer, answers with an error or with an invalid document has no peer. The
// API server of every process is what makes it visible here: it must serve `advertisementDocument(ad)` at
// DISCOVERY_PATH, which is why `advertise` only validates and waits. Certificates are not verified when
// fetching: discovery only proposes, and the fingerprint in the answer is checked when joining with a token.
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import {
  comparePeers, matchesFilter, parseAdvertisement, validateFilter,
  type Advertisement, type Discovery, type Peer, type WarningSink,
} from './advertisement.js';

export const DISCOVERY_PATH = '/.well-known/flotilla';

export interface StaticDiscoveryOptions {
  /** Base URLs of the processes to ask, e.g. "https://10.0.0.5:6443". */
  urls: string[];
  /** How often every URL is asked again (default 10 000 ms). */
  refreshMs?: number;
  /** How long one answer may take (default 3 000 ms). */
  timeoutMs?: number;
  /** Fetches the advertisement document behind a base URL; the default is an HTTP(S) GET of DISCOVERY_PATH. */
  fetchDocument?: (baseUrl: string, signal: AbortSignal) => Promise<unknown>;
  onWarning?: WarningSink;
}

/** The body an API server returns at DISCOVERY_PATH. */
export function advertisementDocument(ad: Advertisement): string {
  return JSON.stringify(parseAdvertisement(ad));
}

export function createStaticDiscovery(options: StaticDiscoveryOptions): Discovery {
  const urls = options.urls.map((u, i) => {
    let url: URL;
    try {
      url = new URL(u);
    } catch {
      throw new Error(`static discovery: urls[${i}] ${JSON.stringify(u)} is not a URL`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`static discovery: urls[${i}] ${JSON.stringify(u)} must use http or https`);
    return url;
  });
  const refreshMs = options.refreshMs ?? 10_000;
  if (!(refreshMs >= 100)) throw new Error(`static discovery: refreshMs ${refreshMs} must be at least 100`);
  const timeoutMs = options.timeoutMs ?? 3000;
  if (!(timeoutMs >= 10)) throw new Error(`static discovery: timeoutMs ${timeoutMs} must be at least 10`);
  const fetchDocument = options.fetchDocument ?? ((base, signal) => getJson(new URL(DISCOVERY_PATH.slice(1), withSlash(base)), signal));
  const warn = options.onWarning ?? (() => {});

  const probe = async (url: URL, signal: AbortSignal): Promise<Peer | undefined> => {
    const timeout = AbortSignal.any([signal, AbortSignal.timeout(timeoutMs)]);
    try {
      const ad = parseAdvertisement(await fetchDocument(url.href, timeout));
      return { ...ad, addresses: [url.hostname.replace(/^\[|\]$/g, '')] };
    } catch (e) {
      if (!signal.aborted) warn(`static discovery: ${url.href}: ${(e as Error).message}`);
      return undefined;
    }
  };

  return {
    async advertise(ad, signal) {
      parseAdvertisement(ad);
      if (signal.aborted) return;
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    },

    async browse(filter, onChange, signal) {
      validateFilter(filter);
      let reported = '[]';
      while (!signal.aborted) {
        const found = (await Promise.all(urls.map((u) => probe(u, signal)))).filter((p): p is Peer => p !== undefined);
        if (signal.aborted) break;
        // Several URLs may reach the same process: keep one peer per identity.
        const unique = new Map(found.filter((p) => matchesFilter(p, filter)).map((p) => [`${p.clusterId}/${p.role}/${p.id}`, p]));
        const peers = [...unique.values()].sort(comparePeers);
        const text = JSON.stringify(peers);
        if (text !== reported) { reported = text; onChange(peers); }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, refreshMs);
          function done() { clearTimeout(timer); signal.removeEventListener('abort', done); resolve(); }
          signal.addEventListener('abort', done, { once: true });
        });
      }
    },
  };
}

function withSlash(base: string): string {
  return base.endsWith('/') ? base : `${base}/`;
}

const MAX_DOCUMENT_BYTES = 4096;

function getJson(url: URL, signal: AbortSignal): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const request = url.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = request(url, { method: 'GET', signal, rejectUnauthorized: false, headers: { accept: 'application/json' } }, (res) => {
      if (res.statusCode !== 200) { res.resume(); reject(new Error(`answered ${res.statusCode} at ${url.pathname}`)); return; }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_DOCUMENT_BYTES) { req.destroy(new Error(`document larger than ${MAX_DOCUMENT_BYTES} bytes`)); return; }
        chunks.push(c);
      });
      res.on('end', () => {
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch {
          reject(new Error('answer is not JSON'));
        }
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
