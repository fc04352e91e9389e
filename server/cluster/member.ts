import { randomUUID } from 'node:crypto';
import { RawNode, ProposalDroppedError } from '../raft/rawnode.js';
import type { LogStore } from '../raft/storage.js';
import { decodeConfChange, NONE } from '../raft/types.js';
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId, Ready, Role } from '../raft/types.js';
import type { SqliteStore } from '../store/sqlite-store.js';
import type { Proposer } from '../store/proposer.js';
import { StoreError } from '../store/types.js';
import type { ApplyResult, Command } from '../store/types.js';
import { decodeProposal, encodeProposal } from './codec.js';

export interface MemberOptions {
  id: NodeId;
  store: SqliteStore;
  logStore: LogStore;
  /** Hands messages to the transport; called only after what they depend on is persisted. */
  send: (messages: Message[]) => void;
  /** Integer in [0, n) for election jitter. */
  randomInt: (n: number) => number;
  /** Defaults: 100 ms ticks, elections after 8 to 16 silent ticks (0.8 to 1.6 s), a heartbeat every tick. */
  tickMs?: number;
  electionTick?: number;
  heartbeatTick?: number;
  /** How long a proposal may wait for its commit before the caller gets a timeout. */
  proposalTimeoutMs?: number;
  /** Take a state-machine snapshot (and compact the log behind it) every this many applied entries. */
  snapshotEvery?: number;
  /** Entries kept before a snapshot so that briefly lagging followers need no snapshot. */
  keepEntries?: number;
  /** Makes a snapshot file of the state machine at the current applied index; returns what MsgSnap carries. */
  makeSnapshot: (index: number) => Uint8Array;
  /** Replaces the state machine with a received snapshot (data as produced by makeSnapshot or the transport). */
  restoreSnapshot: (data: Uint8Array, index: number) => void;
  onRoleChange?: (role: Role, leader: NodeId) => void;
  onConfChange?: (cc: ConfChange, conf: ConfState) => void;
  /**
   * The state-machine write a committed conf change carries, applied at the conf change's own log index (so on
   * every member, exactly once, together with the change itself); e.g. removing a member drops its record.
   */
  confChangeCommand?: (cc: ConfChange) => Command | undefined;
}

interface Waiter { resolve: (r: ApplyResult) => void; reject: (e: unknown) => void; timer: NodeJS.Timeout; data: Uint8Array; proposedAt: number }
/** A linearizable reader: settled exactly once, by its ReadIndex answer, its timeout, or shutdown. */
interface Reader { resolve: () => void; reject: (e: unknown) => void }
/** A conf change proposed by this leader at `index` in `term`, waiting for that log slot to be applied. */
interface ConfWaiter { term: number; resolve: () => void; reject: (e: unknown) => void; timer: NodeJS.Timeout }

/** A proposal not applied this long is proposed again (its MsgProp or the leader holding it may be gone). */
const REPROPOSE_AFTER_MS = 1_500;
/** An unanswered ReadIndex request is asked again after this long. */
const READ_RETRY_MS = 300;

const timeoutError = (what: string): StoreError => new StoreError({ code: 504, reason: 'Timeout', message: `${what}: the cluster did not commit it in time (no quorum?); a write may or may not have been applied` });
const unavailable = (what: string): StoreError => new StoreError({ code: 503, reason: 'ServiceUnavailable', message: `${what}: no Raft leader is known (no quorum?)` });
const shuttingDown = (): StoreError => new StoreError({ code: 503, reason: 'ServiceUnavailable', message: 'the server is shutting down' });

/**
 * Drives one Raft member: ticks, the Ready loop (persist, send, apply, advance), proposals and ReadIndex reads.
 * The state machine is the SqliteStore; an entry's index is the revision of the write it carries, so every
 * member applies the same commands at the same revisions.
 *
 * Restart: committed entries after the snapshot come out of Ready again; the store skips those at or below its
 * revision (already applied), conf changes are re-applied to Raft (they are not in the store).
 */
export class RaftMember implements Proposer {
  readonly node: RawNode;
  readonly id: NodeId;
  #waiters = new Map<string, Waiter>();
  /**
   * ReadIndex: readers waiting for the request in flight (by context), for the next request, and for the
   * applied index to reach their read index. Every reader is in exactly one of the three until it is settled.
   */
  #reads = new Map<string, Reader[]>();
  #nextReaders: Reader[] = [];
  #appliedWaiters: { index: number; readers: Reader[] }[] = [];
  /** Conf changes this member proposed as leader, by log index. */
  #confWaiters = new Map<number, ConfWaiter>();
  #leaderWaiters: (() => void)[] = [];
  /**
   * Set once run() has ended: every caller, pending or new, gets this error, and nothing is processed after
   * (the store may be closed by then).
   */
  #stopped: StoreError | undefined;
  /** Why this member stopped processing while running: its log or state storage threw (see #fail). */
  #storageFailure: string | undefined;
  #lastLogWriteMs = 0;
  #applied: number;
  #lastSnapshot: number;
  #scheduled = false;
  #readSeq = 0;
  #readIssuedAt = 0;
  #persisted: HardState;

  constructor(readonly opts: MemberOptions) {
    this.id = opts.id;
    this.node = new RawNode({
      id: opts.id, storage: opts.logStore, electionTick: opts.electionTick ?? 8, heartbeatTick: opts.heartbeatTick ?? 1,
      randomInt: opts.randomInt, preVote: true, checkQuorum: true,
    });
    this.#persisted = opts.logStore.initialState().hardState;
    this.#lastSnapshot = opts.logStore.snapshot().meta.index;
    this.#applied = this.#lastSnapshot;
  }

  get leader(): NodeId {
    return this.node.raft.lead;
  }

  get isLeader(): boolean {
    return this.node.raft.role === 'leader';
  }

  get applied(): number {
    return this.#applied;
  }

  /** Set once a write or read of this member's storage threw: it then answers every caller with a 503 saying so. */
  get storageFailure(): string | undefined {
    return this.#storageFailure;
  }

  /** How long the last write of the Raft log took (one transaction, with its fsync when it had to be durable). */
  get lastLogWriteMs(): number {
    return this.#lastLogWriteMs;
  }

  /**
   * Ticks until `signal` aborts. Then every pending caller (writes, reads at any stage, conf changes, writes
   * waiting for a leader) is rejected at once with a 503 "shutting down", and the member processes nothing more.
   */
  async run(signal: AbortSignal): Promise<void> {
    const timer = setInterval(() => {
      if (this.#stopped) return;
      this.node.tick();
      if (this.#waiters.size > 0 && this.leader !== NONE) this.#repropose(false);
      // A ReadIndex the leader refused or lost (e.g. before it committed an entry of its term) is asked again.
      if (this.#reads.size > 0 && Date.now() - this.#readIssuedAt > READ_RETRY_MS) this.#requeueReads();
      this.#schedule();
    }, this.opts.tickMs ?? 100);
    this.#schedule();
    await new Promise<void>((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })));
    clearInterval(timer);
    this.#stop();
  }

  #stop(gone: StoreError = shuttingDown()): void {
    this.#stopped = gone;
    for (const w of this.#waiters.values()) { clearTimeout(w.timer); w.reject(gone); }
    this.#waiters.clear();
    for (const w of this.#confWaiters.values()) { clearTimeout(w.timer); w.reject(gone); }
    this.#confWaiters.clear();
    const readers = [...[...this.#reads.values()].flat(), ...this.#nextReaders, ...this.#appliedWaiters.flatMap((w) => w.readers)];
    this.#reads.clear();
    this.#nextReaders = [];
    this.#appliedWaiters = [];
    for (const r of readers) r.reject(gone);
    // Writes waiting for a leader wake up, see #stopped and fail.
    const leaderWaiters = this.#leaderWaiters;
    this.#leaderWaiters = [];
    for (const w of leaderWaiters) w();
  }

  /** Campaign at once (a lone bootstrapping member need not wait an election timeout). */
  campaign(): void {
    this.node.campaign();
    this.#schedule();
  }

  receive(messages: Message[]): void {
    // After run() the log may be closed: a late peer request steps nothing.
    if (this.#stopped) return;
    for (const m of messages) this.node.step(m);
    this.#schedule();
  }

  /** Appends the command to the replicated log; resolves with its apply result once committed and applied here. */
  async propose(command: Command): Promise<ApplyResult> {
    if (this.#stopped) throw this.#stopped;
    const id = randomUUID();
    const data = encodeProposal({ id, command });
    const deadline = Date.now() + (this.opts.proposalTimeoutMs ?? 10_000);
    for (;;) {
      try {
        this.node.propose(data);
        break;
      } catch (err) {
        if (!(err instanceof ProposalDroppedError)) throw err;
        // Never entered the log, so retrying cannot apply it twice: wait for a leader, then try again.
        if (!(await this.#waitForLeader(deadline))) throw this.#stopped ?? unavailable('write');
        if (this.#stopped) throw this.#stopped;
      }
    }
    this.#schedule();
    return new Promise<ApplyResult>((resolve, reject) => {
      const timer = setTimeout(() => { this.#waiters.delete(id); reject(timeoutError('write')); }, Math.max(1, deadline - Date.now()));
      this.#waiters.set(id, { resolve, reject, timer, data, proposedAt: Date.now() });
    });
  }

  /**
   * Proposes again what is pending (after a leader change, or when it waited too long). Safe because the store
   * applies each proposal id at most once.
   */
  #repropose(all: boolean): void {
    const now = Date.now();
    for (const w of this.#waiters.values()) {
      if (!all && now - w.proposedAt < REPROPOSE_AFTER_MS) continue;
      try {
        this.node.propose(w.data);
        w.proposedAt = now;
      } catch (err) {
        if (!(err instanceof ProposalDroppedError)) throw err;
      }
    }
  }

  /**
   * Resolves when this member has applied everything committed before the call (ReadIndex), so a read of the
   * local store afterwards is linearizable. Concurrent callers share one ReadIndex round.
   */
  readBarrier(timeoutMs = this.opts.proposalTimeoutMs ?? 10_000): Promise<void> {
    if (this.#stopped) return Promise.reject(this.#stopped);
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(timeoutError('linearizable read')), timeoutMs);
      this.#nextReaders.push({ resolve: () => { clearTimeout(timer); resolve(); }, reject: (e) => { clearTimeout(timer); reject(e); } });
      this.#issueRead();
    });
  }

  /** Fire and forget: a follower forwards it to the leader, which may drop it; see commitConfChange. */
  proposeConfChange(cc: ConfChange): void {
    this.node.proposeConfChange(cc);
    this.#schedule();
  }

  /**
   * Leader only: proposes a membership change and resolves once its entry is committed and applied here (with
   * its confChangeCommand). Rejects with ProposalDroppedError when refused (not the leader, another change not
   * yet applied, an unsafe change) and with a 503 when another entry took its log slot (a leader change): in
   * both cases nothing changed. A 504 after the proposal timeout means the outcome is not known yet.
   */
  async commitConfChange(cc: ConfChange): Promise<void> {
    if (this.#stopped) throw this.#stopped;
    if (!this.isLeader) throw new ProposalDroppedError(`this member is not the leader (leader: ${this.leader || 'none'})`);
    this.node.proposeConfChange(cc);
    // The leader appended it as its last entry, in its term: that log slot decides the outcome.
    const index = this.node.raft.log.lastIndex();
    const term = this.node.raft.term;
    this.#schedule();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => { this.#confWaiters.delete(index); reject(timeoutError('membership change')); }, this.opts.proposalTimeoutMs ?? 10_000);
      this.#confWaiters.set(index, { term, resolve, reject, timer });
    });
  }

  transferLeadership(to: NodeId): void {
    this.node.transferLeader(to);
    this.#schedule();
  }

  reportUnreachable(id: NodeId): void {
    this.node.reportUnreachable(id);
    this.#schedule();
  }

  reportSnapshot(id: NodeId, ok: boolean): void {
    this.node.reportSnapshot(id, ok);
    this.#schedule();
  }

  #issueRead(): void {
    if (this.#nextReaders.length === 0 || this.#reads.size > 0) return;
    if (this.leader === NONE) return; // retried when a leader appears (see #process)
    const ctx = `${this.id}-${++this.#readSeq}`;
    const readers = this.#nextReaders;
    this.#nextReaders = [];
    this.#reads.set(ctx, readers);
    this.#readIssuedAt = Date.now();
    try {
      this.node.readIndex(ctx);
    } catch (err) {
      if (!(err instanceof ProposalDroppedError)) throw err;
      // E.g. a new leader that has not committed an entry of its term yet: asked again after the next Ready.
      this.#reads.delete(ctx);
      this.#nextReaders.unshift(...readers);
      return;
    }
    this.#schedule();
  }

  /** False when the deadline passed or the member stopped first. */
  async #waitForLeader(deadline: number): Promise<boolean> {
    while (this.leader === NONE) {
      if (this.#stopped) return false;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.#leaderWaiters.push(() => { clearTimeout(t); resolve(); });
      });
    }
    return true;
  }

  #schedule(): void {
    if (this.#scheduled || this.#stopped) return;
    this.#scheduled = true;
    setImmediate(() => {
      this.#scheduled = false;
      if (this.#stopped) return;
      try {
        this.#process();
      } catch (err) {
        this.#fail(err);
      }
    });
  }

  /**
   * Storage threw (a disk error, a damaged row found on read): nothing more is persisted, sent or applied, since
   * Raft's promises rest on the disk; every caller, pending or new, gets a 503 naming the failure, and /readyz
   * says it. The process stays up to say so; a restart runs the start-up checks.
   */
  #fail(err: unknown): void {
    this.#storageFailure = err instanceof Error ? err.message : String(err);
    this.#stop(new StoreError({ code: 503, reason: 'ServiceUnavailable', message: `this member stopped: its storage failed: ${this.#storageFailure}` }));
  }

  /** The Ready contract of rawnode.ts: persist, then send, then apply, then advance; repeated while ready. */
  #process(): void {
    while (this.node.hasReady()) {
      const rd = this.node.ready();
      // A leader may send while its own disk write of the same entries is under way (Raft thesis 10.2.1): its
      // messages do not promise anything about its disk. Its term and vote, though, are persisted first.
      const early = this.isLeader && (!rd.hardState || (rd.hardState.term === this.#persisted.term && rd.hardState.vote === this.#persisted.vote));
      if (early && rd.messages.length > 0) this.opts.send(rd.messages);
      if (rd.hardState || rd.entries.length > 0 || rd.snapshot) {
        const started = performance.now();
        this.opts.logStore.save({ ...(rd.hardState ? { hardState: rd.hardState } : {}), entries: rd.entries, ...(rd.snapshot ? { snapshot: rd.snapshot } : {}), mustSync: rd.mustSync });
        this.#lastLogWriteMs = performance.now() - started;
        if (rd.hardState) this.#persisted = rd.hardState;
      }
      if (!early && rd.messages.length > 0) this.opts.send(rd.messages);
      if (rd.snapshot && rd.snapshot.meta.index > this.#applied) {
        this.opts.restoreSnapshot(rd.snapshot.data, rd.snapshot.meta.index);
        this.#applied = rd.snapshot.meta.index;
        this.#lastSnapshot = rd.snapshot.meta.index;
        // A snapshot hides which entries it covers: a conf change proposed below it has an unknown outcome.
        for (const [index, w] of this.#confWaiters) {
          if (index > this.#applied) continue;
          this.#confWaiters.delete(index);
          clearTimeout(w.timer);
          w.reject(timeoutError('membership change'));
        }
      }
      this.#apply(rd.committedEntries);
      this.#answerReads(rd);
      if (rd.softState) {
        this.opts.onRoleChange?.(rd.softState.role, rd.softState.lead);
        if (rd.softState.lead !== NONE) {
          this.#repropose(true);
          const waiters = this.#leaderWaiters;
          this.#leaderWaiters = [];
          for (const w of waiters) w();
        }
      }
      this.node.advance(rd);
      this.#maybeSnapshot();
    }
    this.#issueRead();
  }

  #apply(entries: Entry[]): void {
    let batch: { command: Command; revision: number; proposalId: string }[] = [];
    const flush = () => {
      if (batch.length === 0) return;
      const results = this.opts.store.apply(batch);
      batch.forEach((b, i) => {
        const w = this.#waiters.get(b.proposalId);
        if (!w) return;
        this.#waiters.delete(b.proposalId);
        clearTimeout(w.timer);
        w.resolve(results[i]!);
      });
      batch = [];
    };
    const storeRevision = this.opts.store.revision();
    for (const e of entries) {
      if (e.type === 'confChange') {
        flush();
        const cc = decodeConfChange(e.data);
        const conf = this.node.applyConfChange(cc);
        const command = e.index > storeRevision ? this.opts.confChangeCommand?.(cc) : undefined;
        if (command) this.opts.store.apply([{ command, revision: e.index }]);
        this.opts.onConfChange?.(cc, conf);
      } else if (e.data.byteLength > 0 && e.index > storeRevision) {
        const p = decodeProposal(e.data);
        batch.push({ command: p.command, revision: e.index, proposalId: p.id });
      }
      this.#applied = e.index;
      const conf = this.#confWaiters.get(e.index);
      if (conf) {
        this.#confWaiters.delete(e.index);
        clearTimeout(conf.timer);
        if (e.type === 'confChange' && e.term === conf.term) conf.resolve();
        else conf.reject(new StoreError({ code: 503, reason: 'ServiceUnavailable', message: 'membership change: lost in a leader change before it was committed; nothing was changed, retry' }));
      }
    }
    flush();
    if (this.#appliedWaiters.length > 0) {
      const ready = this.#appliedWaiters.filter((w) => w.index <= this.#applied);
      this.#appliedWaiters = this.#appliedWaiters.filter((w) => w.index > this.#applied);
      for (const w of ready) for (const r of w.readers) r.resolve();
    }
  }

  #answerReads(rd: Ready): void {
    for (const rs of rd.readStates) {
      const readers = this.#reads.get(rs.context);
      if (!readers) continue;
      this.#reads.delete(rs.context);
      if (rs.index <= this.#applied) for (const r of readers) r.resolve();
      else this.#appliedWaiters.push({ index: rs.index, readers });
    }
    // A ReadIndex request lost with a leader change is asked again rather than left hanging.
    if (rd.softState && this.#reads.size > 0) this.#requeueReads();
  }

  /** Moves readers of unanswered ReadIndex requests back to the queue; their own timers still bound the wait. */
  #requeueReads(): void {
    for (const [ctx, readers] of this.#reads) {
      this.#reads.delete(ctx);
      this.#nextReaders.push(...readers);
    }
    this.#issueRead();
  }

  #maybeSnapshot(): void {
    const every = this.opts.snapshotEvery ?? 10_000;
    if (this.#applied - this.#lastSnapshot < every) return;
    const index = this.#applied;
    const data = this.opts.makeSnapshot(index);
    this.opts.logStore.createSnapshot(index, this.node.status().confState, data);
    const keep = this.opts.keepEntries ?? 1_000;
    if (index - keep > this.opts.logStore.firstIndex()) this.opts.logStore.compact(index - keep);
    this.#lastSnapshot = index;
  }
}
