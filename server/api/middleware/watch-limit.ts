import type { MiddlewareHandler } from 'hono';
import { requestInfo } from '../request-info.js';
import { identityOf, isServer } from './auth.js';
import { tooManyRequests, type FairnessMetrics } from './max-in-flight.js';

/**
 * Caps the watch streams open at once: `maxWatches` on this server, `maxWatchesPerClient` for one identity (by
 * name: a user, a node, a join token). One more gets 429 with Retry-After (tooManyRequests) and a message that
 * says which cap it met. A watch holds its place until its stream ends: the client went away, the server ended
 * it (timeoutSeconds, a slow reader dropped) or the response was not a stream (an error). Cluster members are
 * not capped (see maxInFlight). Kubernetes has no such cap: its watches are cheap against a watch cache; here
 * each one is a stream the single-threaded server writes every matching event to.
 */
export function watchLimit(opts: { maxWatches: number; maxWatchesPerClient: number; metrics?: Pick<FairnessMetrics, 'rejected'> }): MiddlewareHandler {
  const open = new Map<string, number>();
  let total = 0;
  return async function watchLimitMiddleware(c, next) {
    const who = identityOf(c);
    if (who === undefined || isServer(who) || requestInfo(c.req.method, c.req.path, c.req.query('watch'))?.verb !== 'watch') return next();
    const mine = open.get(who.name) ?? 0;
    const refusal = total >= opts.maxWatches ? `too many watches open on this server (the limit is ${opts.maxWatches}), please try again later.`
      : mine >= opts.maxWatchesPerClient ? `too many watches open for "${who.name}" (the limit per client is ${opts.maxWatchesPerClient}): close some, or try again later.`
        : undefined;
    if (refusal !== undefined) {
      opts.metrics?.rejected.inc({ request_kind: 'watch' });
      return tooManyRequests(c, refusal);
    }
    total++;
    open.set(who.name, mine + 1);
    let held = true;
    const release = () => {
      if (!held) return;
      held = false;
      total--;
      const left = (open.get(who.name) ?? 1) - 1;
      if (left === 0) open.delete(who.name);
      else open.set(who.name, left);
    };
    try {
      await next();
    } finally {
      const body = c.res.body;
      if (c.res.status !== 200 || body === null) release();
      else c.res = new Response(endingWith(body, release), c.res);
    }
  };
}

/** `body`, passed through as read (no buffering of its own), calling `ended` once it ends, fails or is cancelled. */
function endingWith(body: ReadableStream<Uint8Array>, ended: () => void): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (!done) return controller.enqueue(value);
        ended();
        controller.close();
      } catch (err) {
        ended();
        controller.error(err);
      }
    },
    cancel(reason) {
      ended();
      return reader.cancel(reason);
    },
  }, { highWaterMark: 0 });
}
