// The driver-facing contract of RawNode (see the comment at the top of server/raft/rawnode.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RawNode, type RaftConfig } from '../../server/raft/rawnode.js';
import { MemoryStorage } from '../../server/raft/storage.js';
import type { Ready } from '../../server/raft/types.js';

function singleMember(extra: Partial<RaftConfig> = {}): { node: RawNode; storage: MemoryStorage } {
  const storage = new MemoryStorage();
  storage.save({ snapshot: { meta: { index: 1, term: 1, confState: { voters: [1], learners: [] } }, data: new Uint8Array() }, entries: [], hardState: { term: 1, vote: 0, commit: 1 } });
  const node = new RawNode({ id: 1, storage, electionTick: 10, heartbeatTick: 1, randomInt: () => 0, ...extra });
  return { node, storage };
}

function persistAndAdvance(node: RawNode, storage: MemoryStorage): Ready {
  const rd = node.ready();
  storage.save({ entries: rd.entries, ...(rd.hardState ? { hardState: rd.hardState } : {}) });
  node.advance(rd);
  return rd;
}

test('a leader commits its own entry only after the Ready carrying it was persisted', () => {
  const { node, storage } = singleMember();
  node.campaign();
  while (node.hasReady()) persistAndAdvance(node, storage);
  node.propose(new TextEncoder().encode('x'));
  const first = node.ready();
  assert.equal(first.entries.map((e) => e.index), [3]);
  assert.equal(first.committedEntries, [], 'not committed before it is durable');
  assert.ok(first.mustSync);
  storage.save({ entries: first.entries });
  node.advance(first);
  const second = persistAndAdvance(node, storage);
  assert.equal(second.committedEntries.map((e) => e.index), [3]);
  assert.is(second.hardState?.commit, 3);
  assert.not.ok(node.hasReady());
});

test('ready() twice without advance() is refused, and so is advancing a foreign Ready', () => {
  const { node } = singleMember();
  node.campaign();
  const rd = node.ready();
  assert.throws(() => node.ready(), /before advance\(\)/);
  assert.throws(() => node.advance({ ...rd }), /not the outstanding one/);
});

test('maxCommittedBytesPerReady splits a long catch-up over several Readies', () => {
  const { node, storage } = singleMember({ maxCommittedBytesPerReady: 250 });
  node.campaign();
  while (node.hasReady()) persistAndAdvance(node, storage);
  for (let i = 0; i < 6; i++) node.propose(new Uint8Array(100));
  const batches: number[] = [];
  while (node.hasReady()) {
    const rd = persistAndAdvance(node, storage);
    if (rd.committedEntries.length > 0) batches.push(rd.committedEntries.length);
  }
  assert.equal(batches, [2, 2, 2]);
});

test('bad configuration is refused with the field named', () => {
  const storage = new MemoryStorage();
  assert.throws(() => new RawNode({ id: 0, storage, electionTick: 10, heartbeatTick: 1, randomInt: () => 0 }), /id must be a positive integer/);
  assert.throws(() => new RawNode({ id: 1, storage, electionTick: 1, heartbeatTick: 1, randomInt: () => 0 }), /electionTick \(1\) must be an integer greater than heartbeatTick/);
  assert.throws(() => new RawNode({ id: 1, storage, electionTick: 10, heartbeatTick: 1, randomInt: () => 0, maxInflightMsgs: 0 }), /maxInflightMsgs/);
});

test('readIndex needs a context; conf change payloads are validated', () => {
  const { node } = singleMember();
  assert.throws(() => node.readIndex(''), /context must be a non-empty string/);
  node.campaign();
  assert.throws(() => node.proposeConfChange({ type: 'addNode', nodeId: 1 }), /already a voter/);
  assert.throws(() => node.proposeConfChange({ type: 'removeNode', nodeId: 1 }), /not applied yet|no voter/);
});

test.run();
