// The Raft algorithm (Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm", and Ongaro's
// thesis for pre-vote, check-quorum, leadership transfer, single-server membership changes and ReadIndex).
// Pure: no clock, timers, randomness or I/O. Roles are step/tick functions swapped on role changes.
import { RaftLog } from './log.js';
import { Progress, ProgressTracker } from './progress.js';
import { CompactedError, type Storage } from './storage.js';
import {
  type ConfChange, type ConfState, type Entry, type HardState, type Message, type MessageType, type NodeId,
  type ReadState, type Role, type Snapshot, NONE, decodeConfChange, message,
} from './types.js';

/** A proposal, read or transfer the current role cannot take; the caller may retry elsewhere or later. */
export class ProposalDroppedError extends Error {
  constructor(why: string) {
    super(`raft proposal dropped: ${why}`);
  }
}

export interface RaftConfig {
  id: NodeId;
  storage: Storage;
  /** Ticks without hearing from a leader before campaigning; the actual timeout is drawn from [electionTick, 2*electionTick). */
  electionTick: number;
  /** Ticks between leader heartbeats; must be < electionTick. */
  heartbeatTick: number;
  /** Integer in [0, n): the only randomness, injected so that runs replay (seeded in tests and the simulator). */
  randomInt: (n: number) => number;
  /** Last index the state machine applied, when it survived the restart; default: the snapshot index. */
  applied?: number;
  /** Upper bound on entry bytes per MsgApp (batching). */
  maxSizePerMsg?: number;
  /** Upper bound on entry bytes in one Ready's committedEntries (at least one entry); the rest follow in later Readies. */
  maxCommittedBytesPerReady?: number;
  /** Upper bound on unacknowledged MsgApps per follower in replicate state (pipelining). */
  maxInflightMsgs?: number;
  preVote?: boolean;
  checkQuorum?: boolean;
}

interface PendingRead {
  index: number;
  from: NodeId;
  context: string;
  acks: Set<NodeId>;
}

const VOTE_RESPONSE: Partial<Record<MessageType, MessageType>> = { MsgVote: 'MsgVoteResp', MsgPreVote: 'MsgPreVoteResp' };
const TRANSFER_CONTEXT = 'transfer';

function validateConfig(c: RaftConfig): void {
  if (!Number.isInteger(c.id) || c.id <= 0) throw new Error(`raft config: id must be a positive integer, got ${c.id}`);
  if (!Number.isInteger(c.heartbeatTick) || c.heartbeatTick <= 0) throw new Error(`raft config: heartbeatTick must be a positive integer, got ${c.heartbeatTick}`);
  if (!Number.isInteger(c.electionTick) || c.electionTick <= c.heartbeatTick) {
    throw new Error(`raft config: electionTick (${c.electionTick}) must be an integer greater than heartbeatTick (${c.heartbeatTick})`);
  }
  if (c.maxInflightMsgs !== undefined && (!Number.isInteger(c.maxInflightMsgs) || c.maxInflightMsgs <= 0)) {
    throw new Error(`raft config: maxInflightMsgs must be a positive integer, got ${c.maxInflightMsgs}`);
  }
}

export class Raft {
  readonly id: NodeId;
  /** Invariant: term only grows; vote is NONE or the member voted for in `term`. */
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  role: Role = 'follower';
  readonly log: RaftLog;
  readonly trk: ProgressTracker;
  /** Outgoing messages, drained by RawNode.ready(). */
  msgs: Message[] = [];
  readStates: ReadState[] = [];

  /** Ticks since the last election timeout reset (followers, candidates) or check-quorum round (leader). */
  electionElapsed = 0;
  heartbeatElapsed = 0;
  randomizedElectionTimeout = 0;
  leadTransferee: NodeId = NONE;
  /** No new conf change may be proposed while an earlier one (at or below this index) is not applied yet. */
  pendingConfIndex = 0;
  private pendingReads = new Map<string, PendingRead>();
  private readQueue: string[] = [];

  readonly electionTimeout: number;
  readonly heartbeatTimeout: number;
  readonly maxSizePerMsg: number;
  readonly preVote: boolean;
  readonly checkQuorum: boolean;
  private readonly randomInt: (n: number) => number;

  private stepRole: (m: Message) => void = this.stepFollower;
  tick: () => void = this.tickElection;

  constructor(cfg: RaftConfig) {
    validateConfig(cfg);
    this.id = cfg.id;
    this.electionTimeout = cfg.electionTick;
    this.heartbeatTimeout = cfg.heartbeatTick;
    this.maxSizePerMsg = cfg.maxSizePerMsg ?? 1024 * 1024;
    this.preVote = cfg.preVote ?? true;
    this.checkQuorum = cfg.checkQuorum ?? true;
    this.randomInt = cfg.randomInt;
    this.log = new RaftLog(cfg.storage, cfg.maxCommittedBytesPerReady);
    this.trk = new ProgressTracker(cfg.maxInflightMsgs ?? 256);

    const { hardState, confState } = cfg.storage.initialState();
    this.applyConfState(confState);
    this.loadHardState(hardState);
    if (cfg.applied !== undefined && cfg.applied > this.log.applied) this.log.appliedTo(Math.min(cfg.applied, this.log.committed));
    this.becomeFollower(this.term, NONE);
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  private loadHardState(hs: HardState): void {
    if (hs.commit < this.log.committed || hs.commit > this.log.lastIndex()) {
      throw new Error(`raft: stored commit ${hs.commit} is out of range [${this.log.committed}, ${this.log.lastIndex()}]`);
    }
    this.log.commitTo(hs.commit);
    this.term = hs.term;
    this.vote = hs.vote;
  }

  // ---- roles ----------------------------------------------------------------------------------------------

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout = this.electionTimeout + this.randomInt(this.electionTimeout);
    this.leadTransferee = NONE;
    this.trk.votes.clear();
    this.pendingReads.clear();
    this.readQueue = [];
    const last = this.log.lastIndex();
    for (const [id, pr] of this.trk.progress) {
      const fresh = new Progress(last + 1, pr.isLearner, this.trk.maxInflight);
      if (id === this.id) fresh.match = this.persistedLastIndex();
      this.trk.progress.set(id, fresh);
    }
  }

  /** Last index known to be in stable storage and part of the current log. */
  persistedLastIndex(): number {
    const u = this.log.unstable;
    return u.snapshot ? 0 : u.offset - 1;
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.stepRole = this.stepFollower;
    this.tick = this.tickElection;
    this.reset(term);
    this.lead = lead;
    this.role = 'follower';
  }

  private becomePreCandidate(): void {
    if (this.role === 'leader') throw new Error('raft: invalid transition leader -> preCandidate');
    // Pre-vote changes neither term nor vote: a partitioned member cannot disrupt the cluster by inflating terms.
    this.stepRole = this.stepCandidate;
    this.tick = this.tickElection;
    this.trk.votes.clear();
    this.lead = NONE;
    this.role = 'preCandidate';
  }

  private becomeCandidate(): void {
    if (this.role === 'leader') throw new Error('raft: invalid transition leader -> candidate');
    this.stepRole = this.stepCandidate;
    this.tick = this.tickElection;
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = 'candidate';
  }

  private becomeLeader(): void {
    if (this.role === 'follower') throw new Error('raft: invalid transition follower -> leader');
    this.stepRole = this.stepLeader;
    this.tick = this.tickHeartbeat;
    this.reset(this.term);
    this.lead = this.id;
    this.role = 'leader';
    this.trk.progress.get(this.id)?.becomeReplicate();
    // Conservative: entries after our commit index may hold a conf change; none may be proposed before they apply.
    this.pendingConfIndex = this.log.lastIndex();
    // Section 5.4.2: commit an entry of our own term so that earlier entries become committed too (and ReadIndex works).
    this.appendEntries([{ term: 0, index: 0, type: 'normal', data: new Uint8Array() }]);
  }

  promotable(): boolean {
    const pr = this.trk.progress.get(this.id);
    return pr !== undefined && !pr.isLearner && this.trk.voters.has(this.id) && !this.log.unstable.snapshot;
  }

  // ---- ticks ----------------------------------------------------------------------------------------------

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.step(message({ type: 'MsgHup', from: this.id }));
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTimeout) {
      this.electionElapsed = 0;
      if (this.checkQuorum) this.step(message({ type: 'MsgCheckQuorum', from: this.id }));
      if (this.role === 'leader' && this.leadTransferee !== NONE) this.leadTransferee = NONE; // transfer timed out
    }
    if (this.role !== 'leader') return;
    if (this.heartbeatElapsed >= this.heartbeatTimeout) {
      this.heartbeatElapsed = 0;
      this.step(message({ type: 'MsgBeat', from: this.id }));
    }
  }

  // ---- elections ------------------------------------------------------------------------------------------

  private hup(transfer: boolean): void {
    if (this.role === 'leader' || !this.promotable()) return;
    // A committed but unapplied conf change may remove us or change the quorum: wait until it is applied.
    const pending = this.log.slice(Math.max(this.log.applied + 1, this.log.firstIndex()), this.log.committed + 1, Number.MAX_SAFE_INTEGER);
    if (pending.some((e) => e.type === 'confChange')) return;
    this.campaign(transfer ? 'transfer' : this.preVote ? 'preElection' : 'election');
  }

  private campaign(kind: 'preElection' | 'election' | 'transfer'): void {
    let voteMsg: MessageType;
    let term: number;
    if (kind === 'preElection') {
      this.becomePreCandidate();
      voteMsg = 'MsgPreVote';
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteMsg = 'MsgVote';
      term = this.term;
    }
    this.trk.recordVote(this.id, true);
    if (this.trk.tallyVotes().result === 'won') {
      if (kind === 'preElection') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    for (const id of [...this.trk.voters].sort((a, b) => a - b)) {
      if (id === this.id) continue;
      this.send(message({
        type: voteMsg, to: id, term, index: this.log.lastIndex(), logTerm: this.log.lastTerm(),
        ...(kind === 'transfer' ? { context: TRANSFER_CONTEXT } : {}),
      }));
    }
  }

  // ---- the step function ----------------------------------------------------------------------------------

  step(m: Message): void {
    if (m.term === 0) {
      // local message or forwarded proposal/read
    } else if (m.term > this.term) {
      if (m.type === 'MsgVote' || m.type === 'MsgPreVote') {
        const force = m.context === TRANSFER_CONTEXT;
        // Check-quorum lease: while we hear from a leader, ignore campaigns (a removed or partitioned member
        // must not depose a healthy leader). A leadership transfer overrides it.
        const inLease = this.checkQuorum && this.lead !== NONE && this.electionElapsed < this.electionTimeout;
        if (!force && inLease) return;
      }
      if (m.type === 'MsgPreVote') {
        // a pre-vote never changes our term
      } else if (m.type === 'MsgPreVoteResp' && !m.reject) {
        // the term in a granted pre-vote answer is the one we will campaign in
      } else if (m.type === 'MsgApp' || m.type === 'MsgHeartbeat' || m.type === 'MsgSnap') {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.checkQuorum || this.preVote) && (m.type === 'MsgHeartbeat' || m.type === 'MsgApp')) {
        // A stale leader cut off by check-quorum or pre-vote would never learn the new term otherwise.
        this.send(message({ type: 'MsgAppResp', to: m.from }));
      } else if (m.type === 'MsgPreVote') {
        this.send(message({ type: 'MsgPreVoteResp', to: m.from, term: this.term, reject: true }));
      }
      return;
    }

    switch (m.type) {
      case 'MsgHup':
        this.hup(false);
        return;
      case 'MsgVote':
      case 'MsgPreVote': {
        const canVote = this.vote === m.from || (this.vote === NONE && this.lead === NONE) || (m.type === 'MsgPreVote' && m.term > this.term);
        const respType = VOTE_RESPONSE[m.type]!;
        if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
          // Answer in the candidate's term: for a pre-vote ours is lower and the candidate must not ignore it.
          this.send(message({ type: respType, to: m.from, term: m.term }));
          if (m.type === 'MsgVote') {
            this.electionElapsed = 0;
            this.vote = m.from;
          }
        } else {
          this.send(message({ type: respType, to: m.from, term: this.term, reject: true }));
        }
        return;
      }
      default:
        this.stepRole(m);
    }
  }

  private stepLeader(m: Message): void {
    switch (m.type) {
      case 'MsgBeat':
        this.bcastHeartbeat();
        return;
      case 'MsgCheckQuorum':
        if (!this.trk.quorumActive(this.id)) this.becomeFollower(this.term, NONE);
        for (const [id, pr] of this.trk.progress) pr.recentActive = id === this.id;
        return;
      case 'MsgProp':
        this.leaderPropose(m.entries);
        return;
      case 'MsgReadIndex':
        this.leaderReadIndex(m);
        return;
      case 'MsgTransferLeader':
        this.leaderTransfer(m.from);
        return;
    }
    const pr = this.trk.progress.get(m.from);
    if (!pr) return;
    switch (m.type) {
      case 'MsgAppResp':
        pr.recentActive = true;
        if (m.reject) {
          const hint = m.logTerm > 0 ? this.log.findConflictByTerm(m.rejectHint, m.logTerm).index : m.rejectHint;
          if (pr.maybeDecrTo(m.index, hint)) {
            if (pr.state === 'replicate') pr.becomeProbe();
            this.sendAppend(m.from);
          }
          return;
        }
        const wasPaused = pr.isPaused();
        if (pr.maybeUpdate(m.index)) {
          if (pr.state === 'probe') pr.becomeReplicate();
          else if (pr.state === 'snapshot' && pr.match >= pr.pendingSnapshot) {
            pr.becomeProbe();
            pr.becomeReplicate();
          }
          // A follower that was paused missed commit updates broadcast meanwhile: send one even if empty.
          if (this.maybeCommit()) this.bcastAppend();
          else if (wasPaused) this.sendAppend(m.from);
          while (this.maybeSendAppend(m.from, false));
          if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) this.sendTimeoutNow(m.from);
        }
        return;
      case 'MsgHeartbeatResp':
        pr.recentActive = true;
        pr.probeSent = false;
        // Appends may have been lost: let one more through so that a rejection resets the pipeline.
        if (pr.state === 'replicate' && pr.isPaused()) pr.inflight.shift();
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
        if (m.context !== undefined) this.ackRead(m.context, m.from);
        return;
      case 'MsgSnapStatus':
        if (pr.state !== 'snapshot') return;
        pr.becomeProbe();
        // Wait for the next heartbeat answer (or MsgAppResp) before probing again.
        pr.probeSent = true;
        return;
      case 'MsgUnreachable':
        if (pr.state === 'replicate') pr.becomeProbe();
        return;
    }
  }

  private leaderPropose(entries: Entry[]): void {
    if (entries.length === 0) throw new Error('raft: MsgProp without entries');
    if (!this.trk.progress.has(this.id)) throw new ProposalDroppedError('this leader was removed from the configuration');
    if (this.leadTransferee !== NONE) throw new ProposalDroppedError(`leadership is being transferred to ${this.leadTransferee}`);
    for (let i = 0; i < entries.length; i++) {
      const e = entries[i]!;
      if (e.type !== 'confChange') continue;
      if (this.pendingConfIndex > this.log.applied) {
        throw new ProposalDroppedError(`conf change at index ${this.pendingConfIndex} is not applied yet (applied ${this.log.applied})`);
      }
      this.checkConfChange(decodeConfChange(e.data));
      this.pendingConfIndex = this.log.lastIndex() + i + 1;
    }
    this.appendEntries(entries);
    this.bcastAppend();
  }

  /** Refuses conf changes that would be no-ops or unsafe (promoting a learner that has not caught up). */
  private checkConfChange(cc: ConfChange): void {
    const { voters, learners } = this.trk;
    if (cc.type === 'addNode') {
      if (voters.has(cc.nodeId)) throw new ProposalDroppedError(`member ${cc.nodeId} is already a voter`);
      if (learners.has(cc.nodeId)) {
        const match = this.trk.progress.get(cc.nodeId)?.match ?? 0;
        if (match < this.log.committed) {
          throw new ProposalDroppedError(`learner ${cc.nodeId} has not caught up (match ${match}, commit ${this.log.committed})`);
        }
      }
    } else if (cc.type === 'addLearner') {
      if (voters.has(cc.nodeId)) throw new ProposalDroppedError(`member ${cc.nodeId} is a voter; demotion is not supported`);
      if (learners.has(cc.nodeId)) throw new ProposalDroppedError(`member ${cc.nodeId} is already a learner`);
    } else if (!voters.has(cc.nodeId) && !learners.has(cc.nodeId)) {
      throw new ProposalDroppedError(`member ${cc.nodeId} is not in the configuration`);
    } else if (voters.has(cc.nodeId) && voters.size === 1) {
      throw new ProposalDroppedError(`removing ${cc.nodeId} would leave no voter`);
    }
  }

  private leaderReadIndex(m: Message): void {
    const context = m.context;
    if (context === undefined) throw new Error('raft: MsgReadIndex without context');
    if (this.trk.isSingleton()) {
      this.answerRead({ index: this.log.committed, from: m.from, context, acks: new Set() });
      return;
    }
    // Until an entry of this term is committed we do not know the latest commit index (thesis 6.4, step 1).
    if (this.log.term(this.log.committed) !== this.term) {
      throw new ProposalDroppedError('read index: the leader has not committed an entry in its term yet');
    }
    if (this.pendingReads.has(context)) return;
    this.pendingReads.set(context, { index: this.log.committed, from: m.from, context, acks: new Set([this.id]) });
    this.readQueue.push(context);
    this.bcastHeartbeat(context);
  }

  /** A heartbeat carrying `context` was answered: once a quorum answered, it and every earlier read are safe. */
  private ackRead(context: string, from: NodeId): void {
    const pending = this.pendingReads.get(context);
    if (!pending) return;
    pending.acks.add(from);
    let acked = 0;
    for (const id of this.trk.voters) if (pending.acks.has(id)) acked++;
    if (acked < this.trk.quorum()) return;
    const upTo = this.readQueue.indexOf(context);
    for (const ctx of this.readQueue.splice(0, upTo + 1)) {
      const read = this.pendingReads.get(ctx)!;
      this.pendingReads.delete(ctx);
      this.answerRead(read);
    }
  }

  private answerRead(read: PendingRead): void {
    if (read.from === this.id || read.from === NONE) this.readStates.push({ index: read.index, context: read.context });
    else this.send(message({ type: 'MsgReadIndexResp', to: read.from, index: read.index, context: read.context }));
  }

  private leaderTransfer(transferee: NodeId): void {
    const pr = this.trk.progress.get(transferee);
    if (!pr || pr.isLearner || transferee === this.id) return;
    if (this.leadTransferee === transferee) return;
    this.leadTransferee = transferee;
    // The transfer must finish within one election timeout or it is abandoned (see tickHeartbeat).
    this.electionElapsed = 0;
    if (pr.match === this.log.lastIndex()) this.sendTimeoutNow(transferee);
    else this.sendAppend(transferee);
  }

  private sendTimeoutNow(to: NodeId): void {
    this.send(message({ type: 'MsgTimeoutNow', to }));
  }

  private stepCandidate(m: Message): void {
    const myResp: MessageType = this.role === 'preCandidate' ? 'MsgPreVoteResp' : 'MsgVoteResp';
    switch (m.type) {
      case 'MsgProp':
        throw new ProposalDroppedError('no leader (election in progress)');
      case 'MsgReadIndex':
        throw new ProposalDroppedError('no leader (election in progress)');
      case 'MsgApp':
        this.becomeFollower(m.term, m.from);
        this.handleAppendEntries(m);
        return;
      case 'MsgHeartbeat':
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        return;
      case 'MsgSnap':
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        return;
      case myResp: {
        this.trk.recordVote(m.from, !m.reject);
        const { result } = this.trk.tallyVotes();
        if (result === 'won') {
          if (this.role === 'preCandidate') this.campaign('election');
          else {
            this.becomeLeader();
            this.bcastAppend();
          }
        } else if (result === 'lost') {
          this.becomeFollower(this.term, NONE);
        }
        return;
      }
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case 'MsgProp':
      case 'MsgReadIndex':
      case 'MsgTransferLeader':
        if (this.lead === NONE) throw new ProposalDroppedError(`${m.type}: no known leader`);
        this.send({ ...m, to: this.lead });
        return;
      case 'MsgApp':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleAppendEntries(m);
        return;
      case 'MsgHeartbeat':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleHeartbeat(m);
        return;
      case 'MsgSnap':
        this.electionElapsed = 0;
        this.lead = m.from;
        this.handleSnapshot(m);
        return;
      case 'MsgTimeoutNow':
        this.hup(true);
        return;
      case 'MsgReadIndexResp':
        if (m.context !== undefined) this.readStates.push({ index: m.index, context: m.context });
        return;
    }
  }

  // ---- replication ----------------------------------------------------------------------------------------

  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      this.send(message({ type: 'MsgAppResp', to: m.from, index: this.log.committed }));
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.send(message({ type: 'MsgAppResp', to: m.from, index: lastNew }));
      return;
    }
    // Tell the leader where our log may match so it skips a whole term per round trip, not one index.
    const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
    this.send(message({ type: 'MsgAppResp', to: m.from, index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term }));
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    this.send(message({ type: 'MsgHeartbeatResp', to: m.from, ...(m.context !== undefined ? { context: m.context } : {}) }));
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    if (!s) throw new Error(`raft: MsgSnap from ${m.from} without a snapshot`);
    const index = this.restore(s) ? this.log.lastIndex() : this.log.committed;
    this.send(message({ type: 'MsgAppResp', to: m.from, index }));
  }

  /** Install a snapshot from the leader; false when it brings nothing new. */
  private restore(s: Snapshot): boolean {
    if (s.meta.index <= this.log.committed) return false;
    if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // our log already has the snapshot's last entry: just move the commit index
      this.log.commitTo(s.meta.index);
      return false;
    }
    this.log.restore(s);
    this.trk.voters.clear();
    this.trk.learners.clear();
    this.trk.progress.clear();
    this.applyConfState(s.meta.confState);
    return true;
  }

  private maybeCommit(): boolean {
    return this.log.maybeCommit(this.trk.committed(), this.term);
  }

  private appendEntries(entries: Entry[]): void {
    const last = this.log.lastIndex();
    this.log.append(entries.map((e, i) => ({ ...e, term: this.term, index: last + 1 + i })));
    // Our own progress moves when the entries are persisted (onPersisted), never before.
  }

  /** The driver persisted the log up to persistedLastIndex(): the leader counts itself for commitment. */
  onPersisted(): void {
    if (this.role !== 'leader') return;
    const self = this.trk.progress.get(this.id);
    if (self && self.maybeUpdate(this.persistedLastIndex()) && this.maybeCommit()) this.bcastAppend();
  }

  private bcastAppend(): void {
    for (const id of this.trk.ids()) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(context?: string): void {
    for (const id of this.trk.ids()) {
      if (id === this.id) continue;
      const pr = this.trk.progress.get(id)!;
      // Never tell a follower to commit beyond what it is known to hold.
      this.send(message({ type: 'MsgHeartbeat', to: id, commit: Math.min(pr.match, this.log.committed), ...(context !== undefined ? { context } : {}) }));
    }
  }

  private sendAppend(to: NodeId): void {
    this.maybeSendAppend(to, true);
  }

  /** Sends the next MsgApp (or the snapshot) to `to`; returns whether something was sent. */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.trk.progress.get(to);
    if (!pr || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    let entries: Entry[] | undefined;
    if (prevIndex >= this.log.firstIndex() - 1) {
      try {
        entries = this.log.entries(pr.next, this.maxSizePerMsg);
      } catch (err) {
        if (!(err instanceof CompactedError)) throw err;
      }
    }
    if (entries === undefined) {
      const snapshot = this.log.snapshot();
      if (snapshot.meta.index === 0) throw new Error(`raft: follower ${to} needs entries before ${this.log.firstIndex()} but there is no snapshot`);
      this.send(message({ type: 'MsgSnap', to, snapshot }));
      pr.becomeSnapshot(snapshot.meta.index);
      return true;
    }
    if (entries.length === 0 && !sendIfEmpty) return false;
    this.send(message({
      type: 'MsgApp', to, index: prevIndex, logTerm: this.log.term(prevIndex), entries, commit: this.log.committed,
    }));
    pr.sentEntries(prevIndex + entries.length, entries.length);
    return true;
  }

  private send(m: Message): void {
    const out = { ...m };
    if (out.from === NONE) out.from = this.id;
    if (out.type === 'MsgVote' || out.type === 'MsgVoteResp' || out.type === 'MsgPreVote' || out.type === 'MsgPreVoteResp') {
      if (out.term === 0) throw new Error(`raft: ${out.type} must carry a term`);
    } else if (out.type !== 'MsgProp' && out.type !== 'MsgReadIndex') {
      out.term = this.term;
    }
    this.msgs.push(out);
  }

  // ---- membership -----------------------------------------------------------------------------------------

  private applyConfState(cs: ConfState): void {
    for (const id of cs.voters) this.applyConfChange({ type: 'addNode', nodeId: id });
    for (const id of cs.learners) this.applyConfChange({ type: 'addLearner', nodeId: id });
  }

  /** Apply a committed conf change (the driver calls it through RawNode when it applies the entry). */
  applyConfChange(cc: ConfChange): ConfState {
    const { voters, learners, progress } = this.trk;
    const ensure = (learner: boolean): void => {
      const pr = progress.get(cc.nodeId);
      if (pr) pr.isLearner = learner;
      // Probe from the last entry, so that there is something to send right away (and a rejection to learn from).
      else progress.set(cc.nodeId, new Progress(Math.max(this.log.lastIndex(), 1), learner, this.trk.maxInflight));
    };
    switch (cc.type) {
      case 'addNode':
        learners.delete(cc.nodeId);
        voters.add(cc.nodeId);
        ensure(false);
        break;
      case 'addLearner':
        if (voters.has(cc.nodeId)) break; // demotion is not supported; the leader refuses such proposals
        learners.add(cc.nodeId);
        ensure(true);
        break;
      case 'removeNode':
        voters.delete(cc.nodeId);
        learners.delete(cc.nodeId);
        progress.delete(cc.nodeId);
        break;
    }
    if (this.role === 'leader') {
      if (!voters.has(this.id)) {
        // A leader that is no longer a voter steps down; the remaining voters elect a new one.
        this.becomeFollower(this.term, NONE);
      } else {
        if (this.leadTransferee !== NONE && !voters.has(this.leadTransferee)) this.leadTransferee = NONE;
        // The quorum may have shrunk, so the commit index may move; new members need their first MsgApp.
        if (this.maybeCommit()) this.bcastAppend();
        else for (const id of this.trk.ids()) if (id !== this.id) this.maybeSendAppend(id, false);
      }
    }
    return this.trk.confState();
  }
}
