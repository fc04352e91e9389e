// Join tokens: what an agent presents to join the cluster as a node.
//
// A join token is `flt1.<id>.<secret>` (discovery/locate.ts makes and parses them). It is shown once, when
// created; the cluster keeps only its SHA-256, as an entry `join-<id>` of the replicated token Secret
// (server/tokens/api-tokens.ts: value base64 of {"sha256", "role": "node", "expires"?}), which is what makes every member
// authenticate it and answer proofs for it. This file adds "description" and "created" to that record; the
// authenticator ignores fields it does not know. A token without expiry is long-lived (pre-imaged SD cards).
import { randomUUID } from 'node:crypto';
import { newJoinToken, tokenSha256 } from '../../discovery/locate.js';
import type { SqliteStore } from '../store/sqlite-store.js';
import type { Proposer } from '../store/proposer.js';
import { StoreError } from '../store/types.js';
import type { StoredObject } from '../store/types.js';
import { TOKENS_SECRET } from './api-tokens.js';
import { SECRET_TYPE_TOKENS } from '../../api-types/index.js';

export const JOIN_TOKENS_PATH = '/apis/flotilla.io/v1/jointokens';
const ENTRY_PREFIX = 'join-';
/** Longest TTL accepted: ten years. Longer than that is what "no ttlSeconds" (no expiry) is for. */
export const MAX_TTL_SECONDS = 10 * 365 * 24 * 3600;
export const MAX_DESCRIPTION = 200;
const WRITE_ATTEMPTS = 5;

export interface JoinTokenRecord { sha256: string; role: 'node'; expires?: string; description?: string; created: string }

/** What listing shows: never the digest. */
export interface JoinTokenInfo { id: string; description?: string; created: string; expires?: string; expired: boolean }

type TokensSecret = StoredObject & { data?: Record<string, string> };

function tokensSecret(store: SqliteStore): TokensSecret | undefined {
  return store.get('secrets', TOKENS_SECRET.namespace, TOKENS_SECRET.name) as TokensSecret | undefined;
}

function decodeRecord(value: string): JoinTokenRecord | undefined {
  try {
    const rec = JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as Partial<JoinTokenRecord>;
    if (typeof rec.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(rec.sha256) || rec.role !== 'node') return undefined;
    return rec as JoinTokenRecord;
  } catch {
    return undefined;
  }
}

/** The stored record of join token `id`, if it exists (expired or not). */
export function joinTokenRecord(store: SqliteStore, id: string): JoinTokenRecord | undefined {
  const value = tokensSecret(store)?.data?.[`${ENTRY_PREFIX}${id}`];
  return value === undefined ? undefined : decodeRecord(value);
}

export function isExpired(rec: { expires?: string }, now: number): boolean {
  return rec.expires !== undefined && Date.parse(rec.expires) <= now;
}

export function listJoinTokens(store: SqliteStore, now: number): JoinTokenInfo[] {
  const out: JoinTokenInfo[] = [];
  for (const [key, value] of Object.entries(tokensSecret(store)?.data ?? {})) {
    if (!key.startsWith(ENTRY_PREFIX)) continue;
    const rec = decodeRecord(value);
    if (!rec) continue;
    out.push({
      id: key.slice(ENTRY_PREFIX.length), created: rec.created, expired: isExpired(rec, now),
      ...(rec.description !== undefined ? { description: rec.description } : {}), ...(rec.expires !== undefined ? { expires: rec.expires } : {}),
    });
  }
  return out.sort((a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id));
}

/** Sets (value) or removes (undefined) one entry of the token Secret, retrying on concurrent writes. */
async function writeEntry(store: SqliteStore, proposer: Proposer, key: string, value: string | undefined): Promise<void> {
  for (let attempt = 0; attempt < WRITE_ATTEMPTS; attempt++) {
    const current = tokensSecret(store);
    const data = { ...(current?.data ?? {}) };
    if (value === undefined) delete data[key];
    else data[key] = value;
    const object: StoredObject = {
      apiVersion: 'v1', kind: 'Secret', type: SECRET_TYPE_TOKENS,
      metadata: { name: TOKENS_SECRET.name, namespace: TOKENS_SECRET.namespace, ...(current ? { resourceVersion: current.metadata.resourceVersion } : {}) },
      data,
    };
    const r = await proposer.propose(current
      ? { op: 'update', resource: 'secrets', object }
      : { op: 'create', resource: 'secrets', object, uid: randomUUID(), now: new Date().toISOString() });
    if (r.ok) return;
    if (r.failure.code !== 409) throw new StoreError(r.failure);
  }
  throw new StoreError({ code: 409, reason: 'Conflict', message: 'the token store kept changing under this write; try again' });
}

export interface CreatedJoinToken extends JoinTokenInfo { token: string }

export async function createJoinToken(store: SqliteStore, proposer: Proposer, input: { ttlSeconds?: number; description?: string }, now: number): Promise<CreatedJoinToken> {
  const { id, token } = newJoinToken();
  const created = new Date(now).toISOString();
  const expires = input.ttlSeconds === undefined ? undefined : new Date(now + input.ttlSeconds * 1000).toISOString();
  const rec: JoinTokenRecord = { sha256: tokenSha256(token), role: 'node', created, ...(expires ? { expires } : {}), ...(input.description !== undefined ? { description: input.description } : {}) };
  await writeEntry(store, proposer, `${ENTRY_PREFIX}${id}`, Buffer.from(JSON.stringify(rec)).toString('base64'));
  return { id, token, created, expired: false, ...(expires ? { expires } : {}), ...(input.description !== undefined ? { description: input.description } : {}) };
}

/** Revokes join token `id`; false when there was none. */
export async function revokeJoinToken(store: SqliteStore, proposer: Proposer, id: string): Promise<boolean> {
  if (tokensSecret(store)?.data?.[`${ENTRY_PREFIX}${id}`] === undefined) return false;
  await writeEntry(store, proposer, `${ENTRY_PREFIX}${id}`, undefined);
  return true;
}

