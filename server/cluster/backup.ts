import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { SqliteStorage } from '../raft/sqlite-storage.js';
import { MEMBER_FILES, newMemberId } from './cluster.js';
import { describeSnapshotFile, encodeSnapshotFile } from './snapshot-file.js';
import { MEMBERS_RESOURCE } from '../objects/service.js';
import { newBearerToken } from '../tokens/api-tokens.js';
import type { Identity } from './cluster.js';

export const STATE_FILE = 'state.db';

/**
 * Makes `dataDir` the data of a NEW one-member cluster holding the state of `source`: a backup file
 * (`flotilla backup`) or the data dir of any old member (the way out of a lost quorum: take the member with
 * the newest state). The Raft log starts right after the state's revision, so revisions keep increasing and
 * watchers' resourceVersions stay meaningful. Old member records are dropped; tokens come along, so the old
 * admin token keeps working until the new admin-token (written here) replaces it at first start (the new
 * cluster id makes the old admin entry another cluster's: storeAdminToken).
 * Returns the revision the new cluster starts from.
 */
export function restoreDataDir(source: string, dataDir: string): { revision: number; identity: Identity } {
  const sourceDb = statSync(source).isDirectory() ? join(source, STATE_FILE) : source;
  if (!existsSync(sourceDb)) throw new Error(`${source}: no ${STATE_FILE} there; give a backup file or a member's data dir`);
  if (existsSync(dataDir) && readdirSync(dataDir).length > 0) throw new Error(`${dataDir} is not empty: restore into a new folder`);
  mkdirSync(join(dataDir, MEMBER_FILES.snapshots), { recursive: true, mode: 0o700 });
  const target = join(dataDir, STATE_FILE);
  let revision: number;
  const src = new Database(sourceDb, { readonly: true, fileMustExist: true });
  try {
    const tables = new Set((src.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
    if (!tables.has('objects') || !tables.has('meta')) throw new Error(`${sourceDb} is not a Flotilla state database (no objects/meta tables)`);
    src.prepare('VACUUM INTO ?').run(target);
  } catch (err) {
    rmSync(dataDir, { recursive: true, force: true });
    throw err;
  } finally {
    src.close();
  }
  const db = new Database(target);
  try {
    db.prepare('DELETE FROM objects WHERE resource = ?').run(MEMBERS_RESOURCE);
    revision = (db.prepare("SELECT value FROM meta WHERE key = 'revision'").get() as { value: number } | undefined)?.value ?? 0;
  } finally {
    db.close();
  }
  const identity: Identity = { clusterId: randomUUID(), memberId: newMemberId() };
  const log = new SqliteStorage(join(dataDir, MEMBER_FILES.log));
  try {
    // The log begins as if everything up to the state's revision were in a snapshot that names this member
    // as the only voter; its data is an immutable copy of the state, what a lagging member would be sent.
    const snapshotName = `snapshot-${String(Math.max(revision, 1)).padStart(12, '0')}.db`;
    copyFileSync(target, join(dataDir, MEMBER_FILES.snapshots, snapshotName));
    log.save({
      snapshot: { meta: { index: Math.max(revision, 1), term: 1, confState: { voters: [identity.memberId], learners: [] } }, data: encodeSnapshotFile(describeSnapshotFile(join(dataDir, MEMBER_FILES.snapshots), snapshotName)) },
      entries: [],
      hardState: { term: 1, vote: 0, commit: Math.max(revision, 1) },
    });
  } finally {
    log.close();
  }
  writeFileSync(join(dataDir, MEMBER_FILES.secret), `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  writeFileSync(join(dataDir, MEMBER_FILES.identity), JSON.stringify(identity));
  writeFileSync(join(dataDir, 'admin-token'), `${newBearerToken()}\n`, { mode: 0o600 });
  return { revision, identity };
}

