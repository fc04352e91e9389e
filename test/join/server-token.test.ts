// `flotilla server` as a user runs it, given a token it cannot use: it exits non-zero naming the reason, and
// leaves no cluster behind (no cluster.json in its data dir).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newJoinToken } from '../../discovery/locate.js';
import { runCli } from '../support/server-process.js';

async function withDataDir(body: (dataDir: string) => Promise<void> | void): Promise<void> {
  const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-server-token-'));
  try { await body(dataDir); } finally { rmSync(dataDir, { recursive: true, force: true }); }
}

const server = (dataDir: string, ...args: string[]) => runCli(['server', '--data', dataDir, '--listen', '127.0.0.1:0', ...args], {});

test('an agent join token: exit 1, "agent join token", which token a server needs, no cluster formed', async () => {
  await withDataDir((dataDir) => {
    const r = server(dataDir, '--join', 'auto', '--token', newJoinToken().token);
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /^flotilla: --token is an agent join token \(flt1\.[a-z0-9]{10}\.…\).*a server joins with the server token \(FLT1<CA hash>::server:<secret>\) that every member prints at start/m);
    assert.not.ok(existsSync(join(dataDir, 'cluster.json')), 'no cluster was formed');
  });
});

test('a token without --join: exit 1 pointing at --cluster-init; --cluster-init with --join URL: usage error', async () => {
  await withDataDir((dataDir) => {
    const r = server(dataDir, '--token', 'a-cluster-secret-of-some-length');
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /a server given a token only joins .*add --cluster-init/);
    assert.not.ok(existsSync(join(dataDir, 'cluster.json')), 'no cluster was formed');
    const both = server(dataDir, '--cluster-init', '--join', 'https://127.0.0.1:1', '--token', 'a-cluster-secret-of-some-length');
    assert.is(both.code, 2, both.stdout + both.stderr);
    assert.match(both.stderr, /--cluster-init forms a new cluster and --join URL joins one/);
  });
});

test.run();
