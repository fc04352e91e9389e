import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import { GoneError } from '../../server/store/types.js';
import { applyOne, cm, create, ok, runStoreContract } from './store-contract.js';

const dirs: string[] = [];
function freshStore(historyWindow?: number): { store: SqliteStore; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-store-'));
  dirs.push(dir);
  const path = join(dir, 'state.db');
  return { store: new SqliteStore({ path, ...(historyWindow ? { historyWindow } : {}) }), path };
}

runStoreContract('SqliteStore', (opts) => {
  const { store } = freshStore(opts?.historyWindow);
  return { store, close: () => store.close() };
});

test('state and revision survive closing and reopening the file; the history window restarts there', () => {
  const { store, path } = freshStore();
  ok(applyOne(store, create(cm('a'))));
  const rev = store.revision();
  store.close();
  const again = new SqliteStore({ path });
  assert.is(again.revision(), rev);
  assert.equal(again.get('configmaps', 'default', 'a')?.data, { a: '1' });
  assert.throws(() => again.watch('configmaps', undefined, rev - 1, () => {}), (e: unknown) => e instanceof GoneError);
  again.close();
});

test('LocalProposer commits concurrent proposals in one batch with consecutive revisions', async () => {
  const { store } = freshStore();
  const proposer = new LocalProposer(store);
  let transactions = 0;
  const apply = store.apply.bind(store);
  store.apply = (batch) => { transactions++; return apply(batch); };
  const before = store.revision();
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => proposer.propose(create(cm(`n${i}`)))));
  assert.is(transactions, 1);
  assert.equal(results.map((r) => Number(ok(r).metadata.resourceVersion)), Array.from({ length: 50 }, (_, i) => before + 1 + i));
  store.close();
});

test.after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
test.run();
