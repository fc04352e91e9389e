// Raft log storage on SQLite (better-sqlite3): WAL journal, synchronous=FULL, one transaction per Ready
// (group commit: every entry and the hard state of a Ready reach the disk with one fsync). The snapshot itself
// is produced by the state machine (the server's store, e.g. VACUUM INTO a file); this storage records its
// metadata (index, term, conf state) and the bytes it was handed, typically the snapshot file's path.
//
// Every row carries a CRC-32 of its content (as etcd's WAL records do), written with it and verified whenever
// it is read, and every row is verified when the file is opened; so are the file's structure (quick_check) and
// its WAL (server/store/sqlite-check.ts). Damage is a DataCorruptionError, never a shorter or different log.
// A file written before the checksums existed gets them once, at open, after those checks passed.
import Database from 'better-sqlite3';
import { DataCorruptionError, addCrcColumns, isSqliteDamage, quickCheckFailure, rowCrc, walDamage } from '../store/sqlite-check.js';
import {
  CompactedError, type LogStore, SnapshotOutOfDateError, type StorageUpdate, UnavailableError, cloneConfState, emptySnapshot,
} from './storage.js';
import { type ConfState, type Entry, type EntryType, type HardState, type Snapshot, EMPTY_HARD_STATE, entrySize } from './types.js';

const SCHEMA = `
CREATE TABLE IF NOT EXISTS raft_hard_state (
  id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL, vote INTEGER NOT NULL, commit_index INTEGER NOT NULL, crc INTEGER);
CREATE TABLE IF NOT EXISTS raft_entries (
  idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type TEXT NOT NULL, data BLOB NOT NULL, crc INTEGER);
CREATE TABLE IF NOT EXISTS raft_snapshot (
  id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL, term INTEGER NOT NULL, conf_state TEXT NOT NULL, data BLOB NOT NULL, crc INTEGER);
-- anchor: index and term of the entry just before the first retained one (answers term(firstIndex - 1))
CREATE TABLE IF NOT EXISTS raft_anchor (
  id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL, term INTEGER NOT NULL, crc INTEGER);
`;

const TABLES = ['raft_hard_state', 'raft_entries', 'raft_snapshot', 'raft_anchor'] as const;

/** What an operator does about a member whose Raft log (or the snapshot it refers to) is damaged. */
export const RAFT_LOG_WAY_OUT = 'The server does not start on damaged data. Remove this member (flotilla cluster remove MEMBER_ID on a healthy member), move its data dir away and start it again with --join, so that it is sent a snapshot by the leader; a single server restores its last backup (flotilla restore --data NEW_DIR BACKUP_FILE)';

interface EntryRow {
  idx: number;
  term: number;
  type: string;
  data: Buffer;
  crc: number | null;
}

function entryCrc(e: { index: number; term: number; type: string; data: Uint8Array }): number {
  return rowCrc([e.index, e.term, e.type], e.data);
}

function parseConfState(text: string): ConfState {
  const cs = JSON.parse(text) as Partial<ConfState>;
  if (!Array.isArray(cs.voters) || !Array.isArray(cs.learners)) throw new Error(`raft_snapshot.conf_state is malformed: ${text}`);
  return { voters: cs.voters, learners: cs.learners };
}

export interface SqliteStorageOptions {
  /** synchronous=FULL by default; tests may pass 'OFF' to spare the disk, never production. */
  synchronous?: 'FULL' | 'NORMAL' | 'OFF';
}

export class SqliteStorage implements LogStore {
  private readonly db: Database.Database;
  private readonly path: string;
  private readonly synchronous: 'FULL' | 'NORMAL' | 'OFF';
  /** Cached copies of what is on disk; refreshed inside every write transaction. */
  private hardState: HardState;
  private snap: Snapshot;
  private anchor: { index: number; term: number };
  private last: number;
  private readonly stmt;

  /** Throws DataCorruptionError when the file, its WAL or any row is damaged. */
  constructor(path: string, options: SqliteStorageOptions = {}) {
    this.path = path;
    const wal = walDamage(path);
    if (wal) throw new DataCorruptionError(`${path}-wal`, wal, RAFT_LOG_WAY_OUT);
    try {
      this.db = new Database(path);
    } catch (err) {
      if (isSqliteDamage(err)) throw new DataCorruptionError(path, `cannot be opened: ${(err as Error).message}`, RAFT_LOG_WAY_OUT);
      throw err;
    }
    try {
      const damage = quickCheckFailure(this.db);
      if (damage) throw new DataCorruptionError(this.path, `PRAGMA quick_check failed: ${damage}`, RAFT_LOG_WAY_OUT);
      // Small pages: every commit writes whole pages to the WAL, and most commits touch a few rows each, so
      // 1 KiB pages cut the bytes an SD card takes per write to about a third (bench:store bytesPer1000Writes).
      // Takes effect when the file is created.
      this.db.pragma('page_size = 1024');
      this.db.pragma('journal_mode = WAL');
      this.synchronous = options.synchronous ?? 'FULL';
      this.db.pragma(`synchronous = ${this.synchronous}`);
      this.db.exec(SCHEMA);
      this.#addChecksums();
      this.stmt = {
        putHardState: this.db.prepare('INSERT INTO raft_hard_state (id, term, vote, commit_index, crc) VALUES (1, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET term = excluded.term, vote = excluded.vote, commit_index = excluded.commit_index, crc = excluded.crc'),
        putSnapshot: this.db.prepare('INSERT INTO raft_snapshot (id, idx, term, conf_state, data, crc) VALUES (1, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET idx = excluded.idx, term = excluded.term, conf_state = excluded.conf_state, data = excluded.data, crc = excluded.crc'),
        putAnchor: this.db.prepare('INSERT INTO raft_anchor (id, idx, term, crc) VALUES (1, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET idx = excluded.idx, term = excluded.term, crc = excluded.crc'),
        insertEntry: this.db.prepare('INSERT INTO raft_entries (idx, term, type, data, crc) VALUES (?, ?, ?, ?, ?)'),
        deleteFrom: this.db.prepare('DELETE FROM raft_entries WHERE idx >= ?'),
        deleteBefore: this.db.prepare('DELETE FROM raft_entries WHERE idx < ?'),
        deleteAll: this.db.prepare('DELETE FROM raft_entries'),
        range: this.db.prepare('SELECT idx, term, type, data, crc FROM raft_entries WHERE idx >= ? AND idx < ? ORDER BY idx'),
        one: this.db.prepare('SELECT idx, term, type, data, crc FROM raft_entries WHERE idx = ?'),
      };
      const hs = this.db.prepare('SELECT term, vote, commit_index AS "commit", crc FROM raft_hard_state WHERE id = 1').get() as (HardState & { crc: number }) | undefined;
      if (hs && hs.crc !== rowCrc([hs.term, hs.vote, hs.commit])) throw new DataCorruptionError(this.path, 'the Raft hard state (term, vote, commit) fails its checksum', RAFT_LOG_WAY_OUT);
      this.hardState = hs ? { term: hs.term, vote: hs.vote, commit: hs.commit } : { ...EMPTY_HARD_STATE };
      const s = this.db.prepare('SELECT idx, term, conf_state, data, crc FROM raft_snapshot WHERE id = 1').get() as
        { idx: number; term: number; conf_state: string; data: Buffer; crc: number } | undefined;
      if (s && s.crc !== rowCrc([s.idx, s.term, s.conf_state], s.data)) throw new DataCorruptionError(this.path, 'the Raft snapshot record fails its checksum', RAFT_LOG_WAY_OUT);
      this.snap = s
        ? { meta: { index: s.idx, term: s.term, confState: parseConfState(s.conf_state) }, data: new Uint8Array(s.data) }
        : emptySnapshot();
      const a = this.db.prepare('SELECT idx, term, crc FROM raft_anchor WHERE id = 1').get() as { idx: number; term: number; crc: number } | undefined;
      if (a && a.crc !== rowCrc([a.idx, a.term])) throw new DataCorruptionError(this.path, 'the Raft log anchor fails its checksum', RAFT_LOG_WAY_OUT);
      this.anchor = a ? { index: a.idx, term: a.term } : { index: 0, term: 0 };
      const range = this.db.prepare('SELECT MIN(idx) AS lo, MAX(idx) AS hi, COUNT(*) AS n FROM raft_entries').get() as { lo: number | null; hi: number | null; n: number };
      this.last = range.hi ?? this.anchor.index;
      if (range.n > 0 && (range.lo !== this.anchor.index + 1 || range.n !== this.last - this.anchor.index)) {
        throw new DataCorruptionError(this.path, `the Raft log has holes: ${range.n} entries in [${range.lo}, ${range.hi}] after the anchor at ${this.anchor.index}`, RAFT_LOG_WAY_OUT);
      }
      if (this.hardState.commit > this.last) {
        throw new DataCorruptionError(this.path, `the Raft log ends at index ${this.last} but its hard state says ${this.hardState.commit} is committed: committed entries are missing`, RAFT_LOG_WAY_OUT);
      }
      // Every entry is read once: a damaged one is found now, not when a follower or a restart needs it.
      for (const row of this.db.prepare('SELECT idx, term, type, data, crc FROM raft_entries ORDER BY idx').iterate() as IterableIterator<EntryRow>) this.#rowToEntry(row);
    } catch (err) {
      this.db.close();
      if (isSqliteDamage(err)) throw new DataCorruptionError(path, (err as Error).message, RAFT_LOG_WAY_OUT);
      throw err;
    }
  }

  /** Tables made before the checksums existed get a crc column, and every row its checksum (once). */
  #addChecksums(): void {
    this.db.transaction(() => {
      if (addCrcColumns(this.db, TABLES).length === 0) return;
      const hs = this.db.prepare('SELECT term, vote, commit_index FROM raft_hard_state').get() as { term: number; vote: number; commit_index: number } | undefined;
      if (hs) this.db.prepare('UPDATE raft_hard_state SET crc = ?').run(rowCrc([hs.term, hs.vote, hs.commit_index]));
      const s = this.db.prepare('SELECT idx, term, conf_state, data FROM raft_snapshot').get() as { idx: number; term: number; conf_state: string; data: Buffer } | undefined;
      if (s) this.db.prepare('UPDATE raft_snapshot SET crc = ?').run(rowCrc([s.idx, s.term, s.conf_state], s.data));
      const a = this.db.prepare('SELECT idx, term FROM raft_anchor').get() as { idx: number; term: number } | undefined;
      if (a) this.db.prepare('UPDATE raft_anchor SET crc = ?').run(rowCrc([a.idx, a.term]));
      const set = this.db.prepare('UPDATE raft_entries SET crc = ? WHERE idx = ?');
      const rows = this.db.prepare('SELECT idx, term, type, data FROM raft_entries').all() as EntryRow[];
      for (const r of rows) set.run(entryCrc({ index: r.idx, term: r.term, type: r.type, data: r.data }), r.idx);
    })();
  }

  #rowToEntry(r: EntryRow): Entry {
    const e = { index: r.idx, term: r.term, type: r.type as EntryType, data: new Uint8Array(r.data.buffer, r.data.byteOffset, r.data.byteLength) };
    if (r.crc !== entryCrc(e)) throw new DataCorruptionError(this.path, `Raft log entry ${r.idx} fails its checksum`, RAFT_LOG_WAY_OUT);
    if (r.type !== 'normal' && r.type !== 'confChange') throw new DataCorruptionError(this.path, `Raft log entry ${r.idx} has unknown type ${JSON.stringify(r.type)}`, RAFT_LOG_WAY_OUT);
    return e;
  }

  close(): void {
    this.db.close();
  }

  initialState(): { hardState: HardState; confState: ConfState } {
    return { hardState: { ...this.hardState }, confState: cloneConfState(this.snap.meta.confState) };
  }

  firstIndex(): number {
    return this.anchor.index + 1;
  }

  lastIndex(): number {
    return this.last;
  }

  term(index: number): number {
    if (index < this.anchor.index) throw new CompactedError(index, this.firstIndex());
    if (index > this.last) throw new UnavailableError(index, this.last);
    if (index === this.anchor.index) return this.anchor.term;
    const row = this.stmt.one.get(index) as EntryRow | undefined;
    if (row === undefined) throw new DataCorruptionError(this.path, `the Raft log lacks index ${index} inside [${this.firstIndex()}, ${this.last}]`, RAFT_LOG_WAY_OUT);
    return this.#rowToEntry(row).term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (lo <= this.anchor.index) throw new CompactedError(lo, this.firstIndex());
    if (hi > this.last + 1) throw new UnavailableError(hi - 1, this.last);
    const out: Entry[] = [];
    let size = 0;
    for (const row of this.stmt.range.iterate(lo, hi) as IterableIterator<EntryRow>) {
      const e = this.#rowToEntry(row);
      if (e.index !== lo + out.length) throw new DataCorruptionError(this.path, `the Raft log has a gap before index ${e.index}`, RAFT_LOG_WAY_OUT);
      size += entrySize(e);
      if (out.length > 0 && size > maxBytes) return out;
      out.push(e);
    }
    if (out.length !== hi - lo) throw new DataCorruptionError(this.path, `the Raft log has a gap: expected [${lo}, ${hi}), found ${out.length} entries`, RAFT_LOG_WAY_OUT);
    return out;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  /** One transaction: snapshot (replacing the log), entries (truncating a conflicting tail), hard state. */
  save(update: StorageUpdate): void {
    const cached = { hardState: this.hardState, snap: this.snap, anchor: this.anchor, last: this.last };
    // Without mustSync the commit waits for no fsync; the next synced commit makes it durable with the rest.
    const relaxed = update.mustSync === false && this.synchronous !== 'OFF';
    if (relaxed) this.db.pragma('synchronous = OFF');
    try {
      this.db.transaction(() => {
        if (update.snapshot) this.writeSnapshot(update.snapshot);
        this.writeEntries(update.entries);
        if (update.hardState) {
          const hs = update.hardState;
          this.stmt.putHardState.run(hs.term, hs.vote, hs.commit, rowCrc([hs.term, hs.vote, hs.commit]));
          this.hardState = { ...hs };
        }
      })();
    } catch (err) {
      // The transaction rolled back: so do the cached copies.
      ({ hardState: this.hardState, snap: this.snap, anchor: this.anchor, last: this.last } = cached);
      throw err;
    } finally {
      if (relaxed) this.db.pragma(`synchronous = ${this.synchronous}`);
    }
  }

  createSnapshot(index: number, confState: ConfState, data: Uint8Array): Snapshot {
    if (index <= this.snap.meta.index) throw new SnapshotOutOfDateError(index, this.snap.meta.index);
    const term = this.term(index);
    const snap: Snapshot = { meta: { index, term, confState: cloneConfState(confState) }, data };
    this.#putSnapshot(snap);
    this.snap = snap;
    return snap;
  }

  /** Replaces the data of the stored snapshot, keeping its meta (a migration of how the data is written). */
  replaceSnapshotData(data: Uint8Array): void {
    const snap: Snapshot = { meta: this.snap.meta, data };
    this.#putSnapshot(snap);
    this.snap = snap;
  }

  compact(index: number): void {
    if (index <= this.firstIndex()) return;
    if (index > this.snap.meta.index + 1) {
      throw new Error(`cannot compact to ${index}: entries after the snapshot at ${this.snap.meta.index} would be lost`);
    }
    const anchor = { index: index - 1, term: this.term(index - 1) };
    this.db.transaction(() => {
      this.stmt.putAnchor.run(anchor.index, anchor.term, rowCrc([anchor.index, anchor.term]));
      this.stmt.deleteBefore.run(index);
    })();
    this.anchor = anchor;
  }

  private writeSnapshot(snap: Snapshot): void {
    if (snap.meta.index < this.snap.meta.index) throw new SnapshotOutOfDateError(snap.meta.index, this.snap.meta.index);
    this.#putSnapshot(snap);
    this.stmt.putAnchor.run(snap.meta.index, snap.meta.term, rowCrc([snap.meta.index, snap.meta.term]));
    this.stmt.deleteAll.run();
    this.snap = { meta: { ...snap.meta, confState: cloneConfState(snap.meta.confState) }, data: snap.data };
    this.anchor = { index: snap.meta.index, term: snap.meta.term };
    this.last = snap.meta.index;
  }

  #putSnapshot(snap: Snapshot): void {
    const confState = JSON.stringify(snap.meta.confState);
    this.stmt.putSnapshot.run(snap.meta.index, snap.meta.term, confState, Buffer.from(snap.data), rowCrc([snap.meta.index, snap.meta.term, confState], snap.data));
  }

  private writeEntries(entries: Entry[]): void {
    const fresh = entries.filter((e) => e.index > this.anchor.index);
    if (fresh.length === 0) return;
    const first = fresh[0]!.index;
    if (first > this.last + 1) throw new Error(`missing log entries: last stored index ${this.last}, appending from ${first}`);
    if (first <= this.last) this.stmt.deleteFrom.run(first);
    for (const e of fresh) this.stmt.insertEntry.run(e.index, e.term, e.type, Buffer.from(e.data.buffer, e.data.byteOffset, e.data.byteLength), entryCrc(e));
    this.last = fresh[fresh.length - 1]!.index;
  }
}
