import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { flotillaBin } from '../support/server-process.js';

/** `flotilla up` as a user starts it, in `cwd`, with its output collected. */
export function startUp(cwd: string, port: number, env: Record<string, string>): { child: ChildProcess; output: () => string; waitFor: (re: RegExp, ms: number) => Promise<void> } {
  const child = spawn(process.execPath, [flotillaBin, 'up', '--listen', `127.0.0.1:${port}`], { cwd, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  return {
    child,
    output: () => out,
    waitFor: async (re, ms) => {
      const deadline = Date.now() + ms;
      while (!re.test(out)) {
        if (Date.now() > deadline) throw new Error(`flotilla up did not print ${re} within ${ms} ms: ${out}`);
        if (child.exitCode !== null) throw new Error(`flotilla up exited with ${child.exitCode}: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
  };
}
