// SqliteStorage against damaged files: a copy of an open log (database, WAL and WAL index, as a SIGKILLed
// server leaves them) is damaged and opened again. Damage that would lose or change committed entries is a
// DataCorruptionError naming the file; an intact copy opens with every entry.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { SqliteStorage } from '../../server/raft/sqlite-storage.js';
import { DataCorruptionError, walDamage } from '../../server/store/sqlite-check.js';
import { entry } from './storage-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-integrity-'));
let n = 0;
const payload = (i: number) => `PAYLOAD-${String(i).padStart(4, '0')}`;

/** A log of 200 entries, one transaction each, copied while open (so the WAL holds them). Returns the copy. */
function killedLog(): string {
  const live = join(dir, `live-${n}.db`);
  const copy = join(dir, `copy-${n++}.db`);
  const store = new SqliteStorage(live);
  for (let i = 1; i <= 200; i++) store.save({ entries: [entry(i, 1, payload(i))], hardState: { term: 1, vote: 1, commit: i } });
  for (const suffix of ['', '-wal', '-shm']) copyFileSync(`${live}${suffix}`, `${copy}${suffix}`);
  store.close();
  return copy;
}

function refusal(path: string): DataCorruptionError {
  try {
    new SqliteStorage(path).close();
  } catch (err) {
    assert.instance(err, DataCorruptionError);
    return err as DataCorruptionError;
  }
  throw new Error(`${path} opened although it is damaged`);
}

test('an intact copy of a killed log opens with every entry', () => {
  const path = killedLog();
  assert.is(walDamage(path), undefined);
  const store = new SqliteStorage(path);
  assert.is(store.lastIndex(), 200);
  assert.is(new TextDecoder().decode(store.entries(200, 201, 1e9)[0]!.data), payload(200));
  store.close();
});

test('a flipped byte in a WAL frame with commits behind it: refused, naming the WAL', () => {
  const path = killedLog();
  const wal = readFileSync(`${path}-wal`);
  const frame = 24 + wal.readUInt32BE(8);
  wal[32 + 20 * frame + 24 + 10]! ^= 0xff;
  writeFileSync(`${path}-wal`, wal);
  const err = refusal(path);
  assert.is(err.file, `${path}-wal`);
  assert.match(err.what, /frame 21 .* damaged/);
});

test('a WAL cut short: refused, since its index says more was committed', () => {
  const path = killedLog();
  truncateSync(`${path}-wal`, Math.floor(statSync(`${path}-wal`).size / 2));
  assert.match(refusal(path).what, /cut short or damaged/);
});

test('a deleted WAL with frames not yet checkpointed: refused', () => {
  const path = killedLog();
  rmSync(`${path}-wal`);
  assert.match(refusal(path).what, /is missing/);
});

test('a torn last frame, as a power cut may leave it (no WAL index of this boot): opens with the entries before it', () => {
  const path = killedLog();
  rmSync(`${path}-shm`);
  const wal = readFileSync(`${path}-wal`);
  wal[wal.length - 5]! ^= 0xff;
  writeFileSync(`${path}-wal`, wal);
  assert.is(walDamage(path), undefined);
  const store = new SqliteStorage(path);
  assert.ok(store.lastIndex() >= 199);
  store.close();
});

test('a changed byte in an entry in the database file: the entry fails its checksum, refused', () => {
  const path = join(dir, 'checkpointed.db');
  const store = new SqliteStorage(path);
  for (let i = 1; i <= 50; i++) store.save({ entries: [entry(i, 1, payload(i))] });
  store.close(); // checkpoints: the entries are in the database file now
  assert.not.ok(existsSync(`${path}-wal`));
  const bytes = readFileSync(path);
  const at = bytes.indexOf(payload(42));
  assert.ok(at > 0);
  bytes[at + 8] = '9'.charCodeAt(0); // PAYLOAD-0042 -> PAYLOAD-0092: still a well-formed row
  writeFileSync(path, bytes);
  const err = refusal(path);
  assert.is(err.file, path);
  assert.match(err.what, 'entry 42 fails its checksum');
});

test('a log written before the checksums gets them once at open and reads as before', () => {
  const path = join(dir, 'legacy.db');
  const db = new Database(path);
  db.exec(`CREATE TABLE raft_hard_state (id INTEGER PRIMARY KEY CHECK (id = 1), term INTEGER NOT NULL, vote INTEGER NOT NULL, commit_index INTEGER NOT NULL);
    CREATE TABLE raft_entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL, type TEXT NOT NULL, data BLOB NOT NULL);
    CREATE TABLE raft_snapshot (id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL, term INTEGER NOT NULL, conf_state TEXT NOT NULL, data BLOB NOT NULL);
    CREATE TABLE raft_anchor (id INTEGER PRIMARY KEY CHECK (id = 1), idx INTEGER NOT NULL, term INTEGER NOT NULL);
    INSERT INTO raft_hard_state VALUES (1, 2, 1, 3);`);
  for (let i = 1; i <= 3; i++) db.prepare('INSERT INTO raft_entries VALUES (?, 2, ?, ?)').run(i, 'normal', Buffer.from(payload(i)));
  db.close();
  const store = new SqliteStorage(path);
  assert.equal(store.initialState().hardState, { term: 2, vote: 1, commit: 3 });
  assert.equal(store.entries(1, 4, 1e9).map((e) => new TextDecoder().decode(e.data)), [1, 2, 3].map(payload));
  store.close();
  const again = new SqliteStorage(path);
  assert.is(again.lastIndex(), 3);
  again.close();
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
