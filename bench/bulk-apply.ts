// `flotilla apply -f` and `flotilla delete -f` of one file of N ConfigMaps (a multi-document YAML), each the real
// CLI as a user runs it, against one real `flotilla server` process over HTTPS. Objects per second are N over the
// CLI's whole run (process start, reading and validating the file, every request, until it exits); R runs,
// medians reported. Every run must create, and then delete, all N (each line of output checked, and the
// namespace counted empty after the delete).
// Usage: node dist/bench/bulk-apply.js [--objects 20000] [--runs 3]
// Last line: {"bench":"bulk-apply","objects":..,"runs":..,"applyPerSec":..,"deletePerSec":..,"applySeconds":[..],"deleteSeconds":[..],"goalPerSec":2000}
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerProcess, flotillaBin } from '../test/support/server-process.js';
import { ApiClient } from '../client/client.js';
import { median, numberArg } from './args.js';

/** What issue 16 asks of bulk apply on the machines the project runs on. */
const GOAL_PER_SEC = 2000;
const NAMESPACE = 'bulk';

/** Runs the CLI; resolves with its output once it exits 0, rejects otherwise. */
function cli(args: string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [flotillaBin, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.once('error', reject);
    child.once('exit', (code) => {
      if (code === 0) resolve(Buffer.concat(out).toString());
      else reject(new Error(`flotilla ${args[0]} exited ${code}: ${Buffer.concat(err).toString().slice(0, 2000)}`));
    });
  });
}

function expectLines(output: string, n: number, suffix: string): void {
  const lines = output.split('\n').filter((l) => l !== '');
  const bad = lines.findIndex((l, i) => l !== `configmap/cm-${i} ${suffix}`);
  if (lines.length !== n || bad >= 0) throw new Error(`expected ${n} lines "configmap/cm-I ${suffix}", got ${lines.length}${bad >= 0 ? `; line ${bad + 1}: ${lines[bad]}` : ''}`);
}

async function main(): Promise<void> {
  const objects = numberArg('--objects', 20_000);
  const runs = numberArg('--runs', 3);
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-bulk-'));
  const server = new ServerProcess(join(dir, 'data'), '127.0.0.1');
  try {
    await server.start();
    const admin = new ApiClient(server.url, server.token, { tls: server.tls });
    await admin.request('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NAMESPACE } });
    const file = join(dir, 'configmaps.yaml');
    const docs: string[] = [];
    for (let i = 0; i < objects; i++) docs.push(`apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cm-${i}\n  namespace: ${NAMESPACE}\n  labels:\n    bench: bulk-apply\ndata:\n  index: "${i}"\n  text: value of entry ${i}\n`);
    writeFileSync(file, docs.join('---\n'));
    const applySeconds: number[] = [];
    const deleteSeconds: number[] = [];
    for (let run = 0; run < runs; run++) {
      let t0 = performance.now();
      expectLines(await cli(['apply', '-f', file], server.cliEnv), objects, 'created');
      applySeconds.push((performance.now() - t0) / 1000);
      t0 = performance.now();
      expectLines(await cli(['delete', '-f', file], server.cliEnv), objects, 'deleted');
      deleteSeconds.push((performance.now() - t0) / 1000);
      // Only the bench's own: every namespace also holds the cluster's kube-root-ca.crt.
      const left = (await admin.request<{ items: unknown[] }>('GET', `/api/v1/namespaces/${NAMESPACE}/configmaps?labelSelector=bench%3Dbulk-apply`)).items.length;
      if (left !== 0) throw new Error(`${left} ConfigMaps left after delete -f`);
    }
    admin.close();
    const round = (x: number) => Math.round(x * 100) / 100;
    console.log(JSON.stringify({
      bench: 'bulk-apply', objects, runs,
      applyPerSec: Math.round(objects / median(applySeconds)), deletePerSec: Math.round(objects / median(deleteSeconds)),
      applySeconds: applySeconds.map(round), deleteSeconds: deleteSeconds.map(round), goalPerSec: GOAL_PER_SEC,
    }));
  } finally {
    await server.kill('SIGTERM');
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
