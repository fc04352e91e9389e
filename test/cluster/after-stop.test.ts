// A Raft member whose run() has ended, and its closed transport, do nothing more: the server closes the store
// and the log right after, while peer messages, transport callbacks and proposals may still be arriving.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftMember } from '../../server/cluster/member.js';
import { HttpTransport } from '../../server/cluster/transport.js';
import { SqliteStorage } from '../../server/raft/sqlite-storage.js';
import { encodeConfChange, message } from '../../server/raft/types.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { eventually } from '../support/eventually.js';

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

test('a closed transport sends nothing more, not even what was queued behind a request in flight', async () => {
  const answers: (() => void)[] = [];
  const peer = http.createServer((req, res) => { req.resume(); answers.push(() => res.end()); });
  await new Promise<void>((r) => peer.listen(0, '127.0.0.1', r));
  try {
    let lookups = 0;
    const transport = new HttpTransport({
      self: 1, snapshotDir: '/nonexistent', tls: { ca: '' },
      peerUrl: () => { lookups++; return `http://127.0.0.1:${(peer.address() as AddressInfo).port}`; },
      onUnreachable: () => {}, onSnapshotSent: () => {},
    });
    const heartbeat = message({ type: 'MsgHeartbeat', from: 1, to: 2, term: 1 });
    transport.send([heartbeat]);
    transport.send([heartbeat]); // queued: one request per peer is in flight
    await eventually('the first request reaches the peer', () => answers.length > 0);
    transport.close();
    answers[0]!();
    transport.send([heartbeat]);
    for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
    assert.is(lookups, 1);
  } finally {
    for (const a of answers) a();
    await new Promise((r) => { peer.closeAllConnections(); peer.close(r); });
  }
});

test.run();
