// The pods given to this node, with the ConfigMaps and Secrets they use, kept in DATA/pods.json so that after a
// reboot with no server reachable the agent can start them again. Writes are atomic (temp file, fsync, rename)
// and serialised; the file is mode 0600 because it holds Secrets.
import { open, readFile, rename, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { PodInputs } from './pod-actions.js';

const FORMAT_VERSION = 1;

export class PodCache {
  readonly file: string;
  private writing: Promise<void> = Promise.resolve();

  constructor(dataDir: string) {
    this.file = join(dataDir, 'pods.json');
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
    if (parsed.version !== FORMAT_VERSION || !Array.isArray(parsed.pods)) {
      throw new Error(`pod cache ${this.file} has version ${String(parsed.version)} or no pods array; expected version ${FORMAT_VERSION}`);
    }
    return parsed.pods as PodInputs[];
  }

  /** Replaces the cached set. Concurrent calls are applied in call order; the last one wins on disk. */
  save(pods: PodInputs[]): Promise<void> {
    const body = JSON.stringify({ version: FORMAT_VERSION, pods });
    const next = this.writing.then(() => this.write(body));
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
