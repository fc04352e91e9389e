import { timingSafeEqual, createHash, type X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { TLSSocket } from 'node:tls';
import type { Context, MiddlewareHandler } from 'hono';
import { certificateInfo } from '../../../client/pki.js';
import { SERVER_GROUP, identity, type Identity } from '../../auth/identity.js';
export * from '../../auth/identity.js';
import { statusResponse } from '../status.js';
import { requestInfo } from '../request-info.js';
import { authorize, type Policy } from '../../auth/policy.js';
import { attributesOf } from '../../auth/rbac.js';

/** What a request presents: a bearer token, a client certificate (verified against the cluster CA), or both. */
export interface Credential { token?: string; certificate?: X509Certificate }

/** Maps what a request presents to who presents it; undefined when it proves no one. */
export type Authenticator = (credential: Credential) => Identity | undefined;

/**
 * The client certificate of the request's TLS connection, when it presented one that the TLS layer verified
 * against the cluster CA (the server asks for one with `requestCert` and the CA as `ca`, and lets unverified
 * connections through for bearer tokens: `rejectUnauthorized: false`). Undefined when none was presented, when
 * it did not verify, or when the request did not come over TLS.
 */
export function peerCertificate(c: Context): X509Certificate | undefined {
  const socket = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming?.socket;
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  return socket.getPeerX509Certificate();
}

/** The subject organization (O) of the client certificates servers present to each other (and to agents). */
export const SERVERS_ORGANIZATION = SERVER_GROUP;
/** The common name of member `memberId`'s certificate. */
export function serverCommonName(memberId: number): string {
  return `flotilla:server:${memberId}`;
}

/**
 * A CA-verified certificate of a cluster member (O flotilla:servers, CN flotilla:server:<id>) is that member,
 * as a peer; anything else is not a server.
 */
export function serverCertificateIdentity(cert: X509Certificate): Identity | undefined {
  const info = certificateInfo(cert);
  if (!info.organizations.includes(SERVERS_ORGANIZATION) || !/^flotilla:server:[1-9]\d*$/.test(info.commonName)) return undefined;
  return identity(info.commonName, [SERVER_GROUP]);
}

/** An authenticator for a fixed set of bearer tokens, compared in constant time (on their digests). */
export function staticTokens(tokens: Record<string, Identity>): Authenticator {
  const table = Object.entries(tokens).map(([t, id]) => ({ digest: digest(t), id }));
  return ({ token }) => {
    if (token === undefined) return undefined;
    const d = digest(token);
    let found: Identity | undefined;
    for (const e of table) if (timingSafeEqual(e.digest, d)) found = e.id;
    return found;
  };
}

function digest(s: string): Buffer {
  return createHash('sha256').update(s).digest();
}

/**
 * Requires a credential on every path except the public ones (health and version): `Authorization: Bearer
 * <token>`, or a client certificate of the cluster CA (peerCertificate). Both go to one `authenticate` step.
 */
export function bearerAuth(opts: { authenticate: Authenticator; publicPaths: readonly string[] }): MiddlewareHandler {
  return async function bearerAuthMiddleware(c, next) {
    if (opts.publicPaths.includes(c.req.path)) return next();
    const header = c.req.header('authorization');
    const m = header === undefined ? undefined : /^Bearer\s+(\S+)$/i.exec(header);
    const certificate = peerCertificate(c);
    if (header !== undefined && !m) return statusResponse(c, { code: 401, reason: 'Unauthorized', message: 'malformed Authorization header: send "Authorization: Bearer <token>"' });
    if (!m && !certificate) return statusResponse(c, { code: 401, reason: 'Unauthorized', message: 'missing bearer token: send "Authorization: Bearer <token>" (the admin token is in <data>/admin-token)' });
    const who = opts.authenticate({ ...(m ? { token: m[1]! } : {}), ...(certificate ? { certificate } : {}) });
    if (!who) return statusResponse(c, { code: 401, reason: 'Unauthorized', message: m ? 'invalid bearer token' : 'the client certificate names no known identity' });
    c.set('identity' as never, who as never);
    return next();
  };
}

/** Who made the request, as bearerAuth established it (undefined on the public paths). */
export function identityOf(c: Context): Identity | undefined {
  return c.get('identity' as never) as Identity | undefined;
}

/**
 * Refuses, with 403 and Kubernetes' Forbidden Status, every request the policy (server/auth/policy.ts) does not
 * allow: the one authorization step in front of every route. The public paths (no identity) are served before.
 */
export function authorization(policy: Policy): MiddlewareHandler {
  return async function authorizationMiddleware(c, next) {
    const who = identityOf(c);
    if (!who) return next();
    const info = requestInfo(c.req.method, c.req.path, c.req.query('watch'));
    const decision = authorize(policy, attributesOf(who, info, c.req.method, c.req.path), info);
    if (decision.allowed) return next();
    return statusResponse(c, {
      code: 403, reason: 'Forbidden', message: decision.message,
      ...(info ? { details: { ...(info.name !== undefined ? { name: info.name } : {}), group: info.group, kind: info.resource } } : {}),
    });
  };
}
