// Secrets at rest: a Secret's values never reach a server's data dir (state, its WAL, the Raft log, snapshots)
// or a backup in plain or in base64, deleted Secrets included, while every reader gets them back; the keys
// rotate (every Secret written again with the new key) and old keys are pruned; a restore needs the keys.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerProcess, runCli } from '../support/server-process.js';
import { setUp } from '../support/set-up.js';
import { ApiClient } from '../../client/client.js';
import { ANNOTATION_LAST_APPLIED } from '../../api-types/index.js';
import type { EncryptionStatus } from '../../server/secrets/secrets-encrypt.js';

const KEPT = 'kept-s3cr3t-4f9a1c7e-value';
const SPOKEN = 'spoken-s3cr3t-88d2e0b1-value';
const DELETED = 'deleted-s3cr3t-0c3b9e55-value';

let dir!: string;
let server!: ServerProcess;
let api!: ApiClient;
let env!: Record<string, string>;
setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-secrets-'));
  server = new ServerProcess(join(dir, 'server'), '127.0.0.1', 0, ['--snapshot-every', '25']);
  await server.start();
  api = new ApiClient(server.url, server.token, { tls: server.tls });
  env = { ...server.cliEnv, HOME: join(dir, 'home') };
}, async () => {
  api?.close();
  await server?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const b64 = (s: string) => Buffer.from(s).toString('base64');

/** What would betray `value` in a file: the value, and its base64 at each of the three alignments it can take. */
function traces(value: string): string[] {
  return [value, ...[0, 1, 2].map((shift) => {
    const encoded = b64(`${'x'.repeat(shift)}${value}`);
    // Drop the characters that mix in the padding before and after: the rest is the value's own.
    return encoded.slice(Math.ceil((shift * 4) / 3) + 1, encoded.length - 4);
  })];
}

function filesUnder(path: string): string[] {
  if (!statSync(path).isDirectory()) return [path];
  return readdirSync(path).flatMap((name) => filesUnder(join(path, name)));
}

/** The files under `paths` that hold a trace of one of `values`, as "file: trace". */
function leaks(paths: string[], values: string[]): string[] {
  const found: string[] = [];
  for (const file of paths.flatMap(filesUnder)) {
    const bytes = readFileSync(file).toString('latin1');
    for (const t of values.flatMap(traces)) if (bytes.includes(t)) found.push(`${file}: ${t}`);
  }
  return found;
}

function secret(name: string, value: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name }, type: 'Opaque', data: { password: b64(value) }, ...extra };
}

test('no trace of a Secret in the data dir or a backup, while readers get the values', async () => {
  const applied = secret('kept', KEPT, { stringData: { token: SPOKEN } });
  await api.request('POST', '/api/v1/namespaces/default/secrets', {
    ...applied, metadata: { name: 'kept', annotations: { [ANNOTATION_LAST_APPLIED]: JSON.stringify(applied), team: 'blue' } },
  });
  await api.request('POST', '/api/v1/namespaces/default/secrets', secret('gone', DELETED));
  await api.request('DELETE', '/api/v1/namespaces/default/secrets/gone');
  // Enough writes for a snapshot (--snapshot-every 25) that holds the Secret.
  for (let i = 0; i < 30; i++) await api.request('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `filler-${i}` } });
  assert.ok(readdirSync(join(server.dataDir, 'snapshots')).some((f) => f.startsWith('snapshot-')), 'a snapshot was made');

  const got = await api.request<{ data: Record<string, string>; stringData: Record<string, string>; metadata: { annotations: Record<string, string> } }>('GET', '/api/v1/namespaces/default/secrets/kept');
  assert.is(got.data.password, b64(KEPT));
  assert.is(got.stringData.token, SPOKEN);
  assert.is(got.metadata.annotations[ANNOTATION_LAST_APPLIED], JSON.stringify(applied));
  assert.is(got.metadata.annotations.team, 'blue');
  const listed = await api.request<{ items: { metadata: { name: string }; data: Record<string, string> }[] }>('GET', '/api/v1/namespaces/default/secrets');
  assert.is(listed.items.find((s) => s.metadata.name === 'kept')?.data.password, b64(KEPT));
  assert.ok(!('sealed' in got), 'readers never see the sealed form');

  const backup = join(dir, 'cluster.backup');
  const b = runCli(['backup', backup], env);
  assert.is(b.code, 0, b.stderr);
  assert.match(b.stdout, /encryption-config\.json/);
  // The control: the same search finds the values where they are in plain.
  assert.ok(leaks([join(dir, 'server', 'admin-token')], [server.token]).length > 0, 'the search finds what is there');
  assert.equal(leaks([server.dataDir, backup], [KEPT, SPOKEN, DELETED]), []);
  await server.kill('SIGTERM');
  assert.equal(leaks([server.dataDir], [KEPT, SPOKEN, DELETED]), [], 'after the shutdown checkpoint too');
  await server.start();
  const again = await api.request<{ data: Record<string, string> }>('GET', '/api/v1/namespaces/default/secrets/kept');
  assert.is(again.data.password, b64(KEPT), 'the keys survive a restart');
});

test('the data dir is the owner\'s alone: directories 0700, files 0600', () => {
  for (const path of [server.dataDir, ...filesUnder(server.dataDir)]) {
    const mode = statSync(path).mode & 0o777;
    assert.is(mode, statSync(path).isDirectory() ? 0o700 : 0o600, `${path} has mode ${mode.toString(8)}`);
  }
  for (const sub of readdirSync(server.dataDir).map((n) => join(server.dataDir, n)).filter((p) => statSync(p).isDirectory())) {
    assert.is(statSync(sub).mode & 0o777, 0o700, `${sub}`);
  }
});

test('an unchanged write of a Secret stays unchanged (no new resourceVersion)', async () => {
  const before = await api.request<Record<string, unknown> & { metadata: { resourceVersion: string } }>('GET', '/api/v1/namespaces/default/secrets/kept');
  const after = await api.request<{ metadata: { resourceVersion: string } }>('PUT', '/api/v1/namespaces/default/secrets/kept', before);
  assert.is(after.metadata.resourceVersion, before.metadata.resourceVersion);
});

test('rotate writes every Secret again with a new primary key; prune drops the old one; restore needs the keys', async () => {
  const status = () => JSON.parse(runCli(['secrets-encrypt', 'status', '-o', 'json'], env).stdout) as EncryptionStatus;
  const first = status();
  assert.is(first.keys.length, 1);
  const [old] = first.keys;
  assert.ok(old!.primary && old!.secrets >= 2, `the key holds the token Secret and kept: ${JSON.stringify(first)}`);
  const table = runCli(['secrets-encrypt', 'status'], env);
  assert.is(table.code, 0, table.stderr);
  assert.match(table.stdout, /Encryption Status: Enabled/);
  assert.match(table.stdout, new RegExp(` \\*\\s+AES-GCM\\s+${old!.name}`));

  const rotated = runCli(['secrets-encrypt', 'rotate', '-o', 'json'], env);
  assert.is(rotated.code, 0, rotated.stderr);
  const after = JSON.parse(rotated.stdout) as EncryptionStatus;
  assert.is(after.keys.length, 2);
  assert.is(after.keys[1]!.name, old!.name);
  assert.ok(after.keys[0]!.primary && after.keys[0]!.name !== old!.name);
  assert.is(after.keys[1]!.secrets, 0, 'nothing is left on the old key');
  assert.is(after.keys[0]!.secrets, old!.secrets);
  const got = await api.request<{ data: Record<string, string> }>('GET', '/api/v1/namespaces/default/secrets/kept');
  assert.is(got.data.password, b64(KEPT));

  const pruned = JSON.parse(runCli(['secrets-encrypt', 'prune', '-o', 'json'], env).stdout) as EncryptionStatus;
  assert.equal(pruned.keys.map((k) => k.name), [after.keys[0]!.name]);
  const config = JSON.parse(readFileSync(join(server.dataDir, 'encryption-config.json'), 'utf8')) as { resources: { providers: { aesgcm?: { keys: { name: string }[] } }[] }[] };
  assert.equal(config.resources[0]!.providers[0]!.aesgcm!.keys.map((k) => k.name), [after.keys[0]!.name]);
  assert.is(runCli(['secrets-encrypt', 'turn'], env).code, 2);

  const backup = join(dir, 'rotated.backup');
  assert.is(runCli(['backup', backup], env).code, 0);
  const refused = runCli(['restore', '--data', join(dir, 'keyless'), backup], {});
  assert.is(refused.code, 1);
  assert.match(refused.stderr, /--encryption-config/);
  const r = runCli(['restore', '--data', join(dir, 'restored'), '--encryption-config', join(server.dataDir, 'encryption-config.json'), backup], {});
  assert.is(r.code, 0, r.stderr);
  const restored = new ServerProcess(join(dir, 'restored'), '127.0.0.2');
  try {
    await restored.start();
    const c = new ApiClient(restored.url, restored.token, { tls: restored.tls });
    try {
      assert.is((await c.request<{ data: Record<string, string> }>('GET', '/api/v1/namespaces/default/secrets/kept')).data.password, b64(KEPT));
    } finally {
      c.close();
    }
  } finally {
    await restored.kill('SIGTERM');
  }
});

test.run();
