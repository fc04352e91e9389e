import type { Command } from '../store/types.js';
import type { Entry, Message, MessageType } from '../raft/types.js';
import { SHA256_HEX, type SnapshotFile } from './snapshot-file.js';

/** What a normal Raft entry carries: one state-machine command and who proposed it (to answer the caller). */
export interface ProposalEnvelope {
  /** Unique per proposal; the proposing member resolves its waiter with the apply result of this id. */
  id: string;
  command: Command;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodeProposal(p: ProposalEnvelope): Uint8Array {
  return encoder.encode(JSON.stringify(p));
}

export function decodeProposal(data: Uint8Array): ProposalEnvelope {
  return JSON.parse(decoder.decode(data)) as ProposalEnvelope;
}

/**
 * A Message on the wire: entry data as base64; a snapshot's file travels separately (see transport.ts), with
 * its meta and its SHA-256.
 */
export interface WireMessage extends Omit<Message, 'entries' | 'snapshot'> {
  entries: (Omit<Entry, 'data'> & { data: string })[];
  snapshot?: { meta: NonNullable<Message['snapshot']>['meta'] } & Partial<Pick<SnapshotFile, 'sha256'>>;
}

export function toWire(m: Message, snapshotFile?: SnapshotFile): WireMessage {
  const { snapshot, entries, ...rest } = m;
  return {
    ...rest,
    entries: entries.map((e) => ({ term: e.term, index: e.index, type: e.type, data: Buffer.from(e.data).toString('base64') })),
    ...(snapshot ? { snapshot: { meta: snapshot.meta, ...(snapshotFile ? { sha256: snapshotFile.sha256 } : {}) } } : {}),
  };
}

/** Decodes a wire message; `snapshotData` is what the receiver stored for a MsgSnap (the local snapshot file path). */
export function fromWire(w: WireMessage, snapshotData?: Uint8Array): Message {
  const { snapshot, entries, ...rest } = w;
  return {
    ...rest,
    entries: entries.map((e) => ({ term: e.term, index: e.index, type: e.type, data: new Uint8Array(Buffer.from(e.data, 'base64')) })),
    ...(snapshot ? { snapshot: { meta: snapshot.meta, data: snapshotData ?? new Uint8Array() } } : {}),
  };
}

/** The message types that travel between members (every MessageType but the LOCAL_MESSAGES). */
const NETWORK_MESSAGES: ReadonlySet<string> = new Set<MessageType>([
  'MsgProp', 'MsgPreVote', 'MsgPreVoteResp', 'MsgVote', 'MsgVoteResp', 'MsgTimeoutNow', 'MsgTransferLeader',
  'MsgApp', 'MsgAppResp', 'MsgSnap', 'MsgHeartbeat', 'MsgHeartbeatResp', 'MsgReadIndex', 'MsgReadIndexResp',
]);
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;
/** Longest ReadIndex context accepted (members make "<id>-<sequence>" or "transfer"). */
const MAX_CONTEXT = 128;

/** Thrown for a peer value that is not what the protocol allows; the route answers 400 with its message. */
export class WireError extends Error {}

const isIndex = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) >= 0;
const isMemberId = (v: unknown): v is number => Number.isSafeInteger(v) && (v as number) > 0;

/**
 * Every field of a peer's batch checked before anything of it is used: message types that may travel, member
 * ids positive and every index, term and commit a non-negative safe integer, entries well formed, a snapshot's
 * meta and hash sound. Throws WireError naming the first bad field.
 */
export function parseWireBatch(v: unknown): WireMessage[] {
  if (!Array.isArray(v)) throw new WireError('expected a JSON array of Raft messages');
  return v.map((m: unknown, i) => parseWireMessage(m, `[${i}]`));
}

export function parseWireMessage(v: unknown, at = ''): WireMessage {
  const bad = (field: string, want: string): never => { throw new WireError(`message${at}.${field} must be ${want}`); };
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new WireError(`message${at} must be an object`);
  const m = v as Record<string, unknown>;
  if (typeof m.type !== 'string' || !NETWORK_MESSAGES.has(m.type)) bad('type', `one of ${[...NETWORK_MESSAGES].join(', ')}`);
  for (const f of ['from', 'to'] as const) if (!isMemberId(m[f])) bad(f, 'a positive integer (a member id)');
  for (const f of ['term', 'logTerm', 'index', 'commit', 'rejectHint'] as const) if (!isIndex(m[f])) bad(f, 'a non-negative safe integer');
  if (typeof m.reject !== 'boolean') bad('reject', 'a boolean');
  if (m.context !== undefined && (typeof m.context !== 'string' || m.context.length > MAX_CONTEXT)) bad('context', `a string of at most ${MAX_CONTEXT} characters`);
  if (!Array.isArray(m.entries)) bad('entries', 'an array');
  (m.entries as unknown[]).forEach((e, j) => {
    const entry = e as Record<string, unknown> | null;
    if (!entry || typeof entry !== 'object') bad(`entries[${j}]`, 'an object');
    if (!isIndex(entry!.term)) bad(`entries[${j}].term`, 'a non-negative safe integer');
    if (!isIndex(entry!.index)) bad(`entries[${j}].index`, 'a non-negative safe integer (0 in a proposal)');
    if (entry!.type !== 'normal' && entry!.type !== 'confChange') bad(`entries[${j}].type`, '"normal" or "confChange"');
    if (typeof entry!.data !== 'string' || !BASE64.test(entry!.data)) bad(`entries[${j}].data`, 'base64');
  });
  if (m.snapshot !== undefined) {
    const s = m.snapshot as Record<string, unknown> | null;
    if (m.type !== 'MsgSnap' || !s || typeof s !== 'object') bad('snapshot', 'an object, on a MsgSnap only');
    const meta = s!.meta as Record<string, unknown> | null;
    if (!meta || typeof meta !== 'object') bad('snapshot.meta', 'an object');
    if (!isIndex(meta!.index)) bad('snapshot.meta.index', 'a non-negative safe integer');
    if (!isIndex(meta!.term)) bad('snapshot.meta.term', 'a non-negative safe integer');
    const cs = meta!.confState as Record<string, unknown> | null;
    for (const list of ['voters', 'learners'] as const) {
      if (!cs || !Array.isArray(cs[list]) || !(cs[list] as unknown[]).every(isMemberId)) bad(`snapshot.meta.confState.${list}`, 'an array of member ids');
    }
    if (s!.sha256 !== undefined && (typeof s!.sha256 !== 'string' || !SHA256_HEX.test(s!.sha256))) bad('snapshot.sha256', '64 hex digits');
  }
  return m as unknown as WireMessage;
}
