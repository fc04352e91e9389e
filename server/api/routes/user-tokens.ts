// The user token API: create, list, rotate and revoke user tokens and the admin token (server/tokens/user-tokens.ts).
import { Hono } from 'hono';
import { statusObject } from '../../../api-types/index.js';
import { badRequest, type ObjectService } from '../../objects/service.js';
import type { StateStore } from '../../store/types.js';
import { ADMIN_ENTRY } from '../../tokens/api-tokens.js';
import { USER_NAME, USER_TOKENS_PATH, createUserToken, listUserTokens, revokeToken, rotateToken } from '../../tokens/user-tokens.js';
import type { UserTokenRequest } from '../../tokens/user-tokens.js';
import { checkTokenRequest, jsonBody } from './join-tokens.js';

/** Longest group name, and most groups per token. */
const MAX_GROUP = 253;
const MAX_GROUPS = 32;

/** Checks a create request body {"user", "groups"?, "ttlSeconds"?, "description"?}; throws a 400 StoreError naming the bad field. */
export function parseUserTokenRequest(body: unknown): UserTokenRequest {
  const { user, groups, ttlSeconds, description } = checkTokenRequest(body, ['user', 'groups', 'ttlSeconds', 'description']);
  if (typeof user !== 'string' || !USER_NAME.test(user)) throw badRequest('user: required, 1-200 characters of [A-Za-z0-9._-], starting and ending with a letter or digit');
  if (user === ADMIN_ENTRY) throw badRequest(`user: "${ADMIN_ENTRY}" names the cluster's admin token (flotilla token rotate admin); choose another user name`);
  if (groups !== undefined) {
    if (!Array.isArray(groups) || groups.length > MAX_GROUPS) throw badRequest(`groups: must be a list of at most ${MAX_GROUPS} group names`);
    groups.forEach((g, i) => {
      if (typeof g !== 'string' || g === '' || g.length > MAX_GROUP) throw badRequest(`groups[${i}]: must be a non-empty string of at most ${MAX_GROUP} characters`);
      if (groups.indexOf(g) !== i) throw badRequest(`groups[${i}]: "${g}" is listed twice`);
    });
  }
  return {
    user, ...(groups !== undefined ? { groups: groups as string[] } : {}),
    ...(ttlSeconds !== undefined ? { ttlSeconds: ttlSeconds as number } : {}), ...(description !== undefined ? { description: description as string } : {}),
  };
}

/**
 * POST (create; answers the token, shown once), GET (list, the admin token included), POST /NAME/rotate (a new
 * token, shown once, replacing the old one) and DELETE /NAME (revoke) under USER_TOKENS_PATH; NAME is a user or
 * "admin". Mounted through createApp's extraRoutes, behind the policy middleware: the requester may do what it
 * asks (cluster-admin, or RBAC on flotilla.io usertokens).
 */
export function userTokenRoutes(deps: { store: Pick<StateStore, 'get'>; objects: ObjectService; clusterId: string; now?: () => number }): Hono {
  const now = deps.now ?? Date.now;
  const app = new Hono();
  app.post(USER_TOKENS_PATH, async (c) => {
    return c.json(await createUserToken(deps.objects, parseUserTokenRequest(await jsonBody(c)), now()), 201);
  });
  app.get(USER_TOKENS_PATH, (c) => {
    return c.json({ items: listUserTokens(deps.store, now()) });
  });
  app.post(`${USER_TOKENS_PATH}/:name/rotate`, async (c) => {
    const { ttlSeconds } = checkTokenRequest(await jsonBody(c), ['ttlSeconds']);
    return c.json(await rotateToken(deps.objects, c.req.param('name'), ttlSeconds !== undefined ? { ttlSeconds: ttlSeconds as number } : {}, deps.clusterId, now()));
  });
  app.delete(`${USER_TOKENS_PATH}/:name`, async (c) => {
    const name = c.req.param('name');
    await revokeToken(deps.objects, name, deps.clusterId, now());
    return c.json(statusObject({ code: 200, message: name === ADMIN_ENTRY ? 'the admin token is revoked' : `user token "${name}" revoked` }));
  });
  return app;
}
