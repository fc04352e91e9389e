/**
 * Node heartbeats, kept in memory only: an SD card must not take a durable write per node every few seconds.
 * Agents renew Kubernetes-style Leases (kube-node-lease/NAME) on any member; a member that is not the
 * leader passes each renewal on to the leader, where the node lifecycle controller reads them. What a node
 * that has not renewed here is given (a grace period from when the leader's controller first saw it) is the
 * controller's decision, not this table's.
 */
export class NodeHeartbeats {
  readonly #last = new Map<string, { renewMs: number; durationS: number; holder: string }>();

  /** `namespace`: where the leases are served (kube-node-lease; the LoadBalancer speakers have their own). */
  constructor(readonly now: () => number = Date.now, readonly namespace = 'kube-node-lease') {}

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
      metadata: { name: node, namespace: this.namespace },
      spec: { holderIdentity: l.holder, leaseDurationSeconds: l.durationS, renewTime: new Date(l.renewMs).toISOString() },
    };
  }
}
