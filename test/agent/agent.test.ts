// The agent loop against a stand-in API server on loopback (Kubernetes-shaped paths) with the FakeRuntime:
// registration, lease heartbeat, list + watch, status reports, deletion, and the offline restart from cache.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { ApiClient } from '../../node-agent/api-client.js';
import { runAgent } from '../../node-agent/agent.js';
import type { Pod, PodStatus } from '../../node-agent/kube-objects.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { LABEL_POD_UID } from '../../node-agent/runtime/types.js';
import { eventually } from './runtime-contract.js';

const TOKEN = 'secret-token';

/** Just enough of the server: records what the agent sends, lets the test push watch events. */
function standInServer(pods: Pod[]) {
  const seen = { nodes: [] as string[], leases: 0, statuses: new Map<string, PodStatus>(), deleted: [] as string[], unauthorized: 0 };
  const watchers = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      seen.unauthorized++;
      res.writeHead(401).end(JSON.stringify({ kind: 'Status', status: 'Failure', reason: 'Unauthorized', code: 401 }));
      return;
    }
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const json = (code: number, obj: unknown) => res.writeHead(code, { 'Content-Type': 'application/json' }).end(JSON.stringify(obj));
      if (req.method === 'POST' && url.pathname === '/api/v1/nodes') {
        seen.nodes.push((JSON.parse(body) as { metadata: { name: string } }).metadata.name);
        return json(201, JSON.parse(body));
      }
      if (req.method === 'PUT' && /^\/api\/v1\/nodes\/[^/]+\/status$/.test(url.pathname)) return json(200, JSON.parse(body));
      if (req.method === 'PUT' && url.pathname.startsWith('/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/')) {
        seen.leases++;
        return json(200, JSON.parse(body));
      }
      if (req.method === 'GET' && url.pathname === '/api/v1/pods') {
        assert.is(url.searchParams.get('fieldSelector'), 'spec.nodeName=node-x');
        if (url.searchParams.get('watch') === 'true') {
          res.writeHead(200, { 'Content-Type': 'application/json' });
          res.flushHeaders();
          watchers.add(res);
          res.on('close', () => watchers.delete(res));
          return;
        }
        return json(200, { kind: 'PodList', items: pods, metadata: { resourceVersion: '10' } });
      }
      const status = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/status$/.exec(url.pathname);
      if (req.method === 'PUT' && status) {
        const pod = JSON.parse(body) as Pod;
        seen.statuses.set(pod.metadata.name, pod.status!);
        return json(200, pod);
      }
      const podPath = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)$/.exec(url.pathname);
      if (req.method === 'DELETE' && podPath) {
        seen.deleted.push(podPath[2]!);
        return json(200, {});
      }
      if (req.method === 'GET' && url.pathname === '/api/v1/namespaces/default/configmaps/settings') {
        return json(200, { metadata: { name: 'settings' }, data: { mode: 'on' } });
      }
      json(404, { kind: 'Status', status: 'Failure', reason: 'NotFound', code: 404, message: `${req.method} ${url.pathname}` });
    });
  });
  const push = (type: string, object: Pod) => { for (const w of watchers) w.write(JSON.stringify({ type, object }) + '\n'); };
  return { server, seen, push, watchers };
}

function pod(name: string, extra: Partial<Pod['spec']> = {}, meta: Partial<Pod['metadata']> = {}): Pod {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, namespace: 'default', uid: `uid-${name}`, resourceVersion: '11', ...meta },
    spec: { nodeName: 'node-x', containers: [{ name: 'main', image: 'fake/app' }], ...extra },
  };
}

test('registers, beats, runs listed and watched pods, reports status, deletes, and restarts from cache offline', async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'flotilla-agent-'));
  const runtime = new FakeRuntime({ images: ['fake/pause', 'fake/app'] });
  const listed = pod('listed', { containers: [{ name: 'main', image: 'fake/app', env: [{ name: 'MODE', valueFrom: { configMapKeyRef: { name: 'settings', key: 'mode' } } }] }] });
  const { server, seen, push, watchers } = standInServer([listed]);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const node = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-x' }, status: {} };
  const common = {
    nodeName: 'node-x', runtime, dataDir, node: () => node, heartbeatSeconds: 0.1, retrySeconds: 0.1,
    podWorkers: { sandboxImage: 'fake/pause', resyncMs: 200 },
  };
  const ac = new AbortController();
  const running = runAgent(ac.signal, { ...common, api: new ApiClient({ server: url, token: TOKEN }) });
  try {
    await eventually('listed pod Running', () => (seen.statuses.get('listed')?.phase === 'Running' ? true : undefined));
    assert.equal(seen.nodes, ['node-x']);
    await eventually('two lease renewals', () => (seen.leases >= 2 ? true : undefined));
    await eventually('watch open', () => (watchers.size > 0 ? true : undefined));

    push('ADDED', pod('watched'));
    await eventually('watched pod Running', () => (seen.statuses.get('watched')?.phase === 'Running' ? true : undefined));
    push('MODIFIED', pod('watched', {}, { deletionTimestamp: new Date().toISOString(), resourceVersion: '12' }));
    await eventually('watched pod deleted', () => (seen.deleted.includes('watched') ? true : undefined));
    assert.equal(await runtime.listContainers({ [LABEL_POD_UID]: 'uid-watched' }), []);
    assert.is(seen.unauthorized, 0);
  } finally {
    ac.abort();
    await running;
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
  const kept = await runtime.listContainers({ [LABEL_POD_UID]: 'uid-listed' });
  assert.is(kept.length, 2, 'stopping the agent leaves the pod running');

  // Reboot with no server: the containers are gone, the cache brings the listed pod back.
  for (const c of await runtime.listContainers({})) await runtime.removeContainer(c.id);
  const offline = new AbortController();
  const again = runAgent(offline.signal, { ...common, api: new ApiClient({ server: url, token: TOKEN }) });
  try {
    await eventually('cached pod runs again', async () => ((await runtime.listContainers({ [LABEL_POD_UID]: 'uid-listed' })).filter((c) => c.state === 'running').length === 2 ? true : undefined));
    assert.equal(await runtime.listContainers({ [LABEL_POD_UID]: 'uid-watched' }), [], 'the deleted pod is not in the cache');
  } finally {
    offline.abort();
    await again;
    rmSync(dataDir, { recursive: true, force: true });
  }
});

test.run();
