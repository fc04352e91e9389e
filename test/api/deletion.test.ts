// Graceful deletion through the HTTP API, as Kubernetes does it: DeleteOptions (body or query), pods that
// terminate within their grace period, finalizers holding any object, propagationPolicy Background,
// Foreground and Orphan through the controllers, and namespaces that terminate before they go. The app runs
// in process on a simulated cluster (test/controllers/cluster-sim.ts) whose "kubelet" removes Terminating pods
// of live nodes at each step, as agents do once the containers stopped.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Hono } from 'hono';
import type { Pod } from '../../api-types/index.js';
import { createApp } from '../../server/api/app.js';
import { identity, MASTERS_GROUP, staticTokens } from '../../server/api/middleware/auth.js';
import { ClusterSim, R, readyPods } from '../controllers/cluster-sim.js';

const TOKEN = 'test-token-0123456789abcdef';
const PODS = '/api/v1/namespaces/default/pods';
const RS = '/apis/apps/v1/namespaces/default/replicasets';

type Call = (method: string, path: string, body?: unknown, contentType?: string) => Promise<{ status: number; json: any }>; // eslint-disable-line @typescript-eslint/no-explicit-any

async function withApi(fn: (sim: ClusterSim, call: Call) => Promise<void>): Promise<void> {
  const sim = new ClusterSim();
  try {
    await sim.start();
    await sim.addNode('n1');
    const app: Hono = createApp({
      objects: sim.objects, readBarrier: async () => {}, readiness: () => [],
      authenticate: staticTokens({ [TOKEN]: identity('admin', [MASTERS_GROUP]) }),
      version: { flotilla: 'test', gitVersion: 'vtest' },
    });
    const call: Call = async (method, path, body, contentType = 'application/json') => {
      const res = await app.request(path, {
        method,
        headers: { authorization: `Bearer ${TOKEN}`, ...(body !== undefined ? { 'content-type': contentType } : {}) },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      });
      const text = await res.text();
      return { status: res.status, json: text ? JSON.parse(text) : undefined };
    };
    await fn(sim, call);
  } finally {
    await sim.stop();
  }
}

const pod = (name: string, spec: Record<string, unknown> = {}) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name }, spec: { containers: [{ name: 'c', image: 'busybox:1.36' }], ...spec },
});
const replicaSet = (name: string) => ({
  apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name },
  spec: { replicas: 2, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] } } },
});
const podsOf = (sim: ClusterSim, app: string) => sim.pods().filter((p) => p.metadata.labels?.app === app);
const at = (sim: ClusterSim, seconds: number) => new Date(sim.clock.now() + seconds * 1000).toISOString();

test('DELETE of a bound pod marks it Terminating for its grace period; a repeat may shorten it; 0 removes it', () => withApi(async (sim, call) => {
  assert.is((await call('POST', PODS, pod('web', { nodeName: 'n1', terminationGracePeriodSeconds: 30 }))).status, 201);
  const asked = at(sim, 0);
  const first = await call('DELETE', `${PODS}/web`);
  assert.is(first.status, 200);
  assert.is(first.json.metadata.deletionTimestamp, at(sim, 30), 'deletionTimestamp is when the grace period ends');
  assert.is(first.json.metadata.deletionGracePeriodSeconds, 30);
  const still = await call('GET', `${PODS}/web`);
  assert.is(still.status, 200, 'the pod stays until its agent removes it');
  assert.is(still.json.metadata.deletionTimestamp, first.json.metadata.deletionTimestamp);

  sim.clock.advance(5000);
  const shorter = await call('DELETE', `${PODS}/web?gracePeriodSeconds=10`);
  assert.is(shorter.json.metadata.deletionGracePeriodSeconds, 10);
  assert.is(shorter.json.metadata.deletionTimestamp, new Date(Date.parse(asked) + 10_000).toISOString(), 'counted from the first request');
  const longer = await call('DELETE', `${PODS}/web`, { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 60 });
  assert.is(longer.status, 200);
  assert.is(longer.json.metadata.deletionGracePeriodSeconds, 10, 'never lengthened');
  const cleared = await call('PATCH', `${PODS}/web`, { metadata: { deletionTimestamp: null, deletionGracePeriodSeconds: null, labels: { a: 'b' } } }, 'application/merge-patch+json');
  assert.is(cleared.status, 200);
  assert.is(cleared.json.metadata.deletionGracePeriodSeconds, 10, 'clients cannot clear or change the deletion');
  assert.is(cleared.json.metadata.deletionTimestamp, shorter.json.metadata.deletionTimestamp);

  assert.is((await call('DELETE', `${PODS}/web?gracePeriodSeconds=0`)).status, 200);
  assert.is((await call('GET', `${PODS}/web`)).status, 404, 'grace period 0 removes it at once');
}));

test('pods not bound to a node, or finished, are removed at once; a forced delete ignores the grace period', () => withApi(async (sim, call) => {
  await call('POST', PODS, pod('pending'));
  assert.is((await call('DELETE', `${PODS}/pending`)).status, 200);
  assert.is((await call('GET', `${PODS}/pending`)).status, 404);

  await call('POST', PODS, pod('done', { nodeName: 'n1' }));
  await sim.objects.replaceStatus(R('pods'), 'default', 'done', { phase: 'Succeeded' });
  await call('DELETE', `${PODS}/done`);
  assert.is((await call('GET', `${PODS}/done`)).status, 404);

  await call('POST', PODS, pod('forced', { nodeName: 'n1' }));
  await call('DELETE', `${PODS}/forced`, { gracePeriodSeconds: 0 });
  assert.is((await call('GET', `${PODS}/forced`)).status, 404);

  const created = await call('POST', PODS, pod('pinned', { nodeName: 'n1' }));
  const wrongUid = await call('DELETE', `${PODS}/pinned`, { preconditions: { uid: 'not-this-one' } });
  assert.is(wrongUid.status, 409);
  const ok = await call('DELETE', `${PODS}/pinned`, { preconditions: { uid: created.json.metadata.uid } });
  assert.ok(ok.json.metadata.deletionTimestamp);
}));

test('bad DeleteOptions are refused naming the field', () => withApi(async (_sim, call) => {
  await call('POST', PODS, pod('web', { nodeName: 'n1' }));
  const notNumber = await call('DELETE', `${PODS}/web?gracePeriodSeconds=soon`);
  assert.is(notNumber.status, 400);
  assert.match(notNumber.json.message, /gracePeriodSeconds/);
  const policy = await call('DELETE', `${PODS}/web?propagationPolicy=Sideways`);
  assert.is(policy.status, 422);
  assert.equal(policy.json.details.causes.map((c: { field: string }) => c.field), ['propagationPolicy']);
  assert.match(policy.json.message, /Unsupported value: "Sideways": supported values: "Foreground", "Background", "Orphan"/);
  const unknown = await call('DELETE', `${PODS}/web`, { gracePeriodSecs: 3 });
  assert.is(unknown.status, 422);
  assert.match(unknown.json.message, /gracePeriodSecs/);
  const both = await call('DELETE', `${PODS}/web`, { orphanDependents: true, propagationPolicy: 'Orphan' });
  assert.is(both.status, 422);
  assert.is((await call('GET', `${PODS}/web`)).json.metadata.deletionTimestamp, undefined, 'a refused delete changes nothing');
}));

test('a finalizer holds any object until an update removes it; none may be added once it is being deleted', () => withApi(async (_sim, call) => {
  const CM = '/api/v1/namespaces/default/configmaps';
  await call('POST', CM, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'held', finalizers: ['example.com/keep'] }, data: { a: '1' } });
  const marked = await call('DELETE', `${CM}/held`);
  assert.is(marked.status, 200);
  assert.ok(marked.json.metadata.deletionTimestamp);
  assert.is(marked.json.metadata.deletionGracePeriodSeconds, 0);
  assert.is((await call('GET', `${CM}/held`)).status, 200, 'held by its finalizer');
  assert.is((await call('DELETE', `${CM}/held`)).status, 200, 'deleting again is harmless');

  const added = await call('PATCH', `${CM}/held`, { metadata: { finalizers: ['example.com/keep', 'example.com/more'] } }, 'application/merge-patch+json');
  assert.is(added.status, 422);
  assert.equal(added.json.details.causes.map((c: { field: string }) => c.field), ['metadata.finalizers']);
  const edited = await call('PATCH', `${CM}/held`, { data: { a: '2' } }, 'application/merge-patch+json');
  assert.is(edited.status, 200, 'other updates still work');

  const released = await call('PUT', `${CM}/held`, { ...edited.json, metadata: { ...edited.json.metadata, finalizers: [] } });
  assert.is(released.status, 200);
  assert.is((await call('GET', `${CM}/held`)).status, 404, 'removing the last finalizer removed the object');
}));

test('propagationPolicy Background, Foreground and Orphan on a ReplicaSet with pods, through the controllers', () => withApi(async (sim, call) => {
  for (const name of ['bg', 'fg', 'orphan']) await call('POST', RS, replicaSet(name));
  await sim.until(() => readyPods(sim.pods()) === 6);

  // Background (the default): the owner goes now, then the garbage collector deletes the pods (gracefully).
  await call('DELETE', `${RS}/bg`);
  assert.is((await call('GET', `${RS}/bg`)).status, 404);
  await sim.manager.settle();
  assert.ok(podsOf(sim, 'bg').length === 2 && podsOf(sim, 'bg').every((p) => p.metadata.deletionTimestamp), 'the pods are terminating');
  await sim.step();
  assert.is(podsOf(sim, 'bg').length, 0);

  // Foreground: the owner waits, marked, until its blocking dependents are gone.
  const fg = await call('DELETE', `${RS}/fg`, { propagationPolicy: 'Foreground' });
  assert.equal(fg.json.metadata.finalizers, ['foregroundDeletion']);
  await sim.manager.settle();
  assert.is((await call('GET', `${RS}/fg`)).status, 200, 'the owner stays while its pods terminate');
  assert.ok(podsOf(sim, 'fg').every((p: Pod) => p.metadata.deletionTimestamp), 'its pods are being deleted, not replaced');
  assert.is(podsOf(sim, 'fg').length, 2);
  await sim.step();
  assert.is(podsOf(sim, 'fg').length, 0);
  assert.is((await call('GET', `${RS}/fg`)).status, 404, 'the owner goes after its dependents');

  // Orphan: the dependents are released, then the owner goes; nothing replaces or deletes the pods.
  const orphan = await call('DELETE', `${RS}/orphan?propagationPolicy=Orphan`);
  assert.equal(orphan.json.metadata.finalizers, ['orphan']);
  await sim.manager.settle();
  assert.is((await call('GET', `${RS}/orphan`)).status, 404);
  for (let i = 0; i < 3; i++) await sim.step();
  const left = podsOf(sim, 'orphan');
  assert.is(left.length, 2);
  assert.ok(left.every((p) => !p.metadata.ownerReferences && !p.metadata.deletionTimestamp));
}));

test('a deleted namespace is Terminating, refuses new content, and goes once its content is gone', () => withApi(async (sim, call) => {
  assert.is((await call('POST', '/api/v1/namespaces', { apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'team' } })).status, 201);
  await call('POST', '/api/v1/namespaces/team/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'settings' }, data: { a: '1' } });
  await call('POST', '/api/v1/namespaces/team/pods', pod('worker', { nodeName: 'n1' }));

  const deleted = await call('DELETE', '/api/v1/namespaces/team');
  assert.is(deleted.status, 200);
  assert.is(deleted.json.status.phase, 'Terminating');
  assert.ok(deleted.json.metadata.deletionTimestamp);
  const refused = await call('POST', '/api/v1/namespaces/team/configmaps', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'late' } });
  assert.is(refused.status, 403);
  assert.is(refused.json.reason, 'Forbidden');
  assert.is(refused.json.message, 'configmaps "late" is forbidden: unable to create new content in namespace team because it is being terminated');

  await sim.manager.settle();
  assert.is((await call('GET', '/api/v1/namespaces/team/configmaps/settings')).status, 404);
  const terminating = await call('GET', '/api/v1/namespaces/team');
  assert.is(terminating.json.status.phase, 'Terminating', 'still there while its pod terminates');
  assert.ok((await call('GET', '/api/v1/namespaces/team/pods/worker')).json.metadata.deletionTimestamp);
  await sim.step();
  assert.is((await call('GET', '/api/v1/namespaces/team/pods/worker')).status, 404);
  assert.is((await call('GET', '/api/v1/namespaces/team')).status, 404, 'gone with its content');
}));

test.run();
