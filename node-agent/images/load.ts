// Image archives arriving at an agent (a `flotilla image load` relayed by a server, or a fetch from a peer node,
// ./peer-fetch.ts): the archive is written to a file of its own under <data>/image-transfers while its SHA-256 is
// computed, loaded (`docker load`) only once it has arrived whole with the digest its sender gave, and the file is
// removed whatever happens. An interrupted transfer or a wrong digest therefore leaves no image and no file.
import { createHash, randomUUID } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ContainerRuntime } from '../runtime/types.js';

/** Where archives are kept while they arrive, under the agent's data directory; empty between transfers. */
export const IMAGE_TRANSFER_DIR = 'image-transfers';

/** Archives are read back in pieces this large: fewer, larger writes to the engine's socket cost less CPU per byte. */
const READ_CHUNK_BYTES = 1 << 20;

/** The archive that arrived is not the one its sender described (its digest differs, or none was given). */
export class ArchiveDigestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ArchiveDigestError';
  }
}

export interface LoadedArchive {
  /** What `docker load` reports it loaded: names, or ids for images without one. */
  images: string[];
  /** "sha256:<hex>" of the archive. */
  digest: string;
  bytes: number;
  /** How long the archive took to arrive, and then to load. */
  receiveMs: number;
  loadMs: number;
}

/**
 * Receives `source` whole, then loads it into `runtime` if its digest is `expectedDigest()` (asked once the source
 * has ended, so that a digest sent after the body, as an HTTP trailer, counts). Rejects with ArchiveDigestError on
 * a mismatch, and with the stream's error when the source fails or ends early; the file is gone in every case.
 */
export async function loadArchive(runtime: ContainerRuntime, source: Readable, o: { dataDir: string; expectedDigest: () => string | undefined; signal?: AbortSignal }): Promise<LoadedArchive> {
  const dir = join(o.dataDir, IMAGE_TRANSFER_DIR);
  await mkdir(dir, { recursive: true });
  const path = join(dir, `${randomUUID()}.tar`);
  const started = Date.now();
  try {
    const hash = createHash('sha256');
    let bytes = 0;
    const hashing = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        hash.update(chunk);
        bytes += chunk.length;
        done(null, chunk);
      },
    });
    const file = createWriteStream(path, { flags: 'wx', mode: 0o600 });
    await (o.signal ? pipeline(source, hashing, file, { signal: o.signal }) : pipeline(source, hashing, file));
    const digest = `sha256:${hash.digest('hex')}`;
    const expected = o.expectedDigest();
    if (expected === undefined) throw new ArchiveDigestError('the archive came without its digest; nothing was loaded');
    if (expected !== digest) throw new ArchiveDigestError(`the archive's digest is ${digest}, not ${expected} as its sender said (${bytes} bytes arrived): corrupt or incomplete, nothing was loaded`);
    const received = Date.now();
    const images = await runtime.loadImage(createReadStream(path, { highWaterMark: READ_CHUNK_BYTES }), o.signal);
    return { images, digest, bytes, receiveMs: received - started, loadMs: Date.now() - received };
  } finally {
    await rm(path, { force: true });
  }
}
