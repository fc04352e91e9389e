// Wire and storage shapes of the Raft core. Plain data only: a transport serialises Message as it likes
// (JSON with base64 data is enough), a Storage writes Entry, HardState and SnapshotMeta.

/** Member ids are positive integers; 0 means "nobody" (no vote, no known leader). */
export type NodeId = number;
export const NONE: NodeId = 0;

export type EntryType = 'normal' | 'confChange';

/** One log slot. `data` is opaque to Raft; for 'confChange' it is an encoded ConfChange (see encodeConfChange). */
export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

/** What must survive a crash beside the log. Written together with the entries of the same Ready. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: NONE, commit: 0 });

export interface ConfState {
  voters: NodeId[];
  learners: NodeId[];
}

/**
 * One server at a time. 'addNode' of a current learner promotes it (the leader refuses until the learner has
 * caught up with the commit index). 'removeNode' removes a voter or a learner.
 */
export interface ConfChange {
  type: 'addNode' | 'addLearner' | 'removeNode';
  nodeId: NodeId;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  confState: ConfState;
}

/** `data` is produced and consumed by the state machine (for the server: a SQLite file's bytes or its path). */
export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export type MessageType =
  // local only: never travel over the network
  | 'MsgHup' | 'MsgBeat' | 'MsgCheckQuorum' | 'MsgUnreachable' | 'MsgSnapStatus'
  // proposals (a follower forwards them to the leader)
  | 'MsgProp'
  // elections
  | 'MsgPreVote' | 'MsgPreVoteResp' | 'MsgVote' | 'MsgVoteResp' | 'MsgTimeoutNow' | 'MsgTransferLeader'
  // replication
  | 'MsgApp' | 'MsgAppResp' | 'MsgSnap' | 'MsgHeartbeat' | 'MsgHeartbeatResp'
  // linearizable reads
  | 'MsgReadIndex' | 'MsgReadIndexResp';

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  /** Sender's term; 0 for local messages and proposals. For MsgPreVote it is the term the sender would campaign in. */
  term: number;
  /** MsgApp: term of the entry at `index`. MsgVote/MsgPreVote: term of the candidate's last entry. MsgAppResp reject: term at rejectHint. */
  logTerm: number;
  /** MsgApp: index preceding `entries`. MsgAppResp: last index the follower matched. MsgVote: candidate's last index. MsgReadIndexResp: the read index. */
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  snapshot?: Snapshot;
  /** ReadIndex request context (MsgReadIndex, MsgHeartbeat, MsgHeartbeatResp, MsgReadIndexResp), or 'transfer' on a forced vote. */
  context?: string;
}

export function message(fields: Partial<Message> & Pick<Message, 'type'>): Message {
  return { from: NONE, to: NONE, term: 0, logTerm: 0, index: 0, entries: [], commit: 0, reject: false, rejectHint: 0, ...fields };
}

export const LOCAL_MESSAGES: ReadonlySet<MessageType> = new Set(['MsgHup', 'MsgBeat', 'MsgCheckQuorum', 'MsgUnreachable', 'MsgSnapStatus']);

export type Role = 'follower' | 'preCandidate' | 'candidate' | 'leader';

/** Volatile state the driver may want to react to (leader changes start and stop leader-only controllers). */
export interface SoftState {
  lead: NodeId;
  role: Role;
}

/** The answer to a readIndex(context) call: reads are linearizable once the local applied index reaches `index`. */
export interface ReadState {
  index: number;
  context: string;
}

/** See the contract at the top of rawnode.ts. */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  readStates: ReadState[];
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  messages: Message[];
  /** True when hardState or entries must reach stable storage (fsync) before messages are sent. */
  mustSync: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return encoder.encode(JSON.stringify(cc));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  let parsed: unknown;
  try {
    parsed = JSON.parse(decoder.decode(data));
  } catch (err) {
    throw new Error(`conf change entry is not JSON: ${(err as Error).message}`);
  }
  const cc = parsed as Partial<ConfChange>;
  if (cc.type !== 'addNode' && cc.type !== 'addLearner' && cc.type !== 'removeNode') {
    throw new Error(`conf change type must be addNode, addLearner or removeNode, got ${JSON.stringify(cc.type)}`);
  }
  if (!Number.isInteger(cc.nodeId) || (cc.nodeId as number) <= 0) {
    throw new Error(`conf change nodeId must be a positive integer, got ${JSON.stringify(cc.nodeId)}`);
  }
  return { type: cc.type, nodeId: cc.nodeId as number };
}

export function isEmptyHardState(hs: HardState): boolean {
  return hs.term === 0 && hs.vote === NONE && hs.commit === 0;
}

export function hardStateEqual(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

/** Entry payload size used for batching limits. */
export function entrySize(e: Entry): number {
  return e.data.byteLength + 16;
}
