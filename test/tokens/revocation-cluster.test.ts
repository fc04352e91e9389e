// Revocation and rotation on a three-member cluster of real `flotilla server` processes (127.0.0.1-3): one
// replicated write refuses a token on every member, and a member holding an old admin-token file that becomes
// leader does not bring the old admin token back.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerProcess, runCli } from '../support/server-process.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';

const USER_TOKENS = '/apis/flotilla.io/v1/usertokens';
const hosts = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
const servers: ServerProcess[] = [];
let dir!: string;
let admin!: string;
setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-revoke3-'));
  const first = new ServerProcess(join(dir, 'm0'), hosts[0]!);
  servers.push(first);
  await first.start();
  admin = first.token;
  for (let i = 1; i < 3; i++) {
    const s = new ServerProcess(join(dir, `m${i}`), hosts[i]!, 0, ['--join', first.url, '--token', first.serverToken]);
    servers.push(s);
    await s.start();
  }
}, async () => {
  for (const s of servers) await s.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** One request on a connection of its own (the test blocks in spawnSync longer than the servers' keep-alive timeout). */
async function call(i: number, method: string, path: string, token: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await servers[i]!.fetch(`${servers[i]!.url}${path}`, {
    method, headers: { connection: 'close', authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

/** What `token` gets from each member for an authenticated read. */
async function statuses(token: string): Promise<number[]> {
  return Promise.all(servers.map(async (_, i) => (await call(i, 'GET', '/api/v1/namespaces', token)).status));
}

/** Waits until every member answers `token` with `status` (a follower applies a commit a moment after the leader). */
function everyMember(token: string, status: number, what: string): Promise<true> {
  let last: number[] = [];
  return eventually(what, async () => { last = await statuses(token); return last.every((s) => s === status); }, { detail: () => `members answer ${last.join(', ')}` });
}

interface Status { leader: number; memberId: number }

test('a user token made on one member works on all; revoked on another, it gets 401 from every member', async () => {
  const created = await call(2, 'POST', USER_TOKENS, admin, { user: 'fleet-ops', groups: ['system:masters'], ttlSeconds: 3600 });
  assert.is(created.status, 201, JSON.stringify(created.json));
  const token = created.json.token as string;
  await everyMember(token, 200, 'the user token works on every member');

  const revoked = await call(1, 'DELETE', `${USER_TOKENS}/fleet-ops`, admin);
  assert.is(revoked.status, 200, JSON.stringify(revoked.json));
  assert.is((await call(1, 'GET', '/api/v1/namespaces', token)).status, 401, 'the member that revoked it refuses it at once');
  await everyMember(token, 401, 'the revoked token gets 401 from every member');
  await everyMember(admin, 200, 'the admin token works on');
});

test('rotate admin on a follower: the old admin token gets 401 from every member, the new one works on all; an old admin-token file on a new leader does not revive it', async () => {
  const leaderId = (await call(0, 'GET', '/cluster/status', admin)).json.leader as number;
  const ids = await Promise.all(servers.map(async (_, i) => ((await call(i, 'GET', '/cluster/status', admin)).json as unknown as Status).memberId));
  const follower = ids.findIndex((id) => id !== leaderId);
  const rotated = await call(follower, 'POST', `${USER_TOKENS}/admin/rotate`, admin);
  assert.is(rotated.status, 200, JSON.stringify(rotated.json));
  const next = rotated.json.token as string;
  assert.is((await call(follower, 'GET', '/api/v1/namespaces', admin)).status, 401, 'refused at once by the member that rotated it');
  await everyMember(admin, 401, 'the old admin token gets 401 from every member');
  await everyMember(next, 200, 'the new admin token works on every member');

  // A member other than the first (which made the cluster) gets the first's old admin-token file, restarts, and
  // is made leader: its bootstrap must leave the rotated admin token alone.
  const other = [1, 2].find((i) => ids[i] !== leaderId) ?? 1;
  copyFileSync(join(servers[0]!.dataDir, 'admin-token'), join(servers[other]!.dataDir, 'admin-token'));
  await servers[other]!.kill();
  await servers[other]!.start();
  const transfer = runCli(['cluster', 'transfer', String(ids[other]), '--server', servers[0]!.url, '--token', next, '--ca', servers[0]!.caPath], {});
  assert.is(transfer.code, 0, transfer.stderr);
  await eventually('the member with the old file leads', async () => ((await call(0, 'GET', '/cluster/status', next)).json.leader as number) === ids[other]);
  await eventually('its bootstrap saw the file is not the admin token', () => /no longer holds the cluster's admin token/.test(servers[other]!.output), { detail: () => servers[other]!.output.slice(-2000) });
  assert.equal(await statuses(admin), [401, 401, 401], 'the old admin token stays refused everywhere');
  assert.equal(await statuses(next), [200, 200, 200]);
});

test.run();
