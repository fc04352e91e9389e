// The join token API: create, list and revoke the tokens agents join with (server/tokens/join-tokens.ts).
import { Hono } from 'hono';
import type { Context } from 'hono';
import { statusObject } from '../../../api-types/index.js';
import { badRequest, type ObjectService } from '../../objects/service.js';
import type { StateStore } from '../../store/types.js';
import { StoreError } from '../../store/types.js';
import { formatClusterToken } from '../../../client/tokens.js';
import { JOIN_TOKENS_PATH, MAX_DESCRIPTION, MAX_TTL_SECONDS, createJoinToken, listJoinTokens, revokeJoinToken } from '../../tokens/join-tokens.js';


/**
 * Checks the fields of a token request body (a JSON object or nothing): `ttlSeconds` and `description` where
 * `fields` has them, no field outside `fields`; throws a 400 StoreError naming the bad field. Returns the body.
 */
export function checkTokenRequest(body: unknown, fields: readonly string[]): Record<string, unknown> {
  const expected = `{${fields.map((f) => `"${f}"`).join(', ')}}`;
  if (body === undefined || body === null) return {};
  if (typeof body !== 'object' || Array.isArray(body)) throw badRequest(`the request body must be a JSON object ${expected}`);
  const record = body as Record<string, unknown>;
  const unknown = Object.keys(record).filter((k) => !fields.includes(k));
  if (unknown.length > 0) throw badRequest(`unknown field ${unknown.map((k) => `"${k}"`).join(', ')} (expected ${fields.join(', ')})`);
  const { ttlSeconds, description } = record;
  if (ttlSeconds !== undefined && (!Number.isInteger(ttlSeconds) || (ttlSeconds as number) < 1 || (ttlSeconds as number) > MAX_TTL_SECONDS)) {
    throw badRequest(`ttlSeconds: must be an integer in 1..${MAX_TTL_SECONDS} (leave it out for a token that never expires)`);
  }
  if (description !== undefined && (typeof description !== 'string' || description.length > MAX_DESCRIPTION)) throw badRequest(`description: must be a string of at most ${MAX_DESCRIPTION} characters`);
  return record;
}

/** Checks a create request body; throws a 400 StoreError naming the bad field. */
export function parseCreateRequest(body: unknown): { ttlSeconds?: number; description?: string } {
  const { ttlSeconds, description } = checkTokenRequest(body, ['ttlSeconds', 'description']);
  return { ...(ttlSeconds !== undefined ? { ttlSeconds: ttlSeconds as number } : {}), ...(description !== undefined ? { description: description as string } : {}) };
}

/** The request body as JSON; undefined when empty; a 400 StoreError when it is not JSON. */
export async function jsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  try {
    return text.trim() === '' ? undefined : JSON.parse(text);
  } catch {
    throw badRequest('the request body is not JSON');
  }
}

/**
 * POST (create; answers the full token, FLT1<CA hash>::flt1.<id>.<secret>, shown once), GET (list) and DELETE
 * /ID (revoke) under JOIN_TOKENS_PATH.
 * Mounted through createApp's extraRoutes, behind the policy middleware: the requester may do what it asks
 * (cluster-admin, or RBAC on flotilla.io jointokens).
 */
export function joinTokenRoutes(deps: { store: Pick<StateStore, 'get'>; objects: ObjectService; caHash: string; now?: () => number }): Hono {
  const now = deps.now ?? Date.now;
  const app = new Hono();
  app.post(JOIN_TOKENS_PATH, async (c) => {
    const created = await createJoinToken(deps.objects, parseCreateRequest(await jsonBody(c)), now());
    return c.json({ ...created, token: formatClusterToken(deps.caHash, created.token) }, 201);
  });
  app.get(JOIN_TOKENS_PATH, (c) => {
    return c.json({ items: listJoinTokens(deps.store, now()) });
  });
  app.delete(`${JOIN_TOKENS_PATH}/:id`, async (c) => {
    const id = c.req.param('id');
    if (!(await revokeJoinToken(deps.objects, id))) throw new StoreError({ code: 404, reason: 'NotFound', message: `join token "${id}" not found` });
    return c.json(statusObject({ code: 200, message: `join token "${id}" revoked` }));
  });
  return app;
}
