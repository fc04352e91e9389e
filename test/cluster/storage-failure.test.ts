// A member whose disk fails: the Raft log write throws (as SQLITE_IOERR does). The member stops processing,
// says why (storageFailure, which /readyz reports), and answers every write, pending or new, with a 503 naming
// the failure instead of letting it hang until its timeout.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftMember } from '../../server/cluster/member.js';
import { SqliteStorage } from '../../server/raft/sqlite-storage.js';
import type { LogStore, StorageUpdate } from '../../server/raft/storage.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { StoreError } from '../../server/store/types.js';
import { encodeConfChange } from '../../server/raft/types.js';
import { eventually } from '../support/eventually.js';

const cm = (name: string) => ({ op: 'create' as const, resource: 'configmaps', uid: `uid-${name}`, now: '2026-01-01T00:00:00Z', object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default' } } });

test('a Raft log write that throws stops the member: writes get a 503 naming the failure, at once', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-disk-'));
  const store = new SqliteStore({ path: join(dir, 'state.db') });
  const log = new SqliteStorage(join(dir, 'raft.db'));
  log.save({ entries: [{ term: 1, index: 1, type: 'confChange', data: encodeConfChange({ type: 'addNode', nodeId: 1 }) }], hardState: { term: 1, vote: 0, commit: 1 } });
  let broken = false;
  const failing = new Proxy(log, {
    get(target, key) {
      if (key === 'save') return (u: StorageUpdate) => { if (broken) throw new Error('SQLITE_IOERR: disk I/O error'); target.save(u); };
      const v = (target as unknown as Record<PropertyKey, unknown>)[key];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as LogStore;
  const member = new RaftMember({
    id: 1, store, logStore: failing, randomInt: () => 0, tickMs: 20, proposalTimeoutMs: 60_000, send: () => {},
    makeSnapshot: () => { throw new Error('no snapshots here'); }, restoreSnapshot: () => { throw new Error('no snapshots here'); },
  });
  const stop = new AbortController();
  const running = member.run(stop.signal);
  try {
    await eventually('member 1 leads', () => member.isLeader, 10_000);
    assert.ok((await member.propose(cm('before'))).ok, 'a write before the failure is applied');
    assert.is(member.storageFailure, undefined);
    broken = true;
    const err = await member.propose(cm('during')).then(() => undefined, (e: unknown) => e);
    assert.instance(err, StoreError);
    assert.is((err as StoreError).failure.code, 503);
    assert.match((err as StoreError).failure.message, 'storage failed: SQLITE_IOERR');
    assert.match(member.storageFailure ?? '', 'SQLITE_IOERR');
    const next = await member.propose(cm('after')).then(() => undefined, (e: unknown) => e);
    assert.match((next as StoreError).failure.message, 'storage failed');
    assert.is(store.get('configmaps', 'default', 'during'), undefined, 'nothing was applied that the log did not hold');
  } finally {
    stop.abort();
    await running;
    log.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
