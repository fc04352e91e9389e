import { createReadStream, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { Hono } from 'hono';
import type { SqliteStore } from '../../store/sqlite-store.js';
import { STATE_FILE } from '../../cluster/backup.js';

/**
 * GET /cluster/v1/backup (cluster-admin, or RBAC on the non-resource URL, decided by the policy middleware): a consistent copy of the state (a SQLite file), as of a linearizable read.
 * `flotilla restore` turns it into a new cluster.
 */
export function backupRoutes(store: SqliteStore, readBarrier: () => Promise<void>): Hono {
  const app = new Hono();
  app.get('/cluster/v1/backup', async () => {
    await readBarrier();
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-backup-'));
    const file = join(dir, STATE_FILE);
    store.snapshotTo(file);
    const revision = store.revision();
    const stream = createReadStream(file);
    stream.on('close', () => rmSync(dir, { recursive: true, force: true }));
    return new Response(Readable.toWeb(stream) as ReadableStream, {
      headers: { 'content-type': 'application/vnd.sqlite3', 'content-length': String(statSync(file).size), 'x-flotilla-revision': String(revision) },
    });
  });
  return app;
}
