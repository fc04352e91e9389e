import { Hono } from 'hono';
import type { Context } from 'hono';
import { StoreError } from './store/types.js';

/**
 * Node heartbeats, kept in memory only: an SD card must not take a durable write per node every few seconds.
 * Agents renew Kubernetes-style Leases (kube-node-lease/NAME) on any member; a member that is not the
 * leader passes each renewal on to the leader, where the node lifecycle controller reads them. What a node
 * that has not renewed here is given (a grace period from when the leader's controller first saw it) is the
 * controller's decision, not this table's.
 */
export class NodeHeartbeats {
  readonly #last = new Map<string, { renewMs: number; durationS: number; holder: string }>();

  constructor(readonly now: () => number = Date.now) {}

  renew(node: string, holder: string, durationS: number): void {
    this.#last.set(node, { renewMs: this.now(), durationS, holder });
  }

  /** When `node` last renewed its lease on this member; undefined when it never did. */
  lastRenewMs(node: string): number | undefined {
    return this.#last.get(node)?.renewMs;
  }

  forget(node: string): void {
    this.#last.delete(node);
  }

  /** The Lease object a GET of kube-node-lease/NAME returns. */
  lease(node: string): Record<string, unknown> | undefined {
    const l = this.#last.get(node);
    if (!l) return undefined;
    return {
      apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
      metadata: { name: node, namespace: 'kube-node-lease' },
      spec: { holderIdentity: l.holder, leaseDurationSeconds: l.durationS, renewTime: new Date(l.renewMs).toISOString() },
    };
  }
}

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
export function heartbeatRoutes(beats: NodeHeartbeats, forward: (node: string, holder: string, durationS: number) => void, maxLeaseSeconds = 3600): Hono {
  const app = new Hono();
  const path = '/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/:name';
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
