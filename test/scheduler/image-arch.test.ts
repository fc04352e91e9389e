// Architecture-aware placement from what is known of the pods' images: the platforms nodes report holding
// (Node.status.imagePlatforms) and what the registry answered, on both cores and the object-level reference,
// with the pending message naming the image; the registry lookup against a registry served on loopback.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Platform } from '../../server/scheduler/image-platforms.js';
import { canonicalImageName } from '../../api-types/index.js';
import * as L from '../../server/scheduler/layout.js';
import { runSchedulingLoop } from '../../server/scheduler/loop.js';
import { MemoryCluster } from '../../server/scheduler/memory-cluster.js';
import { SchedulingQueue, nodeChanges, nodeView } from '../../server/scheduler/queue.js';
import { ReferenceScheduler } from '../../server/scheduler/reference.js';
import { RegistryPlatforms, manifestLocation } from '../../server/scheduler/registry-platforms.js';
import { Scheduler, explain, type Placement } from '../../server/scheduler/scheduler.js';
import type { Node, Pod } from '../../api-types/index.js';
import { makeNode, makePod, randomCluster, randomPod, seededRandom, type NodeOptions, type PodOptions } from './cluster-gen.js';
import { eventually } from '../support/eventually.js';

const AMD64: Platform = { os: 'linux', architecture: 'amd64' };
const ARM64: Platform = { os: 'linux', architecture: 'arm64', variant: 'v8' };

/** A node (as a hollow node reports itself) holding the given images, each of one platform. */
function node(o: NodeOptions, images: Record<string, Platform> = {}): Node {
  const n = makeNode(o);
  n.status!.images = Object.keys(images).map((name) => ({ names: [name], sizeBytes: 1 << 20 }));
  n.status!.imagePlatforms = Object.entries(images).map(([name, p]) => ({ names: [name], ...p }));
  return n;
}
function pod(o: PodOptions & { images?: string[] }): Pod {
  const p = makePod(o);
  p.spec.containers = (o.images ?? ['busybox']).map((image, i) => ({ ...p.spec.containers[0]!, name: `c${i}`, image }));
  return p;
}

/** Both cores and the reference over the same nodes and registry answers. */
function cluster(nodes: Node[], registry: Record<string, Platform[]> = {}): { s: Scheduler; ref: ReferenceScheduler } {
  const s = new Scheduler({ engine: 'wasm' });
  const ref = new ReferenceScheduler();
  for (const x of nodes) { s.upsertNode(x); ref.upsertNode(x); }
  for (const [image, platforms] of Object.entries(registry)) { s.images.learn(image, platforms); ref.images.learn(image, platforms); }
  return { s, ref };
}

/** Places the pod with both cores and the reference; all must agree. */
function placeOn(c: { s: Scheduler; ref: ReferenceScheduler }, p: Pod): Placement {
  const f = c.s.place(p, c.s.fallback);
  const w = c.s.place(p);
  const r = c.ref.place(p);
  assert.is(f.nodeName, w.nodeName, 'the fallback core agrees with wasm');
  assert.equal(f.reasons, w.reasons, 'the fallback core gives the same reasons');
  assert.is(r.nodeName, w.nodeName, 'the reference agrees on the node');
  assert.is(r.feasible, w.feasible, 'the reference agrees on the feasible count');
  return w;
}
const place = (nodes: Node[], p: Pod, registry: Record<string, Platform[]> = {}): Placement => placeOn(cluster(nodes, registry), p);

const n = (name: string, arch: string, extra: Partial<NodeOptions> = {}): NodeOptions => ({ name, cpu: 4, memoryGi: 8, arch, ...extra });

test('an amd64-only image held by an amd64 node never goes to the arm64 nodes; the message names the image', () => {
  const pis = [node(n('pi-1', 'arm64')), node(n('pi-2', 'arm64')), node(n('pi-3', 'arm64'))];
  const pc = node(n('pc', 'amd64'), { 'web:1': AMD64 });
  assert.is(place([...pis, pc], pod({ name: 'web', images: ['web:1'] })).nodeName, 'pc');
  // The amd64 node full: nowhere to go, and the pending reason says why the Pis were skipped.
  const full = node(n('pc', 'amd64', { cpu: 1 }), { 'web:1': AMD64 });
  const p = place([...pis, full], pod({ name: 'web', images: ['web:1'], cpu: '2' }));
  assert.is(p.nodeName, null);
  assert.equal(p.reasons, [{ code: L.R_ARCH, count: 3 }, { code: L.R_CPU, count: 1 }]);
  assert.is(explain(p), "0/4 nodes are available: 3 node(s) didn't match the image architecture, 1 Insufficient cpu. "
    + 'image web:1 has linux/amd64 only; 3 arm64 nodes skipped.');
});

test('a lone arm64 hollow node and an amd64-only image: 0/1, named', () => {
  const p = place([node(n('pi', 'arm64')), node(n('gone', 'amd64', { ready: false }), { 'docker.io/library/web:1': AMD64 })], pod({ name: 'web', images: ['web:1'] }));
  assert.is(p.nodeName, null);
  assert.is(explain(p), "0/2 nodes are available: 1 node(s) were not ready, 1 node(s) didn't match the image architecture. "
    + 'image web:1 has linux/amd64 only; 1 arm64 node skipped.');
});

test('unknown images never block; the registry widens what nodes know; every image of the pod must fit', () => {
  const nodes = [node(n('pi', 'arm64')), node(n('pc', 'amd64', { cpu: 1 }), { 'web:1': AMD64, 'side:2': AMD64 })];
  assert.is(place(nodes, pod({ name: 'unknown', images: ['other:3'], cpu: '2' })).nodeName, 'pi');
  assert.is(place(nodes, pod({ name: 'multi', images: ['web:1'], cpu: '2' }), { 'web:1': [AMD64, ARM64] }).nodeName, 'pi');
  const both = place(nodes, pod({ name: 'both', images: ['web:1', 'side:2'], cpu: '2' }), { 'web:1': [AMD64, ARM64] });
  assert.is(both.nodeName, null);
  assert.match(explain(both), 'image side:2 has linux/amd64 only; 1 arm64 node skipped.');
  // Images with no architecture in common: no node can run the pod.
  const apart = place([node(n('pi', 'arm64'), { 'a:1': ARM64 }), node(n('pc', 'amd64'), { 'b:1': AMD64 })], pod({ name: 'apart', images: ['a:1', 'b:1'] }));
  assert.equal(apart.reasons, [{ code: L.R_ARCH, count: 2 }]);
  assert.is(explain(apart), "0/2 nodes are available: 2 node(s) didn't match the image architecture. "
    + 'image a:1 has linux/arm64/v8 only, image b:1 has linux/amd64 only; 1 amd64, 1 arm64 nodes skipped.');
});

test('annotation flotilla.io/image-arch narrows with the images; a node that leaves takes its knowledge along', () => {
  const nodes = [node(n('pi', 'arm64')), node(n('pc', 'amd64'), { 'web:1': AMD64 })];
  const annotated = pod({ name: 'p', images: ['web:1'], annotations: { 'flotilla.io/image-arch': 'arm64' } });
  assert.equal(place(nodes, annotated).reasons, [{ code: L.R_ARCH, count: 2 }]);
  const s = new Scheduler({ engine: 'wasm' });
  for (const x of nodes) s.upsertNode(x);
  assert.is(s.place(pod({ name: 'p', images: ['web:1'], cpu: '3900m' })).nodeName, 'pc');
  s.removeNode('pc');
  assert.is(s.place(pod({ name: 'p', images: ['web:1'] })).nodeName, 'pi', 'nothing known of web:1 any more');
});

test('the cores and the reference agree on random clusters with random image knowledge', () => {
  const images = ['web:1', 'busybox', 'docker.io/library/nginx:1.25', 'registry.local:5000/app@sha256:abc'];
  const platforms = [AMD64, ARM64, { os: 'linux', architecture: 'arm', variant: 'v7' }, { os: 'windows', architecture: 'arm64' }];
  let limited = 0;
  for (let seed = 1; seed <= 300; seed++) {
    const rng = seededRandom(seed);
    const nodes = randomCluster(rng, 1 + Math.floor(rng() * 20));
    for (const x of nodes) {
      const held = images.filter(() => rng() < 0.3);
      x.status!.imagePlatforms = held.map((name) => ({ names: [name], ...platforms[Math.floor(rng() * platforms.length)]! }));
    }
    const registry: Record<string, Platform[]> = rng() < 0.3 ? { [images[Math.floor(rng() * images.length)]!]: platforms.filter(() => rng() < 0.5) } : {};
    const c = cluster(nodes, registry);
    for (let i = 0; i < 6; i++) {
      const p = randomPod(rng, i);
      p.spec.containers = p.spec.containers.map((x) => ({ ...x, image: images[Math.floor(rng() * images.length)]! }));
      const w = placeOn(c, p);
      if (w.reasons.some((r) => r.code === L.R_ARCH)) limited++;
    }
  }
  assert.ok(limited > 50, `image platforms limited ${limited} placements`);
});

test('image names meet in canonical form; registry locations', () => {
  assert.is(canonicalImageName('busybox'), 'docker.io/library/busybox:latest');
  assert.is(canonicalImageName('library/busybox:1.36'), 'docker.io/library/busybox:1.36');
  assert.is(canonicalImageName('flotilla/testbox'), 'docker.io/flotilla/testbox:latest');
  assert.is(canonicalImageName('localhost:5000/web'), 'localhost:5000/web:latest');
  assert.is(canonicalImageName('reg.lan/team/web@sha256:ab'), 'reg.lan/team/web@sha256:ab');
  assert.equal(manifestLocation('busybox'), { base: 'https://registry-1.docker.io', repository: 'library/busybox', reference: 'latest' });
  assert.equal(manifestLocation('127.0.0.1:5000/a/b:2'), { base: 'http://127.0.0.1:5000', repository: 'a/b', reference: '2' });
  assert.equal(manifestLocation('reg.lan/web@sha256:ab'), { base: 'https://reg.lan', repository: 'web', reference: 'sha256:ab' });
});

test('a change of the images a node holds is a node change that can help a pod the architecture kept out', () => {
  const before = node(n('pi', 'arm64'));
  const after = node(n('pi', 'arm64'), { 'web:1': ARM64 });
  assert.equal(nodeChanges(nodeView(before), nodeView(after)), ['images']);
  const q = new SchedulingQueue();
  const p = pod({ name: 'web', images: ['web:1'] });
  q.add(p, 'web', 0);
  q.pop(0);
  q.failed(p, 'web', { reasons: [L.R_ARCH] }, 0);
  assert.is(q.onEvent({ type: 'node-update', changed: ['gpus'] }, 0), 0);
  assert.is(q.onEvent({ type: 'node-update', changed: ['images'] }, 0), 1);
});

test('the loop asks the registry about every image of a batch before placing it, and widens what nodes know', async () => {
  const c = new MemoryCluster();
  c.putNode(node(n('pi', 'arm64')));
  c.putNode(node(n('pc', 'amd64', { cpu: 1 }), { 'web:1': AMD64, 'side:1': AMD64 }));
  const asked: string[] = [];
  const registry = { lookup: async (image: string) => { asked.push(image); return image === 'web:1' ? [AMD64, ARM64] : undefined; } };
  const ac = new AbortController();
  const done = runSchedulingLoop(c, ac.signal, { scheduler: new Scheduler({ engine: 'wasm' }), registry });
  try {
    c.putPod(pod({ name: 'multi', images: ['web:1'], cpu: '2' }));
    c.putPod(pod({ name: 'single', images: ['side:1'], cpu: '2' }));
    assert.is(await eventually('multi bound', async () => c.pods.get('uid-default-multi')?.spec.nodeName), 'pi');
    const why = await eventually('single reported unschedulable', async () => c.unschedulable.get('uid-default-single'));
    assert.is(why, "0/2 nodes are available: 1 node(s) didn't match the image architecture, 1 Insufficient cpu. image side:1 has linux/amd64 only; 1 arm64 node skipped.");
    assert.ok(asked.includes('web:1') && asked.includes('side:1'), `asked ${asked.join(', ')}`);
  } finally {
    ac.abort();
    await done;
  }
});

/** A registry on loopback: anonymous Bearer tokens, a manifest list for multi:1, a single manifest for single:1. */
async function fakeRegistry(): Promise<{ server: Server; url: string; requests: string[] }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const url = new URL(req.url ?? '/', 'http://x');
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    if (url.pathname === '/token') {
      res.setHeader('content-type', 'application/json');
      return res.end(JSON.stringify({ token: url.searchParams.get('scope') === 'repository:team/multi:pull' ? 'tok-multi' : 'tok' }));
    }
    if (!req.headers.authorization?.startsWith('Bearer tok')) {
      res.statusCode = 401;
      res.setHeader('www-authenticate', `Bearer realm="${base}/token",service="fake",scope="repository:${url.pathname.split('/').slice(2, 4).join('/')}:pull"`);
      return res.end();
    }
    const json = (type: string, body: object) => { res.setHeader('content-type', type); res.end(JSON.stringify(body)); };
    if (url.pathname === '/v2/team/multi/manifests/1') {
      assert.match(req.headers.accept ?? '', 'application/vnd.oci.image.index.v1+json');
      return json('application/vnd.oci.image.index.v1+json', { schemaVersion: 2, manifests: [
        { digest: 'sha256:a', platform: { os: 'linux', architecture: 'amd64' } },
        { digest: 'sha256:b', platform: { os: 'linux', architecture: 'arm', variant: 'v7' } },
        { digest: 'sha256:c', platform: { os: 'unknown', architecture: 'unknown' } },
      ] });
    }
    if (url.pathname === '/v2/team/single/manifests/1') {
      return json('application/vnd.docker.distribution.manifest.v2+json', { schemaVersion: 2, config: { digest: 'sha256:cfg' }, layers: [] });
    }
    if (url.pathname === '/v2/team/single/blobs/sha256:cfg') return json('application/octet-stream', { os: 'linux', architecture: 'arm64', variant: 'v8' });
    res.statusCode = 404;
    res.end();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { server, url: `127.0.0.1:${(server.address() as AddressInfo).port}`, requests };
}

test('registry: manifest list and single manifest platforms, anonymous tokens, cached answers and failures', async () => {
  const { server, url, requests } = await fakeRegistry();
  try {
    let now = 0;
    const registry = new RegistryPlatforms({ now: () => now, ttlMs: 1000, failureTtlMs: 100 });
    const [multi, again] = await Promise.all([registry.lookup(`${url}/team/multi:1`), registry.lookup(`${url}/team/multi:1`)]);
    assert.equal(multi, [{ os: 'linux', architecture: 'amd64' }, { os: 'linux', architecture: 'arm', variant: 'v7' }]);
    assert.equal(again, multi);
    assert.is(requests.filter((r) => r.includes('/manifests/')).length, 2, 'one lookup for two callers: challenged, then with the token');
    assert.equal(await registry.lookup(`${url}/team/single:1`), [{ os: 'linux', architecture: 'arm64', variant: 'v8' }]);
    assert.is(await registry.lookup(`${url}/team/missing:1`), undefined);
    const before = requests.length;
    assert.equal(await registry.lookup(`${url}/team/multi:1`), multi);
    assert.is(await registry.lookup(`${url}/team/missing:1`), undefined);
    assert.is(requests.length, before, 'answers and failures come from the cache');
    now = 200;
    await registry.lookup(`${url}/team/missing:1`);
    assert.ok(requests.length > before, 'a failure is asked again after its shorter time');
    // Nothing listening: unknown, quickly.
    const closed = new RegistryPlatforms({ timeoutMs: 500 });
    assert.is(await closed.lookup('127.0.0.1:1/team/multi:1'), undefined);
  } finally {
    server.close();
  }
});

test.run();
