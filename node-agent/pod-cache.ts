// The pods given to this node, with the ConfigMaps and Secrets they use, kept in DATA/pods.json so that after a
// reboot with no server reachable the agent can start them again. Writes are atomic (temp file, fsync, rename)
// and serialised; the file is mode 0600. The Secrets of each pod are not in it in plain: they are sealed with
// AES-256-GCM under a key of this node (DATA/pod-cache.key, 0600, made at the first write), so the file alone
// (a copied disk image, a backup of the data dir without the key) gives no Secret away.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { open, readFile, rename, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Secret } from '../api-types/index.js';
import type { PodInputs } from './pod-actions.js';

/** 2: the Secrets sealed (`sealedSecrets`); version 1 files (Secrets in plain) are read and written again as 2. */
const FORMAT_VERSION = 2;

export const POD_CACHE_KEY_FILE = 'pod-cache.key';

/** A cached pod as stored: its inputs without the Secrets, which are sealed. */
type StoredPod = Omit<PodInputs, 'secrets'> & { secrets?: Record<string, Secret>; sealedSecrets?: string };

export class PodCache {
  readonly file: string;
  readonly keyFile: string;
  private writing: Promise<void> = Promise.resolve();
  private key?: Promise<Buffer>;

  constructor(dataDir: string) {
    this.file = join(dataDir, 'pods.json');
    this.keyFile = join(dataDir, POD_CACHE_KEY_FILE);
  }

  /** The node's cache key: read, or made (0600) when there is none. */
  private nodeKey(): Promise<Buffer> {
    this.key ??= (async () => {
      const kept = await readFile(this.keyFile).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return undefined; throw err; });
      if (kept !== undefined) {
        if (kept.length !== 32) throw new Error(`pod cache key ${this.keyFile} is not 32 bytes; delete it and ${this.file} to start empty`);
        return kept;
      }
      await mkdir(join(this.keyFile, '..'), { recursive: true });
      const made = randomBytes(32);
      const handle = await open(this.keyFile, 'wx', 0o600);
      try {
        await handle.writeFile(made);
        await handle.sync();
      } finally {
        await handle.close();
      }
      return made;
    })();
    this.key.catch(() => { this.key = undefined; });
    return this.key;
  }

  private async seal(pod: PodInputs): Promise<StoredPod> {
    const { secrets, ...rest } = pod;
    if (Object.keys(secrets).length === 0) return { ...rest, secrets: {} };
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', await this.nodeKey(), nonce);
    cipher.setAAD(Buffer.from(pod.pod.metadata.uid ?? ''));
    const body = Buffer.concat([nonce, cipher.update(JSON.stringify(secrets)), cipher.final(), cipher.getAuthTag()]);
    return { ...rest, sealedSecrets: body.toString('base64') };
  }

  private async open(stored: StoredPod): Promise<PodInputs> {
    const { sealedSecrets, secrets, ...rest } = stored;
    if (sealedSecrets === undefined) return { ...rest, secrets: secrets ?? {} };
    const body = Buffer.from(sealedSecrets, 'base64');
    try {
      const decipher = createDecipheriv('aes-256-gcm', await this.nodeKey(), body.subarray(0, 12));
      decipher.setAAD(Buffer.from(stored.pod.metadata.uid ?? ''));
      decipher.setAuthTag(body.subarray(body.length - 16));
      return { ...rest, secrets: JSON.parse(Buffer.concat([decipher.update(body.subarray(12, body.length - 16)), decipher.final()]).toString('utf8')) as Record<string, Secret> };
    } catch (err) {
      throw new Error(`pod cache ${this.file}: the Secrets of pod ${stored.pod.metadata.namespace ?? ''}/${stored.pod.metadata.name} do not open with ${this.keyFile} (${(err as Error).message}); delete both to start empty`);
    }
  }

  /** The cached pods; none when the file does not exist. A damaged file is an error naming the file. */
  async load(): Promise<PodInputs[]> {
    let text: string;
    try {
      text = await readFile(this.file, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw err;
    }
    let parsed: { version?: unknown; pods?: unknown };
    try {
      parsed = JSON.parse(text) as typeof parsed;
    } catch (err) {
      throw new Error(`pod cache ${this.file} is not valid JSON (${(err as Error).message}); delete it to start empty`);
    }
    if ((parsed.version !== FORMAT_VERSION && parsed.version !== 1) || !Array.isArray(parsed.pods)) {
      throw new Error(`pod cache ${this.file} has version ${String(parsed.version)} or no pods array; expected version ${FORMAT_VERSION}`);
    }
    return Promise.all((parsed.pods as StoredPod[]).map((p) => this.open(p)));
  }

  /** Replaces the cached set. Concurrent calls are applied in call order; the last one wins on disk. */
  save(pods: PodInputs[]): Promise<void> {
    const next = this.writing.then(async () => this.write(JSON.stringify({ version: FORMAT_VERSION, pods: await Promise.all(pods.map((p) => this.seal(p))) })));
    this.writing = next.catch(() => undefined);
    return next;
  }

  private async write(body: string): Promise<void> {
    await mkdir(join(this.file, '..'), { recursive: true });
    const temp = `${this.file}.${process.pid}.tmp`;
    const handle = await open(temp, 'w', 0o600);
    try {
      await handle.writeFile(body);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, this.file);
  }
}
