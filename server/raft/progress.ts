import type { ConfState, NodeId } from './types.js';

/**
 * How the leader replicates to one peer:
 * - probe: one MsgApp at a time until the peer answers (we do not know its log yet);
 * - replicate: MsgApps pipelined optimistically, at most `maxInflight` unacknowledged;
 * - snapshot: a snapshot is on its way; nothing else is sent until it is reported.
 */
export type ProgressState = 'probe' | 'replicate' | 'snapshot';

/** Invariant: match < next. */
export class Progress {
  match = 0;
  next: number;
  state: ProgressState = 'probe';
  /** In probe state: a MsgApp is outstanding; cleared by any response or heartbeat response. */
  probeSent = false;
  pendingSnapshot = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  /** Last indexes of in-flight MsgApps, oldest first (replicate state). */
  inflight: number[] = [];

  constructor(next: number, public isLearner: boolean, readonly maxInflight: number) {
    this.next = next;
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflight = [];
  }

  becomeProbe(): void {
    if (this.state === 'snapshot') {
      const pending = this.pendingSnapshot;
      this.reset('probe');
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.reset('probe');
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.reset('replicate');
    this.next = this.match + 1;
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.reset('snapshot');
    this.pendingSnapshot = snapshotIndex;
  }

  /** An acknowledgement up to n arrived; returns whether it was news. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    while (this.inflight.length > 0 && this.inflight[0]! <= n) this.inflight.shift();
    return updated;
  }

  /** A MsgApp whose entries end at `last` went out. */
  sentEntries(last: number, count: number): void {
    if (this.state === 'replicate') {
      if (count > 0) {
        this.next = last + 1;
        this.inflight.push(last);
      }
    } else if (this.state === 'probe') {
      this.probeSent = true;
    }
  }

  /**
   * The peer rejected a MsgApp at `rejected`; `matchHint` is where its log might match. Returns false when the
   * rejection is stale (answers an older message) and must be ignored.
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (matchHint < this.match) {
      // The peer's log ends below what it acknowledged: it lost entries (its data was restored from an old
      // copy). Believe it and probe from its real end. A stale rejection can also land here; that only costs
      // a resend, since match going down never lowers the commit index.
      this.match = matchHint;
      this.becomeProbe();
      this.next = matchHint + 1;
      return true;
    }
    if (this.state === 'replicate') {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  isPaused(): boolean {
    switch (this.state) {
      case 'probe': return this.probeSent;
      case 'replicate': return this.inflight.length >= this.maxInflight;
      case 'snapshot': return true;
    }
  }
}

/** The current configuration and every member's progress (the latter meaningful on the leader only). */
export class ProgressTracker {
  voters = new Set<NodeId>();
  learners = new Set<NodeId>();
  progress = new Map<NodeId, Progress>();
  /** Votes received in the current (pre-)campaign: id -> granted. */
  votes = new Map<NodeId, boolean>();

  constructor(readonly maxInflight: number) {}

  confState(): ConfState {
    return { voters: [...this.voters].sort((a, b) => a - b), learners: [...this.learners].sort((a, b) => a - b) };
  }

  /** Members in id order, so that message order is deterministic. */
  ids(): NodeId[] {
    return [...this.progress.keys()].sort((a, b) => a - b);
  }

  quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  isSingleton(): boolean {
    return this.voters.size === 1;
  }

  /** Highest index replicated on a majority of voters (0 with no voters). */
  committed(): number {
    const matches = [...this.voters].map((id) => this.progress.get(id)?.match ?? 0).sort((a, b) => b - a);
    return matches[this.quorum() - 1] ?? 0;
  }

  recordVote(id: NodeId, granted: boolean): void {
    if (!this.votes.has(id)) this.votes.set(id, granted);
  }

  /** 'won' | 'lost' | 'pending' among the voters. */
  tallyVotes(): { granted: number; rejected: number; result: 'won' | 'lost' | 'pending' } {
    let granted = 0;
    let rejected = 0;
    for (const id of this.voters) {
      const v = this.votes.get(id);
      if (v === true) granted++;
      else if (v === false) rejected++;
    }
    const q = this.quorum();
    const result = granted >= q ? 'won' : rejected > this.voters.size - q ? 'lost' : 'pending';
    return { granted, rejected, result };
  }

  /** Check-quorum: a majority of voters were recently active. */
  quorumActive(self: NodeId): boolean {
    let active = 0;
    for (const id of this.voters) {
      if (id === self || this.progress.get(id)?.recentActive) active++;
    }
    return active >= this.quorum();
  }
}
