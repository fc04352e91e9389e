import { createHash, timingSafeEqual } from 'node:crypto';
import { TOKENS_SECRET } from '../objects/service.js';
import type { ObjectService } from '../objects/service.js';
import { StoreError } from '../store/types.js';
import type { StateStore, StoredObject } from '../store/types.js';
import type { Identity } from '../api/middleware/auth.js';

/**
 * Bearer tokens are kept in the replicated state as digests only, in the Secret TOKENS_SECRET: one data key per
 * token name, whose value is base64 of {"sha256": hex digest, "role": ...}. Any member can then authenticate any
 * token, and a stolen replica reveals no usable token.
 */
interface TokenRecord { sha256: string; role: Identity['role']; expires?: string }

export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Authenticates tokens against the replicated token Secret (parsed once per revision of it). */
export function storeTokenAuthenticator(store: Pick<StateStore, 'get'>, now: () => number = Date.now): (token: string) => Identity | undefined {
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
export async function ensureToken(objects: ObjectService, name: string, token: string, role: Identity['role']): Promise<void> {
  const value = Buffer.from(JSON.stringify({ sha256: tokenDigest(token), role } satisfies TokenRecord)).toString('base64');
  try {
    await objects.putTokenEntry(name, value);
  } catch (err) {
    throw new Error(`storing token ${name}: ${err instanceof StoreError ? err.failure.message : String(err)}`);
  }
}
