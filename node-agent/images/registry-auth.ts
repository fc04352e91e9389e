// Registry credentials from a pod's imagePullSecrets, matched to an image exactly as the kubelet matches them
// (k8s.io/kubernetes pkg/credentialprovider: secrets.MakeDockerKeyring, BasicDockerKeyring.Add and Lookup):
// - a `kubernetes.io/dockerconfigjson` Secret contributes the `auths` of its `.dockerconfigjson`, a legacy
//   `kubernetes.io/dockercfg` Secret the whole map of its `.dockercfg`; other types contribute nothing;
// - a location (`https://reg.lan:5000/team`, `reg.lan`, `*.reg.lan`, `https://index.docker.io/v1/`) loses its
//   scheme and a /v1/ or /v2/ path prefix; it matches an image repository (docker.io/library/nginx,
//   reg.lan:5000/team/app) when the ports are equal, the host has as many dot-separated parts, each part matches as
//   a glob (`*`, `?`, `[a-z]`), and the location's path is a prefix of the repository's path;
// - every matching location's credentials are returned, the longest locations first (reverse string order),
//   each location's in the order of the pull secrets; Docker Hub images fall back to index.docker.io's.
// The pull tries them in that order until one works (node-agent/images/pull.ts).
import { DOCKER_CONFIG_KEYS, parseImageReference, repositoryOf } from '../../api-types/index.js';
import { secretValues } from '../container-config.js';
import type { PodInputs } from '../pod-actions.js';
import type { RegistryAuth } from '../runtime/types.js';

/** One credential for an image, with the pull secret it came from (messages name it, never its contents). */
export interface PullCredential {
  auth: RegistryAuth;
  secret: string;
}

/** A pull secret whose Docker config cannot be read: the pull fails with this (ErrImagePull), as the kubelet's does. */
export class PullSecretError extends Error {
  constructor(readonly secret: string, reason: string) {
    super(`pull secret "${secret}": ${reason}`);
    this.name = 'PullSecretError';
  }
}

const DEFAULT_REGISTRY_HOST = 'index.docker.io';

/** A location or repository without its scheme, split as Go's url.Parse splits "https://" + it. */
function schemeless(location: string): { host: string; path: string } {
  const slash = location.indexOf('/');
  return slash < 0 ? { host: location, path: '' } : { host: location.slice(0, slash), path: location.slice(slash) };
}

/** Host parts and port, as the kubelet's SplitURL (net.SplitHostPort, else the whole host without a port). */
function splitHost(host: string): { parts: string[]; port: string } {
  const bracketed = /^\[([^\]]*)\]:(.*)$/.exec(host);
  if (bracketed) return { parts: bracketed[1]!.split('.'), port: bracketed[2]! };
  const colon = host.indexOf(':');
  // No port, or too many colons to be host:port.
  if (colon < 0 || host.lastIndexOf(':') !== colon) return { parts: host.split('.'), port: '' };
  return { parts: host.slice(0, colon).split('.'), port: host.slice(colon + 1) };
}

/** Go's filepath.Match for one host part (no separators inside): `*`, `?`, `[...]` with `^` negation, `\` escapes. */
function globMatch(pattern: string, text: string): boolean {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') re += '.*';
    else if (c === '?') re += '.';
    else if (c === '\\' && i + 1 < pattern.length) re += `\\${pattern[++i]}`;
    else if (c === '[') {
      const end = pattern.indexOf(']', i + 1);
      if (end < 0) return false; // Go: ErrBadPattern, which the kubelet reads as no match
      const body = pattern.slice(i + 1, end).replace(/\\/g, '\\\\');
      re += body.startsWith('^') ? `[^${body.slice(1)}]` : `[${body}]`;
      i = end;
    } else re += c.replace(/[.+(){}|$]/g, '\\$&');
  }
  return new RegExp(`${re}$`).test(text);
}

/** The kubelet's URLsMatchStr: whether a keyring location covers a repository. */
export function locationMatches(location: string, repository: string): boolean {
  const glob = schemeless(location);
  const target = schemeless(repository);
  const g = splitHost(glob.host);
  const t = splitHost(target.host);
  if (g.port !== t.port || g.parts.length !== t.parts.length || !target.path.startsWith(glob.path)) return false;
  return g.parts.every((part, i) => globMatch(part, t.parts[i]!));
}

/** The kubelet's isDefaultRegistryMatch: whether a repository lives on Docker Hub. */
function isDefaultRegistry(repository: string): boolean {
  const slash = repository.indexOf('/');
  const first = slash < 0 ? repository : repository.slice(0, slash);
  if (first === '') return false;
  if (slash < 0 || first === 'docker.io' || first === 'index.docker.io') return true;
  return !/[.:]/.test(first);
}

/** Username and password of a Docker config entry: `auth` (base64 of user:password, padded or not) wins. */
function entryCredentials(secret: string, location: string, entry: unknown): { username: string; password: string; email?: string } {
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw new PullSecretError(secret, `entry "${location}" is not an object`);
  const e = entry as { username?: unknown; password?: unknown; email?: unknown; auth?: unknown };
  const text = (v: unknown) => (typeof v === 'string' ? v : '');
  const out: { username: string; password: string; email?: string } = { username: text(e.username), password: text(e.password) };
  if (typeof e.email === 'string') out.email = e.email;
  const auth = text(e.auth);
  if (auth === '') return out;
  const decoded = Buffer.from(auth.trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) throw new PullSecretError(secret, `entry "${location}": unable to parse auth field, must be formatted as base64(username:password)`);
  return { ...out, username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** The kubelet's BasicDockerKeyring: credentials by normalised location, looked up by image. */
export class DockerKeyring {
  readonly #creds = new Map<string, PullCredential[]>();
  #index: string[] = [];

  /** Adds the entries of one Docker config (location → entry) from pull secret `secret`. Throws PullSecretError. */
  add(secret: string, config: Record<string, unknown>): void {
    for (const [location, entry] of Object.entries(config)) {
      const { username, password, email } = entryCredentials(secret, location, entry);
      const { host, path } = schemeless(location.replace(/^https?:\/\//, ''));
      const effective = path.startsWith('/v2/') || path.startsWith('/v1/') ? path.slice(3) : path;
      const key = effective !== '' && effective !== '/' ? host + effective : host;
      const auth: RegistryAuth = { username, password, serveraddress: host };
      if (email !== undefined) auth.email = email;
      const list = this.#creds.get(key) ?? [];
      list.push({ auth, secret });
      this.#creds.set(key, list);
    }
    // More specific locations first: for quay.io/coreos/etcd, quay.io/coreos before quay.io.
    this.#index = [...this.#creds.keys()].sort().reverse();
  }

  /** The credentials for an image, in the order to try them; none for a name Docker cannot parse. */
  lookup(image: string): PullCredential[] {
    let repository: string;
    try {
      repository = repositoryOf(parseImageReference(image));
    } catch {
      return [];
    }
    const found = this.#index.filter((key) => locationMatches(key, repository)).flatMap((key) => this.#creds.get(key)!);
    if (found.length > 0) return found;
    return isDefaultRegistry(repository) ? [...this.#creds.get(DEFAULT_REGISTRY_HOST) ?? []] : [];
  }
}

/** What a pod's imagePullSecrets give its pulls. */
export interface PodPullCredentials {
  /** Named pull secrets that do not exist: the kubelet warns (FailedToRetrieveImagePullSecret) and pulls anyway. */
  missing: string[];
  /** The credentials for an image, in the order to try them. Throws PullSecretError when a pull secret is unreadable. */
  lookup(image: string): PullCredential[];
}

/**
 * The credentials of a pod's imagePullSecrets (its namespace's Secrets, from the pod's inputs). Entries with an
 * empty name are skipped silently, as the kubelet skips them; Secrets of other types contribute nothing.
 */
export function podPullCredentials(inputs: PodInputs): PodPullCredentials {
  const keyring = new DockerKeyring();
  const missing: string[] = [];
  let unreadable: PullSecretError | undefined;
  for (const { name } of inputs.pod.spec.imagePullSecrets ?? []) {
    if (name === '') continue;
    const secret = inputs.secrets[name];
    if (!secret) {
      missing.push(name);
      continue;
    }
    try {
      addSecret(keyring, name, secret.type, secretValues(inputs, name) ?? {});
    } catch (err) {
      if (!(err instanceof PullSecretError)) throw err;
      unreadable ??= err;
    }
  }
  return {
    missing,
    lookup: (image) => {
      if (unreadable) throw unreadable;
      return keyring.lookup(image);
    },
  };
}

/** Adds a pull secret's Docker config to a keyring (secrets.MakeDockerKeyring). Throws PullSecretError. */
function addSecret(keyring: DockerKeyring, name: string, type: string | undefined, values: Record<string, string>): void {
  const key = type === undefined ? undefined : DOCKER_CONFIG_KEYS[type];
  const text = key === undefined ? undefined : values[key];
  if (key === undefined || !text) return;
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch (err) {
    throw new PullSecretError(name, `${key} is not valid JSON: ${(err as Error).message}`);
  }
  const entries = type === 'kubernetes.io/dockerconfigjson' ? (config as { auths?: unknown } | null)?.auths : config;
  if (entries === undefined || entries === null) return;
  if (typeof entries !== 'object' || Array.isArray(entries)) throw new PullSecretError(name, `${key} does not map registries to credentials`);
  keyring.add(name, entries as Record<string, unknown>);
}
