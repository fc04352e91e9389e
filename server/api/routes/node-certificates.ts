// The node certificate API (server/tokens/node-certificates.ts): an agent's CSR, and the admin's removal of a
// node name's key binding (`flotilla node replace`).
import { Hono } from 'hono';
import type { Context } from 'hono';
import { NODE_CERTIFICATES_PATH, statusObject } from '../../../api-types/index.js';
import type { ObjectService } from '../../objects/service.js';
import type { ClusterCa } from '../../pki/ca.js';
import { StoreError } from '../../store/types.js';
import { BOOTSTRAPPERS_GROUP, MASTERS_GROUP, NODE_GROUP, inGroup, nodeNameOf, type Identity } from '../middleware/auth.js';
import { parseNodeCertificateRequest, signNodeCertificate } from '../../tokens/node-certificates.js';

export { NODE_CERTIFICATES_PATH };

/**
 * POST NODE_CERTIFICATES_PATH {"nodeName", "csr"}: 201 {"certificate", "ca"}. Asked with a join token (first
 * start), by node N itself with its current certificate (renewal, for N only), or by an admin.
 * DELETE NODE_CERTIFICATES_PATH/N: forgets N's key binding (admin only), so that another machine may take N.
 * Mounted through createApp's extraRoutes, so the auth middleware has run; `identityOf(c)` is what it found.
 */
export function nodeCertificateRoutes(deps: { objects: ObjectService; ca: ClusterCa; identityOf: (c: Context) => Identity | undefined; now?: () => number }): Hono {
  const app = new Hono();
  app.post(NODE_CERTIFICATES_PATH, async (c) => {
    const who = deps.identityOf(c);
    let body: unknown;
    try {
      body = JSON.parse(await c.req.text());
    } catch {
      throw new StoreError({ code: 400, reason: 'BadRequest', message: 'the request body is not JSON: send {"nodeName": NAME, "csr": PEM}' });
    }
    const req = parseNodeCertificateRequest(body);
    const self = nodeNameOf(who);
    if (!inGroup(who, MASTERS_GROUP) && !inGroup(who, NODE_GROUP) && !inGroup(who, BOOTSTRAPPERS_GROUP)) throw new StoreError({ code: 403, reason: 'Forbidden', message: `${who?.name ?? 'anonymous'} cannot ask for node certificates` });
    if (self !== undefined && self !== req.nodeName) {
      throw new StoreError({ code: 403, reason: 'Forbidden', message: `node "${self}" may renew only its own certificate, not one for node "${req.nodeName}"` });
    }
    return c.json(await signNodeCertificate(deps, req), 201);
  });
  app.delete(`${NODE_CERTIFICATES_PATH}/:name`, async (c) => {
    if (!inGroup(deps.identityOf(c), MASTERS_GROUP)) throw new StoreError({ code: 403, reason: 'Forbidden', message: 'node key bindings are removed with the admin token ("flotilla node replace NAME")' });
    const name = c.req.param('name');
    if (!(await deps.objects.unbindNodeKey(name))) throw new StoreError({ code: 404, reason: 'NotFound', message: `node "${name}" is bound to no key` });
    return c.json(statusObject({ code: 200, message: `node "${name}" is bound to no key now: a new machine may register under that name` }));
  });
  return app;
}
