import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { TOKENS_SECRET } from '../objects/service.js';
import type { ObjectService } from '../objects/service.js';
import { StoreError } from '../store/types.js';
import type { StateStore, StoredObject } from '../store/types.js';
import { BOOTSTRAPPERS_GROUP, MASTERS_GROUP, identity, type Identity } from '../api/middleware/auth.js';

/**
 * Bearer tokens are kept in the replicated state as digests only, in the Secret TOKENS_SECRET: one data key per
 * token name, whose value is base64 of {"sha256": hex digest, "role": ..., "expires"?, "user"?, "groups"?}. Any
 * member can then authenticate any token, and a stolen replica reveals no usable token. An entry without a
 * valid digest (a revoked admin token, server/tokens/user-tokens.ts) authenticates nobody.
 *
 * The role says what the entry is: "node" a join token (system:bootstrap:<id>, in system:bootstrappers, as
 * Kubernetes' bootstrap tokens), "user" a user token (its user, in its groups), "admin" the admin token and the
 * user tokens made before tokens had groups of their own (all of them admins then): those are in system:masters,
 * so that a cluster made before RBAC keeps its admins.
 */
interface TokenRecord { sha256: string; role: TokenRole; expires?: string; user?: string; groups?: string[] }
export type TokenRole = 'admin' | 'user' | 'node';

/** The entry prefix of join tokens (`join-<id>`, server/tokens/join-tokens.ts). */
export const JOIN_ENTRY_PREFIX = 'join-';

/** Who an entry's token authenticates as (see TokenRecord); undefined for an entry of no known role. */
function recordIdentity(name: string, rec: TokenRecord): Identity | undefined {
  const groups = rec.groups ?? [];
  switch (rec.role) {
    case 'admin': return identity(rec.user ?? name, groups.includes(MASTERS_GROUP) ? groups : [...groups, MASTERS_GROUP]);
    case 'user': return rec.user === undefined ? undefined : identity(rec.user, groups);
    case 'node': return name.startsWith(JOIN_ENTRY_PREFIX) ? identity(`system:bootstrap:${name.slice(JOIN_ENTRY_PREFIX.length)}`, [BOOTSTRAPPERS_GROUP]) : undefined;
    default: return undefined;
  }
}

/** The entry of the admin token. */
export const ADMIN_ENTRY = 'admin';

/** A new opaque bearer token (admin and user tokens): 192 random bits. */
export function newBearerToken(): string {
  return randomBytes(24).toString('base64url');
}

export function tokenDigest(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Authenticates tokens against the replicated token Secret (parsed once per revision of it). */
export function storeTokenAuthenticator(store: Pick<StateStore, 'get'>, now: () => number = Date.now): (token: string) => Identity | undefined {
  let cachedVersion: string | undefined;
  let table: { digest: Buffer; rec: TokenRecord; who: Identity }[] = [];
  return (token) => {
    const secret = store.get('secrets', TOKENS_SECRET.namespace, TOKENS_SECRET.name) as (StoredObject & { data?: Record<string, string> }) | undefined;
    if (!secret) return undefined;
    if (secret.metadata.resourceVersion !== cachedVersion) {
      cachedVersion = secret.metadata.resourceVersion;
      table = [];
      for (const [name, value] of Object.entries(secret.data ?? {})) {
        try {
          const rec = JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as TokenRecord;
          const who = recordIdentity(name, rec);
          if (/^[0-9a-f]{64}$/.test(rec.sha256) && who) table.push({ digest: Buffer.from(rec.sha256, 'hex'), rec, who });
        } catch { /* a malformed entry authenticates nobody */ }
      }
    }
    const presented = Buffer.from(tokenDigest(token), 'hex');
    let found: Identity | undefined;
    for (const t of table) {
      if (timingSafeEqual(t.digest, presented) && (!t.rec.expires || Date.parse(t.rec.expires) > now())) {
        found = t.who;
      }
    }
    return found;
  };
}

/**
 * Stores the digest of the admin token of `<data>/admin-token` as the cluster's admin token (leader bootstrap),
 * unless the cluster has an admin entry of its own already: once stored, the admin token changes only by
 * `flotilla token rotate admin` or revocation, so an old admin-token file on a restarted or another member never
 * brings a rotated or revoked token back. An entry made for another cluster (`cluster` differs, as in a state
 * restored from a backup into a new cluster, or written before entries named their cluster) is replaced.
 * Returns whether the stored admin token is this one.
 */
export async function storeAdminToken(objects: ObjectService, token: string, clusterId: string, now: number): Promise<boolean> {
  let current = true;
  try {
    await objects.updateTokenEntry(ADMIN_ENTRY, (value) => {
      if (ownAdminEntry(value, clusterId)) {
        current = !supersedes(value, token, clusterId);
        return value;
      }
      current = true;
      return adminRecordValue({ sha256: tokenDigest(token), role: 'admin', cluster: clusterId, created: new Date(now).toISOString() });
    });
  } catch (err) {
    throw new Error(`storing the admin token: ${err instanceof StoreError ? err.failure.message : String(err)}`);
  }
  return current;
}

/** Whether the cluster's own admin entry holds another token than `token` (the admin token was rotated or revoked since). */
export function adminTokenSuperseded(store: Pick<StateStore, 'get'>, token: string, clusterId: string): boolean {
  const secret = store.get('secrets', TOKENS_SECRET.namespace, TOKENS_SECRET.name) as (StoredObject & { data?: Record<string, string> }) | undefined;
  return supersedes(secret?.data?.[ADMIN_ENTRY], token, clusterId);
}

function ownAdminEntry(value: string | undefined, clusterId: string): value is string {
  return value !== undefined && decodeAdminRecord(value)?.cluster === clusterId;
}

function supersedes(value: string | undefined, token: string, clusterId: string): boolean {
  return ownAdminEntry(value, clusterId) && decodeAdminRecord(value)?.sha256 !== tokenDigest(token);
}

/** The admin entry: a digest, or none once revoked (`revoked` says when); `cluster` is the id of the cluster it was made in. */
export interface AdminTokenRecord { sha256?: string; role: 'admin'; cluster?: string; created?: string; revoked?: string }

export function decodeAdminRecord(value: string): AdminTokenRecord | undefined {
  try {
    const rec = JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as Partial<AdminTokenRecord>;
    return rec.role === 'admin' ? rec as AdminTokenRecord : undefined;
  } catch {
    return undefined;
  }
}

export function adminRecordValue(rec: AdminTokenRecord): string {
  return Buffer.from(JSON.stringify(rec)).toString('base64');
}
