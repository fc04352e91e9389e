// Unit tests named after sections of the Raft paper (and of Ongaro's thesis for pre-vote, check-quorum,
// leadership transfer, membership changes and ReadIndex).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { RaftLog } from '../../server/raft/log.js';
import { ProposalDroppedError } from '../../server/raft/rawnode.js';
import { MemoryStorage } from '../../server/raft/storage.js';
import { message } from '../../server/raft/types.js';
import { ELECTION_TICK, TestNetwork, bytes, text } from './network.js';

function appliedData(net: TestNetwork, id: number): string[] {
  return net.peer(id).applied.filter((e) => e.type === 'normal' && e.data.byteLength > 0).map(text);
}

test('5.2 leader election: a member that campaigns wins with a majority and bumps the term', () => {
  const net = new TestNetwork([1, 2, 3]);
  net.campaign(1);
  assert.is(net.leader(), 1);
  for (const id of [1, 2, 3]) {
    assert.is(net.node(id).raft.term, 2, `term of ${id}`);
    assert.is(net.node(id).raft.lead, 1, `lead seen by ${id}`);
  }
});

test('5.2 election safety: a member grants at most one vote per term', () => {
  const net = new TestNetwork([1, 2, 3], { preVote: false, checkQuorum: false });
  const n3 = net.node(3);
  n3.step(message({ type: 'MsgVote', from: 1, to: 3, term: 2, index: 1, logTerm: 1 }));
  n3.step(message({ type: 'MsgVote', from: 2, to: 3, term: 2, index: 1, logTerm: 1 }));
  const rd = n3.ready();
  const answers = rd.messages.filter((m) => m.type === 'MsgVoteResp').map((m) => [m.to, m.reject]);
  assert.equal(answers, [[1, false], [2, true]]);
  // Ready contract: the vote is in the hard state of the same Ready, persisted before the answer is sent.
  assert.equal(rd.hardState, { term: 2, vote: 1, commit: 1 });
  assert.ok(rd.mustSync);
});

test('5.2 election safety: a candidate cut off from the majority does not become leader', () => {
  const net = new TestNetwork([1, 2, 3], { preVote: false });
  net.isolate(1);
  net.campaign(1);
  assert.is.not(net.node(1).raft.role, 'leader');
  assert.is(net.leader(), undefined);
});

test('5.3 log matching: a follower rejects AppendEntries whose previous entry it does not have, with a hint', () => {
  const net = new TestNetwork([1, 2, 3]);
  const n2 = net.node(2);
  n2.step(message({ type: 'MsgApp', from: 1, to: 2, term: 3, index: 5, logTerm: 3, entries: [{ term: 3, index: 6, type: 'normal', data: bytes('x') }] }));
  const resp = n2.ready().messages.find((m) => m.type === 'MsgAppResp');
  assert.ok(resp?.reject, 'rejected');
  assert.is(resp!.rejectHint, 1, 'hint: its last index');
  assert.is(n2.raft.log.lastIndex(), 1, 'nothing appended');
});

test('5.3 log matching: the leader overwrites a follower\'s conflicting uncommitted entries', () => {
  const net = new TestNetwork([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'committed');
  net.isolate(1);
  net.propose(1, 'lost'); // appended on 1 only, never committed
  net.tickAll(ELECTION_TICK * 4); // 1 steps down (check-quorum), 2 or 3 wins once the lease expired
  const leader = net.leader();
  assert.ok(leader === 2 || leader === 3, `new leader ${leader}`);
  net.propose(leader!, 'kept');
  net.heal();
  net.tickAll(ELECTION_TICK * 2);
  for (const id of [1, 2, 3]) assert.equal(appliedData(net, id), ['committed', 'kept'], `applied on ${id}`);
  const l1 = net.node(1).raft.log;
  const l2 = net.node(2).raft.log;
  assert.is(l1.lastIndex(), l2.lastIndex());
  for (let i = 2; i <= l1.lastIndex(); i++) assert.is(l1.term(i), l2.term(i), `term at ${i}`);
});

test('5.4.1 election restriction: a member whose log lacks committed entries is refused votes', () => {
  const net = new TestNetwork([1, 2, 3], { preVote: false, checkQuorum: false });
  net.campaign(1);
  net.isolate(3);
  net.propose(1, 'a');
  net.propose(1, 'b');
  net.heal();
  net.dropTypes.add('MsgApp').add('MsgHeartbeat'); // keep 3 behind
  net.campaign(3);
  assert.is.not(net.node(3).raft.role, 'leader');
  assert.ok(net.delivered.some((m) => m.type === 'MsgVoteResp' && m.to === 3 && m.reject), 'a vote was refused');
});

test('5.4.2 committing entries from previous terms: only an entry of the current term is committed by counting replicas', () => {
  const storage = new MemoryStorage();
  storage.save({ entries: [{ term: 1, index: 1, type: 'normal', data: new Uint8Array() }, { term: 2, index: 2, type: 'normal', data: new Uint8Array() }], hardState: { term: 3, vote: 0, commit: 0 } });
  const log = new RaftLog(storage);
  assert.is(log.maybeCommit(2, 3), false, 'entry of term 2 is not committed by a term-3 leader');
  assert.is(log.committed, 0);
  log.append([{ term: 3, index: 3, type: 'normal', data: new Uint8Array() }]);
  assert.is(log.maybeCommit(3, 3), true);
  assert.is(log.committed, 3, 'committing the term-3 entry commits the earlier ones too');
});

test('5.4 leader completeness: a new leader holds every committed entry', () => {
  const net = new TestNetwork([1, 2, 3, 4, 5]);
  net.campaign(1);
  for (const v of ['a', 'b', 'c']) net.propose(1, v);
  const committed = net.node(1).raft.log.committed;
  net.isolate(1);
  net.tickAll(ELECTION_TICK * 4);
  const id = net.leader();
  assert.ok(id !== undefined && id !== 1, `new leader ${id}`);
  const leader = net.node(id!);
  for (let i = 2; i <= committed; i++) assert.is(leader.raft.log.term(i), net.node(1).raft.log.term(i), `entry ${i}`);
  net.propose(id!, 'd');
  assert.equal(appliedData(net, id!), ['a', 'b', 'c', 'd']);
});

test('5.6 restart: a member keeps its term, vote and log across a restart from storage', () => {
  const net = new TestNetwork([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'x');
  const before = net.node(2).status();
  net.restart(2);
  const after = net.node(2).status();
  assert.is(after.term, before.term);
  assert.is(after.vote, before.vote);
  assert.is(after.lastIndex, before.lastIndex);
  assert.is(after.commit, before.commit);
  net.propose(1, 'y');
  // The restarted member's state machine starts from the snapshot: committed entries come again, then new ones.
  assert.equal(appliedData(net, 2), ['x', 'y']);
});

test('9.6 pre-vote: an isolated member does not inflate its term and cannot disrupt the leader when it returns', () => {
  const net = new TestNetwork([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  net.tick(3, ELECTION_TICK * 5);
  assert.is(net.node(3).raft.term, 2, 'term unchanged while isolated');
  net.heal();
  net.tickAll(ELECTION_TICK);
  assert.is(net.leader(), 1);
  assert.is(net.node(1).raft.term, 2);
});

test('9.6 without pre-vote the isolated member does inflate its term (the problem pre-vote solves)', () => {
  const net = new TestNetwork([1, 2, 3], { preVote: false });
  net.campaign(1);
  net.isolate(3);
  net.tick(3, ELECTION_TICK * 5);
  assert.ok(net.node(3).raft.term > 2);
});

test('6.2 check-quorum: a leader that stops hearing from a majority steps down', () => {
  const net = new TestNetwork([1, 2, 3]);
  net.campaign(1);
  net.isolate(1);
  net.tick(1, ELECTION_TICK);
  assert.is(net.node(1).raft.role, 'leader', 'the followers were active during the first round');
  net.tick(1, ELECTION_TICK);
  assert.is(net.node(1).raft.role, 'follower');
});

test('6.2 check-quorum lease: followers hearing from a leader ignore a forced campaign without transfer', () => {
  const net = new TestNetwork([1, 2, 3], { preVote: false });
  net.campaign(1);
  net.dropTypes.add('MsgApp').add('MsgHeartbeat');
  net.campaign(3);
  assert.is(net.node(2).raft.term, 2, 'member 2 ignored the vote request');
  assert.is(net.node(1).raft.term, 2);
});

test('3.10 leadership transfer: the transferee catches up, times out at once and wins', () => {
  const net = new TestNetwork([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'a');
  net.node(1).transferLeader(2);
  net.settle();
  assert.is(net.leader(), 2);
  assert.is(net.node(1).raft.role, 'follower');
  assert.is(net.node(2).raft.term, 3);
  net.propose(2, 'b');
  assert.equal(appliedData(net, 1), ['a', 'b']);
});

test('3.10 leadership transfer: proposals are refused while it is in progress, and it is abandoned after a timeout', () => {
  const net = new TestNetwork([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  net.node(1).transferLeader(3);
  net.settle();
  assert.throws(() => net.node(1).propose(bytes('x')), (e: unknown) => e instanceof ProposalDroppedError);
  net.tick(1, ELECTION_TICK);
  assert.is(net.node(1).raft.leadTransferee, 0);
});

test('6.4 ReadIndex: the leader answers after a quorum confirms its leadership; a follower gets the same index', () => {
  const net = new TestNetwork([1, 2, 3]);
  net.campaign(1);
  net.propose(1, 'a');
  net.node(1).readIndex('r1');
  net.settle();
  assert.equal(net.peer(1).readStates, [{ index: net.node(1).raft.log.committed, context: 'r1' }]);
  net.node(2).readIndex('r2');
  net.settle();
  assert.equal(net.peer(2).readStates, [{ index: net.node(1).raft.log.committed, context: 'r2' }]);
});

test('6.4 ReadIndex: a leader cut off from the majority never answers a read', () => {
  const net = new TestNetwork([1, 2, 3]);
  net.campaign(1);
  net.isolate(1);
  net.node(1).readIndex('r');
  net.settle();
  assert.equal(net.peer(1).readStates, []);
});

test('4.2.1 membership: a learner receives the log but does not vote; once caught up it is promoted', () => {
  const net = new TestNetwork([1, 2, 3], { spares: [4] });
  net.campaign(1);
  net.propose(1, 'a');
  net.node(1).proposeConfChange({ type: 'addLearner', nodeId: 4 });
  net.settle();
  net.propose(1, 'b');
  assert.equal(appliedData(net, 4), ['a', 'b'], 'the learner replicates via a snapshot and entries');
  assert.equal(net.node(1).status().confState, { voters: [1, 2, 3], learners: [4] });
  assert.is(net.node(4).raft.promotable(), false);
  net.node(1).proposeConfChange({ type: 'addNode', nodeId: 4 });
  net.settle();
  assert.equal(net.node(1).status().confState, { voters: [1, 2, 3, 4], learners: [] });
  assert.equal(net.node(4).status().confState, { voters: [1, 2, 3, 4], learners: [] });
  // With 4 voters the quorum is 3: two members down means no progress.
  net.isolate(3);
  net.isolate(4);
  net.propose(1, 'c');
  assert.ok(!appliedData(net, 1).includes('c'), 'not committed with 2 of 4');
});

test('4.2.1 membership: a learner that has not caught up cannot be promoted; one change at a time', () => {
  const net = new TestNetwork([1, 2, 3], { spares: [4] });
  net.campaign(1);
  net.isolate(4);
  net.node(1).proposeConfChange({ type: 'addLearner', nodeId: 4 });
  assert.throws(() => net.node(1).proposeConfChange({ type: 'removeNode', nodeId: 3 }), /not applied yet/);
  net.settle();
  assert.throws(() => net.node(1).proposeConfChange({ type: 'addNode', nodeId: 4 }), /has not caught up/);
});

test('4.2.2 membership: a removed leader steps down and the rest elect a new one', () => {
  const net = new TestNetwork([1, 2, 3]);
  net.campaign(1);
  net.node(1).proposeConfChange({ type: 'removeNode', nodeId: 1 });
  net.settle();
  assert.is(net.node(1).raft.role, 'follower');
  net.tickAll(ELECTION_TICK * 3);
  const leader = net.leader();
  assert.ok(leader === 2 || leader === 3, `new leader ${leader}`);
  assert.equal(net.node(leader!).status().confState.voters, [2, 3]);
});

test('7 log compaction: a follower behind the leader\'s compacted log is brought up by InstallSnapshot', () => {
  const net = new TestNetwork([1, 2, 3]);
  net.campaign(1);
  net.isolate(3);
  for (let i = 0; i < 10; i++) net.propose(1, `v${i}`);
  const leader = net.peer(1);
  const applied = leader.node.raft.log.applied;
  leader.storage.createSnapshot(applied, leader.node.status().confState, bytes('state@' + applied));
  leader.storage.compact(applied);
  net.heal();
  net.tickAll(3);
  const n3 = net.peer(3);
  assert.is(n3.storage.snapshot().meta.index, applied, 'snapshot installed');
  assert.is(new TextDecoder().decode(n3.storage.snapshot().data), `state@${applied}`);
  net.propose(1, 'after');
  assert.equal(appliedData(net, 3), ['after'], 'then ordinary replication resumes');
  assert.ok(net.delivered.some((m) => m.type === 'MsgSnap' && m.to === 3));
});

test('10.2 pipelining: a follower in replicate state has at most maxInflightMsgs unacknowledged appends', () => {
  const net = new TestNetwork([1, 2]);
  net.campaign(1);
  net.dropTypes.add('MsgAppResp');
  for (let i = 0; i < 20; i++) net.node(1).propose(bytes(`p${i}`));
  net.settle();
  const pr = net.node(1).raft.trk.progress.get(2)!;
  assert.is(pr.state, 'replicate');
  assert.is(pr.inflight.length, 8);
  const apps = net.delivered.filter((m) => m.type === 'MsgApp' && m.to === 2 && m.entries.length > 0);
  assert.ok(apps.length <= 9, `sent ${apps.length} appends`);
});

test.run();
