import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, statSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes, randomUUID } from 'node:crypto';
import Database from 'better-sqlite3';
import { SqliteStorage } from '../raft/sqlite-storage.js';
import { MEMBER_FILES, newMemberId } from './cluster.js';
import { describeSnapshotFile, encodeSnapshotFile } from './snapshot-file.js';
import { MEMBERS_RESOURCE } from '../objects/service.js';
import { newBearerToken } from '../tokens/api-tokens.js';
import type { Identity } from './cluster.js';
import { ENCRYPTION_CONFIG_FILE, parseEncryptionConfiguration, saveEncryptionKeys } from '../secrets/encryption-config.js';
import type { EncryptionKey } from '../secrets/encryption-config.js';
import { SEALED_RESOURCE, sealedWith } from '../secrets/secret-sealing.js';
import type { StoredObject } from '../store/types.js';

export const STATE_FILE = 'state.db';

/**
 * Makes `dataDir` the data of a NEW one-member cluster holding the state of `source`: a backup file
 * (`flotilla backup`) or the data dir of any old member (the way out of a lost quorum: take the member with
 * the newest state). The Raft log starts right after the state's revision, so revisions keep increasing and
 * watchers' resourceVersions stay meaningful. Old member records are dropped; tokens come along, so the old
 * admin token keeps working until the new admin-token (written here) replaces it at first start (the new
 * cluster id makes the old admin entry another cluster's: storeAdminToken). The Secrets' encryption keys come from
 * `encryptionConfig` (a member's encryption-config.json) or the old member's data dir; a backup whose Secrets are
 * encrypted is refused without them.
 * Returns the revision the new cluster starts from.
 */
export function restoreDataDir(source: string, dataDir: string, encryptionConfig?: string): { revision: number; identity: Identity } {
  const sourceDb = statSync(source).isDirectory() ? join(source, STATE_FILE) : source;
  if (!existsSync(sourceDb)) throw new Error(`${source}: no ${STATE_FILE} there; give a backup file or a member's data dir`);
  if (existsSync(dataDir) && readdirSync(dataDir).length > 0) throw new Error(`${dataDir} is not empty: restore into a new folder`);
  mkdirSync(join(dataDir, MEMBER_FILES.snapshots), { recursive: true, mode: 0o700 });
  const target = join(dataDir, STATE_FILE);
  let revision: number;
  let keys: EncryptionKey[] | undefined;
  const src = new Database(sourceDb, { readonly: true, fileMustExist: true });
  try {
    const tables = new Set((src.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
    if (!tables.has('objects') || !tables.has('meta')) throw new Error(`${sourceDb} is not a Flotilla state database (no objects/meta tables)`);
    keys = restoredKeys(source, src, encryptionConfig);
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
  if (keys) saveEncryptionKeys(dataDir, keys);
  writeFileSync(join(dataDir, MEMBER_FILES.secret), `${randomBytes(24).toString('base64url')}\n`, { mode: 0o600 });
  writeFileSync(join(dataDir, MEMBER_FILES.identity), JSON.stringify(identity));
  writeFileSync(join(dataDir, 'admin-token'), `${newBearerToken()}\n`, { mode: 0o600 });
  return { revision, identity };
}


/**
 * The keys a restore of `source` (open as `db`) starts with: those of `encryptionConfig`, else of the old member's
 * data dir; none when neither is there. Every key a stored Secret is encrypted with must be among them.
 */
function restoredKeys(source: string, db: Database.Database, encryptionConfig: string | undefined): EncryptionKey[] | undefined {
  const file = encryptionConfig ?? (statSync(source).isDirectory() ? join(source, ENCRYPTION_CONFIG_FILE) : undefined);
  const keys = file !== undefined && (encryptionConfig !== undefined || existsSync(file)) ? parseEncryptionConfiguration(JSON.parse(readFileSync(file, 'utf8')), file) : undefined;
  const needed = new Set<string>();
  for (const { body } of db.prepare('SELECT body FROM objects WHERE resource = ?').iterate(SEALED_RESOURCE) as Iterable<{ body: string }>) {
    const key = sealedWith(JSON.parse(body) as StoredObject);
    if (key !== undefined) needed.add(key);
  }
  const missing = [...needed].filter((name) => !keys?.some((k) => k.name === name));
  if (missing.length > 0) {
    throw new Error(keys
      ? `${file} holds no key named ${missing.join(', ')}, which Secrets of ${source} are encrypted with: give the encryption-config.json of a member of that cluster`
      : `the Secrets of ${source} are encrypted (key ${missing.join(', ')}): give the cluster's keys with --encryption-config FILE (the ${ENCRYPTION_CONFIG_FILE} of any of its servers' data dirs)`);
  }
  return keys;
}
