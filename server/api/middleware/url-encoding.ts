import type { MiddlewareHandler } from 'hono';
import { statusResponse } from '../status.js';

/**
 * Refuses a request whose path or query holds a malformed %-escape with 400, as Go's URL parsing makes
 * kube-apiserver do (`invalid URL escape "%zz"`), before any route reads a half-decoded name.
 */
export function urlEncoding(): MiddlewareHandler {
  return async function wellFormedUrl(c, next) {
    const url = c.req.url;
    const start = url.indexOf('/', url.indexOf('//') + 2);
    const bad = start < 0 ? undefined : malformedEscape(url.slice(start));
    if (bad !== undefined) return statusResponse(c, { code: 400, reason: 'BadRequest', message: `invalid URL escape ${JSON.stringify(bad)}` });
    await next();
  };
}

/** The first escape in a path-and-query that does not decode (a bad hex pair, or bytes that are not UTF-8). */
function malformedEscape(pathAndQuery: string): string | undefined {
  for (const part of pathAndQuery.split(/[/?&=]/)) {
    if (!part.includes('%')) continue;
    try {
      decodeURIComponent(part);
    } catch {
      return /%(?![0-9A-Fa-f]{2})..?/.exec(part)?.[0] ?? part.slice(part.indexOf('%'), part.indexOf('%') + 3);
    }
  }
  return undefined;
}
