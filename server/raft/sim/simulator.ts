// Deterministic cluster simulator: real RawNodes over MemoryStorage "disks", a virtual clock (one step = one
// tick), a network that drops, delays, duplicates and reorders, partitions, crashes (also before persisting a
// Ready, and between persisting it and sending its messages), restarts from the persisted state, snapshots with log compaction, and
// membership changes. A client model issues KV puts and ReadIndex gets; the history is checked for
// linearizability. Safety invariants are checked at every step. One seed replays exactly: every random choice
// comes from one SeededRandom and every iteration goes in id order.
import { ProposalDroppedError, RawNode } from '../rawnode.js';
import { MemoryStorage } from '../storage.js';
import { type Entry, type Message, type NodeId, type Ready, type Snapshot, decodeConfChange } from '../types.js';
import { KvStateMachine, decodeKvCommand, encodeKvCommand } from './kv.js';
import { type KvOperation, checkKvHistory } from './linearizability.js';
import { SeededRandom, TraceHash } from './random.js';

export interface SimOptions {
  seed: number;
  /** Initial voters: 3 or 5. */
  nodes: number;
  steps: number;
  clients?: number;
  /** Probability scale of every fault (0 = a perfect network and no crashes). */
  faults?: number;
  /**
   * 'durable' (default): what save() wrote survives a crash. 'losesVote': a crash forgets the vote, like a disk
   * that acknowledges writes it never made durable; used to show that the invariant checks catch the damage.
   */
  disk?: 'durable' | 'losesVote';
}

export interface SimResult {
  seed: number;
  traceHash: string;
  violations: string[];
  linearizable: boolean;
  opsCompleted: number;
  opsFailed: number;
  putsUnknown: number;
  leadersElected: number;
  crashes: number;
  confChanges: number;
  snapshotsSent: number;
  maxCommit: number;
}

const ELECTION_TICK = 10;
const HEARTBEAT_TICK = 2;
const CLIENT_TIMEOUT = 60;
const KEYS = ['x', 'y', 'z'];

interface InFlight {
  at: number;
  seq: number;
  msg: Message;
}

interface ClientOp {
  op: number;
  kind: 'put' | 'get';
  key: string;
  value: string;
  target: NodeId;
  call: number;
  deadline: number;
}

class Member {
  node: RawNode | undefined;
  kv = new KvStateMachine();
  /** ReadIndex answers waiting for the state machine to catch up. */
  reads: { index: number; context: string }[] = [];
  downUntil = 0;
  /** Applied its own removal: shut down for good. */
  retired = false;
  constructor(readonly id: NodeId, readonly storage: MemoryStorage) {}
}

export class Simulator {
  private readonly rng: SeededRandom;
  private readonly trace = new TraceHash();
  private readonly members = new Map<NodeId, Member>();
  private nextMemberId: number;
  private inflight: InFlight[] = [];
  private seq = 0;
  private now = 0;
  private partition: Map<NodeId, number> | undefined;
  private readonly faults: number;

  private readonly clients: (ClientOp | undefined)[];
  private readonly clientOpSeq: number[];
  private readonly history: KvOperation[] = [];
  private opsFailed = 0;

  /** Safety bookkeeping. */
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private readonly committedTerm: number[] = [];
  private readonly committedData: string[] = [];
  readonly violations: string[] = [];
  private stats = { leadersElected: 0, crashes: 0, confChanges: 0, snapshotsSent: 0 };

  constructor(readonly options: SimOptions) {
    if (!Number.isInteger(options.nodes) || options.nodes < 1 || options.nodes > 7) {
      throw new Error(`sim: nodes must be an integer in 1..7, got ${options.nodes}`);
    }
    this.rng = new SeededRandom(options.seed);
    this.faults = options.faults ?? 1;
    const voters = Array.from({ length: options.nodes }, (_, i) => i + 1);
    const boot: Snapshot = {
      meta: { index: 1, term: 1, confState: { voters, learners: [] } },
      data: new KvStateMachine().snapshot(),
    };
    for (const id of voters) {
      const storage = new MemoryStorage();
      storage.save({ snapshot: boot, entries: [], hardState: { term: 1, vote: 0, commit: 1 } });
      this.members.set(id, new Member(id, storage));
    }
    // One spare member outside the configuration, for membership changes.
    this.nextMemberId = options.nodes + 1;
    this.addSpare();
    for (const m of this.members.values()) this.start(m);
    const clients = options.clients ?? 3;
    this.clients = new Array(clients).fill(undefined);
    this.clientOpSeq = new Array(clients).fill(0);
  }

  private addSpare(): void {
    const id = this.nextMemberId++;
    const m = new Member(id, new MemoryStorage());
    this.members.set(id, m);
    this.start(m);
  }

  private start(m: Member): void {
    m.node = new RawNode({
      id: m.id, storage: m.storage, electionTick: ELECTION_TICK, heartbeatTick: HEARTBEAT_TICK,
      randomInt: (n) => this.rng.int(n), maxSizePerMsg: 256, maxInflightMsgs: 4, preVote: true, checkQuorum: true,
    });
    const snap = m.storage.snapshot();
    m.kv = KvStateMachine.restore(snap.data);
    m.kv.applied = snap.meta.index;
    m.reads = [];
  }

  private crash(m: Member, why: string): void {
    this.trace.add(`${this.now} crash ${m.id} ${why}`);
    this.stats.crashes++;
    m.node = undefined;
    if (this.options.disk === 'losesVote') {
      const { hardState } = m.storage.initialState();
      m.storage.save({ entries: [], hardState: { ...hardState, vote: 0 } });
    }
    m.downUntil = this.now + 5 + this.rng.int(60);
  }

  private up(): Member[] {
    return [...this.members.values()].filter((m) => m.node !== undefined);
  }

  run(): SimResult {
    for (let i = 0; i < this.options.steps; i++) this.step();
    // Let the cluster settle without faults so that pending operations can complete.
    this.partition = undefined;
    for (const m of this.members.values()) if (!m.node && !m.retired) { this.start(m); this.trace.add(`${this.now} restart ${m.id}`); }
    for (let i = 0; i < 200; i++) this.step(false, i < 150);
    for (let c = 0; c < this.clients.length; c++) this.abandon(c);
    this.checkLogMatching(true);
    this.checkLiveness();
    const check = checkKvHistory(this.history);
    if (!check.ok) this.violations.push(`history of key ${check.key} is not linearizable`);
    const maxCommit = Math.max(...this.up().map((m) => m.node!.raft.log.committed));
    return {
      seed: this.options.seed, traceHash: this.trace.hex(), violations: this.violations, linearizable: check.ok,
      opsCompleted: this.history.filter((o) => o.ret !== Infinity).length, opsFailed: this.opsFailed,
      putsUnknown: this.history.filter((o) => o.ret === Infinity).length, maxCommit, ...this.stats,
    };
  }

  /** One virtual tick: faults, ticks, deliveries, Ready processing, clients, invariants. */
  private step(withFaults = true, withClients = true): void {
    this.now++;
    if (withFaults) this.injectFaults();
    for (const m of this.members.values()) m.node?.tick();
    this.deliver();
    for (const m of this.members.values()) this.processReadies(m, withFaults);
    if (withClients) this.runClients();
    this.checkElectionSafety();
    if (this.now % 25 === 0) this.checkLogMatching(false);
  }

  private injectFaults(): void {
    const f = this.faults;
    const r = this.rng;
    if (this.partition) {
      if (r.chance(0.02)) {
        this.partition = undefined;
        this.trace.add(`${this.now} heal`);
      }
    } else if (r.chance(0.004 * f)) {
      this.partition = new Map();
      for (const id of this.members.keys()) this.partition.set(id, r.int(2));
      this.trace.add(`${this.now} partition ${[...this.partition].join(';')}`);
    }
    for (const m of this.members.values()) {
      if (m.retired) continue;
      if (m.node && r.chance(0.002 * f)) this.crash(m, 'random');
      else if (!m.node && this.now >= m.downUntil) {
        this.start(m);
        this.trace.add(`${this.now} restart ${m.id}`);
      }
    }
    if (r.chance(0.004 * f)) this.changeMembership();
    if (r.chance(0.004 * f)) {
      const leader = this.up().find((m) => m.node!.raft.role === 'leader');
      const target = leader && r.pick([...leader.node!.raft.trk.voters].sort((a, b) => a - b));
      if (leader && target !== undefined && target !== leader.id) {
        this.trace.add(`${this.now} transfer ${leader.id}->${target}`);
        leader.node!.transferLeader(target);
      }
    }
  }

  /** Walks the spare member through learner -> voter, then removes a random voter to keep the size. */
  private changeMembership(): void {
    const leader = this.up().find((m) => m.node!.raft.role === 'leader');
    if (!leader) return;
    const { voters, learners } = leader.node!.raft.trk;
    const spare = [...this.members.values()].find((m) => !m.retired && !voters.has(m.id) && !learners.has(m.id) && m.storage.lastIndex() === 0);
    let cc;
    if (voters.size > this.options.nodes) {
      cc = { type: 'removeNode' as const, nodeId: this.rng.pick([...voters].sort((a, b) => a - b)) };
    } else if (learners.size > 0) {
      cc = { type: 'addNode' as const, nodeId: [...learners].sort((a, b) => a - b)[0]! };
    } else if (spare) {
      cc = { type: 'addLearner' as const, nodeId: spare.id };
    } else {
      return;
    }
    try {
      leader.node!.proposeConfChange(cc);
      this.trace.add(`${this.now} propose ${cc.type} ${cc.nodeId}`);
    } catch (err) {
      if (!(err instanceof ProposalDroppedError)) throw err;
    }
  }

  private send(msg: Message, withFaults: boolean): void {
    const r = this.rng;
    const f = withFaults ? this.faults : 0;
    if (r.chance(0.03 * f)) {
      // A transport learns that a snapshot stream failed; other losses go unnoticed.
      if (msg.type === 'MsgSnap') this.inflight.push({ at: this.now + 1, seq: this.seq++, msg: { ...msg, type: 'MsgSnapStatus', to: msg.from, from: msg.to, reject: true } });
      return;
    }
    const delay = r.chance(0.05 * f) ? 5 + r.int(15) : r.int(3);
    this.inflight.push({ at: this.now + delay, seq: this.seq++, msg });
    if (r.chance(0.02 * f)) this.inflight.push({ at: this.now + r.int(10), seq: this.seq++, msg });
  }

  private deliver(): void {
    const due = this.inflight.filter((x) => x.at <= this.now).sort((a, b) => a.at - b.at || a.seq - b.seq);
    this.inflight = this.inflight.filter((x) => x.at > this.now);
    for (const { msg } of due) {
      if (msg.type === 'MsgSnapStatus') {
        this.members.get(msg.to)?.node?.reportSnapshot(msg.from, !msg.reject);
        continue;
      }
      const to = this.members.get(msg.to);
      const lost = !to?.node || (this.partition !== undefined && this.partition.get(msg.from) !== this.partition.get(msg.to));
      if (msg.type === 'MsgSnap') this.members.get(msg.from)?.node?.reportSnapshot(msg.to, !lost);
      if (!to?.node || lost) continue;
      this.trace.add(`${this.now} ${msg.type} ${msg.from}>${msg.to} t${msg.term} i${msg.index} n${msg.entries.length} c${msg.commit}${msg.reject ? ' R' : ''}`);
      if (msg.type === 'MsgSnap') this.stats.snapshotsSent++;
      to.node.step(msg);
    }
  }

  private processReadies(m: Member, withFaults: boolean): void {
    for (let guard = 0; m.node && m.node.hasReady(); guard++) {
      if (guard > 100) throw new Error(`sim: member ${m.id} keeps producing Ready batches`);
      const node = m.node;
      const rd = node.ready();
      if (rd.softState?.role === 'leader') this.onNewLeader(m);
      if (withFaults && this.rng.chance(0.002 * this.faults)) {
        this.crash(m, 'before-persist');
        return;
      }
      // 1. persist
      m.storage.save({ entries: rd.entries, ...(rd.hardState ? { hardState: rd.hardState } : {}), ...(rd.snapshot ? { snapshot: rd.snapshot } : {}) });
      if (withFaults && this.rng.chance(0.002 * this.faults)) {
        this.crash(m, 'after-persist');
        return;
      }
      // 2. send
      for (const msg of rd.messages) this.send(msg, withFaults);
      // 3. apply
      this.apply(m, rd);
      if (!m.node) return; // retired while applying
      // 4. advance
      node.advance(rd);
      this.maybeCompact(m);
    }
  }

  private apply(m: Member, rd: Ready): void {
    const node = m.node!;
    if (rd.snapshot) {
      m.kv = KvStateMachine.restore(rd.snapshot.data);
      m.kv.applied = rd.snapshot.meta.index;
      this.trace.add(`${this.now} restore ${m.id} @${rd.snapshot.meta.index}`);
    }
    for (const e of rd.committedEntries) {
      this.checkApplied(m, e);
      if (e.type === 'confChange') {
        const cc = decodeConfChange(e.data);
        node.applyConfChange(cc);
        m.kv.applied = e.index;
        this.stats.confChanges++;
        this.trace.add(`${this.now} conf ${m.id} ${cc.type} ${cc.nodeId} @${e.index}`);
        if (cc.type === 'removeNode' && cc.nodeId === m.id) {
          m.retired = true;
          m.node = undefined;
          this.trace.add(`${this.now} retire ${m.id}`);
          if (this.spareNeeded()) this.addSpare();
          return;
        }
        continue;
      }
      if (e.data.byteLength === 0) {
        m.kv.applied = e.index;
        continue;
      }
      const cmd = decodeKvCommand(e.data);
      m.kv.apply(e.index, cmd);
      const pending = this.clients[cmd.client];
      if (pending && pending.op === cmd.op && pending.target === m.id && pending.kind === 'put') {
        this.complete(cmd.client, pending, pending.value);
      }
    }
    for (const rs of rd.readStates) m.reads.push(rs);
    this.answerReads(m);
  }

  private spareNeeded(): boolean {
    return ![...this.members.values()].some((x) => !x.retired && x.storage.lastIndex() === 0);
  }

  private answerReads(m: Member): void {
    m.reads = m.reads.filter((rs) => {
      if (m.kv.applied < rs.index) return true;
      const [client, op] = rs.context.split(':').map(Number) as [number, number];
      const pending = this.clients[client];
      if (pending && pending.op === op && pending.target === m.id && pending.kind === 'get') {
        this.complete(client, pending, m.kv.get(pending.key));
      }
      return false;
    });
  }

  private maybeCompact(m: Member): void {
    const applied = m.kv.applied;
    const snapIndex = m.storage.snapshot().meta.index;
    if (applied - snapIndex < 30 || m.node!.raft.log.applied !== applied) return;
    m.storage.createSnapshot(applied, m.node!.raft.trk.confState(), m.kv.snapshot());
    m.storage.compact(applied - 10);
    this.trace.add(`${this.now} compact ${m.id} @${applied}`);
  }

  // ---- clients ----------------------------------------------------------------------------------------------

  private runClients(): void {
    for (let c = 0; c < this.clients.length; c++) {
      const pending = this.clients[c];
      if (pending) {
        if (this.now >= pending.deadline) this.abandon(c);
        continue;
      }
      if (!this.rng.chance(0.3)) continue;
      // Clients talk to members that have joined (a spare that is not in any configuration serves nobody).
      const targets = this.up().filter((m) => m.storage.lastIndex() > 0);
      if (targets.length === 0) continue;
      const target = this.rng.pick(targets);
      const op = ++this.clientOpSeq[c]!;
      const kind = this.rng.chance(0.5) ? 'put' : 'get';
      const key = this.rng.pick(KEYS);
      const value = kind === 'put' ? `${c}.${op}` : '';
      const call: ClientOp = { op, kind, key, value, target: target.id, call: this.now, deadline: this.now + CLIENT_TIMEOUT };
      try {
        if (kind === 'put') target.node!.propose(encodeKvCommand({ client: c, op, key, value }));
        else target.node!.readIndex(`${c}:${op}`);
        this.clients[c] = call;
      } catch (err) {
        if (!(err instanceof ProposalDroppedError)) throw err;
        this.opsFailed++;
      }
    }
  }

  /** The client gives up: a put's outcome is unknown (it may apply later); a get has no effect and is dropped. */
  private abandon(client: number): void {
    const pending = this.clients[client];
    if (pending?.kind === 'put') {
      this.history.push({ client, kind: 'put', key: pending.key, value: pending.value, call: pending.call, ret: Infinity });
    }
    this.clients[client] = undefined;
  }

  private complete(client: number, op: ClientOp, value: string): void {
    this.history.push({ client, kind: op.kind, key: op.key, value, call: op.call, ret: this.now });
    this.trace.add(`${this.now} return c${client} ${op.kind} ${op.key}=${value}`);
    this.clients[client] = undefined;
  }

  // ---- invariants -------------------------------------------------------------------------------------------

  private violation(what: string): void {
    if (this.violations.length < 20) this.violations.push(`step ${this.now}: ${what}`);
  }

  /** Election safety (5.2): at most one leader per term. */
  private checkElectionSafety(): void {
    for (const m of this.up()) {
      const r = m.node!.raft;
      if (r.role !== 'leader') continue;
      const known = this.leaderOfTerm.get(r.term);
      if (known === undefined) this.leaderOfTerm.set(r.term, m.id);
      else if (known !== m.id) this.violation(`two leaders in term ${r.term}: ${known} and ${m.id}`);
    }
  }

  /** Leader completeness (5.4): a new leader holds every entry committed in earlier terms. */
  private onNewLeader(m: Member): void {
    this.stats.leadersElected++;
    const r = m.node!.raft;
    this.trace.add(`${this.now} leader ${m.id} t${r.term}`);
    for (let i = r.log.firstIndex(); i < this.committedTerm.length; i++) {
      const t = this.committedTerm[i];
      if (t === undefined || t >= r.term) continue;
      if (r.log.term(i) !== t) this.violation(`leader ${m.id} of term ${r.term} lacks committed entry ${i} (term ${t}), has term ${r.log.term(i)}`);
    }
  }

  /** State machine safety (5.4.3): no two members apply different entries at one index. */
  private checkApplied(m: Member, e: Entry): void {
    const data = Buffer.from(e.data).toString('base64');
    const t = this.committedTerm[e.index];
    if (t === undefined) {
      this.committedTerm[e.index] = e.term;
      this.committedData[e.index] = data;
      for (const other of this.up()) {
        const r = other.node!.raft;
        if (r.role === 'leader' && r.term > e.term && e.index >= r.log.firstIndex() && r.log.term(e.index) !== e.term) {
          this.violation(`leader ${other.id} of term ${r.term} lacks newly committed entry ${e.index} (term ${e.term})`);
        }
      }
    } else if (t !== e.term || this.committedData[e.index] !== data) {
      this.violation(`member ${m.id} applied entry ${e.index} term ${e.term}, another member applied term ${t} with ${t === e.term ? 'other data' : 'that term'}`);
    }
  }

  /** After faults stop, one leader exists and every member of its configuration applied all it committed. */
  private checkLiveness(): void {
    const leaders = this.up().filter((m) => m.node!.raft.role === 'leader');
    if (leaders.length !== 1) {
      this.violation(`liveness: ${leaders.length} leaders after the faults stopped`);
      return;
    }
    const r = leaders[0]!.node!.raft;
    for (const id of [...r.trk.voters, ...r.trk.learners].sort((a, b) => a - b)) {
      const m = this.members.get(id);
      if (m && m.node && m.node.raft.log.applied !== r.log.committed) {
        this.violation(`liveness: member ${id} applied ${m.node.raft.log.applied}, leader ${r.id} committed ${r.log.committed}`);
      }
    }
  }

  /** Log matching (5.3): equal index and term imply identical logs up to there. */
  private checkLogMatching(full: boolean): void {
    const logs = this.up().map((m) => ({ id: m.id, log: m.node!.raft.log }));
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const la = logs[a]!.log;
        const lb = logs[b]!.log;
        const lo = Math.max(la.firstIndex(), lb.firstIndex());
        let hi = Math.min(la.lastIndex(), lb.lastIndex());
        if (!full) hi = Math.min(hi, lo + 200);
        let i = hi;
        while (i >= lo && la.term(i) !== lb.term(i)) i--;
        if (i < lo) continue;
        const ea = la.slice(lo, i + 1, Number.MAX_SAFE_INTEGER);
        const eb = lb.slice(lo, i + 1, Number.MAX_SAFE_INTEGER);
        for (let k = 0; k < ea.length; k++) {
          const x = ea[k]!;
          const y = eb[k]!;
          if (x.term !== y.term || Buffer.compare(Buffer.from(x.data), Buffer.from(y.data)) !== 0) {
            this.violation(`log matching: members ${logs[a]!.id} and ${logs[b]!.id} agree at ${i} but differ at ${x.index}`);
            return;
          }
        }
      }
    }
  }
}

export function simulate(options: SimOptions): SimResult {
  return new Simulator(options).run();
}
