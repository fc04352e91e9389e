// What an agent's data directory says about who owns it: the lock that keeps a second agent out (DIR/agent.lock)
// and the cluster the directory belongs to (DIR/cluster-id).
//
// Lock contract: DIR/agent.lock is created exclusively (O_EXCL) and holds the holder's pid and, on Linux, its
// start time (field 22 of /proc/PID/stat). A lock whose pid is not alive, or is alive but started at another
// time (the pid was reused after a crash or a reboot), or that cannot be read as a pid, is stale and is taken
// over. release() removes the file only while it is still this holder's.
import { readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { delay } from './agent.js';

export const LOCK_FILE = 'agent.lock';
export const CLUSTER_ID_FILE = 'cluster-id';

export class DataDirInUseError extends Error {
  constructor(readonly dir: string, readonly pid: number) {
    super(`data directory ${dir} is in use by agent pid ${pid}; give each agent its own --data`);
    this.name = 'DataDirInUseError';
  }
}

export interface DataDirLock {
  release(): Promise<void>;
}

/** Creates DIR when missing and locks it for this process; a DataDirInUseError when a live agent holds it. */
export async function lockDataDir(dir: string): Promise<DataDirLock> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  // It holds the pod cache, its key and the node's credentials: the owner's alone, whatever mode it was made with.
  await chmod(dir, 0o700);
  const path = join(dir, LOCK_FILE);
  const mine = `${process.pid}\n${startTimeOf(process.pid) ?? ''}\n`;
  for (let attempt = 0; attempt < 10; attempt++) {
    try {
      await writeFile(path, mine, { flag: 'wx', mode: 0o600 });
      return {
        release: async () => {
          if ((await readFile(path, 'utf8').catch(() => undefined)) === mine) await rm(path, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const held = await readFile(path, 'utf8').catch(() => undefined);
    if (held === undefined) continue; // released in between
    const holder = liveHolder(held);
    if (holder !== undefined) throw new DataDirInUseError(dir, holder);
    // Stale. Another agent may be taking it over at the same moment: remove only the content judged stale, so
    // that the loser finds the winner's lock on its next try (a window of one read and one unlink remains).
    if ((await readFile(path, 'utf8').catch(() => undefined)) === held) await rm(path, { force: true });
  }
  throw new Error(`data directory ${dir}: could not take ${LOCK_FILE} (it keeps changing); is another agent starting there?`);
}

/** The pid of the lock's holder when that process is still the one that wrote it; undefined when stale. */
function liveHolder(content: string): number | undefined {
  const [pidText = '', started = ''] = content.split('\n');
  const pid = Number(pidText);
  if (!/^\d+$/.test(pidText) || pid <= 0) return undefined;
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  const now = startTimeOf(pid);
  return started !== '' && now !== undefined && now !== started ? undefined : pid;
}

/** Start time of a process in clock ticks since boot (Linux); undefined where /proc does not say. */
function startTimeOf(pid: number): string | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) is in parentheses and may contain spaces: count fields after the last ")".
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

export interface ClusterIdOptions {
  /** First wait before asking again (seconds), doubled per failure up to retryMaxSeconds. */
  retrySeconds: number;
  retryMaxSeconds: number;
  /** How long a start with a known cluster id waits for a server's answer before running without one. */
  confirmTimeoutMs?: number;
  log: Logger;
}

/**
 * The id of the cluster whose containers this agent owns (runtime/types.ts ownerLabels). The first start asks a
 * server (`ask`, an authenticated call) until one answers and keeps the answer in DIR/cluster-id, so that later
 * starts can run the cached pods before any server is reachable. A later start checks the kept id against a
 * server when one answers in time, and refuses a server of another cluster: the containers this directory's
 * agent made belong to the kept cluster. Undefined when the signal aborts before the id is known.
 */
export async function clusterIdOf(dir: string, ask: (signal: AbortSignal) => Promise<string>, signal: AbortSignal, o: ClusterIdOptions): Promise<string | undefined> {
  const path = join(dir, CLUSTER_ID_FILE);
  const kept = (await readFile(path, 'utf8').catch(() => '')).trim() || undefined;
  for (let failures = 0; !signal.aborted; failures++) {
    let answer: string;
    try {
      answer = await ask(kept ? AbortSignal.any([signal, AbortSignal.timeout(o.confirmTimeoutMs ?? 5000)]) : signal);
    } catch (err) {
      if (signal.aborted) return undefined;
      if (kept) {
        o.log.warn({ err: (err as Error).message, clusterId: kept }, 'no server confirmed the cluster id; running as a node of the cluster this data directory belongs to');
        return kept;
      }
      const waitMs = Math.min(o.retryMaxSeconds * 1000, o.retrySeconds * 1000 * 2 ** Math.min(failures, 16));
      o.log.warn({ err: (err as Error).message, retryMs: waitMs }, 'waiting for a server to learn which cluster this agent joins');
      await delay(waitMs, signal);
      continue;
    }
    if (kept && answer !== kept) {
      throw new Error(`data directory ${dir} belongs to cluster ${kept}, but the server is of cluster ${answer}; give this agent a new --data directory to join cluster ${answer}`);
    }
    if (!kept) {
      await writeFile(`${path}.tmp`, `${answer}\n`, { mode: 0o600 });
      await rename(`${path}.tmp`, path);
    }
    return answer;
  }
  return undefined;
}
