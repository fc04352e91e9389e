import type { Context } from 'hono';
import { StoreError } from '../store/types.js';
import type { Failure } from '../store/types.js';

/** The Kubernetes `Status` object for a failure. */
export function statusBody(f: Failure): Record<string, unknown> {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: f.message, reason: f.reason, ...(f.details ? { details: f.details } : {}), code: f.code };
}

export function statusResponse(c: Context, f: Failure): Response {
  return c.json(statusBody(f), f.code as 400);
}

export const methodNotAllowed = (message: string): StoreError => new StoreError({ code: 405, reason: 'MethodNotAllowed', message });
