// `flotilla cluster remove` against real server processes: one operation that either completes (the answer is
// 2xx only once the member is out of the configuration and its record is gone) or changes nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerProcess, runCli } from '../support/server-process.js';
import { eventually } from '../support/eventually.js';
import { ApiClient } from '../../client/client.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { MEMBERS_RESOURCE } from '../../server/objects/service.js';

interface Status { leader: number; memberId: number; members: { id: number; role: string; peerUrl?: string }[] }

/** Starts `n` members (the first bootstraps, the others join it), runs `body`, and stops them all. */
async function withCluster(n: number, body: (servers: ServerProcess[], token: string) => Promise<void>): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-membership-'));
  const servers: ServerProcess[] = [];
  try {
    for (let i = 0; i < n; i++) {
      const host = `127.0.0.${i + 1}`;
      const s = new ServerProcess(join(dir, `m${i}`), host, 0, i === 0 ? [] : ['--join', servers[0]!.url, '--token', servers[0]!.serverToken]);
      servers.push(s);
      await s.start();
    }
    await body(servers, servers[0]!.token);
  } finally {
    for (const s of servers) await s.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

async function status(s: ServerProcess, token: string): Promise<Status> {
  const c = new ApiClient(s.url, token, { tls: s.tls, timeoutMs: 5_000 });
  try { return await c.request<Status>('GET', '/cluster/status'); } finally { c.close(); }
}

/** Whether a stopped member's state holds the member record of `id`. */
function hasRecord(s: ServerProcess, id: number): boolean {
  const store = new SqliteStore({ path: join(s.dataDir, 'state.db') });
  try { return store.get(MEMBERS_RESOURCE, '', String(id)) !== undefined; } finally { store.close(); }
}

test('removing the only voter is refused with the reason, and the member and its record stay', async () => {
  await withCluster(1, async ([only], token) => {
    // The leader writes its own member record just after it is elected (and /readyz answers).
    const self = await eventually('the member record', async () => {
      const st = await status(only!, token);
      return st.members[0]?.peerUrl === only!.url ? st.memberId : undefined;
    });
    const r = runCli(['cluster', 'remove', String(self), '--server', only!.url, '--token', token, '--ca', only!.caPath], {});
    assert.is(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr, new RegExp(`member ${self} was not removed, nothing was changed: raft proposal dropped: removing ${self} would leave no voter`));
    const after = await status(only!, token);
    assert.equal(after.members.map((m) => [m.id, m.role, m.peerUrl]), [[self, 'voter', only!.url]], 'the member record is intact');
    await only!.kill('SIGTERM');
    assert.ok(hasRecord(only!, self));
  });
});

test('a removal asked of a follower answers only once it is done: out of the configuration, record gone', async () => {
  await withCluster(3, async (servers, token) => {
    const st = await eventually('three voters and a leader', async () => {
      const s = await status(servers[0]!, token);
      return s.leader !== 0 && s.members.filter((m) => m.role === 'voter').length === 3 ? s : undefined;
    });
    const leader = servers.find((s) => s.url === st.members.find((m) => m.id === st.leader)!.peerUrl)!;
    const [asked, victim] = servers.filter((s) => s !== leader) as [ServerProcess, ServerProcess];
    const victimId = st.members.find((m) => m.peerUrl === victim.url)!.id;
    const r = runCli(['cluster', 'remove', String(victimId), '--server', asked.url, '--token', token, '--ca', asked.caPath], {});
    assert.is(r.code, 0, r.stdout + r.stderr);
    assert.is(r.stdout, `member ${victimId} removed\n`);
    // No waiting: the answer came after the change was applied on the leader.
    const after = await status(leader, token);
    assert.equal(after.members.map((m) => m.id).sort(), st.members.map((m) => m.id).filter((id) => id !== victimId).sort());
    const again = runCli(['cluster', 'remove', String(victimId), '--server', asked.url, '--token', token, '--ca', asked.caPath], {});
    assert.is(again.code, 1);
    assert.match(again.stderr, new RegExp(`member ${victimId} is not in the cluster`));
    await leader.kill('SIGTERM');
    assert.not.ok(hasRecord(leader, victimId), 'the leader no longer holds the member record');
  });
});

test.run();
