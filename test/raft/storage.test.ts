import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { RawNode } from '../../server/raft/rawnode.js';
import { SqliteStorage } from '../../server/raft/sqlite-storage.js';
import { MemoryStorage } from '../../server/raft/storage.js';
import { entry, runStorageContract } from './storage-contract.js';

const dir = mkdtempSync(join(tmpdir(), 'flotilla-raft-'));
let n = 0;

runStorageContract('MemoryStorage', () => ({ store: new MemoryStorage(), close: () => {} }));
runStorageContract('SqliteStorage', () => {
  const store = new SqliteStorage(join(dir, `contract-${n++}.db`));
  return { store, close: () => store.close() };
});

test('SqliteStorage: WAL journal and synchronous FULL', () => {
  const path = join(dir, 'pragmas.db');
  const store = new SqliteStorage(path);
  store.save({ entries: [entry(1, 1)] });
  store.close();
  const db = new Database(path);
  assert.is(db.pragma('journal_mode', { simple: true }), 'wal');
  db.close();
  const again = new SqliteStorage(path);
  // synchronous is per connection: check the one the storage opened
  assert.is((again as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true }), 2);
  again.close();
});

test('SqliteStorage: an update without mustSync is written, and synchronous FULL is restored after it', () => {
  const path = join(dir, 'relaxed.db');
  const store = new SqliteStorage(path);
  store.save({ entries: [entry(1, 1)], hardState: { term: 1, vote: 1, commit: 0 }, mustSync: true });
  store.save({ entries: [], hardState: { term: 1, vote: 1, commit: 1 }, mustSync: false });
  assert.is((store as unknown as { db: Database.Database }).db.pragma('synchronous', { simple: true }), 2);
  store.close();
  const again = new SqliteStorage(path);
  assert.equal(again.initialState().hardState, { term: 1, vote: 1, commit: 1 });
  again.close();
});

test('SqliteStorage: hard state, entries, snapshot and compaction come back after a restart', () => {
  const path = join(dir, 'restart.db');
  const a = new SqliteStorage(path);
  a.save({ entries: [1, 2, 3, 4, 5, 6].map((i) => entry(i, i < 4 ? 1 : 2)), hardState: { term: 2, vote: 3, commit: 5 } });
  a.createSnapshot(5, { voters: [1, 2, 3], learners: [4] }, new TextEncoder().encode('/var/lib/flotilla/snap-5.db'));
  a.compact(4);
  a.close();
  const b = new SqliteStorage(path);
  assert.equal(b.initialState(), { hardState: { term: 2, vote: 3, commit: 5 }, confState: { voters: [1, 2, 3], learners: [4] } });
  assert.is(b.firstIndex(), 4);
  assert.is(b.lastIndex(), 6);
  assert.is(b.term(3), 1);
  assert.equal(b.entries(4, 7, 1e9).map((e) => e.term), [2, 2, 2]);
  assert.is(new TextDecoder().decode(b.snapshot().data), '/var/lib/flotilla/snap-5.db');
  b.close();
});

test('SqliteStorage: a RawNode restarts from it with its term, vote and committed log', () => {
  const path = join(dir, 'node.db');
  const storage = new SqliteStorage(path);
  storage.save({ snapshot: { meta: { index: 1, term: 1, confState: { voters: [1], learners: [] } }, data: new Uint8Array() }, entries: [], hardState: { term: 1, vote: 0, commit: 1 } });
  const cfg = { id: 1, electionTick: 10, heartbeatTick: 1, randomInt: () => 0 };
  const node = new RawNode({ ...cfg, storage });
  node.campaign();
  const proposals = ['a', 'b', 'c'];
  for (const p of proposals) node.propose(new TextEncoder().encode(p));
  const applied: string[] = [];
  while (node.hasReady()) {
    const rd = node.ready();
    storage.save({ entries: rd.entries, ...(rd.hardState ? { hardState: rd.hardState } : {}) });
    for (const e of rd.committedEntries) if (e.data.byteLength > 0) applied.push(new TextDecoder().decode(e.data));
    node.advance(rd);
  }
  assert.equal(applied, proposals);
  const before = node.status();
  storage.close();

  const reopened = new SqliteStorage(path);
  const again = new RawNode({ ...cfg, storage: reopened });
  const after = again.status();
  assert.equal([after.term, after.vote, after.commit, after.lastIndex], [before.term, before.vote, before.commit, before.lastIndex]);
  const rd = again.ready();
  assert.equal(rd.committedEntries.filter((e) => e.data.byteLength > 0).map((e) => new TextDecoder().decode(e.data)), proposals, 'committed entries are replayed');
  reopened.close();
});

test.after(() => rmSync(dir, { recursive: true, force: true }));
test.run();
