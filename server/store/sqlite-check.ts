// Start-up checks of a SQLite database in WAL mode, made before and right after it is opened: SQLite itself
// treats a damaged WAL frame as the end of the log and silently drops every transaction after it, and its
// `quick_check` (structure) says nothing about the content of rows. What these checks find is reported as a
// DataCorruptionError naming the file, never repaired behind the caller's back.
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { crc32 } from 'node:zlib';
import { endianness, uptime } from 'node:os';
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

/** What the WAL index (`-shm`) of the current boot says: the last committed frame, and how many were checkpointed. */
interface WalIndex { mxFrame: number; nBackfill: number; salts: Buffer }

/**
 * The header of `<dbPath>-shm` when it can be trusted: written since the machine booted (within one boot the
 * page cache is what every process sees, so SIGKILL loses nothing of it; after a power cut it may be stale),
 * its two copies equal and their checksum right. Else undefined.
 */
function walIndex(dbPath: string): WalIndex | undefined {
  const shmPath = `${dbPath}-shm`;
  if (!existsSync(shmPath)) return undefined;
  const st = statSync(shmPath);
  if (st.size < 136 || st.mtimeMs < Date.now() - uptime() * 1000) return undefined;
  const buf = Buffer.alloc(136);
  const fd = openSync(shmPath, 'r');
  try {
    readSync(fd, buf, 0, 136, 0);
  } finally {
    closeSync(fd);
  }
  const le = endianness() === 'LE';
  const u32 = (off: number) => (le ? buf.readUInt32LE(off) : buf.readUInt32BE(off));
  if (!buf.subarray(0, 48).equals(buf.subarray(48, 96)) || u32(0) !== 3007000 || buf[12] !== 1) return undefined;
  const [c0, c1] = walChecksum(buf.subarray(0, 40), !le, [0, 0]);
  if (c0 !== u32(40) || c1 !== u32(44)) return undefined;
  return { mxFrame: u32(16), nBackfill: u32(96), salts: Buffer.from(buf.subarray(32, 40)) };
}

/**
 * Looks for committed transactions that SQLite would drop from `<dbPath>-wal` without a word (it takes the
 * first damaged frame for the end of the log, and a WAL that is gone or shorter for a shorter log):
 * - a damaged header with frames behind it (SQLite would ignore the whole WAL);
 * - a frame of the current generation (its salts match the header) that fails its checksum while later frames,
 *   each intact against the checksum stored before it, hold at least two commits. A crash tears at most the
 *   transactions still being written, the last ones, never acknowledged as durable; intact commits behind a
 *   bad frame mean bytes changed after they were written;
 * - fewer intact committed frames than the WAL index of this boot says were committed (walIndex): a WAL cut
 *   short or deleted since (a deleted one only matters if not every frame was checkpointed).
 * Returns what is wrong, or undefined.
 */
export function walDamage(dbPath: string): string | undefined {
  const walPath = `${dbPath}-wal`;
  const index = walIndex(dbPath);
  if (!existsSync(walPath)) {
    return index && index.mxFrame > index.nBackfill ? `${walPath} is missing, and its index (${dbPath}-shm) says frames ${index.nBackfill + 1} to ${index.mxFrame} were committed to it and not yet checkpointed` : undefined;
  }
  const size = statSync(walPath).size;
  const fd = openSync(walPath, 'r');
  try {
    const header = Buffer.alloc(WAL_HEADER);
    if (size >= WAL_HEADER) readSync(fd, header, 0, WAL_HEADER, 0);
    const magic = header.readUInt32BE(0);
    const pageSize = header.readUInt32BE(8);
    const frameSize = FRAME_HEADER + pageSize;
    const headerOk = size >= WAL_HEADER && (magic === 0x377f0682 || magic === 0x377f0683) && pageSize >= 512 && pageSize <= 65536 && (pageSize & (pageSize - 1)) === 0;
    const bigEndian = magic === 0x377f0683;
    let sum = headerOk ? walChecksum(header.subarray(0, 24), bigEndian, [0, 0]) : [0, 0] as [number, number];
    if (!headerOk || sum[0] !== header.readUInt32BE(24) || sum[1] !== header.readUInt32BE(28)) {
      if (size > WAL_HEADER + FRAME_HEADER) return `the WAL header of ${walPath} is damaged, and SQLite would ignore the ${size} bytes of WAL behind it`;
      return index && index.mxFrame > index.nBackfill ? `${walPath} is cut short (${size} bytes), and its index (${dbPath}-shm) says ${index.mxFrame} frames were committed to it` : undefined;
    }
    const salts = header.subarray(16, 24);
    const frame = Buffer.alloc(frameSize);
    let damagedAt: number | undefined;
    let lastIntactCommit = 0;
    let commitsAfter = 0;
    for (let n = 1, off = WAL_HEADER; off + frameSize <= size; n++, off += frameSize) {
      readSync(fd, frame, 0, frameSize, off);
      // Frames of an older generation (other salts) may follow the current ones: they count as the end, and
      // no frame of the current generation can come after them unless bytes changed.
      const current = frame.subarray(8, 16).equals(salts);
      const stored: [number, number] = [frame.readUInt32BE(16), frame.readUInt32BE(20)];
      const computed = walChecksum(frame.subarray(FRAME_HEADER), bigEndian, walChecksum(frame.subarray(0, 8), bigEndian, sum));
      const commit = frame.readUInt32BE(4) !== 0;
      if (!current || computed[0] !== stored[0] || computed[1] !== stored[1]) damagedAt ??= n;
      else if (damagedAt !== undefined && commit) commitsAfter++;
      else if (damagedAt === undefined && commit) lastIntactCommit = n;
      // Each frame's checksum continues from the one stored in the frame before it.
      sum = stored;
    }
    if (damagedAt !== undefined && commitsAfter >= 2) {
      return `frame ${damagedAt} of ${walPath} is damaged and ${commitsAfter} committed transactions follow it, which SQLite would drop without a word`;
    }
    if (index && index.salts.equals(salts) && index.mxFrame > lastIntactCommit) {
      return `${walPath} holds ${lastIntactCommit} intact committed frames, but its index (${dbPath}-shm) says ${index.mxFrame} were committed: the WAL was cut short or damaged`;
    }
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * Whether SQLite failed because the file is damaged (SQLITE_CORRUPT*, SQLITE_NOTADB), rather than for another
 * reason (locked by another process, no permission, disk full), which is no damage and is reported as it is.
 */
export function isSqliteDamage(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (code.startsWith('SQLITE_CORRUPT') || code === 'SQLITE_NOTADB');
}

/** `PRAGMA quick_check` of an open database: undefined when it answers ok, else what it found. */
export function quickCheckFailure(db: Database): string | undefined {
  let found: string[];
  try {
    found = (db.pragma('quick_check') as { quick_check: string }[]).map((r) => r.quick_check);
  } catch (err) {
    if (!isSqliteDamage(err)) throw err;
    return (err as Error).message;
  }
  return found.length === 1 && found[0] === 'ok' ? undefined : found.slice(0, 5).join('; ');
}
