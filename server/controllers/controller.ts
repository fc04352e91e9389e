// What a controller is and what it is given. Controllers depend on this file, the manager runs them.
import type { ResourceInfo } from '../../api-types/index.js';
import type { Objects } from '../objects/service.js';
import type { WatchEvent } from '../store/types.js';
import type { PodMetricsSource } from './pod-metrics.js';
import type { PodsByOwner } from './cluster-objects.js';

export interface ControllerSettings {
  /** A node whose last heartbeat is older than this becomes NotReady and tainted unreachable. */
  nodeGracePeriodMs: number;
  /** Pods on an unreachable node are deleted this long after the taint, unless a toleration says otherwise. */
  podEvictionDelayMs: number;
  /** How often each HorizontalPodAutoscaler is evaluated. */
  hpaSyncPeriodMs: number;
  /** Scale-down uses the highest recommendation of this window (autoscaling/v2 default: 300 s). */
  hpaScaleDownStabilizationMs: number;
}

export const defaultControllerSettings: ControllerSettings = {
  nodeGracePeriodMs: 15_000,
  podEvictionDelayMs: 30_000,
  hpaSyncPeriodMs: 15_000,
  hpaScaleDownStabilizationMs: 300_000,
};

export interface ControllerDeps {
  objects: Objects;
  /** In-memory node leases kept by the server (not durable): when each node last renewed, in clock ms. */
  heartbeats: { lastRenewMs(node: string): number | undefined };
  /** In-memory LoadBalancer speaker leases (server/controllers/load-balancer.ts): when each node last renewed, in clock ms. */
  lbSpeakers?: { lastRenewMs(node: string): number | undefined };
  /** The pods by controller, for this leadership term (controllers must not keep their own copies of store state). */
  pods: PodsByOwner;
  /** The clock, in milliseconds since the epoch; tests inject a fake one. */
  now(): number;
  settings: Partial<ControllerSettings>;
  /** The cluster CA certificate (PEM) the root-ca-cert-publisher puts in every namespace; none: it publishes nothing. */
  clusterCaPem?: string;
  /** Per-pod usage reported by the agents; the autoscaler reports ScalingActive=False without it. */
  metrics?: PodMetricsSource;
}

export interface ReconcileResult {
  /** Reconcile this key again after this many clock milliseconds (deadlines, back-off, periodic checks). */
  requeueAfterMs?: number;
}

export interface WatchSpec {
  resource: ResourceInfo;
  /** The keys a change of this resource makes stale. May keep indexes up to date; must not throw. */
  keys(event: WatchEvent): Iterable<string>;
}

/**
 * One reconcile loop. Contract: `reconcile(key)` reads the current state and moves it one step towards the
 * declared state; it is safe to run at any time, any number of times (level-triggered), and never for the
 * same key twice at once. Throwing retries the key with back-off.
 */
export interface Controller {
  readonly name: string;
  readonly watches: readonly WatchSpec[];
  /** Every key the controller is responsible for: queued at start and at each resync. */
  allKeys(): Iterable<string>;
  reconcile(key: string): Promise<ReconcileResult | void>;
}

export function settingsOf(deps: ControllerDeps): ControllerSettings {
  return { ...defaultControllerSettings, ...deps.settings };
}

