import { timingSafeEqual, createHash, type X509Certificate } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { TLSSocket } from 'node:tls';
import type { Context, MiddlewareHandler } from 'hono';
import { SERVER_GROUP, certificateInfo, nodeNameOfCommonName } from '../../../client/pki.js';
import { statusResponse } from '../status.js';
import { NODE_CERTIFICATES_PATH } from '../../../api-types/index.js';

/**
 * Who makes a request. A node is `{ name: 'system:node:<N>', role: 'node' }` (its certificate); a join token is
 * role node too, under another name: it only bootstraps (asks for a node certificate).
 */
export interface Identity { name: string; role: 'admin' | 'node' | 'peer' }

/** N for a node's identity (`system:node:<N>`, role node); undefined for every other identity, join tokens included. */
export function nodeNameOf(identity: Identity | undefined): string | undefined {
  return identity?.role === 'node' ? nodeNameOfCommonName(identity.name) : undefined;
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
  return { name: info.commonName, role: 'peer' };
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

/**
 * What a node (an agent's token) may change: its Node and their status, its lease and usage reports, pod
 * status and deletion, events, and the Secret holding its own agent credentials. It may read everything
 * (ConfigMaps and Secrets its pods use included). Anything else, creating workloads, changing tokens,
 * membership or backups, takes the admin token: a token taken from a stolen SD card cannot run the cluster.
 */
const NODE_WRITES: readonly { methods: readonly string[]; path: RegExp }[] = [
  { methods: ['POST'], path: new RegExp(`^${NODE_CERTIFICATES_PATH.replaceAll('.', '\\.')}$`) },
  { methods: ['POST'], path: /^\/api\/v1\/nodes$/ },
  { methods: ['PUT', 'PATCH'], path: /^\/api\/v1\/nodes\/[^/]+(\/status)?$/ },
  { methods: ['PUT', 'POST'], path: /^\/apis\/coordination\.k8s\.io\/v1\/namespaces\/kube-node-lease\/leases\/[^/]+$/ },
  { methods: ['PUT'], path: /^\/apis\/metrics\.flotilla\.io\/v1\/nodes\/[^/]+\/usage$/ },
  { methods: ['PUT', 'PATCH'], path: /^\/api\/v1\/namespaces\/[^/]+\/pods\/[^/]+\/status$/ },
  { methods: ['DELETE'], path: /^\/api\/v1\/namespaces\/[^/]+\/pods\/[^/]+$/ },
  { methods: ['POST'], path: /^\/api\/v1\/namespaces\/[^/]+\/events$/ },
  { methods: ['PATCH', 'PUT'], path: /^\/api\/v1\/namespaces\/[^/]+\/events\/[^/]+$/ },
  { methods: ['POST'], path: /^\/api\/v1\/namespaces\/kube-system\/secrets$/ },
  { methods: ['PUT'], path: /^\/api\/v1\/namespaces\/kube-system\/secrets\/flotilla-agent-[^/]+$/ },
];

const READ_METHODS = new Set(['GET', 'HEAD']);

/** Refuses, with 403, what the caller's role may not do (see NODE_WRITES); admins and cluster members may do all. */
export function roleAuthorization(): MiddlewareHandler {
  return async function roleAuthorizationMiddleware(c, next) {
    const who = c.get('identity' as never) as Identity | undefined;
    if (who?.role !== 'node' || READ_METHODS.has(c.req.method)) return next();
    const path = c.req.path;
    if (path.startsWith('/api/v1/namespaces/kube-system/secrets') && c.req.method === 'POST') {
      // Creating a Secret in kube-system is allowed only for the agent's own credentials (name checked below).
      const body = (await c.req.raw.clone().json().catch(() => undefined)) as { metadata?: { name?: unknown } } | undefined;
      if (typeof body?.metadata?.name !== 'string' || !body.metadata.name.startsWith('flotilla-agent-')) {
        return statusResponse(c, { code: 403, reason: 'Forbidden', message: `a node token may only create its agent Secret (flotilla-agent-NODE) in kube-system` });
      }
      return next();
    }
    if (NODE_WRITES.some((w) => w.methods.includes(c.req.method) && w.path.test(path))) return next();
    return statusResponse(c, { code: 403, reason: 'Forbidden', message: `${who.name}: a node token cannot ${c.req.method} ${path}; use an admin token` });
  };
}
