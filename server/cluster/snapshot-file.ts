// What a Raft snapshot's data names: a state file in the member's snapshots dir, with the SHA-256 of its bytes
// (as etcd's snapshot hash) and the state revision it holds. The hash is computed when the file is made,
// travels with a MsgSnap, is checked when the file is received and again before it replaces the state, and at
// every start. The file is named by this member only: nothing a peer sends becomes part of a path.
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { createHash } from 'node:crypto';
import Database from 'better-sqlite3';
import { DataCorruptionError } from '../store/sqlite-check.js';

export interface SnapshotFile {
  /** File name inside the snapshots dir. */
  file: string;
  /** Hex SHA-256 of the file's bytes. */
  sha256: string;
  /** The state revision the file holds (its meta table): what a store restored from it starts at. */
  revision: number;
}

const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*\.db$/;
export const SHA256_HEX = /^[0-9a-f]{64}$/;

export function encodeSnapshotFile(f: SnapshotFile): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(f));
}

/**
 * Decodes what encodeSnapshotFile made. Snapshot data written before the hash existed is the file's absolute
 * path: it is given as `{ legacyPath }` so that the caller can migrate it (describeSnapshotFile).
 */
export function decodeSnapshotFile(data: Uint8Array): SnapshotFile | { legacyPath: string } {
  const text = new TextDecoder().decode(data);
  if (!text.startsWith('{')) return { legacyPath: text };
  const f = JSON.parse(text) as Partial<SnapshotFile>;
  if (typeof f.file !== 'string' || !FILE_NAME.test(f.file) || typeof f.sha256 !== 'string' || !SHA256_HEX.test(f.sha256) || !Number.isSafeInteger(f.revision) || (f.revision as number) < 0) {
    throw new Error(`snapshot data is malformed: ${text.slice(0, 200)}`);
  }
  return { file: f.file, sha256: f.sha256, revision: f.revision as number };
}

export function sha256OfFile(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Streams a file through SHA-256 (for files being received, whose size a peer decides). */
export async function sha256OfFileStreamed(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** The state revision stored in a state file's meta table. */
export function stateFileRevision(path: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'revision'").get() as { value: number } | undefined;
    if (!row || !Number.isSafeInteger(row.value)) throw new Error(`${path} holds no state revision`);
    return row.value;
  } finally {
    db.close();
  }
}

/** The description of a state file in `dir` named `file`, hashed now. */
export function describeSnapshotFile(dir: string, file: string): SnapshotFile {
  const path = join(dir, file);
  return { file: basename(path), sha256: sha256OfFile(path), revision: stateFileRevision(path) };
}

/**
 * The path of the snapshot file `f` names in `dir`, once its bytes are checked against its hash; else a
 * DataCorruptionError naming the file.
 */
export function verifiedSnapshotPath(dir: string, f: SnapshotFile, wayOut: string): string {
  const path = join(dir, f.file);
  if (!existsSync(path)) throw new DataCorruptionError(path, 'the snapshot file the Raft log refers to is missing', wayOut);
  const actual = sha256OfFile(path);
  if (actual !== f.sha256) throw new DataCorruptionError(path, `the snapshot file's SHA-256 is ${actual}, not the ${f.sha256} it was made with`, wayOut);
  return path;
}
