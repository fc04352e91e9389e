// A synchronous test network of RawNodes over MemoryStorage: every Ready is persisted, sent and applied as the
// driver contract says, and messages are delivered in order until the cluster is quiet. Links can be cut.
import { RawNode } from '../../server/raft/rawnode.js';
import { SeededRandom } from '../../server/raft/sim/random.js';
import { MemoryStorage } from '../../server/raft/storage.js';
import { type ConfState, type Entry, type Message, type NodeId, type ReadState, decodeConfChange } from '../../server/raft/types.js';

export interface Peer {
  id: NodeId;
  node: RawNode;
  storage: MemoryStorage;
  applied: Entry[];
  readStates: ReadState[];
}

export interface NetworkOptions {
  preVote?: boolean;
  checkQuorum?: boolean;
  /** Members outside the initial configuration (they start with an empty log). */
  spares?: NodeId[];
  learners?: NodeId[];
}

export const ELECTION_TICK = 10;
const encoder = new TextEncoder();

export function bytes(s: string): Uint8Array {
  return encoder.encode(s);
}

export function text(e: Entry): string {
  return new TextDecoder().decode(e.data);
}

export class TestNetwork {
  readonly peers = new Map<NodeId, Peer>();
  private cut = new Set<string>();
  /** Every message delivered, for assertions about what was said. */
  readonly delivered: Message[] = [];
  /** Messages to drop by type (e.g. to hold back MsgApp). */
  dropTypes = new Set<Message['type']>();

  constructor(voters: NodeId[], private readonly opts: NetworkOptions = {}) {
    const confState: ConfState = { voters, learners: opts.learners ?? [] };
    for (const id of [...voters, ...(opts.learners ?? [])]) {
      const storage = new MemoryStorage();
      storage.save({ snapshot: { meta: { index: 1, term: 1, confState }, data: new Uint8Array() }, entries: [], hardState: { term: 1, vote: 0, commit: 1 } });
      this.add(id, storage);
    }
    for (const id of opts.spares ?? []) this.add(id, new MemoryStorage());
  }

  private add(id: NodeId, storage: MemoryStorage): void {
    const rng = new SeededRandom(id);
    const node = new RawNode({
      id, storage, electionTick: ELECTION_TICK, heartbeatTick: 1, randomInt: (n) => rng.int(n),
      preVote: this.opts.preVote ?? true, checkQuorum: this.opts.checkQuorum ?? true, maxSizePerMsg: 1024, maxInflightMsgs: 8,
    });
    this.peers.set(id, { id, node, storage, applied: [], readStates: [] });
  }

  /** Restart a member from its storage (what a crash followed by a reboot looks like). */
  restart(id: NodeId): void {
    const p = this.peer(id);
    this.add(id, p.storage);
  }

  peer(id: NodeId): Peer {
    const p = this.peers.get(id);
    if (!p) throw new Error(`no member ${id} in the test network`);
    return p;
  }

  node(id: NodeId): RawNode {
    return this.peer(id).node;
  }

  isolate(id: NodeId): void {
    for (const other of this.peers.keys()) if (other !== id) this.cutLink(id, other);
  }

  cutLink(a: NodeId, b: NodeId): void {
    this.cut.add(`${a}-${b}`).add(`${b}-${a}`);
  }

  heal(): void {
    this.cut.clear();
  }

  leader(): NodeId | undefined {
    return [...this.peers.values()].find((p) => p.node.raft.role === 'leader')?.id;
  }

  campaign(id: NodeId): void {
    this.node(id).campaign();
    this.settle();
  }

  tick(id: NodeId, n: number): void {
    for (let i = 0; i < n; i++) {
      this.node(id).tick();
      this.settle();
    }
  }

  tickAll(n: number): void {
    for (let i = 0; i < n; i++) {
      for (const p of this.peers.values()) p.node.tick();
      this.settle();
    }
  }

  propose(id: NodeId, data: string): void {
    this.node(id).propose(bytes(data));
    this.settle();
  }

  /** Process Readies and deliver messages until nothing moves. */
  settle(): void {
    for (let round = 0; round < 10_000; round++) {
      const out: Message[] = [];
      for (const p of this.peers.values()) {
        while (p.node.hasReady()) {
          const rd = p.node.ready();
          p.storage.save({ entries: rd.entries, ...(rd.hardState ? { hardState: rd.hardState } : {}), ...(rd.snapshot ? { snapshot: rd.snapshot } : {}) });
          out.push(...rd.messages);
          for (const e of rd.committedEntries) {
            if (e.type === 'confChange') p.node.applyConfChange(decodeConfChange(e.data));
            p.applied.push(e);
          }
          p.readStates.push(...rd.readStates);
          p.node.advance(rd);
        }
      }
      if (out.length === 0) return;
      for (const m of out) {
        if (this.cut.has(`${m.from}-${m.to}`) || this.dropTypes.has(m.type)) continue;
        const to = this.peers.get(m.to);
        if (!to) continue;
        this.delivered.push(m);
        to.node.step(m);
      }
    }
    throw new Error('test network did not settle');
  }
}
