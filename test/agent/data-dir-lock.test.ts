// One agent per data directory (node-agent/data-dir.ts): real `flotilla agent` processes against a real server.
// Two `--simulate` fleets started without --data share ./.flotilla/agent and would claim the same hollow-N
// nodes: the second exits non-zero naming the first's pid, as does a plain agent there; once the first is
// SIGKILLed its lock is stale and a new agent takes the directory over. In one process, a second run() on a
// directory in use is refused too, and a stopped agent's directory is free again.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import pino from 'pino';
import { DataDirInUseError, LOCK_FILE } from '../../node-agent/data-dir.js';
import { hollowInventory } from '../../node-agent/hollow.js';
import { run, type AgentRunConfig } from '../../node-agent/run.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { eventually } from '../support/eventually.js';
import { flotillaBin } from '../support/server-process.js';
import { RealServer } from './real-server.js';

let srv: RealServer | undefined;
const children: ChildProcess[] = [];

interface AgentProcess { child: ChildProcess; output: () => string }

/** `flotilla agent ARGS` in cwd, with no --data unless ARGS give one. */
function agentProcess(cwd: string, args: string[]): AgentProcess {
  const child = spawn(process.execPath, [flotillaBin, 'agent', '--server', srv!.server.url, '--token', srv!.server.token, '--ca', srv!.server.caPath, '--listen', '127.0.0.1:0', '--no-pod-network', ...args],
    { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '', FLOTILLA_LOG_LEVEL: 'warn', FLOTILLA_SERVICE_PROXY: 'off', FLOTILLA_INGRESS: 'off' } });
  children.push(child);
  let out = '';
  child.stdout!.on('data', (d) => { out += d; });
  child.stderr!.on('data', (d) => { out += d; });
  return { child, output: () => out };
}

/** The exit code (null after a signal), once the process has exited. */
const exited = (a: AgentProcess) => eventually('the agent exits', () => (a.child.exitCode !== null || a.child.signalCode !== null ? { code: a.child.exitCode } : undefined), { detail: a.output })
  .then((e) => e.code);

const simulating = (a: AgentProcess) => eventually('the fleet runs', () => /Simulating 2 hollow nodes \(hollow-0\.\.hollow-1\)/.test(a.output()), { detail: a.output });

test.before(async () => {
  srv = new RealServer();
  await srv.start();
});
test.after(async () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await srv?.close();
});

test('a second agent on ./.flotilla/agent exits naming the first one; after a SIGKILL the stale lock is taken over', async () => {
  const cwd = join(srv!.dir, 'work');
  mkdirSync(cwd, { recursive: true });
  const dataDir = join(cwd, '.flotilla', 'agent');
  const first = agentProcess(cwd, ['--simulate', '2']);
  await simulating(first);

  const message = `data directory ${dataDir} is in use by agent pid ${first.child.pid}; give each agent its own --data`;
  const second = agentProcess(cwd, ['--simulate', '2']);
  assert.is(await exited(second), 1, second.output());
  assert.ok(second.output().includes(message), second.output());
  const plain = agentProcess(cwd, ['--name', 'plain-node']);
  assert.is(await exited(plain), 1, plain.output());
  assert.ok(plain.output().includes(message), plain.output());

  first.child.kill('SIGKILL');
  await exited(first);
  assert.ok(existsSync(join(dataDir, LOCK_FILE)), 'a killed agent leaves its lock behind');
  const third = agentProcess(cwd, ['--simulate', '2']);
  await simulating(third);
  third.child.kill('SIGTERM');
  assert.is(await exited(third), 0, third.output());
  assert.not.ok(existsSync(join(dataDir, LOCK_FILE)), 'a stopped agent releases its lock');
});

test('in one process: a second run() on a directory in use is refused; a lock of a pid that is gone is stale', async () => {
  const dataDir = join(srv!.dir, 'in-process');
  const config = (nodeName: string): AgentRunConfig => ({
    server: srv!.server.url, token: srv!.server.token, ca: srv!.server.ca, dataDir, nodeName, listenHost: '127.0.0.1', listenPort: 0,
    runtime: new FakeRuntime(), inventory: hollowInventory(nodeName), findings: [], log: pino({ level: 'silent' }),
    tuning: { retrySeconds: 0.1, retryMaxSeconds: 0.5 },
  });
  mkdirSync(dataDir, { recursive: true });
  // A pid that does not exist (above the kernel's pid_max), as a crash before a reboot leaves it.
  writeFileSync(join(dataDir, LOCK_FILE), '99999999\n1\n');
  const first = await startRun(config('lock-a'));
  try {
    try {
      await run(new AbortController().signal, config('lock-b'));
      assert.unreachable('a second agent ran on a directory in use');
    } catch (err) {
      assert.instance(err, DataDirInUseError);
      assert.is((err as DataDirInUseError).pid, process.pid);
    }
  } finally {
    await first.stop();
  }
  await (await startRun(config('lock-a'))).stop();
});

/** run() until ready; rejects when it ends before (a refused lock among other reasons). */
async function startRun(config: AgentRunConfig): Promise<{ stop: () => Promise<void> }> {
  const ac = new AbortController();
  let ready!: () => void;
  const started = new Promise<void>((r) => { ready = r; });
  const done = run(ac.signal, config, () => ready());
  await Promise.race([started, done.then(() => { throw new Error('the agent ended before it was ready'); })]);
  return { stop: async () => { ac.abort(); await done; } };
}

test.run();
