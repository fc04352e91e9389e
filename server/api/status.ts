import type { Context } from 'hono';
import { statusObject } from '../../api-types/index.js';
import type { Failure } from '../../api-types/index.js';
import { StoreError } from '../store/types.js';

export function statusResponse(c: Context, f: Failure): Response {
  return c.json(statusObject(f), f.code as 400);
}

export const methodNotAllowed = (message: string): StoreError => new StoreError({ code: 405, reason: 'MethodNotAllowed', message });
