// The default ServiceAccount of every namespace, kube-root-ca.crt, and what ServiceAccount admission does to pods.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resourceOfKind, validateObject } from '../../api-types/index.js';
import { ObjectService } from '../../server/objects/service.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import { StoreError } from '../../server/store/types.js';
import { ControllerManager } from '../../server/controllers/manager.js';
import { rootCaCertPublisher, serviceAccountController } from '../../server/controllers/serviceaccount.js';
import { PodsByOwner } from '../../server/controllers/cluster-objects.js';
import type { ControllerDeps } from '../../server/controllers/manager.js';
import { eventually } from '../support/eventually.js';

const namespaces = resourceOfKind('Namespace');
const serviceAccounts = resourceOfKind('ServiceAccount');
const configMaps = resourceOfKind('ConfigMap');
const pods = resourceOfKind('Pod');
const CA = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';

/** A store with the two controllers running (stop() ends them); null: the server gave no CA. */
function cluster(caPem: string | null = CA) {
  const store = new SqliteStore({ path: ':memory:' });
  const objects = new ObjectService(store, new LocalProposer(store));
  const deps: ControllerDeps = { objects, heartbeats: { lastRenewMs: () => undefined }, pods: new PodsByOwner(objects), now: Date.now, settings: {}, ...(caPem ? { clusterCaPem: caPem } : {}) };
  const abort = new AbortController();
  const manager = new ControllerManager(deps, [serviceAccountController(deps), rootCaCertPublisher(deps)], { onGiveUp: (c, k, err) => { throw new Error(`${c} gave up on ${k}: ${String(err)}`); } });
  const running = manager.run(abort.signal);
  return { objects, manager, stop: async () => { abort.abort(); await running; store.close(); } };
}

const pod = (name: string, spec: Record<string, unknown> = {}) => ({ metadata: { name }, spec: { containers: [{ name: 'c', image: 'flotilla/testbox:latest' }], ...spec } });

async function refusal(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await p;
  } catch (err) {
    if (err instanceof StoreError) return { code: err.failure.code, message: err.failure.message };
    throw err;
  }
  throw new Error('expected a refusal');
}

test('a ServiceAccount validates as Kubernetes writes it; unknown fields are refused', () => {
  const ok = validateObject({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'builder', namespace: 'ci' }, automountServiceAccountToken: false, imagePullSecrets: [{ name: 'registry' }], secrets: [{ name: 'old-token' }] });
  assert.ok(ok.ok);
  const bad = validateObject({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'Builder' }, automount: true });
  assert.not.ok(bad.ok);
  if (!bad.ok) assert.equal(bad.issues.map((i) => i.path).sort(), ['automount', 'metadata.name']);
});

test('every namespace gets a default ServiceAccount and kube-root-ca.crt; both come back when deleted', async () => {
  const c = cluster();
  try {
    await c.objects.create(namespaces, undefined, { metadata: { name: 'team' } });
    const sa = await eventually('default ServiceAccount in team', () => c.objects.get(serviceAccounts, 'team', 'default'));
    assert.is(sa.metadata.namespace, 'team');
    const cm = await eventually('kube-root-ca.crt in team', () => c.objects.get(configMaps, 'team', 'kube-root-ca.crt'));
    assert.equal(cm.data, { 'ca.crt': CA });
    assert.match(cm.metadata.annotations?.['kubernetes.io/description'] ?? '', /CA bundle/);

    await c.objects.delete(serviceAccounts, 'team', 'default');
    const again = await eventually('default made again', () => c.objects.get(serviceAccounts, 'team', 'default'));
    assert.is.not(again.metadata.uid, sa.metadata.uid);
    await c.objects.replace(configMaps, 'team', 'kube-root-ca.crt', { ...cm, data: { 'ca.crt': 'tampered' } });
    await eventually('the CA put back', () => c.objects.get(configMaps, 'team', 'kube-root-ca.crt')?.data?.['ca.crt'] === CA);
  } finally {
    await c.stop();
  }
});

test('a pod runs as default unless it names an account; the deprecated serviceAccount mirrors it', async () => {
  const c = cluster();
  try {
    await c.objects.create(namespaces, undefined, { metadata: { name: 'default' } });
    // Created at once after its namespace: admission waits for the controller's default account, as Kubernetes.
    const p = await c.objects.create(pods, 'default', pod('p'));
    assert.is(p.spec.serviceAccountName, 'default');
    assert.is(p.spec.serviceAccount, 'default');
    await c.objects.create(serviceAccounts, 'default', { metadata: { name: 'builder' }, imagePullSecrets: [{ name: 'registry' }] });
    const q = await c.objects.create(pods, 'default', pod('q', { serviceAccount: 'builder' }));
    assert.is(q.spec.serviceAccountName, 'builder');
    assert.equal(q.spec.imagePullSecrets, [{ name: 'registry' }], 'a pod without pull secrets gets its account\'s');
    const r = await c.objects.create(pods, 'default', pod('r', { serviceAccountName: 'builder', imagePullSecrets: [{ name: 'mine' }] }));
    assert.equal(r.spec.imagePullSecrets, [{ name: 'mine' }]);
  } finally {
    await c.stop();
  }
});

test('a pod naming a missing ServiceAccount is forbidden with Kubernetes\' message', async () => {
  const c = cluster();
  try {
    await c.objects.create(namespaces, undefined, { metadata: { name: 'default' } });
    const refused = await refusal(c.objects.create(pods, 'default', pod('p', { serviceAccountName: 'ghost' })));
    assert.equal(refused, { code: 403, message: 'pods "p" is forbidden: error looking up service account default/ghost: serviceaccount "ghost" not found' });
    assert.is(c.objects.get(pods, 'default', 'p'), undefined);
  } finally {
    await c.stop();
  }
});

test('an update keeps the account admission chose and refuses another', async () => {
  const c = cluster();
  try {
    await c.objects.create(namespaces, undefined, { metadata: { name: 'default' } });
    await c.objects.create(pods, 'default', pod('p'));
    // The manifest as first sent (no account): the stored one is carried over.
    const kept = await c.objects.replace(pods, 'default', 'p', { apiVersion: 'v1', kind: 'Pod', ...pod('p') });
    assert.is(kept.spec.serviceAccountName, 'default');
    await c.objects.create(serviceAccounts, 'default', { metadata: { name: 'builder' } });
    const refused = await refusal(c.objects.replace(pods, 'default', 'p', { apiVersion: 'v1', kind: 'Pod', ...pod('p', { serviceAccountName: 'builder' }) }));
    assert.is(refused.code, 422);
    assert.match(refused.message, /spec\.serviceAccountName: field is immutable/);
  } finally {
    await c.stop();
  }
});

test('without the cluster CA the publisher makes nothing; the accounts still come', async () => {
  const c = cluster(null);
  try {
    await c.objects.create(namespaces, undefined, { metadata: { name: 'team' } });
    await eventually('default ServiceAccount', () => c.objects.get(serviceAccounts, 'team', 'default'));
    await c.manager.settle();
    assert.is(c.objects.get(configMaps, 'team', 'kube-root-ca.crt'), undefined);
  } finally {
    await c.stop();
  }
});

test.run();
