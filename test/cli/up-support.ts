import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { StopWaiting, eventually } from '../support/eventually.js';
import { flotillaBin, ownChild, stopChild } from '../support/server-process.js';

export interface UpProcess {
  child: ChildProcess;
  output: () => string;
  /** Waits until the output matches; fails at once if `flotilla up` exits. */
  waitFor: (re: RegExp, ms: number) => Promise<void>;
  /** Ctrl-C, and waits for the process to be gone. */
  stop: () => Promise<void>;
}

/**
 * `flotilla up` as a user starts it, in `cwd`, on a port it picks itself, with its output collected; its agent
 * programs no Service rules (FLOTILLA_SERVICE_PROXY=off): the suite runs in the machine's own network namespace.
 */
export function startUp(cwd: string, env: Record<string, string>): UpProcess {
  const child = ownChild(spawn(process.execPath, [flotillaBin, 'up', '--listen', '127.0.0.1:0'], { cwd, env: { PATH: process.env.PATH ?? '', FLOTILLA_SERVICE_PROXY: 'off', ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  return {
    child,
    output: () => out,
    waitFor: async (re, ms) => {
      await eventually(`flotilla up to print ${re}`, () => {
        if (re.test(out)) return true;
        if (child.exitCode !== null || child.signalCode !== null) throw new StopWaiting(`flotilla up exited with ${child.exitCode ?? child.signalCode}`);
        return undefined;
      }, { limitMs: ms, detail: () => `output: ${out}` });
    },
    stop: () => stopChild(child, 'SIGINT'),
  };
}
