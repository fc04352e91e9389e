import { chmodSync, closeSync, copyFileSync, existsSync, openSync, renameSync, rmSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Database as DB, Statement } from 'better-sqlite3';
import { DataCorruptionError, addCrcColumns, isSqliteDamage, quickCheckFailure, rowCrc, walDamage } from './sqlite-check.js';
import { WatchHub } from './watch.js';
import type { WatchListener } from './watch.js';
import { applyBatch } from './state-machine.js';
import type { StateTable } from './state-machine.js';
import type { AppliedCommand, ApplyResult, ResourceKey, StateStore, StoredObject, WatchEvent } from './types.js';

export interface SqliteStoreOptions {
  /** SQLite file; ':memory:' for a throw-away store. */
  path: string;
  /** How many recent changes a watch can resume from before it gets 410 Gone. */
  historyWindow?: number;
  /**
   * FULL (default): every apply is on disk when it returns. NORMAL: for a store fed by the Raft log, which is
   * itself durable; applies after the last checkpoint() may be lost in a power cut and are replayed from the
   * log, so checkpoint() must run before the log is compacted.
   */
  synchronous?: 'FULL' | 'NORMAL';
}

/**
 * The cluster state on SQLite (WAL, synchronous FULL), applied by the one state machine (state-machine.ts).
 *
 * Contract: `apply` is the only function that changes state. It applies a batch of commands, each with the
 * revision it is assigned (its Raft log index, or the next counter value when running alone), in ONE
 * transaction; when it returns, the batch is durable. Results and watch events depend only on the state and
 * the commands, never on the clock, so every replica that applies the same commands agrees.
 *
 * Every row carries a CRC-32 of its content, verified whenever it is read (a damaged row is a
 * DataCorruptionError, never an answer) and, with the file's structure and WAL, by `damage()` before a start.
 */
export class SqliteStore implements StateStore {
  db!: DB;
  /** Set once a read found a damaged row: what /readyz reports (the member serves nothing it cannot vouch for). */
  corruption: DataCorruptionError | undefined;
  readonly #hub: WatchHub;
  #revision = 0;
  #stmt!: {
    get: Statement<[string, string, string], ObjectRow>;
    listAll: Statement<[string], ObjectRow>;
    listNs: Statement<[string, string], ObjectRow>;
    put: Statement<[string, string, string, string, number]>;
    del: Statement<[string, string, string]>;
    setRev: Statement<[number, number]>;
    seen: Statement<[string]>;
    remember: Statement<[string, number, number]>;
    forget: Statement<[number]>;
  };
  #applyTx!: (batch: AppliedCommand[]) => { results: ApplyResult[]; events: WatchEvent[]; revision: number };

  constructor(readonly opts: SqliteStoreOptions) {
    this.#open();
    this.#hub = new WatchHub(this.#revision, opts.historyWindow ?? 10_000);
  }

  #open(): void {
    this.db = new Database(this.opts.path);
    // Small pages: every commit writes whole pages to the WAL, and most commits touch a few rows each, so
    // 1 KiB pages cut the bytes an SD card takes per write to about a third (bench:store bytesPer1000Writes).
    // Takes effect when the file is created.
    this.db.pragma('page_size = 1024');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma(`synchronous = ${this.opts.synchronous ?? 'FULL'}`);
    this.db.exec(`
      CREATE TABLE IF NOT EXISTS objects (
        resource TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL, body TEXT NOT NULL, crc INTEGER,
        PRIMARY KEY (resource, namespace, name)) WITHOUT ROWID;
      CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL, crc INTEGER);
      CREATE TABLE IF NOT EXISTS applied_proposals (id TEXT PRIMARY KEY, revision INTEGER NOT NULL, crc INTEGER);
      CREATE INDEX IF NOT EXISTS applied_proposals_revision ON applied_proposals (revision);
    `);
    this.db.prepare("INSERT OR IGNORE INTO meta (key, value, crc) VALUES ('revision', 0, ?)").run(rowCrc(['revision', 0]));
    this.#addChecksums();
    this.#stmt = {
      get: this.db.prepare('SELECT resource, namespace, name, body, crc FROM objects WHERE resource = ? AND namespace = ? AND name = ?'),
      listAll: this.db.prepare('SELECT resource, namespace, name, body, crc FROM objects WHERE resource = ? ORDER BY namespace, name'),
      listNs: this.db.prepare('SELECT resource, namespace, name, body, crc FROM objects WHERE resource = ? AND namespace = ? ORDER BY name'),
      put: this.db.prepare('INSERT OR REPLACE INTO objects (resource, namespace, name, body, crc) VALUES (?, ?, ?, ?, ?)'),
      del: this.db.prepare('DELETE FROM objects WHERE resource = ? AND namespace = ? AND name = ?'),
      setRev: this.db.prepare("UPDATE meta SET value = ?, crc = ? WHERE key = 'revision'"),
      seen: this.db.prepare('SELECT 1 FROM applied_proposals WHERE id = ?'),
      remember: this.db.prepare('INSERT INTO applied_proposals (id, revision, crc) VALUES (?, ?, ?)'),
      forget: this.db.prepare('DELETE FROM applied_proposals WHERE revision < ?'),
    };
    this.#revision = readRevision(this.db, this.opts.path);
    const stmt = this.#stmt;
    const table: StateTable = {
      get: (resource, namespace, name) => this.get(resource, namespace, name),
      put: (resource, namespace, name, object) => {
        const body = JSON.stringify(object);
        stmt.put.run(resource, namespace, name, body, objectCrc({ resource, namespace, name, body }));
      },
      remove: (resource, namespace, name) => { stmt.del.run(resource, namespace, name); },
      hasApplied: (id) => stmt.seen.get(id) !== undefined,
      rememberApplied: (id, revision) => { stmt.remember.run(id, revision, rowCrc([id, revision])); },
      forgetAppliedBefore: (revision) => { stmt.forget.run(revision); },
    };
    this.#applyTx = this.db.transaction((batch: AppliedCommand[]) => {
      const out = applyBatch(table, this.#revision, batch);
      stmt.setRev.run(out.revision, rowCrc(['revision', out.revision]));
      return out;
    });
  }

  /** Tables made before the checksums existed get a crc column, and every row its checksum (once). */
  #addChecksums(): void {
    this.db.transaction(() => {
      const missing = addCrcColumns(this.db, ['objects', 'meta', 'applied_proposals']);
      if (missing.includes('objects')) {
        const set = this.db.prepare('UPDATE objects SET crc = ? WHERE resource = ? AND namespace = ? AND name = ?');
        for (const r of this.db.prepare('SELECT resource, namespace, name, body FROM objects').all() as ObjectRow[]) set.run(objectCrc(r), r.resource, r.namespace, r.name);
      }
      if (missing.includes('meta')) {
        const set = this.db.prepare('UPDATE meta SET crc = ? WHERE key = ?');
        for (const r of this.db.prepare('SELECT key, value FROM meta').all() as { key: string; value: number }[]) set.run(rowCrc([r.key, r.value]), r.key);
      }
      if (missing.includes('applied_proposals')) {
        const set = this.db.prepare('UPDATE applied_proposals SET crc = ? WHERE id = ?');
        for (const r of this.db.prepare('SELECT id, revision FROM applied_proposals').all() as { id: string; revision: number }[]) set.run(rowCrc([r.id, r.revision]), r.id);
      }
    })();
  }

  /**
   * What is wrong with the state file at `path`, or undefined: its WAL (sqlite-check.ts), its structure
   * (quick_check) and every row's checksum. Rows of a file from before the checksums are taken as they are.
   */
  static damage(path: string): DataCorruptionError | undefined {
    const wayOut = 'It is rebuilt from the last snapshot and the Raft log';
    const wal = walDamage(path);
    if (wal) return new DataCorruptionError(`${path}-wal`, wal, wayOut);
    if (!existsSync(path)) return undefined;
    let db: DB | undefined;
    try {
      // Read-write: a read-only connection cannot open a WAL database whose -shm file is gone.
      db = new Database(path, { fileMustExist: true });
      const structure = quickCheckFailure(db);
      if (structure) return new DataCorruptionError(path, `PRAGMA quick_check failed: ${structure}`, wayOut);
      const tables = new Set((db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[]).map((r) => r.name));
      if (!tables.has('objects') || !tables.has('meta')) return undefined;
      if (!(db.pragma('table_info(objects)') as { name: string }[]).some((c) => c.name === 'crc')) return undefined;
      for (const row of db.prepare('SELECT resource, namespace, name, body, crc FROM objects').iterate() as IterableIterator<ObjectRow>) {
        if (row.crc !== objectCrc(row)) return new DataCorruptionError(path, `${row.resource} ${row.namespace ? `${row.namespace}/` : ''}${row.name} fails its checksum`, wayOut);
      }
      readRevision(db, path);
      for (const row of db.prepare('SELECT id, revision, crc FROM applied_proposals').iterate() as IterableIterator<{ id: string; revision: number; crc: number | null }>) {
        if (row.crc !== rowCrc([row.id, row.revision])) return new DataCorruptionError(path, `the applied proposal ${row.id} fails its checksum`, wayOut);
      }
      return undefined;
    } catch (err) {
      if (err instanceof DataCorruptionError) return err;
      if (isSqliteDamage(err)) return new DataCorruptionError(path, (err as Error).message, wayOut);
      throw err;
    } finally {
      db?.close();
    }
  }

  /**
   * Replaces the whole state with a snapshot file (a copy made by snapshotTo on some member). Watches end:
   * their clients list again, since the changes between the two states are not known one by one.
   */
  restoreFrom(snapshotPath: string): void {
    this.db.close();
    for (const suffix of ['-wal', '-shm']) rmSync(`${this.opts.path}${suffix}`, { force: true });
    copyFileSync(snapshotPath, `${this.opts.path}.restoring`);
    renameSync(`${this.opts.path}.restoring`, this.opts.path);
    this.#open();
    this.#hub.reset(this.#revision);
  }

  /** The revision of the last applied command: the resourceVersion of the newest write. */
  revision(): number {
    return this.#revision;
  }

  get(resource: ResourceKey, namespace: string, name: string): StoredObject | undefined {
    const row = this.#stmt.get.get(resource, namespace, name);
    return row ? this.#verified(row) : undefined;
  }

  #verified(row: ObjectRow): StoredObject {
    if (row.crc !== objectCrc(row)) {
      this.corruption ??= new DataCorruptionError(this.opts.path, `${row.resource} ${row.namespace ? `${row.namespace}/` : ''}${row.name} fails its checksum`, 'Restart the server: it rebuilds the state from the last snapshot and the Raft log');
      throw this.corruption;
    }
    return JSON.parse(row.body) as StoredObject;
  }

  /** Objects of one resource, in one namespace or (namespace undefined) all; with the revision they reflect. */
  list(resource: ResourceKey, namespace?: string): { items: StoredObject[]; revision: number } {
    const rows = namespace === undefined ? this.#stmt.listAll.all(resource) : this.#stmt.listNs.all(resource, namespace);
    return { items: rows.map((r) => this.#verified(r)), revision: this.#revision };
  }

  apply(batch: AppliedCommand[]): ApplyResult[] {
    if (batch.length === 0) return [];
    const out = this.#applyTx(batch);
    this.#revision = out.revision;
    this.#hub.publish(out.events, this.#revision);
    return out.results;
  }

  watch(resource: ResourceKey, namespace: string | undefined, fromRevision: number, listener: WatchListener, onClose?: () => void): () => void {
    return this.#hub.watch(resource, namespace, fromRevision, listener, onClose);
  }

  get watcherCount(): number {
    return this.#hub.watcherCount;
  }

  /** Makes every applied command durable (WAL checkpoint with fsync). */
  checkpoint(): void {
    this.db.pragma('wal_checkpoint(FULL)');
  }

  /** Copies a consistent image of the state to `path` (a snapshot or a backup), a new file readable by its owner only. */
  snapshotTo(path: string): void {
    // VACUUM INTO takes an empty file as a new one; made here, it has the mode the state's secrecy asks for.
    closeSync(openSync(path, 'wx', 0o600));
    chmodSync(path, 0o600);
    this.db.prepare('VACUUM INTO ?').run(path);
  }

  close(): void {
    this.#hub.closeAll();
    this.db.close();
  }
}

interface ObjectRow { resource: string; namespace: string; name: string; body: string; crc?: number | null }

function objectCrc(r: Pick<ObjectRow, 'resource' | 'namespace' | 'name' | 'body'>): number {
  return rowCrc([r.resource, r.namespace, r.name, r.body]);
}

/** The revision in meta, checked against its checksum (absent in a file from before the checksums). */
function readRevision(db: DB, path: string): number {
  const row = db.prepare("SELECT value, crc FROM meta WHERE key = 'revision'").get() as { value: number; crc?: number | null } | undefined;
  if (!row) throw new DataCorruptionError(path, 'the revision is missing from its meta table', 'It is rebuilt from the last snapshot and the Raft log');
  if (row.crc !== undefined && row.crc !== rowCrc(['revision', row.value])) {
    throw new DataCorruptionError(path, 'the revision in its meta table fails its checksum', 'It is rebuilt from the last snapshot and the Raft log');
  }
  return row.value;
}
