// The DNS message format on the server's hot path (RFC 1035 4, EDNS0 RFC 6891), without an object per record: a
// decoder for queries as resolvers send them (one question, an optional OPT record), a writer of answer records
// with name compression (RFC 1035 4.1.4), and the assembly of a reply from the query's own question bytes (so the
// name goes back exactly as asked) and a body of records encoded beforehand.
//
// Contracts:
// - Names are handled as lower-case dotted strings without the trailing dot ('' is the root); DNS compares names
//   case-insensitively in ASCII only (RFC 4343), so only A-Z are folded.
// - A body encoded for a question of a given name at offset 12 is valid in the reply to any question of that
//   name, whatever its letter case and type: the question has the same length, so every compression pointer still
//   lands on the same labels.
import type { Answer } from 'dns-packet';

export const TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, PTR: 12, TXT: 16, AAAA: 28, SRV: 33, OPT: 41, ANY: 255 } as const;
export const FLAG = { QR: 0x8000, AA: 0x0400, TC: 0x0200, RD: 0x0100, RA: 0x0080 } as const;
export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;
export type RcodeName = keyof typeof RCODE;

export const HEADER_BYTES = 12;
/** RFC 1035 2.3.4: a name is at most 255 octets on the wire, a label at most 63. */
const MAX_NAME_BYTES = 255;
const MAX_LABEL = 63;
/** The UDP payload size this server advertises in its OPT record, and the most it sends to any client. */
export const EDNS_MAX = 4096;
/** UDP answers to clients without EDNS0 (RFC 1035 4.2.1). */
export const UDP_LIMIT = 512;
const OPT_BYTES = 11;
/** RFC 6891 6.1.3: BADVERS is extended RCODE 16, whose upper 8 bits (1) go in the OPT record. */
const BADVERS_HIGH_BITS = 1;

export interface Query {
  id: number;
  flags: number;
  /** The question's name, lower case, dotted ('' when FORMERR left it unread). */
  name: string;
  /** A label of the name holds a '.' byte: its dotted form would stand for another name, so no zone holds it. */
  dotInLabel: boolean;
  type: number;
  /** msg[12, questionEnd) is the question as asked (name, type, class); 12 when none is echoed. */
  questionEnd: number;
  /** From the query's OPT record: the client's UDP payload size and EDNS version. */
  edns?: { udpSize: number; version: number };
  /** Why the query cannot be answered: FORMERR (the question is not echoed), NOTIMP (an opcode other than QUERY). */
  error?: 'FORMERR' | 'NOTIMP';
}

const folded = Buffer.alloc(MAX_NAME_BYTES);

/** The query in `msg`; undefined for what gets no reply at all (shorter than a header, or a response). */
export function decodeQuery(msg: Buffer): Query | undefined {
  if (msg.length < HEADER_BYTES) return undefined;
  const flags = msg.readUInt16BE(2);
  if (flags & FLAG.QR) return undefined;
  const q: Query = { id: msg.readUInt16BE(0), flags, name: '', dotInLabel: false, type: 0, questionEnd: HEADER_BYTES };
  const formerr = (): Query => ({ ...q, name: '', type: 0, questionEnd: HEADER_BYTES, error: 'FORMERR' });
  if (msg.readUInt16BE(4) !== 1) return formerr();
  let i = HEADER_BYTES;
  let n = 0;
  for (;;) {
    if (i >= msg.length) return formerr();
    const len = msg[i++]!;
    if (len === 0) break;
    // A compression pointer (or a reserved label type) has nothing before it to point at in a question.
    if (len > MAX_LABEL || i + len > msg.length || i + len - HEADER_BYTES + 1 > MAX_NAME_BYTES) return formerr();
    if (n > 0) folded[n++] = 0x2e;
    for (let k = i; k < i + len; k++) {
      const c = msg[k]!;
      if (c === 0x2e) q.dotInLabel = true;
      folded[n++] = c >= 0x41 && c <= 0x5a ? c | 0x20 : c;
    }
    i += len;
  }
  if (i + 4 > msg.length) return formerr();
  q.name = folded.toString('latin1', 0, n);
  q.type = msg.readUInt16BE(i);
  q.questionEnd = i + 4;
  if (((flags >> 11) & 0xf) !== 0) return { ...q, error: 'NOTIMP' };
  // A query carries no answer or authority records, but they are skipped over like the additional ones, in
  // which one OPT record (owner: the root) may be.
  const before = msg.readUInt16BE(6) + msg.readUInt16BE(8);
  const records = before + msg.readUInt16BE(10);
  let at = q.questionEnd;
  for (let r = 0; r < records; r++) {
    const owner = at;
    at = skipName(msg, at);
    if (at < 0 || at + 10 > msg.length) return formerr();
    const end = at + 10 + msg.readUInt16BE(at + 8);
    if (end > msg.length) return formerr();
    if (msg.readUInt16BE(at) === TYPE.OPT) {
      if (q.edns || r < before || msg[owner] !== 0) return formerr();
      q.edns = { udpSize: msg.readUInt16BE(at + 2), version: msg[at + 5]! };
    }
    at = end;
  }
  return q;
}

/** The offset after the name at `at` (labels, ending in 0 or a pointer); -1 when it runs past the message. */
function skipName(msg: Buffer, at: number): number {
  while (at < msg.length) {
    const len = msg[at]!;
    if (len === 0) return at + 1;
    if ((len & 0xc0) === 0xc0) return at + 2 <= msg.length ? at + 2 : -1;
    if (len > MAX_LABEL) return -1;
    at += len + 1;
  }
  return -1;
}

/** The 8 groups of an IPv6 address, each 4 hex digits; undefined when it is not one. */
export function ipv6Groups(ip: string): string[] | undefined {
  if (!/^[0-9a-f:]+$/i.test(ip) || !ip.includes(':')) return undefined;
  const halves = ip.split('::');
  if (halves.length > 2) return undefined;
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves.length === 2 && halves[1] ? halves[1].split(':') : [];
  const fill = halves.length === 2 ? 8 - head.length - tail.length : 0;
  const groups = [...head, ...Array<string>(Math.max(fill, 0)).fill('0'), ...tail];
  if (groups.length !== 8 || groups.some((g) => g.length === 0 || g.length > 4)) return undefined;
  return groups.map((g) => g.toLowerCase().padStart(4, '0'));
}

/** Records encoded for one place in a message: the bytes that follow the question, and how many of each section. */
export interface Body {
  /** AA and the RCODE of the header. */
  flags: number;
  answers: number;
  authorities: number;
  additionals: number;
  bytes: Buffer;
}

export interface Sections {
  answers: readonly Answer[];
  authorities: readonly Answer[];
  additionals: readonly Answer[];
}

const scratch = Buffer.alloc(65_535);

/**
 * Writes records into a message from offset `start` on, compressing every name against the names already
 * written and the `known` ones (name, offset) before `start`. Owner names and the names inside CNAME, PTR, NS and
 * SOA data are compressed; an SRV target is not (RFC 2782), nor used as a target of compression.
 */
class Writer {
  private pos = 0;
  private readonly names = new Map<string, number>();
  constructor(private readonly start: number, known: ReadonlyArray<readonly [string, number]>) {
    for (const [name, offset] of known) this.learn(name, offset);
  }

  /** Registers `name` (as decodeQuery gives it: one character per byte) and its suffixes as written at `offset`. */
  private learn(name: string, offset: number): void {
    let rest = name;
    while (rest !== '' && offset < 0x4000) {
      if (!this.names.has(rest)) this.names.set(rest, offset);
      const dot = rest.indexOf('.');
      offset += (dot < 0 ? rest.length : dot) + 1;
      rest = dot < 0 ? '' : rest.slice(dot + 1);
    }
  }

  private u8(v: number): void { scratch[this.pos++] = v; }
  private u16(v: number): void { scratch.writeUInt16BE(v, this.pos); this.pos += 2; }
  private u32(v: number): void { scratch.writeUInt32BE(v >>> 0, this.pos); this.pos += 4; }

  private name(name: string, compress: boolean): void {
    let rest = name.endsWith('.') ? name.slice(0, -1).toLowerCase() : name.toLowerCase();
    while (rest !== '') {
      const at = compress ? this.names.get(rest) : undefined;
      if (at !== undefined) return this.u16(0xc000 | at);
      const offset = this.start + this.pos;
      if (compress && offset < 0x4000) this.names.set(rest, offset);
      const dot = rest.indexOf('.');
      const label = dot < 0 ? rest : rest.slice(0, dot);
      const len = scratch.write(label, this.pos + 1, 'utf8');
      if (len === 0 || len > MAX_LABEL) throw new Error(`cannot encode the name "${name}": label "${label}" has ${len} bytes`);
      scratch[this.pos] = len;
      this.pos += len + 1;
      rest = dot < 0 ? '' : rest.slice(dot + 1);
    }
    this.u8(0);
  }

  record(rr: Answer): void {
    this.name(rr.name, true);
    const type = TYPE[rr.type as keyof typeof TYPE];
    if (type === undefined) throw new Error(`cannot encode a ${rr.type} record`);
    this.u16(type);
    this.u16(1);
    this.u32('ttl' in rr ? rr.ttl ?? 0 : 0);
    const lengthAt = this.pos;
    this.pos += 2;
    switch (rr.type) {
      case 'A':
        for (const octet of rr.data.split('.')) this.u8(Number(octet));
        break;
      case 'AAAA':
        for (const group of ipv6Groups(rr.data) ?? []) this.u16(parseInt(group, 16));
        break;
      case 'CNAME': case 'PTR': case 'NS':
        this.name(rr.data, true);
        break;
      case 'TXT':
        for (const s of Array.isArray(rr.data) ? rr.data : [rr.data]) {
          const bytes = Buffer.from(s);
          this.u8(bytes.length);
          bytes.copy(scratch, this.pos);
          this.pos += bytes.length;
        }
        break;
      case 'SOA':
        this.name(rr.data.mname, true);
        this.name(rr.data.rname, true);
        for (const v of [rr.data.serial ?? 0, rr.data.refresh ?? 0, rr.data.retry ?? 0, rr.data.expire ?? 0, rr.data.minimum ?? 0]) this.u32(v);
        break;
      case 'SRV':
        this.u16(rr.data.priority ?? 0);
        this.u16(rr.data.weight ?? 0);
        this.u16(rr.data.port);
        this.name(rr.data.target, false);
        break;
      default:
        throw new Error(`cannot encode a ${rr.type} record`);
    }
    scratch.writeUInt16BE(this.pos - lengthAt - 2, lengthAt);
  }

  bytes(): Buffer {
    return Buffer.from(scratch.subarray(0, this.pos));
  }
}

/**
 * The records of `sections` encoded to follow, from offset `start` on, a question; `known` are names already in
 * the message and their offsets (the question's name at 12, or only the zone's name within it).
 */
export function encodeBody(sections: Sections, flags: number, start: number, known: ReadonlyArray<readonly [string, number]>): Body {
  const w = new Writer(start, known);
  for (const rr of sections.answers) w.record(rr);
  for (const rr of sections.authorities) w.record(rr);
  for (const rr of sections.additionals) w.record(rr);
  return { flags, answers: sections.answers.length, authorities: sections.authorities.length, additionals: sections.additionals.length, bytes: w.bytes() };
}

/** The bytes a UDP answer to `q` may have: 512, or the client's EDNS0 payload size up to EDNS_MAX. */
export function udpLimit(q: Query): number {
  return q.edns ? Math.min(Math.max(q.edns.udpSize, UDP_LIMIT), EDNS_MAX) : UDP_LIMIT;
}

/**
 * The reply to `q` (read from `msg`): the header (the query's id and RD, QR and RA set, `flags` for AA and the
 * RCODE), the question as asked, `body`, and an OPT record when the query had one. Over `limit` bytes it is cut
 * to header, question and OPT with TC set (RFC 2181 9), and the client asks again over TCP.
 */
export function assemble(msg: Buffer, q: Query, body: Body | undefined, limit: number, extendedRcode = 0): Buffer {
  const opt = q.edns !== undefined;
  const bodyBytes = body ? body.bytes.length : 0;
  const truncated = q.questionEnd + bodyBytes + (opt ? OPT_BYTES : 0) > limit;
  const keep = truncated ? 0 : bodyBytes;
  const out = Buffer.allocUnsafe(q.questionEnd + keep + (opt ? OPT_BYTES : 0));
  out.writeUInt16BE(q.id, 0);
  out.writeUInt16BE(FLAG.QR | FLAG.RA | (q.flags & (FLAG.RD | 0x7800)) | (body?.flags ?? 0) | (truncated ? FLAG.TC : 0), 2);
  out.writeUInt16BE(q.questionEnd > HEADER_BYTES ? 1 : 0, 4);
  out.writeUInt16BE(truncated || !body ? 0 : body.answers, 6);
  out.writeUInt16BE(truncated || !body ? 0 : body.authorities, 8);
  out.writeUInt16BE((truncated || !body ? 0 : body.additionals) + (opt ? 1 : 0), 10);
  msg.copy(out, HEADER_BYTES, HEADER_BYTES, q.questionEnd);
  if (keep > 0) body!.bytes.copy(out, q.questionEnd);
  if (opt) writeOpt(out, q.questionEnd + keep, extendedRcode);
  return out;
}

/** An answer with no records: `rcode` for `q` (the question echoed unless FORMERR), with OPT when the query had one. */
export function errorReply(msg: Buffer, q: Query, rcode: RcodeName): Buffer {
  return assemble(msg, q, { flags: RCODE[rcode], answers: 0, authorities: 0, additionals: 0, bytes: Buffer.alloc(0) }, Infinity);
}

/** RFC 6891 6.1.3: the answer to an EDNS version other than 0 (BADVERS, in the OPT record, which says version 0). */
export function badVersionReply(msg: Buffer, q: Query): Buffer {
  return assemble(msg, q, undefined, Infinity, BADVERS_HIGH_BITS);
}

function writeOpt(out: Buffer, at: number, extendedRcode: number): void {
  out[at] = 0;
  out.writeUInt16BE(TYPE.OPT, at + 1);
  out.writeUInt16BE(EDNS_MAX, at + 3);
  out[at + 5] = extendedRcode;
  out[at + 6] = 0;
  out.writeUInt16BE(0, at + 7);
  out.writeUInt16BE(0, at + 9);
}

/**
 * A reply that came from elsewhere (an upstream) as it may go back over UDP to `q`'s client: whole when it fits
 * `limit`, else cut to header (its flags, TC set), the question as asked and OPT.
 */
export function fitReply(reply: Buffer, msg: Buffer, q: Query, limit: number): Buffer {
  if (reply.length <= limit) return reply;
  const cut = assemble(msg, q, undefined, Infinity);
  cut.writeUInt16BE(reply.readUInt16BE(2) | FLAG.TC, 2);
  return cut;
}
