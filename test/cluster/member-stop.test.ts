// A Raft member whose run() has ended processes nothing more: the server closes its store and log right after,
// while peer messages, transport callbacks and proposals may still be arriving.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftMember } from '../../server/cluster/member.js';
import { SqliteStorage } from '../../server/raft/sqlite-storage.js';
import { encodeConfChange } from '../../server/raft/types.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';

test('after run() ends, nothing scheduled touches the closed store and log', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-member-stop-'));
  const uncaught: unknown[] = [];
  const onUncaught = (err: unknown) => { uncaught.push(err); };
  process.on('uncaughtException', onUncaught);
  try {
    const store = new SqliteStore({ path: join(dir, 'state.db') });
    const logStore = new SqliteStorage(join(dir, 'raft.db'));
    logStore.save({ entries: [{ term: 1, index: 1, type: 'confChange', data: encodeConfChange({ type: 'addNode', nodeId: 1 }) }], hardState: { term: 1, vote: 0, commit: 1 } });
    const member = new RaftMember({
      id: 1, store, logStore, send: () => {}, randomInt: () => 0,
      makeSnapshot: () => new Uint8Array(), restoreSnapshot: () => {},
    });
    const stop = new AbortController();
    const running = member.run(stop.signal);
    stop.abort();
    await running;
    member.campaign(); // would elect itself and persist its term and log
    store.close();
    logStore.close();
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    assert.equal(uncaught.map(String), []);
  } finally {
    process.off('uncaughtException', onUncaught);
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
