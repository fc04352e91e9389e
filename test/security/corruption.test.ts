// Fault injection on real `flotilla server` processes: a server is given acknowledged writes and SIGKILLed (so
// both databases keep their WAL files), then one file of a copy of its data dir is truncated, has bytes
// flipped, or is deleted, and the copy is started again. Every case must end one of two ways: the server is
// ready and serves every acknowledged write with its own content, and takes a new write; or it exits at once
// with a message naming the damaged file. Never a ready server with writes missing or changed, never a hang.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerProcess } from '../support/server-process.js';
import { setUp } from '../support/set-up.js';
import { ApiClient } from '../../client/client.js';

let dir!: string;
/** Data dirs of SIGKILLed servers and the names of the writes they acknowledged. */
const bases: Record<'snapshots' | 'wal600' | 'stopped', { data: string; acknowledged: string[] }> = {} as never;

const cm = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { fault: 'yes' } }, data: { v: `value of ${name}` } });

/** A server that took `count` writes (all acknowledged, 10 at a time) and was stopped by `signal` right after. */
async function stoppedAfterWrites(name: string, count: number, extraArgs: string[], signal: NodeJS.Signals = 'SIGKILL'): Promise<{ data: string; acknowledged: string[] }> {
  const server = new ServerProcess(join(dir, name), '127.0.0.1', 0, extraArgs);
  await server.start();
  const client = new ApiClient(server.url, server.token, { tls: server.tls, timeoutMs: 30_000 });
  const acknowledged: string[] = [];
  try {
    for (let i = 0; i < count; i += 10) {
      const names = Array.from({ length: Math.min(10, count - i) }, (_, j) => `${name}-${i + j}`);
      await Promise.all(names.map((n) => client.request('POST', '/api/v1/namespaces/default/configmaps', cm(n))));
      acknowledged.push(...names);
    }
  } finally {
    client.close();
    await server.kill(signal);
  }
  return { data: server.dataDir, acknowledged };
}

setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-corruption-'));
  // Snapshots every 50 entries: the log refers to a snapshot file, and the state was checkpointed behind it.
  bases.snapshots = await stoppedAfterWrites('snapshots', 200, ['--snapshot-every', '50']);
  bases.wal600 = await stoppedAfterWrites('wal600', 600, []);
  // Stopped cleanly: every page is in the database files (no WAL left), so faults there hit live rows.
  bases.stopped = await stoppedAfterWrites('stopped', 200, [], 'SIGTERM');
}, () => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

type Fault = 'truncate' | 'flip' | 'delete';

/** Flips one byte at each of seven points spread over the file (inside WAL frames' page data for a WAL). */
function flipBytes(path: string): void {
  const bytes = readFileSync(path);
  const pageSize = path.endsWith('-wal') ? bytes.readUInt32BE(8) : 0;
  for (let i = 1; i < 8; i++) {
    let at = Math.floor((bytes.length * i) / 8);
    if (pageSize > 0) {
      const frame = 24 + pageSize;
      at = 32 + Math.floor((at - 32) / frame) * frame + 24 + 100;
    }
    if (at < bytes.length) bytes[at] = bytes[at]! ^ 0x5a;
  }
  writeFileSync(path, bytes);
}

function injure(path: string, fault: Fault): void {
  if (fault === 'delete') rmSync(path);
  else if (fault === 'truncate') truncateSync(path, Math.floor(statSync(path).size / 2));
  else flipBytes(path);
}

/** The file the Raft log's snapshot record names: the newest snapshot file. */
function newestSnapshot(data: string): string {
  const files = readdirSync(join(data, 'snapshots')).filter((f) => f.startsWith('snapshot-')).sort();
  assert.ok(files.length > 0, 'the base data dir has a snapshot file');
  return join('snapshots', files[files.length - 1]!);
}

type Outcome = { kind: 'recovered' } | { kind: 'refused'; output: string };

/**
 * Starts a copy of `base` with `faults` applied (file relative to the data dir). Recovered: ready, every
 * acknowledged write there with its own content, and a new write taken. Refused: exited, naming `names`.
 */
async function startInjured(caseName: string, base: { data: string; acknowledged: string[] }, faults: [string, Fault][], names: string): Promise<Outcome> {
  const data = join(dir, caseName);
  cpSync(base.data, data, { recursive: true });
  for (const [file, fault] of faults) {
    assert.ok(existsSync(join(data, file)), `${file} exists in the killed server's data dir before the fault`);
    injure(join(data, file), fault);
  }
  const server = new ServerProcess(data, '127.0.0.1');
  try {
    await server.start(90_000);
  } catch (err) {
    const exited = server.child?.exitCode !== null || server.child?.signalCode !== null;
    assert.ok(exited, `${caseName}: the server neither became ready nor exited (a hang): ${(err as Error).message}`);
    assert.ok(server.output.includes(names), `${caseName}: the refusal names ${names}:\n${server.output}`);
    assert.match(server.output, /does not start on damaged data|no Raft log to rebuild it from/, `${caseName}: the refusal says why and what to do`);
    return { kind: 'refused', output: server.output };
  }
  const client = new ApiClient(server.url, server.token, { tls: server.tls, timeoutMs: 30_000 });
  try {
    const list = await client.request<{ items: { metadata: { name: string }; data: { v: string } }[] }>('GET', '/api/v1/namespaces/default/configmaps?labelSelector=fault%3Dyes');
    const served = new Map(list.items.map((i) => [i.metadata.name, i.data.v]));
    const missing = base.acknowledged.filter((n) => !served.has(n));
    assert.equal(missing.length, 0, `${caseName}: ${missing.length} of ${base.acknowledged.length} acknowledged writes are missing after a start that reported ready (e.g. ${missing.slice(0, 3).join(', ')})`);
    const changed = base.acknowledged.filter((n) => served.get(n) !== `value of ${n}`);
    assert.equal(changed, [], `${caseName}: served content differs from what was written`);
    await client.request('POST', '/api/v1/namespaces/default/configmaps', cm(`${caseName}-after`));
    return { kind: 'recovered' };
  } finally {
    client.close();
    await server.kill('SIGTERM');
    rmSync(data, { recursive: true, force: true });
  }
}

const outcomes: string[] = [];
const describe = (o: Outcome) => (o.kind === 'recovered' ? 'recovered' : `refused: ${/\S*: .*does not start on damaged data|.*no Raft log to rebuild.*/.exec(o.output)?.[0]?.slice(0, 240) ?? ''}`);
const files = ['raft.db', 'raft.db-wal', 'state.db', 'state.db-wal', 'snapshot'] as const;
const faults: Fault[] = ['truncate', 'flip', 'delete'];

for (const file of files) {
  for (const fault of faults) {
    test(`${fault} ${file}: recovered with every acknowledged write, or refused naming the file`, async () => {
      const path = file === 'snapshot' ? newestSnapshot(bases.snapshots.data) : file;
      const names = file === 'snapshot' ? path : file.replace(/-wal$/, '');
      const outcome = await startInjured(`${fault}-${file}`, bases.snapshots, [[path, fault]], names);
      // The snapshot the log refers to cannot be made again from this member alone.
      if (file === 'snapshot') assert.is(outcome.kind, 'refused', `${fault} of the snapshot file: refused`);
      // The state is rebuilt from the snapshot and the log, whatever happened to it.
      if (file.startsWith('state.db')) assert.is(outcome.kind, 'recovered', `${fault} ${file}: rebuilt from the snapshot and the log`);
      outcomes.push(`${fault} ${file}: ${describe(outcome)}`);
    });
  }
}

for (const file of ['raft.db', 'state.db'] as const) {
  for (const fault of ['truncate', 'flip'] as const) {
    test(`${fault} ${file} of a cleanly stopped server (no WAL): recovered with every acknowledged write, or refused naming the file`, async () => {
      const outcome = await startInjured(`${fault}-${file}-stopped`, bases.stopped, [[file, fault]], file);
      if (file === 'state.db') assert.is(outcome.kind, 'recovered', `${fault} ${file}: rebuilt from the log`);
      outcomes.push(`${fault} ${file} (clean stop): ${describe(outcome)}`);
    });
  }
}

test('600 acknowledged writes, bytes flipped in both WAL files: all 600 served, or a refusal naming the file', async () => {
  const outcome = await startInjured('wal600-flipped', bases.wal600, [['raft.db-wal', 'flip'], ['state.db-wal', 'flip']], 'raft.db');
  outcomes.push(`600 writes, both WAL files flipped: ${describe(outcome)}`);
});

test('600 acknowledged writes, both WAL files truncated: all 600 served, or a refusal naming the file', async () => {
  const outcome = await startInjured('wal600-truncated', bases.wal600, [['raft.db-wal', 'truncate'], ['state.db-wal', 'truncate']], 'raft.db');
  outcomes.push(`600 writes, both WAL files truncated: ${describe(outcome)}`);
});

test.after(() => console.log(`\n${outcomes.join('\n')}`));
test.run();
