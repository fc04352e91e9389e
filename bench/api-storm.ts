// Request storm against one real `flotilla server` process on loopback: W concurrent writers for D seconds,
// each creating ConfigMaps over keep-alive HTTPS. Then every acknowledged (201) write is read back.
// What TLS costs: each run is made twice, against a server over HTTPS and one over the benchmark-only plain
// HTTP of the same build (ServerConfig.transport), alternating, R runs each; the figures are the medians, and
// tlsThroughputRatio is TLS writes/s over plain writes/s (goal: >= 0.9).
// Usage: node dist/bench/api-storm.js [--writers 200] [--seconds 10] [--runs 3]
// Last line: {"bench":"api-storm","writers":..,"seconds":..,"runs":..,"writes":..,"writesPerSec":..,"p50Ms":..,"p99Ms":..,"errors5xx":..,"otherErrors":..,"lostAcknowledged":..,"plain":{...},"tlsThroughputRatio":..}
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerProcess } from '../test/support/server-process.js';
import { ApiClient, ApiClientError } from '../client/client.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const writers = flag('writers', 200);
const seconds = flag('seconds', 10);
const runs = flag('runs', 3);

interface StormResult { writes: number; writesPerSec: number; p50Ms: number; p99Ms: number; errors5xx: number; otherErrors: number; lostAcknowledged: number }

async function storm(transport: 'https' | 'http-for-benchmarks'): Promise<StormResult> {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-storm-'));
  const server = new ServerProcess(join(dir, 'data'), '127.0.0.1', 0, [], transport);
  try {
    await server.start();
    const client = new ApiClient(server.url, server.token, { tls: server.tls, timeoutMs: 30_000 });
    const latencies: number[] = [];
    const acknowledged: string[] = [];
    let errors5xx = 0;
    let otherErrors = 0;
    const deadline = Date.now() + seconds * 1000;
    const started = performance.now();
    await Promise.all(Array.from({ length: writers }, async (_, w) => {
      for (let i = 0; Date.now() < deadline; i++) {
        const name = `storm-${w}-${i}`;
        const t0 = performance.now();
        try {
          await client.request('POST', '/api/v1/namespaces/default/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, labels: { bench: 'storm' } }, data: { writer: String(w), seq: String(i) } });
          latencies.push(performance.now() - t0);
          acknowledged.push(name);
        } catch (err) {
          if (err instanceof ApiClientError && err.code >= 500) errors5xx++;
          else otherErrors++;
        }
      }
    }));
    const elapsed = (performance.now() - started) / 1000;
    const list = await client.request<{ items: { metadata: { name: string } }[] }>('GET', '/api/v1/namespaces/default/configmaps?labelSelector=bench%3Dstorm');
    const stored = new Set(list.items.map((o) => o.metadata.name));
    latencies.sort((a, b) => a - b);
    const pct = (p: number) => Number((latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0).toFixed(2));
    client.close();
    return {
      writes: acknowledged.length, writesPerSec: Math.round(acknowledged.length / elapsed), p50Ms: pct(0.5), p99Ms: pct(0.99), errors5xx, otherErrors,
      lostAcknowledged: acknowledged.filter((n) => !stored.has(n)).length,
    };
  } finally {
    await server.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The run with the median writes/s. */
function medianRun(results: StormResult[]): StormResult {
  return [...results].sort((a, b) => a.writesPerSec - b.writesPerSec)[results.length >> 1]!;
}

const tls: StormResult[] = [];
const plain: StormResult[] = [];
for (let r = 0; r < runs; r++) {
  // Alternating, so that a slow phase of the machine hits both sides alike.
  tls.push(await storm('https'));
  plain.push(await storm('http-for-benchmarks'));
}
const tlsMedian = medianRun(tls);
const plainMedian = medianRun(plain);
console.log(JSON.stringify({
  bench: 'api-storm', writers, seconds, runs, ...tlsMedian,
  tlsRuns: tls.map((r) => r.writesPerSec), plain: { ...plainMedian, runs: plain.map((r) => r.writesPerSec) },
  tlsThroughputRatio: Number((tlsMedian.writesPerSec / plainMedian.writesPerSec).toFixed(3)),
}));
