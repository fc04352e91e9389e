// What a Flotilla process tells the network about itself, and the small interface every discovery mechanism
// implements (mDNS in mdns.ts, a static URL list in static.ts).
//
// Discovery only proposes: a Peer is a claim made by someone on the network. Trust is decided later by the
// join token, which is why the fingerprint (of the cluster CA or of the token) is public and never a secret.
import { createHash } from 'node:crypto';

export type Role = 'server' | 'agent';

export interface Advertisement {
  /** The cluster this process belongs to: 1-63 characters, lowercase letters, digits and '-'. */
  clusterId: string;
  role: Role;
  /** Unique within (clusterId, role): a node or member name, 1-63 characters of [a-z0-9._-]. */
  id: string;
  /** Where this process's API answers: an http(s) URL without credentials, at most 200 characters. */
  apiUrl: string;
  /** "algorithm:digest" of the cluster CA or join token, e.g. "sha256:9f86d0...". Public by design. */
  fingerprint: string;
}

export interface Peer extends Advertisement {
  /** IPv4 addresses the peer was seen at (mDNS address records, or the host of a static URL); may be empty. */
  addresses: string[];
}

/** Which peers a browser reports. An absent field matches everything. */
export interface PeerFilter {
  clusterId?: string;
  role?: Role;
}

export interface Discovery {
  /**
   * Makes `ad` visible to browsers until `signal` aborts, then withdraws it (an mDNS goodbye) and resolves.
   * Rejects at once on an invalid advertisement (the network set-up, such as an unknown interface, is checked
   * when the implementation is created).
   */
  advertise(ad: Advertisement, signal: AbortSignal): Promise<void>;
  /**
   * Reports the peers that match `filter` until `signal` aborts, then resolves. `onChange` receives the whole
   * current list (sorted by clusterId, role, id) each time it changes, never an unchanged list; peers that say
   * goodbye, stop answering or let their records expire are dropped from it.
   */
  browse(filter: PeerFilter, onChange: (peers: Peer[]) => void, signal: AbortSignal): Promise<void>;
}

/** Called with a readable reason when something is ignored (a malformed record, an unreachable URL). */
export type WarningSink = (message: string) => void;

const CLUSTER_ID = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const PEER_ID = /^[a-z0-9]([a-z0-9._-]{0,61}[a-z0-9])?$/;
const FINGERPRINT = /^[a-z0-9-]{1,16}:[A-Za-z0-9+/=_.-]{8,200}$/;
const MAX_API_URL = 200;

/** Checks an untrusted value and returns it as an Advertisement; throws an Error naming the bad field. */
export function parseAdvertisement(value: unknown): Advertisement {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`advertisement: expected an object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  const v = value as Record<string, unknown>;
  const known = new Set(['clusterId', 'role', 'id', 'apiUrl', 'fingerprint']);
  for (const key of Object.keys(v)) if (!known.has(key)) throw new Error(`advertisement.${key}: unknown field`);
  const str = (key: string): string => {
    const field = v[key];
    if (typeof field !== 'string') throw new Error(`advertisement.${key}: expected a string, got ${typeof field}`);
    return field;
  };
  const clusterId = str('clusterId');
  if (!CLUSTER_ID.test(clusterId)) {
    throw new Error(`advertisement.clusterId: ${JSON.stringify(clusterId)} must be 1-63 characters of [a-z0-9-], starting and ending with a letter or digit`);
  }
  const role = str('role');
  if (role !== 'server' && role !== 'agent') throw new Error(`advertisement.role: ${JSON.stringify(role)} must be "server" or "agent"`);
  const id = str('id');
  if (!PEER_ID.test(id)) {
    throw new Error(`advertisement.id: ${JSON.stringify(id)} must be 1-63 characters of [a-z0-9._-], starting and ending with a letter or digit`);
  }
  const apiUrl = str('apiUrl');
  if (apiUrl.length > MAX_API_URL) throw new Error(`advertisement.apiUrl: longer than ${MAX_API_URL} characters`);
  let url: URL;
  try {
    url = new URL(apiUrl);
  } catch {
    throw new Error(`advertisement.apiUrl: ${JSON.stringify(apiUrl)} is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`advertisement.apiUrl: ${JSON.stringify(apiUrl)} must use http or https`);
  if (url.username || url.password) throw new Error('advertisement.apiUrl: must not carry credentials');
  const fingerprint = str('fingerprint');
  if (!FINGERPRINT.test(fingerprint)) {
    throw new Error(`advertisement.fingerprint: ${JSON.stringify(fingerprint)} must look like "algorithm:digest" (e.g. "sha256:<hex>")`);
  }
  return { clusterId, role, id, apiUrl, fingerprint };
}

export function matchesFilter(ad: Advertisement, filter: PeerFilter): boolean {
  return (filter.clusterId === undefined || ad.clusterId === filter.clusterId) && (filter.role === undefined || ad.role === filter.role);
}

/** Identity of a peer in a browser's table: a later advertisement with the same key replaces the earlier one. */
export function peerKey(ad: Advertisement): string {
  return `${ad.clusterId}/${ad.role}/${ad.id}`;
}

export function comparePeers(a: Advertisement, b: Advertisement): number {
  return a.clusterId.localeCompare(b.clusterId) || a.role.localeCompare(b.role) || a.id.localeCompare(b.id);
}

export function validateFilter(filter: PeerFilter): void {
  if (filter.clusterId !== undefined && !CLUSTER_ID.test(filter.clusterId)) {
    throw new Error(`filter.clusterId: ${JSON.stringify(filter.clusterId)} is not a valid cluster id`);
  }
  if (filter.role !== undefined && filter.role !== 'server' && filter.role !== 'agent') {
    throw new Error(`filter.role: ${JSON.stringify(filter.role)} must be "server" or "agent"`);
  }
}

// TXT record layout (DNS-SD key=value strings, each at most 255 bytes: the limits above keep them under).
// "v" versions the layout so that a later change can be told apart from garbage.
const TXT_VERSION = '1';

export function encodeTxt(ad: Advertisement): string[] {
  return [`v=${TXT_VERSION}`, `cluster=${ad.clusterId}`, `role=${ad.role}`, `id=${ad.id}`, `api=${ad.apiUrl}`, `fp=${ad.fingerprint}`];
}

/** Decodes TXT strings written by encodeTxt; throws an Error saying what is missing or malformed. */
export function decodeTxt(strings: readonly (string | Uint8Array)[]): Advertisement {
  const fields = new Map<string, string>();
  for (const raw of strings) {
    const s = typeof raw === 'string' ? raw : Buffer.from(raw).toString('utf8');
    const eq = s.indexOf('=');
    if (eq > 0) fields.set(s.slice(0, eq), s.slice(eq + 1));
  }
  const version = fields.get('v');
  if (version !== TXT_VERSION) throw new Error(`TXT record: version ${JSON.stringify(version ?? null)} is not ${TXT_VERSION}`);
  return parseAdvertisement({
    clusterId: fields.get('cluster'),
    role: fields.get('role'),
    id: fields.get('id'),
    apiUrl: fields.get('api'),
    fingerprint: fields.get('fp'),
  });
}

/**
 * The DNS-SD instance label of an advertisement: readable (id and role) and unique across clusters (a hash of
 * the whole key), at most 63 bytes, and free of dots so that it stays one DNS label.
 */
export function instanceLabel(ad: Advertisement): string {
  const hash = createHash('sha256').update(peerKey(ad)).digest('hex').slice(0, 8);
  return `${ad.id.replace(/[^a-z0-9-]/g, '-').slice(0, 40)}-${ad.role}-${hash}`;
}
