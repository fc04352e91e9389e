import type { MiddlewareHandler } from 'hono';
import { statusResponse } from '../status.js';
import { identityOf, isServer } from './auth.js';
import { isLongRunning } from './max-in-flight.js';

/** What kube-apiserver answers (NewTimeoutError, whose details are an empty retryAfterSeconds). */
export const TIMEOUT_MESSAGE = 'Timeout: request did not complete within requested timeout - context deadline exceeded';

/**
 * kube-apiserver's WithTimeoutForNonLongRunningRequests: a request that is not long-running (isLongRunning) and
 * whose handler has not answered within `timeoutMs` gets 504, reason Timeout (TIMEOUT_MESSAGE). The handler
 * is not stopped (a write proposed to Raft may still commit, as in Kubernetes, where the client cannot tell
 * either); its answer is dropped. The bound is on the answer, not on a streamed body after it. Cluster members'
 * requests (Raft snapshots) are not bounded, for the reason maxInFlight exempts them.
 */
export function requestTimeout(opts: { timeoutMs: number }): MiddlewareHandler {
  return async function requestTimeoutMiddleware(c, next) {
    if (isServer(identityOf(c)) || isLongRunning(c)) return next();
    let timer: NodeJS.Timeout | undefined;
    const expired = new Promise<true>((resolve) => { timer = setTimeout(() => resolve(true), opts.timeoutMs); });
    const handled = next();
    try {
      if (await Promise.race([handled.then(() => false), expired])) {
        handled.catch(() => { /* answered already: onError logs what the handler throws */ });
        return statusResponse(c, { code: 504, reason: 'Timeout', message: TIMEOUT_MESSAGE, details: {} });
      }
    } finally {
      clearTimeout(timer);
    }
  };
}
