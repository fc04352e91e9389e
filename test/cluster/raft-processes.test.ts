// Three real `flotilla server` processes on 127.0.0.1-3, a write load through all of them, and SIGKILL.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, cpSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerProcess, runCli } from '../support/server-process.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';
import { ApiClient, ApiClientError } from '../../client/client.js';

interface Status { leader: number; memberId: number; role: string; commitIndex: number; members: { id: number; role: string; peerUrl: string }[] }

const hosts = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
const servers: ServerProcess[] = [];
const clients: ApiClient[] = [];
let dir!: string;
let adminToken!: string;
setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-raft-'));
  const first = new ServerProcess(join(dir, 'm0'), hosts[0]!);
  servers.push(first);
  await first.start();
  adminToken = first.token;
  for (let i = 1; i < 3; i++) {
    const s = new ServerProcess(join(dir, `m${i}`), hosts[i]!, 0, ['--join', first.url, '--token', first.serverToken]);
    servers.push(s);
    await s.start();
  }
  clients.push(...servers.map((s) => new ApiClient(s.url, adminToken, { tls: s.tls, timeoutMs: 5_000 })));
}, async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function status(i: number): Promise<Status> {
  return clients[i]!.request<Status>('GET', '/cluster/status');
}

const cm = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { load: 'yes' } }, data: { v: name } });

/** Writers spread over the given members; records every write that was acknowledged with 2xx. */
function writeLoad(targets: number[], acknowledged: Set<string>, prefix: string): { stop: () => Promise<void> } {
  let stopped = false;
  const loops = targets.flatMap((t) => Array.from({ length: 4 }, async (_, w) => {
    for (let i = 0; !stopped && i < 5_000; i++) {
      const name = `${prefix}-${t}-${w}-${i}`;
      try {
        await clients[t]!.request('POST', '/api/v1/namespaces/default/configmaps', cm(name));
        acknowledged.add(name);
      } catch (err) {
        if (!(err instanceof ApiClientError)) throw err;
        await new Promise((r) => setTimeout(r, 20)); // pacing: a writer whose member is down does not spin
      }
    }
  }));
  return { stop: async () => { stopped = true; await Promise.all(loops); } };
}

async function namesOn(i: number): Promise<Set<string>> {
  const list = await clients[i]!.request<{ items: { metadata: { name: string } }[] }>('GET', '/api/v1/namespaces/default/configmaps?labelSelector=load%3Dyes&consistency=stale');
  return new Set(list.items.map((o) => o.metadata.name));
}

async function allHave(acknowledged: Set<string>, members: number[]): Promise<void> {
  for (const i of members) {
    let missing: string[] = [...acknowledged];
    await eventually(`member ${i} has all ${acknowledged.size} acknowledged writes`, async () => {
      const have = await namesOn(i);
      missing = [...acknowledged].filter((n) => !have.has(n));
      return missing.length === 0;
    }, { limitMs: 60_000, everyMs: 200, detail: () => `it lacks ${missing.length}, e.g. ${missing.slice(0, 10).join(', ')}` });
  }
}

/** Waits until `count` more writes than now are acknowledged: the load runs on for a while, however slow. */
function moreWrites(acknowledged: Set<string>, count: number, what: string): Promise<true> {
  const target = acknowledged.size + count;
  return eventually(`${count} more acknowledged writes ${what}`, () => acknowledged.size >= target, 60_000);
}

test('three servers form one cluster: one leader, three voters, any member answers', async () => {
  const st = await eventually('three voters', async () => {
    const s = await status(0);
    return s.members.filter((m) => m.role === 'voter').length === 3 ? s : undefined;
  });
  assert.ok(st.leader !== 0);
  const views = await Promise.all([0, 1, 2].map(status));
  assert.equal(new Set(views.map((v) => v.leader)).size, 1, 'all members agree on the leader');
  const cliStatus = runCli(['cluster', 'status', '--server', servers[1]!.url, '--token', adminToken, '--ca', servers[1]!.caPath], {});
  assert.is(cliStatus.code, 0, cliStatus.stderr);
  assert.match(cliStatus.stdout, /^MEMBER\s+ROLE\s+LEADER\s+MATCH\s+HEALTHY\s+URL$/m);
  assert.is((cliStatus.stdout.match(/ voter /g) ?? []).length, 3);
  await clients[2]!.request('POST', '/api/v1/namespaces/default/configmaps', cm('through-follower'));
  assert.is((await clients[1]!.request<{ data: { v: string } }>('GET', '/api/v1/namespaces/default/configmaps/through-follower')).data.v, 'through-follower');
});

test('cluster transfer hands leadership to another voter', async () => {
  const before = await status(0);
  const target = before.members.find((m) => m.id !== before.leader && m.role === 'voter')!;
  const r = runCli(['cluster', 'transfer', String(target.id), '--server', servers[2]!.url, '--token', adminToken, '--ca', servers[2]!.caPath], {});
  assert.is(r.code, 0, r.stderr);
  const after = await eventually('the new leader', async () => { const s = await status(0); return s.leader === target.id ? s : undefined; });
  assert.is(after.leader, target.id);
  await clients[0]!.request('POST', '/api/v1/namespaces/default/configmaps', cm('after-transfer'));
});

test('SIGKILL of the leader under load: a new leader takes writes, and no acknowledged write is lost', async () => {
  const st = await status(0);
  const leaderIdx = [0, 1, 2].find((i) => servers[i]!.url === st.members.find((m) => m.id === st.leader)?.peerUrl)!;
  assert.ok(leaderIdx !== undefined);
  const others = [0, 1, 2].filter((i) => i !== leaderIdx);
  const acknowledged = new Set<string>();
  const load = writeLoad([0, 1, 2], acknowledged, 'a');
  await moreWrites(acknowledged, 300, 'before the kill');
  await servers[leaderIdx]!.kill('SIGKILL');
  const killedAt = Date.now();
  await eventually('a write accepted after the kill', async () => {
    await clients[others[0]!]!.request('POST', '/api/v1/namespaces/default/configmaps', cm(`after-kill-${Date.now()}`));
    return true;
  });
  console.log(`# new leader accepted a write ${Date.now() - killedAt} ms after SIGKILL of the leader`);
  await moreWrites(acknowledged, 100, 'under the new leader');
  await load.stop();
  await servers[leaderIdx]!.start();
  await allHave(acknowledged, [0, 1, 2]);
});

test('a follower killed and restarted from an old copy of its data catches up', async () => {
  const st = await status(0);
  const followerIdx = [0, 1, 2].find((i) => servers[i]!.url !== st.members.find((m) => m.id === st.leader)?.peerUrl)!;
  const follower = servers[followerIdx]!;
  await follower.kill('SIGTERM');
  const oldCopy = join(dir, 'old-copy');
  cpSync(follower.dataDir, oldCopy, { recursive: true });
  await follower.start();
  const acknowledged = new Set<string>();
  const load = writeLoad([0, 1, 2], acknowledged, 'b');
  await moreWrites(acknowledged, 300, 'after the copy');
  await follower.kill('SIGKILL');
  rmSync(follower.dataDir, { recursive: true, force: true });
  cpSync(oldCopy, follower.dataDir, { recursive: true });
  await moreWrites(acknowledged, 100, 'while the follower is down');
  await load.stop();
  await follower.start();
  await allHave(acknowledged, [followerIdx]);
});

test('cluster remove takes a member out; the other two keep taking writes', async () => {
  const st = await status(0);
  const victim = st.members.find((m) => m.id !== st.leader)!;
  const r = runCli(['cluster', 'remove', String(victim.id), '--server', servers[0]!.url, '--token', adminToken, '--ca', servers[0]!.caPath], {});
  assert.is(r.code, 0, r.stderr);
  const after = await eventually('two voters', async () => {
    const s = await status([0, 1, 2].find((i) => servers[i]!.url !== victim.peerUrl)!);
    return s.members.length === 2 ? s : undefined;
  });
  assert.not.ok(after.members.some((m) => m.id === victim.id));
  const live = [0, 1, 2].find((i) => servers[i]!.url !== victim.peerUrl)!;
  await clients[live]!.request('POST', '/api/v1/namespaces/default/configmaps', cm('after-remove'));
  const bad = runCli(['cluster', 'remove', 'abc', '--server', servers[live]!.url, '--token', adminToken, '--ca', servers[live]!.caPath], {});
  assert.is(bad.code, 2);
});

test('a member joining after the log was compacted is brought up by a streamed snapshot', async () => {
  const small = new ServerProcess(join(dir, 's0'), '127.0.0.4', 0, ['--snapshot-every', '40']);
  let late: ServerProcess | undefined;
  let c: ApiClient | undefined;
  let lc: ApiClient | undefined;
  try {
    await small.start();
    c = new ApiClient(small.url, small.token, { tls: small.tls, timeoutMs: 5_000 });
    for (let i = 0; i < 150; i++) await c.request('POST', '/api/v1/namespaces/default/configmaps', cm(`snap-${i}`));
    late = new ServerProcess(join(dir, 's1'), '127.0.0.5', 0, ['--join', small.url, '--token', small.serverToken, '--snapshot-every', '40']);
    await late.start();
    lc = new ApiClient(late.url, small.token, { tls: late.tls, timeoutMs: 5_000 });
    const names = await eventually('the snapshot to arrive', async () => {
      const list = await lc!.request<{ items: { metadata: { name: string } }[] }>('GET', '/api/v1/namespaces/default/configmaps?consistency=stale&labelSelector=load%3Dyes');
      const have = list.items.filter((o) => o.metadata.name.startsWith('snap-'));
      return have.length === 150 ? have : undefined;
    });
    assert.is(names.length, 150);
    assert.ok(readdirSync(join(late!.dataDir, 'snapshots')).length > 0, 'the late member received a snapshot file');
    await lc.request('POST', '/api/v1/namespaces/default/configmaps', cm('after-snapshot'));
  } finally {
    c?.close(); lc?.close();
    await late?.kill('SIGTERM'); await small.kill('SIGTERM');
  }
});

test.run();
