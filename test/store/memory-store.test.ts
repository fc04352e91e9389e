import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MemoryStore } from '../../server/store/memory-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import { cm, create, ok, runStoreContract } from './store-contract.js';

runStoreContract('MemoryStore', (opts) => {
  const store = new MemoryStore(opts);
  return { store, close: () => store.close() };
});

test('LocalProposer on a MemoryStore: concurrent proposals get consecutive revisions, and close ends the watches', async () => {
  const store = new MemoryStore();
  let closed = 0;
  store.watch('configmaps', undefined, 0, () => {}, () => { closed++; });
  const proposer = new LocalProposer(store);
  const results = await Promise.all(['a', 'b', 'c'].map((n) => proposer.propose(create(cm(n)))));
  assert.equal(results.map((r) => ok(r).metadata.resourceVersion), ['1', '2', '3']);
  store.close();
  assert.is(closed, 1);
  assert.is(store.watcherCount, 0);
});

test.run();
