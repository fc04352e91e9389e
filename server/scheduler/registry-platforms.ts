// The platforms an image exists for, as its registry says: GET /v2/NAME/manifests/REFERENCE asking for a
// manifest list or OCI image index (the platform of each entry), or, for a single-platform image, its config
// blob's os/architecture/variant. Anonymous, as `docker pull` of a public image: a 401 with a Bearer challenge
// is answered with a token from the realm it names. A short timeout, a cache of answers and failures, and one
// request at a time per image; every failure is "unknown", which never blocks placement (./image-platforms.ts).
import { canonicalImageName } from '../../api-types/index.js';
import type { Platform } from './image-platforms.js';

const MANIFEST_LIST_TYPES = [
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.index.v1+json',
];
const MANIFEST_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
];

export interface RegistryPlatformsOptions {
  /** Per registry request (default 1500 ms): a registry this slow is as good as absent. */
  timeoutMs?: number;
  /** How long an answer is kept (default 10 minutes) and a failure (default 1 minute). */
  ttlMs?: number;
  failureTtlMs?: number;
  now?: () => number;
}

/** Where an image's manifests are: the registry's base URL, the repository and the tag or digest. */
export function manifestLocation(image: string): { base: string; repository: string; reference: string } {
  const name = canonicalImageName(image);
  const slash = name.indexOf('/');
  const host = name.slice(0, slash);
  let rest = name.slice(slash + 1);
  let reference: string;
  const at = rest.indexOf('@');
  if (at >= 0) { reference = rest.slice(at + 1); rest = rest.slice(0, at); } else {
    const colon = rest.lastIndexOf(':');
    reference = rest.slice(colon + 1); rest = rest.slice(0, colon);
  }
  // Docker speaks plain HTTP to loopback registries and TLS to every other one.
  const hostname = host.replace(/:\d+$/, '');
  const loopback = hostname === 'localhost' || /^127\./.test(hostname) || hostname === '[::1]';
  const base = host === 'docker.io' ? 'https://registry-1.docker.io' : `${loopback ? 'http' : 'https'}://${host}`;
  return { base, repository: rest, reference };
}

/** The platforms of a manifest list or OCI index body; entries of platform "unknown" (attestations) left out. */
export function indexPlatforms(body: { manifests?: { platform?: { os?: string; architecture?: string; variant?: string } }[] }): Platform[] {
  const out: Platform[] = [];
  for (const m of body.manifests ?? []) {
    const p = m.platform;
    if (!p?.os || !p.architecture || p.os === 'unknown' || p.architecture === 'unknown') continue;
    out.push({ os: p.os, architecture: p.architecture, ...(p.variant ? { variant: p.variant } : {}) });
  }
  return out;
}

export class RegistryPlatforms {
  readonly #timeoutMs: number;
  readonly #ttlMs: number;
  readonly #failureTtlMs: number;
  readonly #now: () => number;
  readonly #cache = new Map<string, { platforms: Platform[] | undefined; until: number }>();
  readonly #inFlight = new Map<string, Promise<Platform[] | undefined>>();

  constructor(options: RegistryPlatformsOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 1500;
    this.#ttlMs = options.ttlMs ?? 10 * 60_000;
    this.#failureTtlMs = options.failureTtlMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  /** The image's platforms, or undefined when the registry cannot say (unreachable, unknown image, refused). Never rejects. */
  lookup(image: string): Promise<Platform[] | undefined> {
    const key = canonicalImageName(image);
    const cached = this.#cache.get(key);
    if (cached && cached.until > this.#now()) return Promise.resolve(cached.platforms);
    let pending = this.#inFlight.get(key);
    if (!pending) {
      pending = this.#fetchPlatforms(key).catch(() => undefined).then((platforms) => {
        this.#cache.set(key, { platforms, until: this.#now() + (platforms ? this.#ttlMs : this.#failureTtlMs) });
        this.#inFlight.delete(key);
        return platforms;
      });
      this.#inFlight.set(key, pending);
    }
    return pending;
  }

  async #fetchPlatforms(image: string): Promise<Platform[] | undefined> {
    const { base, repository, reference } = manifestLocation(image);
    const token = { value: '' };
    const manifest = await this.#get(`${base}/v2/${repository}/manifests/${reference}`, [...MANIFEST_LIST_TYPES, ...MANIFEST_TYPES], repository, token);
    if (!manifest) return undefined;
    const body = manifest.body as { mediaType?: string; manifests?: unknown[]; config?: { digest?: string } };
    const type = (manifest.type || body.mediaType || '').split(';')[0]!.trim();
    if (MANIFEST_LIST_TYPES.includes(type) || Array.isArray(body.manifests)) {
      const platforms = indexPlatforms(body as Parameters<typeof indexPlatforms>[0]);
      return platforms.length ? platforms : undefined;
    }
    if (!body.config?.digest) return undefined;
    const config = await this.#get(`${base}/v2/${repository}/blobs/${body.config.digest}`, ['application/json', '*/*'], repository, token);
    const c = config?.body as { os?: string; architecture?: string; variant?: string } | undefined;
    if (!c?.os || !c.architecture) return undefined;
    return [{ os: c.os, architecture: c.architecture, ...(c.variant ? { variant: c.variant } : {}) }];
  }

  /** GET as JSON; one retry with a Bearer token when challenged. undefined for any answer but 200. */
  async #get(url: string, accept: string[], repository: string, token: { value: string }): Promise<{ type: string; body: unknown } | undefined> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const headers: Record<string, string> = { accept: accept.join(', ') };
      if (token.value) headers.authorization = `Bearer ${token.value}`;
      const res = await fetch(url, { headers, signal: AbortSignal.timeout(this.#timeoutMs) });
      if (res.status === 401 && attempt === 0 && !token.value) {
        const challenge = res.headers.get('www-authenticate') ?? '';
        await res.body?.cancel();
        token.value = await this.#token(challenge, repository);
        if (!token.value) return undefined;
        continue;
      }
      if (res.status !== 200) { await res.body?.cancel(); return undefined; }
      return { type: res.headers.get('content-type') ?? '', body: await res.json() };
    }
    return undefined;
  }

  /** An anonymous pull token for the repository from a `Bearer realm="...",service="..."` challenge; '' when none. */
  async #token(challenge: string, repository: string): Promise<string> {
    if (!/^Bearer\s/i.test(challenge)) return '';
    const params = new Map([...challenge.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1]!.toLowerCase(), m[2]!]));
    const realm = params.get('realm');
    if (!realm) return '';
    const url = new URL(realm);
    if (params.get('service')) url.searchParams.set('service', params.get('service')!);
    url.searchParams.set('scope', params.get('scope') ?? `repository:${repository}:pull`);
    const res = await fetch(url, { signal: AbortSignal.timeout(this.#timeoutMs) });
    if (res.status !== 200) { await res.body?.cancel(); return ''; }
    const body = await res.json() as { token?: string; access_token?: string };
    return body.token ?? body.access_token ?? '';
  }
}
