// The keys Secrets are encrypted with at rest: <data>/encryption-config.json (0600), a Kubernetes
// EncryptionConfiguration (apiserver.config.k8s.io/v1, as kube-apiserver's --encryption-provider-config and
// k3s' server/cred/encryption-config.json) with one aesgcm provider for secrets and identity after it, so that a
// Secret stored before encryption was on is still read. The first key encrypts; every key decrypts. Every member
// holds the same file: a joining server receives it from the cluster (over TLS verified against the pinned CA,
// with the cluster secret), and rotation hands each change to every member before anything is written with it.
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, existsSync, fsyncSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const ENCRYPTION_CONFIG_FILE = 'encryption-config.json';

/** One AES-256 key: its name (part of every value it encrypted) and its 32 bytes, base64. */
export interface EncryptionKey { name: string; secret: string }

export interface EncryptionConfiguration {
  kind: 'EncryptionConfiguration';
  apiVersion: 'apiserver.config.k8s.io/v1';
  resources: [{ resources: ['secrets']; providers: [{ aesgcm: { keys: EncryptionKey[] } }, { identity: Record<string, never> }] }];
}

/** A key name as Kubernetes allows them in an EncryptionConfiguration: no colon (it separates the stored prefix). */
const KEY_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export function encryptionConfiguration(keys: EncryptionKey[]): EncryptionConfiguration {
  return {
    kind: 'EncryptionConfiguration', apiVersion: 'apiserver.config.k8s.io/v1',
    resources: [{ resources: ['secrets'], providers: [{ aesgcm: { keys } }, { identity: {} }] }],
  };
}

/** A new key, named after the time it was made (as k3s names its keys: aesgcmkey-<timestamp>). */
export function newEncryptionKey(now: Date = new Date()): EncryptionKey {
  return { name: `aesgcmkey-${now.toISOString().replace(/[-:.TZ]/g, '')}-${randomBytes(3).toString('hex')}`, secret: randomBytes(32).toString('base64') };
}

/**
 * The keys of an EncryptionConfiguration as this server writes it (what `what` names, for the error), first one
 * primary. Anything else (another provider, another resource, a key of the wrong length, an unknown field) is
 * refused with what is wrong: a server must never guess how its Secrets are protected.
 */
export function parseEncryptionConfiguration(value: unknown, what: string): EncryptionKey[] {
  const fail = (message: string): never => { throw new Error(`${what}: ${message}`); };
  const object = (v: unknown, path: string, fields: string[]): Record<string, unknown> => {
    if (v === null || typeof v !== 'object' || Array.isArray(v)) fail(`${path} must be an object`);
    const unknown = Object.keys(v as object).filter((k) => !fields.includes(k));
    if (unknown.length > 0) fail(`${path}: unknown field "${unknown[0]}"`);
    return v as Record<string, unknown>;
  };
  const top = object(value, 'the configuration', ['kind', 'apiVersion', 'resources']);
  if (top.kind !== 'EncryptionConfiguration' || top.apiVersion !== 'apiserver.config.k8s.io/v1') fail('kind must be EncryptionConfiguration, apiVersion apiserver.config.k8s.io/v1');
  if (!Array.isArray(top.resources) || top.resources.length !== 1) fail('resources must hold exactly one entry (secrets)');
  const entry = object((top.resources as unknown[])[0], 'resources[0]', ['resources', 'providers']);
  if (!Array.isArray(entry.resources) || entry.resources.length !== 1 || entry.resources[0] !== 'secrets') fail('resources[0].resources must be ["secrets"]');
  const providers = entry.providers;
  if (!Array.isArray(providers) || providers.length !== 2) fail('resources[0].providers must be [{aesgcm: ...}, {identity: {}}]');
  const aesgcm = object(object((providers as unknown[])[0], 'providers[0]', ['aesgcm']).aesgcm, 'providers[0].aesgcm', ['keys']);
  const identity = object((providers as unknown[])[1], 'providers[1]', ['identity']);
  object(identity.identity, 'providers[1].identity', []);
  if (!Array.isArray(aesgcm.keys) || aesgcm.keys.length === 0) fail('providers[0].aesgcm.keys must hold at least one key');
  const names = new Set<string>();
  return (aesgcm.keys as unknown[]).map((k, i) => {
    const key = object(k, `keys[${i}]`, ['name', 'secret']);
    if (typeof key.name !== 'string' || !KEY_NAME.test(key.name)) fail(`keys[${i}].name must match ${KEY_NAME.source}`);
    if (names.has(key.name as string)) fail(`keys[${i}].name "${String(key.name)}" is there twice`);
    names.add(key.name as string);
    if (typeof key.secret !== 'string' || Buffer.from(key.secret, 'base64').length !== 32 || Buffer.from(key.secret, 'base64').toString('base64') !== key.secret) {
      fail(`keys[${i}].secret must be 32 bytes in base64 (AES-256)`);
    }
    return { name: key.name as string, secret: key.secret as string };
  });
}

/** The keys of <data>/encryption-config.json; undefined when there is no such file. */
export function loadEncryptionKeys(dataDir: string): EncryptionKey[] | undefined {
  const path = join(dataDir, ENCRYPTION_CONFIG_FILE);
  if (!existsSync(path)) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`${path} is not JSON (${(err as Error).message})`);
  }
  return parseEncryptionConfiguration(parsed, path);
}

/** Writes <data>/encryption-config.json (0600) in place of the old one, atomically and durably. */
export function saveEncryptionKeys(dataDir: string, keys: EncryptionKey[]): void {
  const path = join(dataDir, ENCRYPTION_CONFIG_FILE);
  const partial = `${path}.partial`;
  const fd = openSync(partial, 'w', 0o600);
  try {
    writeSync(fd, `${JSON.stringify(encryptionConfiguration(keys), null, 2)}\n`);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  chmodSync(partial, 0o600);
  renameSync(partial, path);
}
