// Waiting for deleted objects to be gone, as kubectl's --wait: `delete` and `compose down`.
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeObject } from '../api-types/index.js';
import { ApiClientError } from '../client/client.js';
import type { ApiClient } from '../client/client.js';
import type { Io } from './command.js';

/** How long `delete` waits for what it deleted to be gone, unless --timeout says otherwise (0 means this too). */
export const DELETE_WAIT_MS = 5 * 60_000;
/** How often `delete` looks whether what it deleted is gone. */
export const DELETE_POLL_MS = 500;

/**
 * As kubectl's --wait: resolves once every deleted object is gone (not found, or another object of that name
 * with another uid), graceful deletions and finalizers included; to the number still there at the deadline.
 */
export async function waitUntilGone(client: ApiClient, objects: { path: string; what: string; uid: string | undefined }[], deadline: number, io: Pick<Io, 'err'>, signal: AbortSignal): Promise<number> {
  let left = objects;
  while (left.length > 0 && !signal.aborted) {
    const still: typeof left = [];
    for (const o of left) {
      try {
        const now = await client.request<KubeObject>('GET', o.path);
        if (o.uid === undefined || now.metadata.uid === o.uid) still.push(o);
      } catch (err) {
        if (!(err instanceof ApiClientError && err.code === 404)) throw err;
      }
    }
    left = still;
    if (left.length === 0) break;
    if (Date.now() >= deadline) {
      for (const o of left) io.err(`error: timed out waiting for the condition on ${o.what}\n`);
      return left.length;
    }
    await sleep(Math.min(DELETE_POLL_MS, Math.max(0, deadline - Date.now())), undefined, { signal }).catch(() => undefined);
  }
  return signal.aborted ? left.length : 0;
}

