import type { Context } from 'hono';
import type { Failure } from '../store/types.js';

/** The Kubernetes `Status` object for a failure. */
export function statusBody(f: Failure): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: f.message, reason: f.reason, ...(f.details ? { details: f.details } : {}), code: f.code };
}

export function statusResponse(c: Context, f: Failure): Response {
  return c.json(statusBody(f), f.code as 400);
}

/** A request that cannot be served, carrying the Status to answer with. */
export class ApiError extends Error {
  constructor(readonly failure: Failure) {
    super(failure.message);
  }
}

export const badRequest = (message: string): ApiError => new ApiError({ code: 400, reason: 'BadRequest', message });
export const notFound = (message: string): ApiError => new ApiError({ code: 404, reason: 'NotFound', message });
export const methodNotAllowed = (message: string): ApiError => new ApiError({ code: 405, reason: 'MethodNotAllowed', message });
