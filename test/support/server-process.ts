import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The repository root, from a compiled file under dist/test/support. */
export const repoRoot = new URL('../../../', import.meta.url).pathname;
export const flotillaBin = join(repoRoot, 'bin', 'flotilla.js');

export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A real `flotilla server` process on a loopback port, for end-to-end tests. */
export class ServerProcess {
  child?: ChildProcess;
  output = '';
  constructor(readonly dataDir: string, readonly host: string, readonly port: number, readonly extraArgs: string[] = []) {}

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  get token(): string {
    return readFileSync(join(this.dataDir, 'admin-token'), 'utf8').trim();
  }

  get clusterSecret(): string {
    return readFileSync(join(this.dataDir, 'cluster-secret'), 'utf8').trim();
  }

  async start(timeoutMs = 20_000): Promise<void> {
    // FLOTILLA_SERVER_NODE_ARGS passes flags to the server's node (e.g. --cpu-prof for profiling a benchmark).
    const nodeArgs = (process.env.FLOTILLA_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
    this.child = spawn(process.execPath, [...nodeArgs, flotillaBin, 'server', '--data', this.dataDir, '--listen', `${this.host}:${this.port}`, ...this.extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout!.on('data', (d) => { this.output += d; });
    this.child.stderr!.on('data', (d) => { this.output += d; });
    // Ready means an authenticated request is served (server/run.ts readiness): callers use the API at once.
    const deadline = Date.now() + timeoutMs;
    let lastAnswer = 'no answer';
    while (Date.now() < deadline) {
      if (this.child.exitCode !== null) throw new Error(`flotilla server exited with ${this.child.exitCode}: ${this.output}`);
      try {
        const res = await fetch(`${this.url}/readyz`);
        if (res.ok) return;
        lastAnswer = `${res.status} ${await res.text()}`;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`flotilla server did not become ready in ${timeoutMs} ms (last /readyz: ${lastAnswer}): ${this.output}`);
  }

  /** Sends the signal and waits for the process to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      child.once('exit', () => resolve());
      child.kill(signal);
    });
  }
}

/** Runs the CLI as a user would, with the environment given. */
export function runCli(args: string[], env: Record<string, string>, input?: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [flotillaBin, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, input, encoding: 'utf8', timeout: 30_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}
