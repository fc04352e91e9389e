import { timingSafeEqual, createHash } from 'node:crypto';
import type { MiddlewareHandler } from 'hono';
import { statusResponse } from './status.js';

export interface Identity { name: string; role: 'admin' | 'node' | 'peer' }

/** Maps a bearer token to who presents it; undefined for an unknown token. */
export type Authenticator = (token: string) => Identity | undefined;

/** An authenticator for a fixed set of tokens, compared in constant time (on their digests). */
export function staticTokens(tokens: Record<string, Identity>): Authenticator {
  const table = Object.entries(tokens).map(([t, id]) => ({ digest: digest(t), id }));
  return (token) => {
    const d = digest(token);
    let found: Identity | undefined;
    for (const e of table) if (timingSafeEqual(e.digest, d)) found = e.id;
    return found;
  };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/** Requires `Authorization: Bearer <token>` on every path except the public ones (health and version). */
export function bearerAuth(opts: { authenticate: Authenticator; publicPaths: readonly string[] }): MiddlewareHandler {
  return async function bearerAuthMiddleware(c, next) {
    if (opts.publicPaths.includes(c.req.path)) return next();
    const header = c.req.header('authorization') ?? '';
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    if (!m) return statusResponse(c, { code: 401, reason: 'Unauthorized', message: 'missing bearer token: send "Authorization: Bearer <token>" (the admin token is in <data>/admin-token)' });
    const who = opts.authenticate(m[1]!);
    if (!who) return statusResponse(c, { code: 401, reason: 'Unauthorized', message: 'invalid bearer token' });
    c.set('identity' as never, who as never);
    return next();
  };
}
