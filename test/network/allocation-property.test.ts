// Allocation property over three real `flotilla server` processes: random creates and deletes of Services, with
// and without requested ClusterIPs and NodePorts, sent to every member, while the leader is SIGKILLed and
// restarted. Afterwards, on every replica's SQLite state: no ClusterIP or NodePort is held by two Services, and
// the allocation rows are exactly the values the surviving Services hold (no leak, no missing row).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { ServerProcess } from '../support/server-process.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';
import { ApiClient, ApiClientError } from '../../client/client.js';
import { ALLOCATIONS_RESOURCE } from '../../server/network/allocator.js';
import type { Service } from '../../api-types/index.js';
import { seededRandom } from '../scheduler/cluster-gen.js';

const hosts = ['127.0.0.1', '127.0.0.2', '127.0.0.3'];
const servers: ServerProcess[] = [];
const clients: ApiClient[] = [];
let dir!: string;
setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-alloc-prop-'));
  const flags = ['--service-cidr', '10.43.0.0/26', '--service-node-port-range', '30000-30040'];
  const first = new ServerProcess(join(dir, 'm0'), hosts[0]!, 0, flags);
  servers.push(first);
  await first.start();
  for (let i = 1; i < 3; i++) {
    const s = new ServerProcess(join(dir, `m${i}`), hosts[i]!, 0, ['--join', first.url, '--token', first.serverToken, ...flags]);
    servers.push(s);
    await s.start();
  }
  clients.push(...servers.map((s) => new ApiClient(s.url, first.token, { tls: first.tls, timeoutMs: 5_000 })));
}, async () => {
  for (const c of clients) c.close();
  for (const s of servers) await s.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function leaderIndex(): Promise<number> {
  return eventually('a leader', async () => {
    for (const [i, c] of clients.entries()) {
      if (servers[i]!.child?.exitCode !== null || servers[i]!.child?.signalCode !== null) continue;
      const st = await c.request<{ leader: number; members: { id: number; peerUrl: string }[] }>('GET', '/cluster/status').catch(() => undefined);
      const url = st?.members.find((m) => m.id === st.leader)?.peerUrl;
      const idx = servers.findIndex((s) => s.url === url);
      if (idx >= 0) return idx;
    }
    return undefined;
  }, 30_000);
}

function load(seed: number, counts: { ok: number; refused: number; failed: number }): { stop: () => Promise<void> } {
  let stopped = false;
  const next = seededRandom(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
  const workers = Array.from({ length: 6 }, async (_, w) => {
    while (!stopped) {
      const client = clients[w % 3]!;
      const name = `s${Math.floor(next() * 40)}`;
      try {
        if (next() < 0.35) {
          await client.request('DELETE', `/api/v1/namespaces/default/services/${name}`);
        } else {
          const nodePort = next() < 0.4;
          const spec = {
            ...(next() < 0.3 ? { clusterIP: `10.43.0.${2 + Math.floor(next() * 20)}` } : {}),
            ...(nodePort ? { type: 'NodePort' } : {}),
            ports: [{ port: 80, ...(nodePort && next() < 0.5 ? { nodePort: 30000 + Math.floor(next() * 20) } : {}) }],
          };
          await client.request('POST', '/api/v1/namespaces/default/services', { apiVersion: 'v1', kind: 'Service', metadata: { name }, spec });
        }
        counts.ok++;
      } catch (err) {
        if (err instanceof ApiClientError && err.code >= 400 && err.code < 500) counts.refused++;
        else counts.failed++;
        await new Promise((r) => setTimeout(r, 10 + pick([0, 20, 50])));
      }
    }
  });
  return { stop: async () => { stopped = true; await Promise.all(workers); } };
}

interface Replica { services: { name: string; uid: string; ip?: string; ports: number[] }[]; rows: { pool: string; key: string; uid: string }[] }

function readReplica(dataDir: string): Replica {
  const db = new Database(join(dataDir, 'state.db'), { readonly: true });
  try {
    const bodies = (resource: string) => (db.prepare('SELECT body FROM objects WHERE resource = ?').all(resource) as { body: string }[]).map((r) => JSON.parse(r.body) as Record<string, unknown>);
    const services = bodies('services').map((o) => {
      const s = o as unknown as Service & { metadata: { name: string; uid: string } };
      return { name: `${s.metadata.namespace}/${s.metadata.name}`, uid: s.metadata.uid, ...(s.spec?.clusterIP && s.spec.clusterIP !== 'None' ? { ip: s.spec.clusterIP } : {}), ports: (s.spec?.ports ?? []).flatMap((p) => (p.nodePort ? [p.nodePort] : [])) };
    });
    const rows = bodies(ALLOCATIONS_RESOURCE).filter((o) => o.kind === 'Allocation').map((o) => {
      const meta = o.metadata as { namespace: string; name: string };
      return { pool: meta.namespace, key: meta.name, uid: (o.spec as { uid: string }).uid };
    });
    return { services, rows };
  } finally {
    db.close();
  }
}

test('the kubernetes Service lists every member as an endpoint', async () => {
  const addresses = await eventually('three API servers in default/kubernetes', async () => {
    const ep = await clients[0]!.request<{ subsets?: { addresses?: { ip: string }[]; ports?: { port: number }[] }[] }>('GET', '/api/v1/namespaces/default/endpoints/kubernetes').catch(() => undefined);
    const all = (ep?.subsets ?? []).flatMap((s) => (s.addresses ?? []).flatMap((a) => (s.ports ?? []).map((p) => `${a.ip}:${p.port}`))).sort();
    return all.length === 3 ? all : undefined;
  }, 30_000);
  assert.equal(addresses, servers.map((s) => new URL(s.url).host).sort());
});

test('random Service creates and deletes through every member, leader SIGKILLs: no duplicate, no leak, on every replica', async () => {
  const seed = Number(process.env.FLOTILLA_SEED ?? Date.now() % 1_000_000);
  console.log(`# seed ${seed} (FLOTILLA_SEED replays it)`);
  const counts = { ok: 0, refused: 0, failed: 0 };
  const writes = load(seed, counts);
  try {
    for (let kill = 0; kill < 2; kill++) {
      const target = counts.ok + counts.refused + 150;
      await eventually('the load to make progress', () => counts.ok + counts.refused >= target, 60_000);
      const leader = await leaderIndex();
      await servers[leader]!.kill('SIGKILL');
      await eventually('another leader', async () => (await leaderIndex()) !== leader, 30_000);
      const after = counts.ok + 50;
      await eventually('writes under the new leader', () => counts.ok >= after, 60_000);
      await servers[leader]!.start();
    }
  } finally {
    await writes.stop();
  }
  console.log(`# ${counts.ok} writes ok, ${counts.refused} refused (4xx), ${counts.failed} failed in flight`);
  assert.ok(counts.refused > 0, 'some requests asked for values already held');

  // Every member applies everything the cluster committed, then stops; their state files are compared.
  const final = await clients[0]!.request<{ items: Service[]; metadata: { resourceVersion: string } }>('GET', '/api/v1/namespaces/default/services');
  const revision = Number(final.metadata.resourceVersion);
  for (const c of clients) {
    await eventually('every member caught up', async () => Number((await c.request<{ metadata: { resourceVersion: string } }>('GET', '/api/v1/namespaces/default/services?consistency=stale')).metadata.resourceVersion) >= revision, 30_000);
  }
  for (const s of servers) await s.kill('SIGTERM');
  const replicas = servers.map((s) => readReplica(s.dataDir));
  for (const [i, r] of replicas.entries()) {
    const ips = r.services.flatMap((s) => (s.ip ? [s.ip] : []));
    const ports = r.services.flatMap((s) => [...new Set(s.ports)]);
    assert.is(new Set(ips).size, ips.length, `member ${i}: a ClusterIP held twice`);
    assert.is(new Set(ports).size, ports.length, `member ${i}: a NodePort held twice`);
    const expected = r.services.flatMap((s) => [
      ...(s.ip ? [`service-ips ${s.ip} ${s.uid}`] : []), ...[...new Set(s.ports)].map((p) => `node-ports ${p} ${s.uid}`),
    ]).sort();
    const actual = r.rows.map((row) => `${row.pool} ${row.key} ${row.uid}`).sort();
    assert.equal(actual, expected, `member ${i}: the allocation rows are the surviving Services' values`);
    assert.ok(r.services.length > 1, `member ${i} holds Services`);
  }
  const view = (r: Replica) => r.rows.map((row) => `${row.pool} ${row.key} ${row.uid}`).sort();
  assert.equal(view(replicas[1]!), view(replicas[0]!), 'members 0 and 1 agree');
  assert.equal(view(replicas[2]!), view(replicas[0]!), 'members 0 and 2 agree');
});

test.run();
