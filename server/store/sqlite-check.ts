// Start-up checks of a SQLite database in WAL mode, made before and right after it is opened: SQLite itself
// treats a damaged WAL frame as the end of the log and silently drops every transaction after it, and its
// `quick_check` (structure) says nothing about the content of rows. What these checks find is reported as a
// DataCorruptionError naming the file, never repaired behind the caller's back.
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import type { Database } from 'better-sqlite3';

/** The CRC-32 a row is stored with: its fields in order, then its blob (if any). */
export function rowCrc(fields: (number | string)[], blob?: Uint8Array): number {
  const head = crc32(fields.join('\u0000'));
  // (zlib.crc32 of some empty buffers answers 0 whatever the initial value: they are left out.)
  return blob && blob.byteLength > 0 ? crc32(blob, head) : head;
}

/** Adds a crc column to those of `tables` made before checksums existed; returns the ones that got it. */
export function addCrcColumns(db: Database, tables: readonly string[]): string[] {
  const missing = tables.filter((t) => !(db.pragma(`table_info(${t})`) as { name: string }[]).some((c) => c.name === 'crc'));
  for (const t of missing) db.exec(`ALTER TABLE ${t} ADD COLUMN crc INTEGER`);
  return missing;
}

/**
 * Damaged or missing data found in `file`. `wayOut` says what the operator can do; the server refuses to start
 * with this message rather than serve from what is left.
 */
export class DataCorruptionError extends Error {
  constructor(readonly file: string, readonly what: string, readonly wayOut: string) {
    super(`${file}: ${what}. ${wayOut}`);
  }
}

const WAL_HEADER = 32;
const FRAME_HEADER = 24;

/** SQLite's WAL checksum (https://www.sqlite.org/fileformat2.html#walcksm), continued from `s`. */
function walChecksum(buf: Buffer, bigEndian: boolean, s: [number, number]): [number, number] {
  let [s0, s1] = s;
  for (let i = 0; i + 8 <= buf.length; i += 8) {
    const x0 = bigEndian ? buf.readUInt32BE(i) : buf.readUInt32LE(i);
    const x1 = bigEndian ? buf.readUInt32BE(i + 4) : buf.readUInt32LE(i + 4);
    s0 = (s0 + x0 + s1) >>> 0;
    s1 = (s1 + x1 + s0) >>> 0;
  }
  return [s0, s1];
}

/**
 * Looks for committed transactions that SQLite would drop from `<dbPath>-wal`: a frame of the current WAL
 * generation (its salts match the header) that fails its checksum while later frames, each intact against the
 * checksum stored before it, hold at least two commits. A crash tears at most the transactions still being
 * written, which are the last ones and were never acknowledged as durable (synchronous FULL syncs each commit),
 * so one torn tail transaction is what a power cut may leave and is not reported; intact commits behind a bad
 * frame mean bytes changed after they were written. A damaged header with frames behind it is reported too
 * (SQLite would ignore the whole WAL). Returns what is wrong, or undefined.
 */
export function walDamage(dbPath: string): string | undefined {
  const walPath = `${dbPath}-wal`;
  if (!existsSync(walPath)) return undefined;
  const size = statSync(walPath).size;
  if (size < WAL_HEADER) return undefined;
  const fd = openSync(walPath, 'r');
  try {
    const header = Buffer.alloc(WAL_HEADER);
    readSync(fd, header, 0, WAL_HEADER, 0);
    const magic = header.readUInt32BE(0);
    const pageSize = header.readUInt32BE(8);
    const frameSize = FRAME_HEADER + pageSize;
    const headerOk = (magic === 0x377f0682 || magic === 0x377f0683) && pageSize >= 512 && pageSize <= 65536 && (pageSize & (pageSize - 1)) === 0;
    const bigEndian = magic === 0x377f0683;
    let sum = headerOk ? walChecksum(header.subarray(0, 24), bigEndian, [0, 0]) : [0, 0] as [number, number];
    if (!headerOk || sum[0] !== header.readUInt32BE(24) || sum[1] !== header.readUInt32BE(28)) {
      return size > WAL_HEADER + FRAME_HEADER ? `the WAL header of ${walPath} is damaged, and SQLite would ignore the ${size} bytes of WAL behind it` : undefined;
    }
    const salt1 = header.readUInt32BE(16);
    const salt2 = header.readUInt32BE(20);
    const frame = Buffer.alloc(frameSize);
    let damagedAt: number | undefined;
    let commitsAfter = 0;
    for (let n = 0, off = WAL_HEADER; off + frameSize <= size; n++, off += frameSize) {
      readSync(fd, frame, 0, frameSize, off);
      // Frames of an older generation (other salts) may follow the current ones: they count as the end, and
      // no frame of the current generation can come after them unless bytes changed.
      const current = frame.readUInt32BE(8) === salt1 && frame.readUInt32BE(12) === salt2;
      const stored: [number, number] = [frame.readUInt32BE(16), frame.readUInt32BE(20)];
      const computed = walChecksum(frame.subarray(FRAME_HEADER), bigEndian, walChecksum(frame.subarray(0, 8), bigEndian, sum));
      if (!current || computed[0] !== stored[0] || computed[1] !== stored[1]) damagedAt ??= n + 1;
      else if (damagedAt !== undefined && frame.readUInt32BE(4) !== 0) commitsAfter++;
      // Each frame's checksum continues from the one stored in the frame before it.
      sum = stored;
    }
    if (damagedAt !== undefined && commitsAfter >= 2) {
      return `frame ${damagedAt} of ${walPath} is damaged and ${commitsAfter} committed transactions follow it, which SQLite would drop without a word`;
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** `PRAGMA quick_check` of an open database: undefined when it answers ok, else what it found. */
export function quickCheckFailure(db: Database): string | undefined {
  let found: string[];
  try {
    found = (db.pragma('quick_check') as { quick_check: string }[]).map((r) => r.quick_check);
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  return found.length === 1 && found[0] === 'ok' ? undefined : found.slice(0, 5).join('; ');
}
