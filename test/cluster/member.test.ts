// RaftMember (server/cluster/member.ts) in one process, three members over real SQLite (member-harness.ts):
// - shutdown rejects every pending caller at once with "shutting down": reads waiting for a ReadIndex answer
//   (also after being asked again across a leader change), reads waiting for the applied index, and writes
//   waiting for a leader; none of them waits out the 10 s proposal timeout;
// - a ReadIndex asked of a new leader before it committed an entry of its term is asked again, not thrown;
// - commitConfChange is one operation: it resolves once the change and its member record removal are applied;
//   refused, or lost in a leader change, it rejects and nothing changed anywhere.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { MemberHarness } from './member-harness.js';
import { eventually } from '../support/eventually.js';
import { ProposalDroppedError } from '../../server/raft/rawnode.js';

const IDS = [1, 2, 3];
/** Far below the 10 s the old code waited: the rejection is the shutdown's, not a timeout's. */
const PROMPTLY_MS = 2_000;

/** Tracks a promise's outcome so that a test can wait for it. */
function settled<T>(p: Promise<T>): { outcome: () => { ok: true; value: T } | { ok: false; error: Error } | undefined } {
  let outcome: { ok: true; value: T } | { ok: false; error: Error } | undefined;
  p.then((value) => { outcome = { ok: true, value }; }, (error: Error) => { outcome = { ok: false, error }; });
  return { outcome: () => outcome };
}

async function rejectsWithShutdown(what: string, p: ReturnType<typeof settled>): Promise<void> {
  const o = await eventually(`${what} to be rejected`, () => p.outcome(), PROMPTLY_MS);
  assert.is(o.ok, false, `${what} resolved`);
  assert.match((o as { error: Error }).error.message, /shutting down/, `${what}: ${(o as { error: Error }).error.message}`);
}

test('shutdown rejects a read asked again after its leader lost the quorum, and a write waiting for a leader', async () => {
  const h = new MemberHarness(IDS);
  try {
    const leader = await h.leader();
    // The leader is cut off: its ReadIndex heartbeats go unanswered, it steps down, and the read is requeued.
    h.drop = (m) => m.from === leader.id || m.to === leader.id;
    const read = settled(leader.member.readBarrier());
    await eventually('the leader to step down', () => !leader.member.isLeader, 10_000);
    assert.is(read.outcome(), undefined, 'the read is still pending');
    const write = settled(leader.member.propose({ op: 'delete', resource: 'configmaps', namespace: 'default', name: 'x' }));
    leader.stop.abort();
    await rejectsWithShutdown('the requeued read', read);
    await rejectsWithShutdown('the write waiting for a leader', write);
    await rejectsWithShutdown('a read after shutdown', settled(leader.member.readBarrier()));
  } finally {
    await h.close();
  }
});

test('shutdown rejects a read whose ReadIndex was answered but not yet applied here', async () => {
  const h = new MemberHarness(IDS);
  try {
    const leader = await h.leader();
    const lagging = h.get(IDS.find((i) => i !== leader.id)!);
    // The lagging follower hears heartbeats and ReadIndex answers but gets no entries.
    h.drop = (m) => m.to === lagging.id && m.type === 'MsgApp' && m.entries.length > 0;
    await h.writeMemberRecords([9]);
    const read = settled(lagging.member.readBarrier());
    await eventually('the ReadIndex answer to reach the lagging follower', () => h.sent.some(({ m, dropped }) => !dropped && m.type === 'MsgReadIndexResp' && m.to === lagging.id), 10_000);
    assert.is(read.outcome(), undefined, 'the read waits for entries it does not have');
    lagging.stop.abort();
    await rejectsWithShutdown('the read waiting to be applied', read);
  } finally {
    await h.close();
  }
});

test('a read pending on a member that becomes leader completes (it asks again once its term has a committed entry)', async () => {
  const h = new MemberHarness(IDS);
  try {
    const first = await h.leader();
    await h.writeMemberRecords([9]);
    const next = h.get(IDS.find((i) => i !== first.id)!);
    // The follower's forwarded ReadIndex is lost; then leadership moves to that follower, which must ask again
    // as the new leader, before an entry of its own term is committed.
    h.drop = (m) => m.type === 'MsgReadIndex';
    const read = settled(next.member.readBarrier());
    await eventually('the forwarded ReadIndex to be lost', () => h.sent.some(({ m, dropped }) => dropped && m.from === next.id), 10_000);
    first.member.transferLeadership(next.id);
    await eventually('leadership to move', () => next.member.isLeader, 10_000);
    const done = await eventually('the read to complete', () => read.outcome(), 10_000);
    assert.ok(done.ok, done.ok ? '' : done.error.message);
  } finally {
    await h.close();
  }
});

test('commitConfChange resolves once the removal and the member record deletion are applied; a second change meanwhile is refused', async () => {
  const h = new MemberHarness(IDS);
  try {
    const leader = await h.leader();
    await h.writeMemberRecords(IDS);
    const [victim, other] = IDS.filter((i) => i !== leader.id) as [number, number];
    const removal = leader.member.commitConfChange({ type: 'removeNode', nodeId: victim });
    const second = await leader.member.commitConfChange({ type: 'removeNode', nodeId: other }).then(() => undefined, (err: unknown) => err);
    assert.instance(second, ProposalDroppedError);
    assert.match((second as Error).message, /conf change at index \d+ is not applied yet/);
    await removal;
    // Both halves are done when it resolves, on the leader, with nothing waited for.
    assert.equal(h.voters(leader.id), [leader.id, other].sort((a, b) => a - b));
    assert.not.ok(h.hasRecord(leader.id, victim), 'the member record went with the conf change');
    assert.ok(h.hasRecord(leader.id, other), 'the refused change left its member alone');
    await eventually('the other member to apply the removal', () => !h.hasRecord(other, victim) && h.voters(other).length === 2, 10_000);
    assert.equal(h.voters(other), h.voters(leader.id));
  } finally {
    await h.close();
  }
});

test('a removal lost in a leader change rejects, and the member and its record are still there on every member', async () => {
  const h = new MemberHarness(IDS);
  try {
    const leader = await h.leader();
    await h.writeMemberRecords(IDS);
    const followers = IDS.filter((i) => i !== leader.id);
    // The leader is cut off right after proposing: only its own log holds the change; the others elect a leader.
    h.drop = (m) => m.from === leader.id || m.to === leader.id;
    const removal = settled(leader.member.commitConfChange({ type: 'removeNode', nodeId: followers[0]! }));
    const successor = await h.leader(followers);
    await eventually('the new leader to commit an entry of its term', () => successor.member.node.status().commit > leader.member.node.status().commit, 10_000);
    h.drop = () => false;
    const o = await eventually('the lost removal to be rejected', () => removal.outcome(), 10_000);
    assert.is(o.ok, false, 'the removal was reported done');
    assert.match((o as { error: Error }).error.message, /lost in a leader change before it was committed; nothing was changed/);
    await eventually('the old leader to follow the new one', () => leader.member.leader === successor.id && leader.member.applied >= successor.member.applied, 10_000);
    for (const on of IDS) {
      assert.equal(h.voters(on), IDS, `voters on ${on}`);
      assert.ok(h.hasRecord(on, followers[0]!), `member record on ${on}`);
    }
  } finally {
    await h.close();
  }
});

test.run();
