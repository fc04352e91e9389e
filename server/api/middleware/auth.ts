import { timingSafeEqual, createHash, type X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { TLSSocket } from 'node:tls';
import type { Context, MiddlewareHandler } from 'hono';
import { NODE_GROUP, SERVER_GROUP, certificateInfo, nodeNameOfCommonName } from '../../../client/pki.js';
import { statusResponse } from '../status.js';
import { requestInfo } from '../request-info.js';
import type { NodeGraph } from '../../objects/node-graph.js';
import { authorizeBootstrap, authorizeNode, pathForbidden, rbacForbidden, type Decision } from './node-authorizer.js';
import type { RequestInfo } from '../request-info.js';
import { AUTHENTICATED_GROUP, SERVICE_ACCOUNTS_GROUP } from '../../../api-types/index.js';

/**
 * Who makes a request, as Kubernetes' user.Info: a user name and the groups RBAC decides on. Every authenticated
 * identity is in AUTHENTICATED_GROUP. The admin token is user "admin" in MASTERS_GROUP; a cluster member's server
 * certificate is flotilla:server:<id> in SERVER_GROUP; a node certificate is system:node:<N> in NODE_GROUP; a join
 * token is system:bootstrap:<id> in BOOTSTRAPPERS_GROUP; a user token is its user with the groups it was made with.
 */
export interface Identity { name: string; groups: readonly string[] }

/** Kubernetes' superuser group: every request of a member is allowed, before any other authorizer is asked. */
export const MASTERS_GROUP = 'system:masters';
export { AUTHENTICATED_GROUP };
/** Kubernetes' group of bootstrap tokens (here: join tokens), which only ask for a node certificate. */
export const BOOTSTRAPPERS_GROUP = 'system:bootstrappers';
export { NODE_GROUP, SERVER_GROUP };

/** The identity of user `name` in `groups`, and in AUTHENTICATED_GROUP (once). */
export function identity(name: string, groups: readonly string[]): Identity {
  return { name, groups: groups.includes(AUTHENTICATED_GROUP) ? [...groups] : [...groups, AUTHENTICATED_GROUP] };
}

export function inGroup(who: Identity | undefined, group: string): boolean {
  return who?.groups.includes(group) ?? false;
}

/** Whether `who` is a cluster member (its server certificate, or the benchmark-only cluster secret over plain HTTP). */
export function isServer(who: Identity | undefined): boolean {
  return inGroup(who, SERVER_GROUP);
}

/** N for a node's identity (`system:node:<N>` in NODE_GROUP); undefined for every other identity, join tokens included. */
export function nodeNameOf(who: Identity | undefined): string | undefined {
  return who !== undefined && inGroup(who, NODE_GROUP) ? nodeNameOfCommonName(who.name) : undefined;
}

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

/** The non-resource paths every authenticated user may GET (Kubernetes' system:discovery ClusterRole). */
const DISCOVERY_PATH = /^\/(api|apis|openapi)(\/.*)?$/;

/**
 * What a service account may do until roles are bound to it: what Kubernetes grants every authenticated user
 * (system:discovery and system:basic-user), discovery and its SelfSubjectReview; everything else is 403 with RBAC's message.
 */
export function authorizeServiceAccount(user: string, info: RequestInfo | undefined, path: string, method: string): Decision {
  if (!info) return (method === 'GET' || method === 'HEAD') && DISCOVERY_PATH.test(path) ? { allowed: true } : { allowed: false, message: pathForbidden(user, method, path) };
  const selfReview = info.group === 'authentication.k8s.io' && info.resource === 'selfsubjectreviews' && info.verb === 'create' && info.name === undefined && !info.extra;
  return selfReview ? { allowed: true } : { allowed: false, message: rbacForbidden(user, info) };
}

/**
 * Refuses, with 403, what the caller may not do. Admins and cluster members may do all; a node
 * (system:node:N) what the Node authorizer allows (./node-authorizer.ts, with NodeRestriction admission in the
 * write path); a join token only asks for its node certificate (authorizeBootstrap); a service account what
 * authorizeServiceAccount allows.
 */
export function authorization(opts: { graph: NodeGraph }): MiddlewareHandler {
  return async function authorizationMiddleware(c, next) {
    const who = identityOf(c);
    const serviceAccount = inGroup(who, SERVICE_ACCOUNTS_GROUP);
    if (!inGroup(who, NODE_GROUP) && !inGroup(who, BOOTSTRAPPERS_GROUP) && !serviceAccount) return next();
    const info = requestInfo(c.req.method, c.req.path, c.req.query('watch'));
    if (serviceAccount) {
      const decision = authorizeServiceAccount(who!.name, info, c.req.path, c.req.method);
      if (decision.allowed) return next();
      return statusResponse(c, { code: 403, reason: 'Forbidden', message: decision.message });
    }
    const node = nodeNameOf(who);
    const decision = node !== undefined
      ? authorizeNode(who!.name, node, info, c.req.path, c.req.method, opts.graph)
      : authorizeBootstrap(who!.name, info, c.req.path, c.req.method);
    if (decision.allowed) return next();
    return statusResponse(c, {
      code: 403, reason: 'Forbidden', message: decision.message,
      ...(info ? { details: { ...(info.name !== undefined ? { name: info.name } : {}), group: info.group, kind: info.resource } } : {}),
    });
  };
}
