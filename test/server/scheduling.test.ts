// The leader's scheduler and controllers against a real `flotilla server` process: nodes registered through the
// API (no agents), pods bound by the wasm scheduler, refusals explained on the pod.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerProcess, runCli } from '../support/server-process.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';
import { ApiClient } from '../../client/client.js';

let dir!: string;
let server!: ServerProcess;
let api!: ApiClient;
let env!: Record<string, string>;
let beat: NodeJS.Timeout | undefined;

function node(name: string, cpu: string, memory: string, gpus: { uuid: string; model: string; memory: string }[] = []) {
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: { name, labels: { 'kubernetes.io/hostname': name, 'kubernetes.io/arch': 'amd64' } },
    status: {
      capacity: { cpu, memory, pods: '110', ...(gpus.length ? { 'nvidia.com/gpu': String(gpus.length) } : {}) },
      allocatable: { cpu, memory, pods: '110', ...(gpus.length ? { 'nvidia.com/gpu': String(gpus.length) } : {}) },
      conditions: [{ type: 'Ready', status: 'True', reason: 'AgentReady' }],
      gpus: gpus.map((g, index) => ({ index, uuid: g.uuid, vendor: 'nvidia', model: g.model, memory: g.memory, health: 'Healthy' })),
    },
  };
}

async function heartbeat(names: string[]): Promise<void> {
  for (const n of names) await api.request('PUT', `/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/${n}`, { spec: { holderIdentity: n, leaseDurationSeconds: 40 } });
}

const pod = (name: string, limits: Record<string, string | number>, annotations: Record<string, string> = {}) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, annotations },
  spec: { containers: [{ name: 'c', image: 'flotilla/testbox:latest', resources: { limits } }] },
});

interface PodView { spec: { nodeName?: string }; metadata: { annotations?: Record<string, string> }; status?: { conditions?: { type: string; status: string; message?: string }[] } }
const getPod = (name: string) => api.request<PodView>('GET', `/api/v1/namespaces/default/pods/${name}`);

const nodes = ['small-1', 'small-2', 'gpu-box'];
setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-sched-'));
  server = new ServerProcess(join(dir, 'data'), '127.0.0.1');
  await server.start();
  api = new ApiClient(server.url, server.token, { tls: server.tls });
  env = { ...server.cliEnv, HOME: join(dir, 'home') };
  await api.request('POST', '/api/v1/nodes', node('small-1', '2', '4Gi'));
  await api.request('POST', '/api/v1/nodes', node('small-2', '2', '4Gi'));
  await api.request('POST', '/api/v1/nodes', node('gpu-box', '16', '64Gi', [
    { uuid: 'GPU-aaaa', model: 'NVIDIA GeForce RTX 4090', memory: '24Gi' },
    { uuid: 'GPU-bbbb', model: 'NVIDIA H100 80GB HBM3', memory: '80Gi' },
  ]));
  await heartbeat(nodes);
  beat = setInterval(() => { void heartbeat(nodes).catch(() => {}); }, 2000);
}, async () => {
  clearInterval(beat);
  api?.close();
  await server?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('a pending pod is bound by the scheduler and an event says where', async () => {
  await api.request('POST', '/api/v1/namespaces/default/pods', pod('plain', { cpu: '500m', memory: '256Mi' }));
  const p = await eventually('binding', async () => ((await getPod('plain')).spec.nodeName ? getPod('plain') : undefined));
  assert.ok(nodes.includes(p.spec.nodeName!));
  const events = await api.request<{ items: { reason: string; message: string }[] }>('GET', '/api/v1/namespaces/default/events?fieldSelector=involvedObject.name%3Dplain');
  assert.ok(events.items.some((e) => e.reason === 'Scheduled' && e.message.includes(p.spec.nodeName!)));
});

test('a GPU pod gets the smallest GPU that meets its memory minimum, by UUID', async () => {
  await api.request('POST', '/api/v1/namespaces/default/pods', pod('train', { 'nvidia.com/gpu': 1 }, { 'flotilla.io/gpu-memory-min': '16Gi' }));
  const p = await eventually('GPU binding', async () => ((await getPod('train')).spec.nodeName ? getPod('train') : undefined));
  assert.is(p.spec.nodeName, 'gpu-box');
  assert.is(p.metadata.annotations?.['flotilla.io/assigned-gpus'], 'GPU-aaaa');
  await api.request('POST', '/api/v1/namespaces/default/pods', pod('big', { 'nvidia.com/gpu': 1 }, { 'flotilla.io/gpu-memory-min': '40Gi', 'flotilla.io/gpu-model': 'H100' }));
  const big = await eventually('big GPU binding', async () => ((await getPod('big')).spec.nodeName ? getPod('big') : undefined));
  assert.is(big.metadata.annotations?.['flotilla.io/assigned-gpus'], 'GPU-bbbb');
});

test('an unschedulable pod says why on PodScheduled=False, and describe shows it', async () => {
  await api.request('POST', '/api/v1/namespaces/default/pods', pod('huge', { 'nvidia.com/gpu': 1 }, { 'flotilla.io/gpu-memory-min': '100Gi' }));
  const cond = await eventually('PodScheduled=False', async () => (await getPod('huge')).status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False'));
  assert.match(cond.message!, /^0\/3 nodes are available: /);
  assert.match(cond.message!, /3 Insufficient nvidia\.com\/gpu/, 'both GPUs are taken and the small nodes have none');
  const d = runCli(['describe', 'pod', 'huge'], env);
  assert.is(d.code, 0, d.stderr);
  assert.match(d.stdout, /PodScheduled\s+False\s+Unschedulable\s+0\/3 nodes are available/);
  assert.match(d.stdout, /Warning\s+FailedScheduling/);
});

test('a Deployment gets its replicas created by the controllers and placed on the nodes', async () => {
  const r = runCli(['apply', '-f', '-'], env, [
    'apiVersion: apps/v1', 'kind: Deployment', 'metadata: {name: web}',
    'spec:', '  replicas: 4', '  selector: {matchLabels: {app: web}}',
    '  template:', '    metadata: {labels: {app: web}}',
    '    spec: {containers: [{name: c, image: "flotilla/testbox:latest", resources: {limits: {cpu: 100m, memory: 64Mi}}}]}', ''].join('\n'));
  assert.is(r.code, 0, r.stderr);
  const bound = await eventually('4 bound replicas', async () => {
    const list = await api.request<{ items: PodView[] }>('GET', '/api/v1/namespaces/default/pods?labelSelector=app%3Dweb');
    return list.items.length === 4 && list.items.every((p) => p.spec.nodeName) ? list.items : undefined;
  });
  assert.is(bound.length, 4);
  const wide = runCli(['get', 'pods', '-l', 'app=web', '-o', 'wide'], env);
  assert.is((wide.stdout.match(/^web-/gm) ?? []).length, 4);
});

test('a Node registered with a node key refuses an update carrying another key', async () => {
  const keyed = { ...node('pi-7', '4', '8Gi'), metadata: { name: 'pi-7', annotations: { 'flotilla.io/node-key': 'ed25519:aaaa' } } };
  await api.request('POST', '/api/v1/nodes', keyed);
  const stored = await api.request<{ metadata: { resourceVersion: string } }>('GET', '/api/v1/nodes/pi-7');
  const other = { ...keyed, metadata: { ...keyed.metadata, resourceVersion: stored.metadata.resourceVersion, annotations: { 'flotilla.io/node-key': 'ed25519:bbbb' } } };
  try {
    await api.request('PUT', '/api/v1/nodes/pi-7', other);
    assert.unreachable('the update with another key was accepted');
  } catch (err) {
    assert.is((err as { code: number }).code, 409);
    assert.match((err as Error).message, /flotilla node replace pi-7/);
  }
});

test.run();
