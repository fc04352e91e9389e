// The Secrets' keys across members: a joining server receives them, so a Secret written through one member is
// read through another (each opens it with its own copy of the keys), and a rotation started on a follower
// hands the new key to every member before any Secret is written with it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerProcess } from '../support/server-process.js';
import { setUp } from '../support/set-up.js';
import { eventually } from '../support/eventually.js';
import { ApiClient } from '../../client/client.js';
import type { EncryptionStatus } from '../../server/secrets/secrets-encrypt.js';

let dir!: string;
const servers: ServerProcess[] = [];
const clients: ApiClient[] = [];
setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-secrets-members-'));
  for (let i = 0; i < 3; i++) {
    const s = new ServerProcess(join(dir, `m${i}`), `127.0.0.${i + 1}`, 0, i === 0 ? [] : ['--join', servers[0]!.url, '--token', servers[0]!.serverToken]);
    servers.push(s);
    await s.start();
  }
  for (const s of servers) clients.push(new ApiClient(s.url, servers[0]!.token, { tls: s.tls }));
}, async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const keysOf = (s: ServerProcess) => (JSON.parse(readFileSync(join(s.dataDir, 'encryption-config.json'), 'utf8')) as { resources: { providers: { aesgcm?: { keys: { name: string; secret: string }[] } }[] }[] }).resources[0]!.providers[0]!.aesgcm!.keys;
const password = async (c: ApiClient, name: string) => Buffer.from((await c.request<{ data: { password: string } }>('GET', `/api/v1/namespaces/default/secrets/${name}`)).data.password, 'base64').toString();

test('joined members hold the same keys (0600) and read what another member wrote', async () => {
  assert.equal(keysOf(servers[1]!), keysOf(servers[0]!));
  assert.equal(keysOf(servers[2]!), keysOf(servers[0]!));
  for (const s of servers) assert.is(statSync(join(s.dataDir, 'encryption-config.json')).mode & 0o777, 0o600);
  await clients[2]!.request('POST', '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'shared' }, stringData: { password: 'written-on-m2' } });
  await clients[2]!.request('PATCH', '/api/v1/namespaces/default/secrets/shared', { data: { password: Buffer.from('patched-on-m2').toString('base64') } }, { contentType: 'application/merge-patch+json' });
  for (const c of clients) assert.is(await eventually('the Secret on every member', () => password(c, 'shared').catch(() => undefined)), 'patched-on-m2');
});

test('a rotation from one member reaches every member; every member reads every Secret after it', async () => {
  const before = keysOf(servers[0]!);
  const rotated = await clients[1]!.request<EncryptionStatus>('POST', '/cluster/v1/secrets-encrypt/rotate', {});
  assert.is(rotated.keys.length, 2);
  for (const s of servers) assert.equal(keysOf(s).map((k) => k.name), rotated.keys.map((k) => k.name), `${s.dataDir} has the new primary key first`);
  assert.ok(!before.some((k) => k.name === rotated.keys[0]!.name));
  await clients[0]!.request('POST', '/api/v1/namespaces/default/secrets', { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'after' }, data: { password: Buffer.from('after-rotation').toString('base64') } });
  for (const c of clients) {
    assert.is(await eventually('the rewritten Secret', () => password(c, 'shared').catch(() => undefined)), 'patched-on-m2');
    assert.is(await eventually('the new Secret', () => password(c, 'after').catch(() => undefined)), 'after-rotation');
  }
  const pruned = await clients[2]!.request<EncryptionStatus>('POST', '/cluster/v1/secrets-encrypt/prune', {});
  assert.equal(pruned.keys.map((k) => k.name), [rotated.keys[0]!.name]);
  for (const s of servers) assert.equal(keysOf(s).map((k) => k.name), [rotated.keys[0]!.name]);
});

test.run();
