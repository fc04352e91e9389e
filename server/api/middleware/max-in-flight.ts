import type { Context, MiddlewareHandler } from 'hono';
import type { Counter, Gauge } from 'prom-client';
import { statusResponse } from '../status.js';
import { requestInfo } from '../request-info.js';
import { identityOf, isServer, nodeNameOf } from './auth.js';

/** kube-apiserver's request kinds of its in-flight limits (the request_kind label of its metrics). */
export type RequestKind = 'readOnly' | 'mutating';

/** The in-flight gauges and the counter of refused requests, by request kind ('watch' for watch-limit.ts' refusals). */
export interface FairnessMetrics {
  inFlight: Gauge<'request_kind'>;
  rejected: Counter<'request_kind'>;
}

/** kube-apiserver's answer to a request over its limits (its max-in-flight and priority-and-fairness filters). */
export const TOO_MANY_REQUESTS = 'Too many requests, please try again later.';

/** 429 with `Retry-After: 1` and a TooManyRequests Status, as Kubernetes' NewTooManyRequests gives. */
export function tooManyRequests(c: Context, message: string): Response {
  c.header('Retry-After', '1');
  return statusResponse(c, { code: 429, reason: 'TooManyRequests', message, details: { retryAfterSeconds: 1 } });
}

const LONG_RUNNING_VERBS = new Set(['watch', 'proxy']);
const LONG_RUNNING_SUBRESOURCES = new Set(['attach', 'exec', 'proxy', 'log', 'portforward', 'images']);

/**
 * Kubernetes' BasicLongRunningRequestCheck: watches and proxying, and the attach, exec, log, portforward and
 * proxy subresources; and Flotilla's nodes/NAME/images (image archives streamed to agents, routes/node-images.ts). They are neither counted in flight nor given the request timeout: they last as long as
 * their client wants (watches are capped apart: watch-limit.ts).
 */
export function isLongRunning(c: Context): boolean {
  const info = requestInfo(c.req.method, c.req.path, c.req.query('watch'));
  return info !== undefined && (LONG_RUNNING_VERBS.has(info.verb) || (info.subresource !== undefined && LONG_RUNNING_SUBRESOURCES.has(info.subresource)));
}

/** kube-apiserver's read-only verbs; everything else (other methods on non-resource paths too) is mutating. */
function requestKind(c: Context): RequestKind {
  const info = requestInfo(c.req.method, c.req.path, c.req.query('watch'));
  if (info) return info.verb === 'get' || info.verb === 'list' ? 'readOnly' : 'mutating';
  return c.req.method === 'GET' || c.req.method === 'HEAD' ? 'readOnly' : 'mutating';
}

/**
 * The share of each in-flight limit that only nodes (system:node:N) may fill, as APF's `system` priority level
 * assures the kubelets concurrency of their own: when users fill the rest, heartbeats and pod status still pass.
 */
const NODE_RESERVED_SHARE = 0.1;

/** Requests of one kind in flight against one limit (0: none), the top `reserved` of it for nodes only. */
class InFlightPool {
  inFlight = 0;
  readonly reserved: number;
  constructor(readonly limit: number) {
    this.reserved = limit === 0 ? 0 : Math.min(limit - 1, Math.ceil(limit * NODE_RESERVED_SHARE));
  }

  tryAcquire(node: boolean): boolean {
    if (this.limit !== 0 && this.inFlight >= (node ? this.limit : this.limit - this.reserved)) return false;
    this.inFlight++;
    return true;
  }

  release(): void {
    this.inFlight--;
  }
}

/**
 * kube-apiserver's max-in-flight filter: at most `maxRequestsInFlight` read-only and `maxMutatingRequestsInFlight`
 * mutating requests are served at once, long-running ones (isLongRunning) not counted; one more gets 429
 * (tooManyRequests) at once rather than waiting. A request holds its place until its handler has answered (after
 * a request timeout too: the work goes on). Runs after authentication, as in Kubernetes: cluster members'
 * requests (Raft messages, snapshots, forwarded writes) are exempt, as kube-apiserver exempts system:masters,
 * since a member refused its peers' traffic would lose its quorum; nodes have a reserved share
 * (NODE_RESERVED_SHARE).
 */
export function maxInFlight(opts: { maxRequestsInFlight: number; maxMutatingRequestsInFlight: number; metrics?: FairnessMetrics }): MiddlewareHandler {
  const pools: Record<RequestKind, InFlightPool> = { readOnly: new InFlightPool(opts.maxRequestsInFlight), mutating: new InFlightPool(opts.maxMutatingRequestsInFlight) };
  return async function maxInFlightMiddleware(c, next) {
    const who = identityOf(c);
    if (isServer(who) || isLongRunning(c)) return next();
    const kind = requestKind(c);
    const pool = pools[kind];
    if (!pool.tryAcquire(nodeNameOf(who) !== undefined)) {
      opts.metrics?.rejected.inc({ request_kind: kind });
      return tooManyRequests(c, TOO_MANY_REQUESTS);
    }
    opts.metrics?.inFlight.inc({ request_kind: kind });
    try {
      await next();
    } finally {
      pool.release();
      opts.metrics?.inFlight.dec({ request_kind: kind });
    }
  };
}
