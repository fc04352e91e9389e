import { Hono } from 'hono';
import type { NodeHeartbeats } from '../../cluster/node-heartbeats.js';
import type { Context } from 'hono';
import { StoreError } from '../../store/types.js';

const NODE_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/**
 * PUT/GET /apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/NAME, served from memory.
 * `forward` passes a renewal to the leader when this member is not it.
 */
/**
 * Lease renewals. A lease is granted for at most `maxLeaseSeconds` (the node grace period, after which a silent
 * node is declared unreachable): the answer carries the granted leaseDurationSeconds, and agents renew at a
 * third of it, so a grace period shorter than an agent's own heartbeat interval does not make nodes flap.
 */
export function heartbeatRoutes(beats: NodeHeartbeats, forward: (node: string, holder: string, durationS: number) => void, maxLeaseSeconds = 3600, namespace = 'kube-node-lease'): Hono {
  const app = new Hono();
  const path = `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/:name`;
  const renew = async (c: Context) => {
    const name = c.req.param('name')!;
    if (!NODE_NAME.test(name)) throw new StoreError({ code: 422, reason: 'Invalid', message: `Lease "${name}" is invalid: metadata.name: must be a DNS subdomain` });
    const body = (await c.req.json().catch(() => undefined)) as { spec?: { holderIdentity?: unknown; leaseDurationSeconds?: unknown } } | undefined;
    const holder = typeof body?.spec?.holderIdentity === 'string' ? body.spec.holderIdentity : name;
    const duration = body?.spec?.leaseDurationSeconds;
    const durationS = Math.min(maxLeaseSeconds, typeof duration === 'number' && Number.isInteger(duration) && duration > 0 && duration <= 3600 ? duration : 40);
    beats.renew(name, holder, durationS);
    forward(name, holder, durationS);
    return c.json(beats.lease(name));
  };
  app.put(path, renew);
  app.post(path, renew);
  app.get(path, (c) => {
    const lease = beats.lease(c.req.param('name')!);
    if (!lease) throw new StoreError({ code: 404, reason: 'NotFound', message: `leases "${c.req.param('name')}" not found` });
    return c.json(lease);
  });
  return app;
}
