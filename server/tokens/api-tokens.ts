import { createHash, timingSafeEqual } from 'node:crypto';
import { randomUUID } from 'node:crypto';
import type { SqliteStore } from '../store/sqlite-store.js';
import type { Proposer } from '../store/proposer.js';
import type { StoredObject } from '../store/types.js';
import type { Identity } from '../api/middleware/auth.js';
import { SECRET_TYPE_TOKENS } from '../../api-types/index.js';

/**
 * Bearer tokens are kept in the replicated state as digests only, in the Secret kube-system/flotilla-tokens:
 * one data key per token name, whose value is base64 of {"sha256": hex digest, "role": ...}. Any member can
 * then authenticate any token, and a stolen replica reveals no usable token.
 */
export const TOKENS_SECRET = { namespace: 'kube-system', name: 'flotilla-tokens' } as const;

interface TokenRecord { sha256: string; role: Identity['role']; expires?: string }

export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Authenticates tokens against the replicated token Secret (parsed once per revision of it). */
export function storeTokenAuthenticator(store: SqliteStore, now: () => number = Date.now): (token: string) => Identity | undefined {
  let cachedVersion: string | undefined;
  let table: { name: string; digest: Buffer; rec: TokenRecord }[] = [];
  return (token) => {
    const secret = store.get('secrets', TOKENS_SECRET.namespace, TOKENS_SECRET.name) as (StoredObject & { data?: Record<string, string> }) | undefined;
    if (!secret) return undefined;
    if (secret.metadata.resourceVersion !== cachedVersion) {
      cachedVersion = secret.metadata.resourceVersion;
      table = [];
      for (const [name, value] of Object.entries(secret.data ?? {})) {
        try {
          const rec = JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as TokenRecord;
          if (/^[0-9a-f]{64}$/.test(rec.sha256)) table.push({ name, digest: Buffer.from(rec.sha256, 'hex'), rec });
        } catch { /* a malformed entry authenticates nobody */ }
      }
    }
    const presented = Buffer.from(tokenDigest(token), 'hex');
    let found: Identity | undefined;
    for (const t of table) {
      if (timingSafeEqual(t.digest, presented) && (!t.rec.expires || Date.parse(t.rec.expires) > now())) found = { name: t.name, role: t.rec.role };
    }
    return found;
  };
}

/** Makes sure the token Secret exists and holds `name` with this token's digest (leader bootstrap). */
export async function ensureToken(store: SqliteStore, proposer: Proposer, name: string, token: string, role: Identity['role']): Promise<void> {
  const value = Buffer.from(JSON.stringify({ sha256: tokenDigest(token), role } satisfies TokenRecord)).toString('base64');
  for (let attempt = 0; attempt < 5; attempt++) {
    const current = store.get('secrets', TOKENS_SECRET.namespace, TOKENS_SECRET.name) as (StoredObject & { data?: Record<string, string> }) | undefined;
    if (current?.data?.[name] === value) return;
    const object: StoredObject = {
      apiVersion: 'v1', kind: 'Secret', type: SECRET_TYPE_TOKENS,
      metadata: { name: TOKENS_SECRET.name, namespace: TOKENS_SECRET.namespace, ...(current ? { resourceVersion: current.metadata.resourceVersion } : {}) },
      data: { ...(current?.data ?? {}), [name]: value },
    };
    const r = await proposer.propose(current ? { op: 'update', resource: 'secrets', object } : { op: 'create', resource: 'secrets', object, uid: randomUUID(), now: new Date().toISOString() });
    if (r.ok) return;
    if (r.failure.code !== 409) throw new Error(`storing token ${name}: ${r.failure.message}`);
  }
  throw new Error(`storing token ${name}: kept conflicting with other writes`);
}
