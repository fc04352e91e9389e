// A seeded fuzz run against a running server (server/run.ts in this process, over HTTPS): at least 10,000 random
// and mutated requests (paths, methods, bodies, content types, headers; valid manifests with fields deleted,
// retyped, nested, enlarged, duplicated or cut short) must get no 5xx, every request must be answered, and the
// server must still serve afterwards. The seed is printed; FLOTILLA_FUZZ_SEED=N replays a run and
// FLOTILLA_FUZZ_REQUESTS=N changes its length. The names it requests are those of a fuzz namespace and the served
// resources: never kube-system (which holds the token Secret) nor the member and token routes, whose legitimate
// effects (removing the only member, rotating the admin token) would end the run rather than test it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pinnedFetch } from '../../client/client.js';
import { SeededRandom } from '../../server/raft/sim/random.js';
import { startInProcessServer, type InProcessServer } from '../support/in-process-server.js';
import { setUp } from '../support/set-up.js';

const SEED = Number(process.env.FLOTILLA_FUZZ_SEED ?? Math.floor(Math.random() * 2 ** 31));
const REQUESTS = Number(process.env.FLOTILLA_FUZZ_REQUESTS ?? 10_000);
/** Requests in flight at once. */
const CONCURRENCY = 12;
/** A request unanswered after this long counts as a hang (a failure), not as slowness. */
const ANSWER_LIMIT_MS = 60_000;

let srv: InProcessServer | undefined;
let dir = '';
let fetchTls: ReturnType<typeof pinnedFetch> | undefined;

setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-fuzz-'));
  srv = await startInProcessServer(dir);
  fetchTls = pinnedFetch({ ca: srv.info.caPem }, CONCURRENCY);
  for (const ns of ['fuzz', 'fuzz2']) {
    const res = await send({ method: 'POST', path: '/api/v1/namespaces', body: JSON.stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } }), headers: { 'content-type': 'application/json' } });
    assert.is(res.status, 201);
  }
}, async () => {
  fetchTls?.close();
  await srv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface FuzzRequest { method: string; path: string; body?: string; headers: Record<string, string> }

async function send(r: FuzzRequest): Promise<{ status: number; text: string }> {
  const res = await fetchTls!(`${srv!.info.url}${r.path}`, {
    method: r.method, headers: { authorization: `Bearer ${srv!.info.adminToken}`, ...r.headers },
    ...(r.body !== undefined ? { body: r.body } : {}), signal: AbortSignal.timeout(ANSWER_LIMIT_MS),
  });
  // A watch that was accepted streams until its timeout: its status is the answer.
  if (res.status === 200 && /watch=(true|1)/.test(r.path)) {
    await res.body?.cancel();
    return { status: res.status, text: '' };
  }
  return { status: res.status, text: await res.text() };
}

/** Valid manifests of the served kinds, the material mutations start from. */
function manifests(rnd: SeededRandom, ns: string): Record<string, unknown>[] {
  const name = `o${rnd.int(40)}`;
  const podSpec = { containers: [{ name: 'c', image: 'flotilla/testbox:latest', args: ['sleep', '1'], ports: [{ containerPort: 80, name: 'http' }], resources: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '128Mi' } } }] };
  const template = { metadata: { labels: { app: name } }, spec: podSpec };
  return [
    { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns, labels: { app: name }, annotations: { note: 'x' } }, data: { k: 'v' } },
    { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns }, type: 'Opaque', data: { k: 'dg==' } },
    { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns }, spec: { ...podSpec, ...(rnd.chance(0.3) ? { nodeName: `n${rnd.int(3)}` } : {}) } },
    { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { selector: { app: name }, ports: [{ port: 80, targetPort: 'http' }], ...(rnd.chance(0.3) ? { type: 'NodePort' } : {}) } },
    { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name, namespace: ns }, spec: { replicas: rnd.int(3), selector: { matchLabels: { app: name } }, template } },
    { apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name, namespace: ns }, spec: { replicas: 0, serviceName: name, selector: { matchLabels: { app: name } }, template } },
    { apiVersion: 'batch/v1', kind: 'Job', metadata: { name, namespace: ns }, spec: { template: { ...template, spec: { ...podSpec, restartPolicy: 'Never' } } } },
    { apiVersion: 'v1', kind: 'Node', metadata: { name: `n${rnd.int(3)}`, labels: { 'kubernetes.io/hostname': 'n' } }, status: { capacity: { cpu: '4', memory: '8Gi' } } },
    { apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name }, value: rnd.int(2000) - 1000 },
  ];
}

const PATHS: Record<string, string> = {
  ConfigMap: 'api/v1/namespaces/NS/configmaps', Secret: 'api/v1/namespaces/NS/secrets', Pod: 'api/v1/namespaces/NS/pods',
  Service: 'api/v1/namespaces/NS/services', Deployment: 'apis/apps/v1/namespaces/NS/deployments', StatefulSet: 'apis/apps/v1/namespaces/NS/statefulsets',
  Job: 'apis/batch/v1/namespaces/NS/jobs', Node: 'api/v1/nodes', PriorityClass: 'apis/scheduling.k8s.io/v1/priorityclasses',
};

const WORDS = ['api', 'v1', 'apis', 'apps', 'batch', 'namespaces', 'fuzz', 'fuzz2', 'default', 'pods', 'configmaps', 'secrets', 'services', 'nodes',
  'deployments', 'replicasets', 'statefulsets', 'daemonsets', 'jobs', 'events', 'endpoints', 'leases', 'coordination.k8s.io', 'discovery.k8s.io',
  'endpointslices', 'status', 'scale', 'binding', 'log', 'exec', 'finalize', 'o1', 'o2', 'n1', '..', '.', '%2F', '%zz', '%', '%E0%A4', '%00',
  'é', '\u{1F600}', 'a'.repeat(300), 'healthz', 'readyz', 'version', 'metrics', 'openapi.json', 'cluster', 'metrics.k8s.io', 'v1beta1'];

const QUERIES = ['watch=true&timeoutSeconds=1', 'watch=1&resourceVersion=0&timeoutSeconds=1', 'watch=true&resourceVersion=abc', 'watch=true&timeoutSeconds=-5',
  'labelSelector=app%3Dx', 'labelSelector=a+in+(b,c)', 'labelSelector=!!!', 'labelSelector=a%3', 'fieldSelector=spec.nodeName%3Dn1', 'fieldSelector=nope%3D1',
  'fieldSelector=status.phase!%3DRunning', 'consistency=stale', 'gracePeriodSeconds=0', 'gracePeriodSeconds=x', 'propagationPolicy=Foreground',
  'propagationPolicy=Sideways', 'orphanDependents=maybe', 'verbose', 'resourceVersion=99999999999999999999', '%zz=1', 'a=%E0%A4'];

const CONTENT_TYPES = ['application/json', 'application/json', 'application/merge-patch+json', 'application/yaml', 'application/json-patch+json',
  'application/strategic-merge-patch+json', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', '', 'application/json; charset=utf-16'];

function randomString(rnd: SeededRandom): string {
  const pool = ['', 'a', 'A-b_c.d', '-x-', 'x'.repeat(64), 'y'.repeat(rnd.int(5000)), 'kubernetes.io/x', 'Bad Key', '\u0000', '"', '\\', 'é', '\u{1F600}', '1e400', '-0', 'null', 'true'];
  return rnd.pick(pool);
}

function randomValue(rnd: SeededRandom, depth: number): unknown {
  const k = rnd.int(depth > 6 ? 5 : 8);
  switch (k) {
    case 0: return null;
    case 1: return rnd.chance(0.5);
    case 2: return rnd.pick([0, -1, 1.5, 2 ** 31, 2 ** 53 + 1, -(2 ** 63), 1e308, 65536]);
    case 3: case 4: return randomString(rnd);
    case 5: return Array.from({ length: rnd.int(4) }, () => randomValue(rnd, depth + 1));
    default: {
      const o: Record<string, unknown> = {};
      for (let i = rnd.int(4); i > 0; i--) o[rnd.pick(['metadata', 'spec', 'status', 'name', 'labels', 'data', 'containers', 'selector', 'replicas', randomString(rnd)])] = randomValue(rnd, depth + 1);
      return o;
    }
  }
}

/** Sets a random leaf or branch of `o` (in place) to a random value, deletes it, or nests it deep. */
function mutate(rnd: SeededRandom, o: unknown): unknown {
  if (o === null || typeof o !== 'object') return randomValue(rnd, 0);
  const keys = Object.keys(o);
  if (keys.length === 0 || rnd.chance(0.15)) {
    (o as Record<string, unknown>)[rnd.pick(['extra', 'spec', 'status', 'metadata', 'data', '__proto__', 'constructor'])] = randomValue(rnd, 0);
    return o;
  }
  const key = rnd.pick(keys);
  const rec = o as Record<string, unknown>;
  const r = rnd.int(10);
  if (r === 0) delete rec[key];
  else if (r === 1) rec[key] = randomValue(rnd, 0);
  else if (r === 2) { let deep: unknown = rec[key]; for (let i = rnd.int(150); i > 0; i--) deep = rnd.chance(0.5) ? [deep] : { [key]: deep }; rec[key] = deep; } else if (r === 3) rec[key] = 'z'.repeat(rnd.pick([64, 254, 70_000, 300_000]));
  else rec[key] = mutate(rnd, rec[key]);
  return o;
}

/** Text-level damage: cut short, a byte changed, a key repeated, or YAML of the same object. */
function damage(rnd: SeededRandom, text: string): string {
  switch (rnd.int(6)) {
    case 0: return text.slice(0, rnd.int(text.length));
    case 1: { const i = rnd.int(text.length); return text.slice(0, i) + rnd.pick(['"', '{', '}', ']', ',', '\\', '\u0000', 'é']) + text.slice(i + 1); }
    case 2: return text.replace(/"name":("[^"]*")/, '"name":$1,"name":$1');
    case 3: return text.replace(/^\{/, `{"apiVersion":"v1",`);
    default: return text;
  }
}

function fuzzRequest(rnd: SeededRandom): FuzzRequest {
  const ns = rnd.pick(['fuzz', 'fuzz2', 'default', 'missing']);
  const headers: Record<string, string> = {};
  const contentType = rnd.pick(CONTENT_TYPES);
  if (contentType) headers['content-type'] = contentType;
  if (rnd.chance(0.1)) headers.accept = rnd.pick(['application/yaml', 'application/vnd.kubernetes.protobuf', '*/*', 'text/html']);
  if (rnd.chance(0.05)) headers['x-fuzz'] = 'v'.repeat(rnd.int(8000));
  if (rnd.chance(0.05)) headers['content-encoding'] = rnd.pick(['gzip', 'br', 'identity']);
  const query = rnd.chance(0.3) ? `?${rnd.pick(QUERIES)}` : '';
  if (rnd.chance(0.35)) {
    const segments = Array.from({ length: 1 + rnd.int(8) }, () => rnd.pick(WORDS));
    const body = rnd.chance(0.5) ? JSON.stringify(randomValue(rnd, 0)) : undefined;
    return { method: rnd.pick(['GET', 'GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS', 'TRACE', 'FUZZ']), path: `/${segments.join('/')}${query}`, ...(body !== undefined ? { body } : {}), headers };
  }
  const manifest = rnd.pick(manifests(rnd, ns));
  const collection = `/${PATHS[manifest.kind as string]!.replace('NS', ns)}`;
  const name = (manifest.metadata as { name: string }).name;
  const object = rnd.chance(0.3) ? manifest : mutate(rnd, mutate(rnd, structuredClone(manifest)));
  let body = JSON.stringify(object) ?? 'null';
  if (rnd.chance(0.2)) body = damage(rnd, body);
  const sub = rnd.chance(0.15) ? `/${rnd.pick(['status', 'scale', 'binding', 'log', 'exec', 'nope'])}` : '';
  switch (rnd.int(6)) {
    case 0: case 1: return { method: 'POST', path: `${collection}${query}`, body, headers: { ...headers, 'content-type': headers['content-type'] ?? 'application/json' } };
    case 2: return { method: 'PUT', path: `${collection}/${name}${sub}`, body, headers };
    case 3: return { method: 'PATCH', path: `${collection}/${name}${sub}`, body: rnd.chance(0.5) ? body : JSON.stringify(mutate(rnd, {})), headers: { ...headers, 'content-type': rnd.chance(0.8) ? 'application/merge-patch+json' : contentType } };
    case 4: return { method: 'DELETE', path: `${collection}/${name}${query}`, ...(rnd.chance(0.3) ? { body: JSON.stringify(mutate(rnd, { gracePeriodSeconds: 0 })) } : {}), headers };
    default: return { method: 'GET', path: `${collection}${rnd.chance(0.5) ? `/${name}${sub}` : ''}${query}`, headers };
  }
}

test(`${REQUESTS} random and mutated requests get no 5xx and leave the server serving`, async () => {
  console.log(`api-fuzz: seed ${SEED} (FLOTILLA_FUZZ_SEED=${SEED} replays it), ${REQUESTS} requests`);
  const rnd = new SeededRandom(SEED);
  const planned = Array.from({ length: REQUESTS }, () => fuzzRequest(rnd));
  const byStatus = new Map<number, number>();
  const failures: string[] = [];
  let next = 0;
  let resent = 0;
  const worker = async (): Promise<void> => {
    while (next < planned.length) {
      const i = next++;
      const r = planned[i]!;
      const shown = `#${i} ${r.method} ${r.path.slice(0, 160)} [${r.headers['content-type'] ?? ''}] ${(r.body ?? '').slice(0, 200)}`;
      try {
        const { status, text } = await send(r).catch(async (err: unknown) => {
          // A kept-alive connection the server closed just as this request went out on it (after an answer that
          // left a request body unread): sent again on a new connection. A request that breaks its own
          // connection fails the second time too.
          if (!(err instanceof Error && /socket hang up|ECONNRESET/.test(err.message))) throw err;
          resent++;
          return send(r);
        });
        byStatus.set(status, (byStatus.get(status) ?? 0) + 1);
        if (status >= 500) failures.push(`${shown} -> ${status} ${text.slice(0, 300)}`);
      } catch (err) {
        failures.push(`${shown} -> no answer: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
  console.log(`api-fuzz: answers by status ${JSON.stringify(Object.fromEntries([...byStatus].sort(([a], [b]) => a - b)))}, ${resent} sent again after a closed connection`);
  assert.is(failures.length, 0, `seed ${SEED}: ${failures.length} requests got 5xx or no answer:\n${failures.slice(0, 20).join('\n')}`);
  // Still serving: ready, and an ordinary write and read work.
  assert.is((await send({ method: 'GET', path: '/readyz', headers: {} })).status, 200);
  const created = await send({ method: 'POST', path: '/api/v1/namespaces/fuzz2/configmaps', body: JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'after-fuzz' }, data: { k: 'v' } }), headers: { 'content-type': 'application/json' } });
  assert.is(created.status, 201, created.text);
  assert.is((await send({ method: 'GET', path: '/api/v1/namespaces/fuzz2/configmaps/after-fuzz', headers: {} })).status, 200);
});

test.run();
