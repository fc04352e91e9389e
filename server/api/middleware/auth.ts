import { timingSafeEqual, createHash } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { statusResponse } from '../status.js';
import { requestInfo } from '../request-info.js';
import type { NodeGraph } from '../../objects/node-graph.js';
import { authorizeBootstrap, authorizeNode } from './node-authorizer.js';

/** Who presents a token; `groups` are a user token's groups (for RBAC). */
export interface Identity { name: string; role: 'admin' | 'node' | 'peer'; groups?: readonly string[] }

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

/** A node's user name is this prefix and the node's name (Kubernetes' convention; node certificates carry it). */
const NODE_USER_PREFIX = 'system:node:';

/** N for a node's own identity `{ name: 'system:node:N', role: 'node' }`; undefined for anyone else (a join token included). */
export function nodeNameOf(who: Identity | undefined): string | undefined {
  if (who?.role !== 'node' || !who.name.startsWith(NODE_USER_PREFIX)) return undefined;
  const node = who.name.slice(NODE_USER_PREFIX.length);
  return node === '' ? undefined : node;
}

/** Who made the request, as bearerAuth established it (undefined on the public paths). */
export function identityOf(c: Context): Identity | undefined {
  return c.get('identity' as never) as Identity | undefined;
}

/**
 * Whether a join token (a `role: 'node'` identity that is not `system:node:N`) is only a bootstrap credential,
 * good for asking for a node certificate and nothing else. It turns true when node certificates land (agents
 * then use their certificate for everything after joining); until then agents use their join token for
 * everything, under LEGACY_JOIN_TOKEN_WRITES.
 */
export const joinTokensAreBootstrapOnly = false;

/**
 * What a join token may change while it is still an agent's only credential (joinTokensAreBootstrapOnly
 * false): its Node and their status, its lease and usage reports, pod status and deletion, events, and the
 * Secret holding its own agent credentials; it reads everything. This goes with joinTokensAreBootstrapOnly.
 */
const LEGACY_JOIN_TOKEN_WRITES: readonly { methods: readonly string[]; path: RegExp }[] = [
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

/**
 * Refuses, with 403, what the caller may not do. Admins and cluster members may do all; a node
 * (system:node:N) what the Node authorizer allows (./node-authorizer.ts, with NodeRestriction admission in the
 * write path); a join token what joinTokensAreBootstrapOnly says.
 */
export function authorization(opts: { graph: NodeGraph }): MiddlewareHandler {
  return async function authorizationMiddleware(c, next) {
    const who = identityOf(c);
    if (who?.role !== 'node') return next();
    const info = requestInfo(c.req.method, c.req.path, c.req.query('watch'));
    const node = nodeNameOf(who);
    if (node !== undefined || joinTokensAreBootstrapOnly) {
      const decision = node !== undefined
        ? authorizeNode(who.name, node, info, c.req.path, c.req.method, opts.graph)
        : authorizeBootstrap(who.name, info, c.req.path, c.req.method);
      if (decision.allowed) return next();
      return statusResponse(c, {
        code: 403, reason: 'Forbidden', message: decision.message,
        ...(info ? { details: { ...(info.name !== undefined ? { name: info.name } : {}), group: info.group, kind: info.resource } } : {}),
      });
    }
    if (READ_METHODS.has(c.req.method)) return next();
    const path = c.req.path;
    if (path.startsWith('/api/v1/namespaces/kube-system/secrets') && c.req.method === 'POST') {
      // Creating a Secret in kube-system is allowed only for the agent's own credentials (name checked below).
      const body = (await c.req.raw.clone().json().catch(() => undefined)) as { metadata?: { name?: unknown } } | undefined;
      if (typeof body?.metadata?.name !== 'string' || !body.metadata.name.startsWith('flotilla-agent-')) {
        return statusResponse(c, { code: 403, reason: 'Forbidden', message: `a node token may only create its agent Secret (flotilla-agent-NODE) in kube-system` });
      }
      return next();
    }
    if (LEGACY_JOIN_TOKEN_WRITES.some((w) => w.methods.includes(c.req.method) && w.path.test(path))) return next();
    return statusResponse(c, { code: 403, reason: 'Forbidden', message: `${who.name}: a node token cannot ${c.req.method} ${path}; use an admin token` });
  };
}
