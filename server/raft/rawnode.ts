// RawNode: the public, single-threaded API of the Raft core. Nothing here does I/O; a driver does.
//
// Driver contract (one loop per member; every call on one RawNode from one logical thread):
//
//   const node = new RawNode({ id, storage, electionTick: 10, heartbeatTick: 1, randomInt });
//   on each clock tick (e.g. every 100 ms):    node.tick()
//   on each message from a peer:               node.step(msg)        // drops stale/invalid input silently
//   to write:                                  node.propose(bytes)   // throws ProposalDroppedError when no
//                                                                     // leader is known or it cannot take it
//   membership:                                node.proposeConfChange({ type: 'addLearner', nodeId })
//   linearizable read:                         node.readIndex(ctx)   // answered later in Ready.readStates
//   leadership transfer:                       node.transferLeader(id)
//
//   then, whenever node.hasReady():
//     const rd = node.ready();
//     1. PERSIST, in one atomic write (LogStore.save): rd.snapshot, rd.entries, rd.hardState.
//        If rd.mustSync, the write must be durable (fsync) before step 2.
//     2. SEND rd.messages (only now: they may promise what step 1 wrote, e.g. a vote or an acknowledged entry).
//        Delivery may fail, reorder or duplicate; Raft tolerates it. Report a peer that cannot be reached
//        with reportUnreachable(id). The outcome of every MsgSnap MUST be reported with reportSnapshot(id, ok):
//        until then the leader sends that follower nothing else.
//     3. APPLY: if rd.snapshot, restore the state machine from it; then apply rd.committedEntries in order
//        (they may include entries of rd.entries: that is why step 1 comes first).
//        For an entry of type 'confChange', call node.applyConfChange(decodeConfChange(entry.data)).
//        Answer rd.readStates once the state machine's applied index reaches readState.index.
//        rd.softState tells about leader changes (start or stop leader-only work).
//     4. node.advance(rd). Only then may ready() be called again.
//
// On restart, build a new RawNode over the same storage: the hard state, log and snapshot come back, and
// committed entries after `applied` (default: the snapshot index) are handed out again for the state machine.
// Storage.initialState().confState must be the configuration as of the snapshot; conf changes after it are
// replayed through committed entries.
import { ProposalDroppedError, Raft, type RaftConfig } from './raft.js';
import {
  type ConfChange, type ConfState, type HardState, type Message, type NodeId, type Ready, type Role, type SoftState,
  LOCAL_MESSAGES, NONE, encodeConfChange, hardStateEqual, isEmptyHardState, message,
} from './types.js';

export { ProposalDroppedError, type RaftConfig };

export interface Status {
  id: NodeId;
  term: number;
  vote: NodeId;
  lead: NodeId;
  role: Role;
  commit: number;
  applied: number;
  lastIndex: number;
  confState: ConfState;
  leadTransferee: NodeId;
}

export class RawNode {
  /** The algorithm itself; exposed read-only for tests and the simulator's invariant checks. */
  readonly raft: Raft;
  private prevSoft: SoftState;
  private prevHard: HardState;
  private outstanding: Ready | undefined;

  constructor(cfg: RaftConfig) {
    this.raft = new Raft(cfg);
    this.prevSoft = this.softState();
    this.prevHard = this.raft.hardState();
  }

  tick(): void {
    this.raft.tick();
  }

  /** Start an election now (tests, or a single member bootstrapping without waiting a timeout). */
  campaign(): void {
    this.raft.step(message({ type: 'MsgHup', from: this.raft.id }));
  }

  /** Input from the network. Local message types and proposals the current role cannot take are ignored. */
  step(m: Message): void {
    if (LOCAL_MESSAGES.has(m.type)) return;
    if (m.from === NONE) return;
    try {
      this.raft.step(m);
    } catch (err) {
      if (!(err instanceof ProposalDroppedError)) throw err;
    }
  }

  propose(data: Uint8Array): void {
    this.raft.step(message({ type: 'MsgProp', from: this.raft.id, entries: [{ term: 0, index: 0, type: 'normal', data }] }));
  }

  proposeConfChange(cc: ConfChange): void {
    const data = encodeConfChange(cc);
    this.raft.step(message({ type: 'MsgProp', from: this.raft.id, entries: [{ term: 0, index: 0, type: 'confChange', data }] }));
  }

  applyConfChange(cc: ConfChange): ConfState {
    return this.raft.applyConfChange(cc);
  }

  /** Ask for a linearizable read point; the answer comes back as a ReadState with the same context. */
  readIndex(context: string): void {
    if (context.length === 0) throw new Error('readIndex: context must be a non-empty string unique to this request');
    this.raft.step(message({ type: 'MsgReadIndex', from: this.raft.id, context }));
  }

  transferLeader(transferee: NodeId): void {
    this.raft.step(message({ type: 'MsgTransferLeader', from: transferee }));
  }

  reportUnreachable(id: NodeId): void {
    this.raft.step(message({ type: 'MsgUnreachable', from: id }));
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.raft.step(message({ type: 'MsgSnapStatus', from: id, reject: !ok }));
  }

  hasReady(): boolean {
    const r = this.raft;
    const soft = this.softState();
    if (soft.lead !== this.prevSoft.lead || soft.role !== this.prevSoft.role) return true;
    const hs = r.hardState();
    if (!isEmptyHardState(hs) && !hardStateEqual(hs, this.prevHard)) return true;
    if (r.log.unstable.snapshot) return true;
    return r.log.unstableEntries().length > 0 || r.msgs.length > 0 || r.readStates.length > 0 || r.log.hasNextCommittedEntries();
  }

  ready(): Ready {
    if (this.outstanding) throw new Error('raft: ready() called again before advance() of the previous Ready');
    const r = this.raft;
    const entries = r.log.unstableEntries().slice();
    const hs = r.hardState();
    const soft = this.softState();
    const rd: Ready = {
      readStates: r.readStates,
      entries,
      committedEntries: r.log.nextCommittedEntries(),
      messages: r.msgs,
      mustSync: entries.length > 0 || hs.term !== this.prevHard.term || hs.vote !== this.prevHard.vote,
    };
    if (soft.lead !== this.prevSoft.lead || soft.role !== this.prevSoft.role) rd.softState = soft;
    if (!hardStateEqual(hs, this.prevHard)) rd.hardState = hs;
    if (r.log.unstable.snapshot) {
      rd.snapshot = r.log.unstable.snapshot;
      rd.mustSync = true;
    }
    r.msgs = [];
    r.readStates = [];
    this.prevSoft = soft;
    this.prevHard = hs;
    this.outstanding = rd;
    return rd;
  }

  /** The Ready was persisted, sent and applied (see the contract above). */
  advance(rd: Ready): void {
    if (rd !== this.outstanding) throw new Error('raft: advance() with a Ready that is not the outstanding one');
    this.outstanding = undefined;
    const log = this.raft.log;
    const last = rd.entries[rd.entries.length - 1];
    if (last) log.stableTo(last.index, last.term);
    if (rd.snapshot) {
      log.stableSnapTo(rd.snapshot.meta.index);
      if (log.applied < rd.snapshot.meta.index) log.applied = rd.snapshot.meta.index;
    }
    const lastApplied = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastApplied) log.appliedTo(lastApplied.index);
    this.raft.onPersisted();
  }

  status(): Status {
    const r = this.raft;
    return {
      id: r.id, term: r.term, vote: r.vote, lead: r.lead, role: r.role, commit: r.log.committed, applied: r.log.applied,
      lastIndex: r.log.lastIndex(), confState: r.trk.confState(), leadTransferee: r.leadTransferee,
    };
  }

  private softState(): SoftState {
    return { lead: this.raft.lead, role: this.raft.role };
  }
}
