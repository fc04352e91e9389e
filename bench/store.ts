// Replicated store benchmark: M real `flotilla server` processes on 127.0.0.1..M, W concurrent writers spread
// over all members for D seconds; the leader is SIGKILLed halfway (when M > 1) and the time until the next
// successful write is the failover figure. Afterwards every acknowledged write must be on every member.
// Also measures what the SD card sees: bytes the server processes wrote to storage (/proc/PID/io) per 1,000
// small writes, and over an idle period (heartbeats must not be durable writes).
// What TLS costs: the whole run is made twice, over HTTPS and over the benchmark-only plain HTTP of the same build
// (ServerConfig.transport), alternating, R runs each; the TLS figures of the median run come first, the plain
// ones under "plain", and tlsThroughputRatio is TLS writes/s over plain writes/s (goal: >= 0.9).
// Usage: node dist/bench/store.js [--members 3] [--writers 64] [--seconds 30] [--idle-seconds 10] [--kill 1|0] [--runs 1]
// Last line: one JSON object.
import { cpSync, mkdirSync, mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ServerProcess } from '../test/support/server-process.js';
import { ApiClient, ApiClientError } from '../client/client.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const members = flag('members', 3);
const writers = flag('writers', 64);
const seconds = flag('seconds', 30);
const idleSeconds = flag('idle-seconds', 10);
const killLeader = flag('kill', 1) === 1;
const runs = flag('runs', 1);

interface StoreResult {
  bench: 'store'; members: number; writers: number; seconds: number; writes: number; writesPerSec: number; p50Ms: number; p99Ms: number;
  failedRequests: number; failoverMs: number | null; lostAcknowledged: number; bytesPer1000Writes: number; idleBytesWritten: number; idleSeconds: number;
}

async function measure(transport: 'https' | 'http-for-benchmarks'): Promise<StoreResult> {
  // Data on the real disk (not tmpfs), so that /proc/PID/io counts what a card would see.
  const dir = mkdtempSync(join(process.cwd(), '.bench-store-'));
  const servers: ServerProcess[] = [];
  for (let i = 0; i < members; i++) {
    const host = `127.0.0.${i + 1}`;
    const extra = i === 0 ? [] : ['--join', servers[0]!.url, '--token', servers[0]!.serverToken];
    // Over plain HTTP a joiner cannot receive the CA through a pinned TLS connection: it is given a copy.
    if (i > 0 && transport !== 'https') {
      mkdirSync(join(dir, `m${i}`, 'pki'), { recursive: true });
      for (const f of ['ca.crt', 'ca.key']) cpSync(join(dir, 'm0', 'pki', f), join(dir, `m${i}`, 'pki', f));
    }
    const s = new ServerProcess(join(dir, `m${i}`), host, 0, extra, transport);
    await s.start();
    servers.push(s);
  }
  const token = servers[0]!.token;
  const clients = servers.map((s) => new ApiClient(s.url, token, { tls: s.tls, timeoutMs: 10_000 }));
  interface Status { leader: number; members: { id: number; role: string; peerUrl: string }[] }
  async function clusterStatus(): Promise<Status> {
    for (const c of clients) { try { return await c.request<Status>('GET', '/cluster/status'); } catch { /* next */ } }
    throw new Error('no member answers /cluster/status');
  }
  while (members > 1 && (await clusterStatus()).members.filter((m) => m.role === 'voter').length < members) await new Promise((r) => setTimeout(r, 100));

  function writtenBytes(): number {
    let total = 0;
    for (const s of servers) {
      if (!s.child?.pid || s.child.exitCode !== null || s.child.signalCode !== null) continue;
      const io = readFileSync(`/proc/${s.child.pid}/io`, 'utf8');
      total += Number(/write_bytes:\s+(\d+)/.exec(io)?.[1] ?? 0);
    }
    return total;
  }

  const cm = (name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { bench: 'store' } }, data: { k: name } });

  // SD-card figures first, on the healthy cluster.
  await new Promise((r) => setTimeout(r, 1000));
  const idleStart = writtenBytes();
  await new Promise((r) => setTimeout(r, idleSeconds * 1000));
  const idleBytes = writtenBytes() - idleStart;
  const smallStart = writtenBytes();
  for (let i = 0; i < 1000; i += 10) await Promise.all(Array.from({ length: 10 }, (_, j) => clients[0]!.request('POST', '/api/v1/namespaces/default/configmaps', cm(`sd-${i + j}`))));
  const bytesPer1000Writes = writtenBytes() - smallStart;

  // Load, with the leader killed halfway.
  const latencies: number[] = [];
  const acknowledged = new Set<string>();
  let failures = 0;
  let killedAt = 0;
  let failoverMs: number | undefined;
  const deadline = Date.now() + seconds * 1000;
  const started = performance.now();
  const killer = members > 1 && killLeader ? (async () => {
    await new Promise((r) => setTimeout(r, (seconds * 1000) / 2));
    const st = await clusterStatus();
    const leaderUrl = st.members.find((m) => m.id === st.leader)?.peerUrl;
    const victim = servers.find((s) => s.url === leaderUrl);
    if (!victim) throw new Error('leader not found among the members');
    killedAt = Date.now();
    await victim.kill('SIGKILL');
  })() : Promise.resolve();
  await Promise.all(Array.from({ length: writers }, async (_, w) => {
    // Each writer starts on one member and moves to the next when its member stops answering, as a client
    // holding every server URL does.
    let target = w % members;
    for (let i = 0; Date.now() < deadline; i++) {
      const client = clients[target]!;
      const name = `w-${w}-${i}`;
      const t0 = performance.now();
      const sentAt = Date.now();
      try {
        await client.request('POST', '/api/v1/namespaces/default/configmaps', cm(name));
        const t1 = performance.now();
        latencies.push(t1 - t0);
        acknowledged.add(name);
        // Failover: the first write sent after the kill that succeeds.
        if (killedAt && sentAt >= killedAt && failoverMs === undefined) failoverMs = Date.now() - killedAt;
      } catch (err) {
        if (!(err instanceof ApiClientError)) throw err;
        failures++;
        if (err.code === 0) target = (target + 1) % members;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
  }));
  await killer;
  const elapsed = (performance.now() - started) / 1000;

  // Every acknowledged write must be on every live member.
  let lost = 0;
  for (let i = 0; i < members; i++) {
    const s = servers[i]!;
    if (s.child?.exitCode !== null || s.child?.signalCode !== null) continue;
    let missing = acknowledged.size;
    for (let attempt = 0; attempt < 50 && missing > 0; attempt++) {
      try {
        const list = await clients[i]!.request<{ items: { metadata: { name: string } }[] }>('GET', '/api/v1/namespaces/default/configmaps?labelSelector=bench%3Dstore&consistency=stale');
        const have = new Set(list.items.map((o) => o.metadata.name));
        missing = [...acknowledged].filter((n) => !have.has(n)).length;
      } catch { /* retry */ }
      if (missing > 0) await new Promise((r) => setTimeout(r, 200));
    }
    lost = Math.max(lost, missing);
  }
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => Number((latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0).toFixed(2));
  for (const c of clients) c.close();
  for (const s of servers) await s.kill('SIGTERM');
  rmSync(dir, { recursive: true, force: true });
  return {
    bench: 'store', members, writers, seconds, writes: acknowledged.size, writesPerSec: Math.round(acknowledged.size / elapsed),
    p50Ms: pct(0.5), p99Ms: pct(0.99), failedRequests: failures, failoverMs: failoverMs ?? null, lostAcknowledged: lost,
    bytesPer1000Writes, idleBytesWritten: idleBytes, idleSeconds,
  };
}

const medianRun = (results: StoreResult[]) => [...results].sort((a, b) => a.writesPerSec - b.writesPerSec)[results.length >> 1]!;
const tls: StoreResult[] = [];
const plain: StoreResult[] = [];
for (let r = 0; r < runs; r++) {
  // Alternating, so that a slow phase of the machine hits both sides alike.
  tls.push(await measure('https'));
  plain.push(await measure('http-for-benchmarks'));
}
const tlsMedian = medianRun(tls);
const plainMedian = medianRun(plain);
console.log(JSON.stringify({
  ...tlsMedian, runs, tlsRuns: tls.map((r) => r.writesPerSec),
  plain: { writesPerSec: plainMedian.writesPerSec, p50Ms: plainMedian.p50Ms, p99Ms: plainMedian.p99Ms, failoverMs: plainMedian.failoverMs, lostAcknowledged: plainMedian.lostAcknowledged, runs: plain.map((r) => r.writesPerSec) },
  tlsThroughputRatio: Number((tlsMedian.writesPerSec / plainMedian.writesPerSec).toFixed(3)),
}));
