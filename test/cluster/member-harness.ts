// RaftMembers (server/cluster/member.ts) in one process: each over a real SQLite state machine and a real SQLite
// Raft log in a temp dir, wired by an in-memory network whose messages a test can drop (`drop`). The members
// start as voters of one cluster (the same committed conf-change entries in every log) and carry the member
// record removal of server/cluster/cluster.ts on removeNode. Call close() in a finally.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RaftMember } from '../../server/cluster/member.js';
import { membershipCommand } from '../../server/cluster/cluster.js';
import { MEMBERS_RESOURCE } from '../../server/objects/service.js';
import { SqliteStorage } from '../../server/raft/sqlite-storage.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { encodeConfChange, type Message, type NodeId } from '../../server/raft/types.js';
import { eventually } from '../support/eventually.js';

export interface HarnessMember {
  id: NodeId;
  member: RaftMember;
  store: SqliteStore;
  /** Aborts the member's run(); `running` resolves once it has ended. */
  stop: AbortController;
  running: Promise<void>;
}

export class MemberHarness {
  readonly members = new Map<NodeId, HarnessMember>();
  /** Messages for which this returns true are lost (a cut cable, a dead peer). */
  drop: (m: Message) => boolean = () => false;
  /** Every message sent, in order, after `drop` decided. */
  readonly sent: { m: Message; dropped: boolean }[] = [];
  readonly #dir = mkdtempSync(join(tmpdir(), 'flotilla-members-'));
  readonly #logs: SqliteStorage[] = [];

  /** Starts voters `ids`; they hold no member records until writeMemberRecords. */
  constructor(ids: NodeId[], opts: { tickMs?: number; proposalTimeoutMs?: number } = {}) {
    const bootstrap = ids.map((id, i) => ({ term: 1, index: i + 1, type: 'confChange' as const, data: encodeConfChange({ type: 'addNode', nodeId: id }) }));
    for (const id of ids) {
      const store = new SqliteStore({ path: join(this.#dir, `state-${id}.db`), synchronous: 'NORMAL' });
      const logStore = new SqliteStorage(join(this.#dir, `raft-${id}.db`));
      this.#logs.push(logStore);
      logStore.save({ entries: bootstrap, hardState: { term: 1, vote: 0, commit: bootstrap.length } });
      const member = new RaftMember({
        id, store, logStore, randomInt: (n) => Math.floor(Math.random() * n), tickMs: opts.tickMs ?? 20,
        proposalTimeoutMs: opts.proposalTimeoutMs ?? 20_000,
        send: (msgs) => { for (const m of msgs) this.#deliver(m); },
        makeSnapshot: () => { throw new Error('the harness takes no snapshots'); },
        restoreSnapshot: () => { throw new Error('the harness takes no snapshots'); },
        confChangeCommand: membershipCommand,
      });
      const stop = new AbortController();
      this.members.set(id, { id, member, store, stop, running: member.run(stop.signal) });
    }
  }

  get(id: NodeId): HarnessMember {
    const m = this.members.get(id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  /** Waits for a leader that every running member agrees on, and returns it. */
  async leader(among = [...this.members.keys()]): Promise<HarnessMember> {
    const id = await eventually(`one leader among ${among.join(', ')}`, () => {
      const leaders = new Set(among.map((i) => this.get(i).member.leader));
      const [lead] = leaders;
      return leaders.size === 1 && lead && among.includes(lead) && this.get(lead).member.isLeader ? lead : undefined;
    }, 10_000);
    return this.get(id);
  }

  /** Writes a member record for each id through the leader (what joining does in ClusterMember). */
  async writeMemberRecords(ids: NodeId[]): Promise<void> {
    const leader = await this.leader();
    for (const id of ids) {
      const r = await leader.member.propose({ op: 'create', resource: MEMBERS_RESOURCE, uid: `uid-${id}`, now: new Date().toISOString(), object: { apiVersion: 'cluster.flotilla.io/v1', kind: 'Member', metadata: { name: String(id) }, spec: { peerUrl: `http://member-${id}` } } });
      if (!r.ok) throw new Error(`member record ${id}: ${r.failure.message}`);
    }
  }

  hasRecord(on: NodeId, id: NodeId): boolean {
    return this.get(on).store.get(MEMBERS_RESOURCE, '', String(id)) !== undefined;
  }

  voters(on: NodeId): NodeId[] {
    return [...this.get(on).member.node.status().confState.voters].sort((a, b) => a - b);
  }

  async close(): Promise<void> {
    for (const m of this.members.values()) m.stop.abort();
    await Promise.all([...this.members.values()].map((m) => m.running));
    for (const m of this.members.values()) m.store.close();
    for (const l of this.#logs) l.close();
    rmSync(this.#dir, { recursive: true, force: true });
  }

  #deliver(m: Message): void {
    const dropped = this.drop(m);
    this.sent.push({ m, dropped });
    const to = this.members.get(m.to);
    if (dropped || !to || to.stop.signal.aborted) return;
    const copy = structuredClone(m);
    setImmediate(() => { if (!to.stop.signal.aborted) to.member.receive([copy]); });
  }
}
