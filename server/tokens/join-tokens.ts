// Join tokens: what an agent presents to join the cluster as a node.
//
// A join token is `flt1.<id>.<secret>` (discovery/locate.ts makes and parses them). It is shown once, when
// created; the cluster keeps only its SHA-256, as an entry `join-<id>` of the replicated token Secret
// (TOKENS_SECRET, server/tokens/api-tokens.ts: value base64 of {"sha256", "role": "node", "expires"?}), which is what makes every member
// authenticate it and answer proofs for it. This file adds "description" and "created" to that record; the
// authenticator ignores fields it does not know. A token without expiry is long-lived (pre-imaged SD cards).
import { newJoinToken, tokenSha256 } from '../../discovery/locate.js';
import { TOKENS_SECRET } from '../objects/service.js';
import type { ObjectService } from '../objects/service.js';
import type { StateStore, StoredObject } from '../store/types.js';
import { JOIN_ENTRY_PREFIX } from './api-tokens.js';

export const JOIN_TOKENS_PATH = '/apis/flotilla.io/v1/jointokens';
/** Longest TTL accepted: ten years. Longer than that is what "no ttlSeconds" (no expiry) is for. */
export const MAX_TTL_SECONDS = 10 * 365 * 24 * 3600;
export const MAX_DESCRIPTION = 200;

export interface JoinTokenRecord { sha256: string; role: 'node'; expires?: string; description?: string; created: string }

/** What listing shows: never the digest. */
export interface JoinTokenInfo { id: string; description?: string; created: string; expires?: string; expired: boolean }

type TokensSecret = StoredObject & { data?: Record<string, string> };

function tokensSecret(store: Pick<StateStore, 'get'>): TokensSecret | undefined {
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
export function joinTokenRecord(store: Pick<StateStore, 'get'>, id: string): JoinTokenRecord | undefined {
  const value = tokensSecret(store)?.data?.[`${JOIN_ENTRY_PREFIX}${id}`];
  return value === undefined ? undefined : decodeRecord(value);
}

export function isExpired(rec: { expires?: string }, now: number): boolean {
  return rec.expires !== undefined && Date.parse(rec.expires) <= now;
}

export function listJoinTokens(store: Pick<StateStore, 'get'>, now: number): JoinTokenInfo[] {
  const out: JoinTokenInfo[] = [];
  for (const [key, value] of Object.entries(tokensSecret(store)?.data ?? {})) {
    if (!key.startsWith(JOIN_ENTRY_PREFIX)) continue;
    const rec = decodeRecord(value);
    if (!rec) continue;
    out.push({
      id: key.slice(JOIN_ENTRY_PREFIX.length), created: rec.created, expired: isExpired(rec, now),
      ...(rec.description !== undefined ? { description: rec.description } : {}), ...(rec.expires !== undefined ? { expires: rec.expires } : {}),
    });
  }
  return out.sort((a, b) => a.created.localeCompare(b.created) || a.id.localeCompare(b.id));
}

export interface CreatedJoinToken extends JoinTokenInfo { token: string }

export async function createJoinToken(objects: ObjectService, input: { ttlSeconds?: number; description?: string }, now: number): Promise<CreatedJoinToken> {
  const { id, token } = newJoinToken();
  const created = new Date(now).toISOString();
  const expires = input.ttlSeconds === undefined ? undefined : new Date(now + input.ttlSeconds * 1000).toISOString();
  const rec: JoinTokenRecord = { sha256: tokenSha256(token), role: 'node', created, ...(expires ? { expires } : {}), ...(input.description !== undefined ? { description: input.description } : {}) };
  await objects.putTokenEntry(`${JOIN_ENTRY_PREFIX}${id}`, Buffer.from(JSON.stringify(rec)).toString('base64'));
  return { id, token, created, expired: false, ...(expires ? { expires } : {}), ...(input.description !== undefined ? { description: input.description } : {}) };
}

/** Revokes join token `id`; false when there was none. */
export function revokeJoinToken(objects: ObjectService, id: string): Promise<boolean> {
  return objects.putTokenEntry(`${JOIN_ENTRY_PREFIX}${id}`, undefined);
}

