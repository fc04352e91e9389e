// flotilla backup / restore against real server processes, and the lost-quorum way out.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerProcess, runCli } from '../support/server-process.js';
import { setUp } from '../support/set-up.js';
import { ApiClient } from '../../client/client.js';

let dir!: string;
let original!: ServerProcess;
let api!: ApiClient;
let env!: Record<string, string>;
setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-backup-'));
  original = new ServerProcess(join(dir, 'orig'), '127.0.0.1');
  await original.start();
  api = new ApiClient(original.url, original.token, { tls: original.tls });
  for (let i = 0; i < 20; i++) await api.request('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `keep-${i}` }, data: { i: String(i) } });
  env = { ...original.cliEnv, HOME: join(dir, 'home') };
}, async () => {
  api?.close();
  await original?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function names(server: ServerProcess, token: string): Promise<string[]> {
  const c = new ApiClient(server.url, token, { tls: server.tls });
  try {
    return (await c.request<{ items: { metadata: { name: string } }[] }>('GET', '/api/v1/namespaces/default/configmaps')).items.map((o) => o.metadata.name);
  } finally { c.close(); }
}

test('backup writes a file; restore makes a new cluster with the same objects and later revisions', async () => {
  const file = join(dir, 'cluster.backup');
  const b = runCli(['backup', file], env);
  assert.is(b.code, 0, b.stderr);
  assert.ok(statSync(file).size > 0);
  const oldRv = Number((await api.request<{ metadata: { resourceVersion: string } }>('GET', '/api/v1/namespaces/default/configmaps/keep-19')).metadata.resourceVersion);
  const r = runCli(['restore', '--data', join(dir, 'restored'), '--encryption-config', join(original.dataDir, 'encryption-config.json'), file], {});
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /restored revision \d+/);
  const restored = new ServerProcess(join(dir, 'restored'), '127.0.0.2');
  try {
    await restored.start();
    const have = await names(restored, restored.token);
    for (let i = 0; i < 20; i++) assert.ok(have.includes(`keep-${i}`), `keep-${i} restored`);
    const c = new ApiClient(restored.url, restored.token, { tls: restored.tls });
    const created = await c.request<{ metadata: { resourceVersion: string } }>('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'new-one' } });
    assert.ok(Number(created.metadata.resourceVersion) > oldRv, 'revisions continue after the restored state');
    const st = await c.request<{ members: { id: number }[] }>('GET', '/cluster/status');
    assert.is(st.members.length, 1, 'old member records are gone; the new cluster has one member');
    c.close();
  } finally {
    await restored.kill('SIGTERM');
  }
});

test('restore refuses a non-empty target and a file that is not a state database', () => {
  const junk = join(dir, 'junk.db');
  writeFileSync(junk, 'not sqlite');
  const bad = runCli(['restore', '--data', join(dir, 'junk-target'), junk], {});
  assert.is(bad.code, 1);
  assert.match(bad.stderr, /flotilla restore: /);
  const busy = runCli(['restore', '--data', original.dataDir, junk], {});
  assert.is(busy.code, 1);
  assert.match(busy.stderr, /not empty/);
  assert.is(runCli(['restore', junk], {}).code, 2);
});

test('the lost-quorum way out: a new cluster from an old member\'s data dir', async () => {
  await original.kill('SIGKILL');
  const r = runCli(['restore', '--data', join(dir, 'rescued'), original.dataDir], {});
  assert.is(r.code, 0, r.stderr);
  const rescued = new ServerProcess(join(dir, 'rescued'), '127.0.0.3');
  try {
    await rescued.start();
    assert.ok((await names(rescued, rescued.token)).includes('keep-7'));
  } finally {
    await rescued.kill('SIGTERM');
  }
});

test.run();
