// User tokens and the admin token: the bearer tokens people (and their kubeconfigs) present.
//
// A user token is opaque (newBearerToken), shown once, and kept as the entry `user-<name>` of the replicated
// token Secret (TOKENS_SECRET, server/tokens/api-tokens.ts): base64 of {"sha256", "role": "user", "user",
// "groups"?, "description"?, "created", "expires"?}: its user in its groups, for RBAC to decide on. A record of
// role "admin" was made before tokens had groups of their own, when every user token was an admin: it stays in
// system:masters (api-tokens.ts). The token's name is its user's name: one token per user.
//
// The admin token is the entry ADMIN_ENTRY. Rotating it replaces its digest in one write, so the old token stops
// working in the commit that makes the new one work; revoking it leaves a record without a digest (not no
// entry), so that the leader bootstrap, which stores <data>/admin-token only while there is no admin entry of
// this cluster (storeAdminToken), cannot bring it back. Every change is one write to the token Secret: every
// member's authenticator re-reads the Secret when its revision changes.
import { tokenDigest, newBearerToken, ADMIN_ENTRY, adminRecordValue, decodeAdminRecord } from './api-tokens.js';
import { TOKENS_SECRET, notFound } from '../objects/service.js';
import type { ObjectService } from '../objects/service.js';
import { StoreError } from '../store/types.js';
import type { StateStore, StoredObject } from '../store/types.js';
import { isExpired } from './join-tokens.js';

export const USER_TOKENS_PATH = '/apis/flotilla.io/v1/usertokens';
const ENTRY_PREFIX = 'user-';
/** A user name: what a Secret data key allows after ENTRY_PREFIX, starting and ending alphanumeric. */
export const USER_NAME = /^[A-Za-z0-9]([-._A-Za-z0-9]{0,198}[A-Za-z0-9])?$/;

export interface UserTokenRecord { sha256: string; role: 'user' | 'admin'; user: string; groups?: string[]; description?: string; created: string; expires?: string }

/** What listing shows: never the digest. `name` is the user's name, or ADMIN_ENTRY for the admin token. */
export interface UserTokenInfo {
  name: string; type: 'user' | 'admin'; user?: string; groups?: string[]; description?: string;
  created?: string; expires?: string; expired: boolean; revoked?: string;
}

export interface CreatedUserToken extends UserTokenInfo { token: string }

export interface UserTokenRequest { user: string; groups?: string[]; ttlSeconds?: number; description?: string }

type TokensSecret = StoredObject & { data?: Record<string, string> };

function decodeUserRecord(value: string): UserTokenRecord | undefined {
  try {
    const rec = JSON.parse(Buffer.from(value, 'base64').toString('utf8')) as Partial<UserTokenRecord>;
    if (typeof rec.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(rec.sha256) || (rec.role !== 'user' && rec.role !== 'admin') || typeof rec.user !== 'string') return undefined;
    return rec as UserTokenRecord;
  } catch {
    return undefined;
  }
}

const encode = (rec: UserTokenRecord): string => Buffer.from(JSON.stringify(rec)).toString('base64');

function userInfo(rec: UserTokenRecord, now: number): UserTokenInfo {
  return {
    name: rec.user, type: 'user', user: rec.user, ...(rec.groups ? { groups: rec.groups } : {}), ...(rec.description !== undefined ? { description: rec.description } : {}),
    created: rec.created, ...(rec.expires !== undefined ? { expires: rec.expires } : {}), expired: isExpired(rec, now),
  };
}

/** The user tokens and the admin token (revoked or not), oldest first. */
export function listUserTokens(store: Pick<StateStore, 'get'>, now: number): UserTokenInfo[] {
  const data = (store.get('secrets', TOKENS_SECRET.namespace, TOKENS_SECRET.name) as TokensSecret | undefined)?.data ?? {};
  const out: UserTokenInfo[] = [];
  const admin = data[ADMIN_ENTRY] === undefined ? undefined : decodeAdminRecord(data[ADMIN_ENTRY]);
  if (admin) {
    out.push({ name: ADMIN_ENTRY, type: 'admin', ...(admin.created ? { created: admin.created } : {}), expired: false, ...(admin.revoked ? { revoked: admin.revoked } : {}) });
  }
  for (const [key, value] of Object.entries(data)) {
    const rec = key.startsWith(ENTRY_PREFIX) ? decodeUserRecord(value) : undefined;
    if (rec) out.push(userInfo(rec, now));
  }
  return out.sort((a, b) => (a.created ?? '').localeCompare(b.created ?? '') || a.name.localeCompare(b.name));
}

const expiry = (now: number, ttlSeconds: number | undefined) => (ttlSeconds === undefined ? {} : { expires: new Date(now + ttlSeconds * 1000).toISOString() });

/** Makes a token for `input.user`; 409 AlreadyExists when the user has one. */
export async function createUserToken(objects: ObjectService, input: UserTokenRequest, now: number): Promise<CreatedUserToken> {
  const token = newBearerToken();
  const rec: UserTokenRecord = {
    sha256: tokenDigest(token), role: 'user', user: input.user, ...(input.groups?.length ? { groups: input.groups } : {}),
    ...(input.description !== undefined ? { description: input.description } : {}), created: new Date(now).toISOString(), ...expiry(now, input.ttlSeconds),
  };
  await objects.updateTokenEntry(`${ENTRY_PREFIX}${input.user}`, (current) => {
    if (current !== undefined) throw new StoreError({ code: 409, reason: 'AlreadyExists', message: `user "${input.user}" has a token already; rotate it (flotilla token rotate ${input.user}) or revoke it first` });
    return encode(rec);
  });
  return { ...userInfo(rec, now), token };
}

/**
 * A new token for `name` (a user, or ADMIN_ENTRY) that replaces the old one in one write. A user token keeps its
 * user, groups and description, and lives `ttlSeconds`, or as long as the old one was made to when not given.
 * A revoked admin token may be rotated: that is how an admin of another token makes a new one. 404 for an
 * unknown user.
 */
export async function rotateToken(objects: ObjectService, name: string, input: { ttlSeconds?: number }, clusterId: string, now: number): Promise<CreatedUserToken> {
  const token = newBearerToken();
  const created = new Date(now).toISOString();
  if (name === ADMIN_ENTRY) {
    if (input.ttlSeconds !== undefined) throw new StoreError({ code: 400, reason: 'BadRequest', message: 'ttlSeconds: the admin token does not expire' });
    await objects.updateTokenEntry(ADMIN_ENTRY, () => adminRecordValue({ sha256: tokenDigest(token), role: 'admin', cluster: clusterId, created }));
    return { name, type: 'admin', created, expired: false, token };
  }
  let rotated: UserTokenRecord | undefined;
  await objects.updateTokenEntry(`${ENTRY_PREFIX}${name}`, (current) => {
    const old = current === undefined ? undefined : decodeUserRecord(current);
    if (!old) throw notFound(`user token "${name}" not found`);
    const lifetime = old.expires === undefined ? undefined : Math.round((Date.parse(old.expires) - Date.parse(old.created)) / 1000);
    const { expires: _old, ...kept } = old;
    rotated = { ...kept, sha256: tokenDigest(token), created, ...expiry(now, input.ttlSeconds ?? lifetime) };
    return encode(rotated);
  });
  return { ...userInfo(rotated!, now), token };
}

/**
 * Revokes the token `name` (a user, or ADMIN_ENTRY: then a record without a digest stays, see the file comment);
 * 404 when there is none (or the admin token is revoked already).
 */
export async function revokeToken(objects: ObjectService, name: string, clusterId: string, now: number): Promise<void> {
  if (name === ADMIN_ENTRY) {
    await objects.updateTokenEntry(ADMIN_ENTRY, (current) => {
      const old = current === undefined ? undefined : decodeAdminRecord(current);
      if (!old?.sha256) throw notFound('the admin token is revoked already');
      return adminRecordValue({ role: 'admin', cluster: clusterId, ...(old.created ? { created: old.created } : {}), revoked: new Date(now).toISOString() });
    });
    return;
  }
  await objects.updateTokenEntry(`${ENTRY_PREFIX}${name}`, (current) => {
    if (current === undefined) throw notFound(`user token "${name}" not found`);
    return undefined;
  });
}
