import type { Command } from '../store/types.js';
import type { Entry, Message } from '../raft/types.js';

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

/** A Message on the wire: entry data as base64; a snapshot travels separately (see transport.ts). */
export interface WireMessage extends Omit<Message, 'entries' | 'snapshot'> {
  entries: (Omit<Entry, 'data'> & { data: string })[];
  snapshot?: { meta: NonNullable<Message['snapshot']>['meta'] };
}

export function toWire(m: Message): WireMessage {
  const { snapshot, entries, ...rest } = m;
  return {
    ...rest,
    entries: entries.map((e) => ({ term: e.term, index: e.index, type: e.type, data: Buffer.from(e.data).toString('base64') })),
    ...(snapshot ? { snapshot: { meta: snapshot.meta } } : {}),
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

/** Minimal shape check of an incoming batch, so a malformed peer request is a 400, not a crash inside Raft. */
export function isWireBatch(v: unknown): v is WireMessage[] {
  return Array.isArray(v) && v.every((m) => m && typeof m === 'object'
    && typeof (m as WireMessage).type === 'string' && Number.isInteger((m as WireMessage).from) && Number.isInteger((m as WireMessage).to)
    && Number.isInteger((m as WireMessage).term) && Array.isArray((m as WireMessage).entries));
}
