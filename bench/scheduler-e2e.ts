// End to end through the API: N nodes registered on a real `flotilla server` process (heartbeating through
// the Lease API, no agents), then M pending pods created; measures until every pod is bound by the leader's
// scheduler. Usage: node dist/bench/scheduler-e2e.js [--nodes 100] [--pods 1000]
// Last line: {"bench":"scheduler-e2e","nodes":..,"pods":..,"createSeconds":..,"bindSeconds":..,"bindPodsPerSec":..,"unbound":..}
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ServerProcess } from '../test/support/server-process.js';
import { ApiClient } from '../client/client.js';

function flag(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}
const nodeCount = flag('nodes', 100);
const podCount = flag('pods', 1000);
const dir = mkdtempSync(join(process.cwd(), '.bench-sched-'));
const server = new ServerProcess(join(dir, 'data'), '127.0.0.1');
await server.start();
const api = new ApiClient(server.url, server.token, { tls: server.tls, timeoutMs: 60_000 });
const names = Array.from({ length: nodeCount }, (_, i) => `hollow-${i}`);
async function inParallel<T>(items: T[], width: number, f: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => { while (next < items.length) await f(items[next++]!); }));
}
await inParallel(names, 16, (name) => api.request('POST', '/api/v1/nodes', {
  apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/arch': 'amd64' } },
  status: { capacity: { cpu: '8', memory: '32Gi', pods: '110' }, allocatable: { cpu: '8', memory: '32Gi', pods: '110' }, conditions: [{ type: 'Ready', status: 'True' }] },
}));
const beat = () => inParallel(names, 16, (n) => api.request('PUT', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${n}`, { spec: { holderIdentity: n } }));
await beat();
const beating = setInterval(() => { void beat().catch(() => {}); }, 5000);
const started = performance.now();
await inParallel(Array.from({ length: podCount }, (_, i) => i), 32, (i) => api.request('POST', '/api/v1/namespaces/default/pods', {
  apiVersion: 'v1', kind: 'Pod', metadata: { name: `p-${i}`, labels: { bench: 'e2e' } },
  spec: { containers: [{ name: 'c', image: 'flotilla/testbox:latest', resources: { limits: { cpu: '100m', memory: '128Mi' } } }] },
}));
const created = performance.now();
let unbound = podCount;
const deadline = Date.now() + 120_000;
while (Date.now() < deadline) {
  const list = await api.request<{ items: { spec: { nodeName?: string } }[] }>('GET', '/api/v1/namespaces/default/pods?labelSelector=bench%3De2e&fieldSelector=spec.nodeName%3D');
  unbound = list.items.length;
  if (unbound === 0) break;
  await new Promise((r) => setTimeout(r, 50));
}
const bound = performance.now();
clearInterval(beating);
api.close();
await server.kill('SIGTERM');
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({
  bench: 'scheduler-e2e', nodes: nodeCount, pods: podCount,
  createSeconds: Number(((created - started) / 1000).toFixed(2)),
  bindSeconds: Number(((bound - started) / 1000).toFixed(2)),
  bindPodsPerSec: Math.round(podCount / ((bound - started) / 1000)),
  unbound,
}));
