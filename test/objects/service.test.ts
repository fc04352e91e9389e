// ObjectService's own verbs (bootstrap objects, token entries, member records) and its watch, on the in-memory
// store: each is validated and lands as the same replicated command a client's write would.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resourceFor } from '../../api-types/index.js';
import { MEMBERS_RESOURCE, NODE_KEYS_RESOURCE, ObjectService, TOKENS_SECRET } from '../../server/objects/service.js';
import { MemoryStore } from '../../server/store/memory-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import { GoneError, StoreError } from '../../server/store/types.js';
import type { Command, StoredObject } from '../../server/store/types.js';

const namespaces = resourceFor('', 'v1', 'namespaces')!;
const configmaps = resourceFor('', 'v1', 'configmaps')!;
const nodes = resourceFor('', 'v1', 'nodes')!;

/** An ObjectService on a MemoryStore that records every command it proposes. */
function service(): { objects: ObjectService; store: MemoryStore; commands: Command[] } {
  const store = new MemoryStore({ historyWindow: 5 });
  const proposer = new LocalProposer(store);
  const commands: Command[] = [];
  const objects = new ObjectService(store, { propose: (c) => { commands.push(c); return proposer.propose(c); } }, () => new Date('2026-03-04T05:06:07Z'));
  return { objects, store, commands };
}

const ns = (name: string): StoredObject => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name }, spec: { finalizers: ['kubernetes'] }, status: { phase: 'Active' } });
const tokenData = (store: MemoryStore) => (store.get('secrets', TOKENS_SECRET.namespace, TOKENS_SECRET.name) as (StoredObject & { data?: Record<string, string> }) | undefined)?.data;

async function rejects(p: Promise<unknown>, code: number, message: RegExp): Promise<void> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof StoreError, String(err));
    assert.is(err.failure.code, code);
    assert.match(err.failure.message, message);
    return;
  }
  assert.unreachable(`expected ${code}`);
}

test('ensureObject creates a missing object once, as a create command, and leaves an existing one alone', async () => {
  const { objects, store, commands } = service();
  await objects.ensureObject(namespaces, ns('default'));
  await objects.ensureObject(namespaces, { ...ns('default'), metadata: { name: 'default', labels: { changed: 'yes' } } });
  assert.equal(commands.map((c) => `${c.op} ${c.resource}`), ['create namespaces']);
  const stored = store.get('namespaces', '', 'default')!;
  assert.equal(stored.status, { phase: 'Active' });
  assert.is(stored.metadata.labels, undefined);
  assert.is(stored.metadata.creationTimestamp, '2026-03-04T05:06:07.000Z');
});

test('ensureObject validates: an invalid object is 422 and nothing is proposed', async () => {
  const { objects, commands } = service();
  await rejects(objects.ensureObject(namespaces, ns('Not_A_Name')), 422, /Namespace "Not_A_Name" is invalid: metadata.name/);
  assert.equal(commands, []);
});

test('putTokenEntry creates the token Secret, adds, keeps and removes entries, and answers whether it wrote', async () => {
  const { objects, store, commands } = service();
  await objects.ensureObject(namespaces, ns('kube-system'));
  assert.is(await objects.putTokenEntry('admin', 'YQ=='), true);
  assert.is(await objects.putTokenEntry('join-x', 'Yg=='), true);
  const revision = store.revision();
  assert.is(await objects.putTokenEntry('admin', 'YQ=='), false, 'the same value again writes nothing');
  assert.is(store.revision(), revision);
  assert.equal(tokenData(store), { admin: 'YQ==', 'join-x': 'Yg==' });
  assert.is(await objects.putTokenEntry('join-x', undefined), true);
  assert.is(await objects.putTokenEntry('join-x', undefined), false, 'removing what is not there writes nothing');
  assert.equal(tokenData(store), { admin: 'YQ==' });
  assert.equal(commands.map((c) => `${c.op} ${c.resource}`), ['create namespaces', 'create secrets', 'update secrets', 'update secrets']);
  const secret = store.get('secrets', 'kube-system', 'flotilla-tokens')!;
  assert.is(secret.type, 'flotilla.io/tokens');
});

test('putTokenEntry: writes of different entries at once all land (a conflict is retried on the newest Secret)', async () => {
  const { objects, store } = service();
  await objects.ensureObject(namespaces, ns('kube-system'));
  await objects.putTokenEntry('first', 'MA==');
  await Promise.all(['a', 'b', 'c'].map((k) => objects.putTokenEntry(k, 'MQ==')));
  assert.equal(Object.keys(tokenData(store) ?? {}).sort(), ['a', 'b', 'c', 'first']);
});

test('putTokenEntry validates the Secret: a value that is not base64 is 422, and nothing is stored', async () => {
  const { objects, store } = service();
  await objects.ensureObject(namespaces, ns('kube-system'));
  await rejects(objects.putTokenEntry('admin', 'not base64!'), 422, /data/);
  assert.is(tokenData(store), undefined);
});

test('putMember records a member (create, then update) and refuses a bad id or peer URL with 400', async () => {
  const { objects, store, commands } = service();
  await objects.putMember(7, 'http://10.0.0.7:6443');
  await objects.putMember(7, 'https://10.0.0.8:6443');
  assert.equal(commands.map((c) => `${c.op} ${c.resource}`), [`create ${MEMBERS_RESOURCE}`, `update ${MEMBERS_RESOURCE}`]);
  const rec = store.get(MEMBERS_RESOURCE, '', '7')!;
  assert.equal(rec.spec, { peerUrl: 'https://10.0.0.8:6443' });
  assert.is(rec.metadata.generation, 2);
  await rejects(objects.putMember(0, 'http://x'), 400, /positive integer/);
  await rejects(objects.putMember(1.5, 'http://x'), 400, /positive integer/);
  await rejects(objects.putMember(8, 'ftp://x'), 400, /peer URL/);
  assert.is(commands.length, 2);
});

test('watch: by resource, the namespace ignored for cluster-scoped ones; from a revision; 410 beyond the history', async () => {
  const { objects } = service();
  await objects.ensureObject(namespaces, ns('default'));
  const from = objects.revision();
  const seen: string[] = [];
  const stopCm = objects.watch(configmaps, 'default', from, (e) => seen.push(`cm ${e.type} ${e.object.metadata.name}`));
  const stopNodes = objects.watch(nodes, 'default', from, (e) => seen.push(`node ${e.type} ${e.object.metadata.name}`));
  assert.is(objects.watcherCount, 2);
  await objects.create(configmaps, 'default', { metadata: { name: 'c' }, data: { a: '1' } });
  await objects.create(nodes, undefined, { metadata: { name: 'n1' } });
  stopCm();
  stopNodes();
  assert.is(objects.watcherCount, 0);
  assert.equal(seen, ['cm ADDED c', 'node ADDED n1']);
  for (let i = 0; i < 6; i++) await objects.create(configmaps, 'default', { metadata: { name: `x${i}` } });
  assert.throws(() => objects.watch(configmaps, 'default', from, () => {}), (e: unknown) => e instanceof GoneError);
});

test('a node name binds to its first key; a second key meets the first; the binding goes with the Node', async () => {
  const { objects, store } = service();
  const [k1, k2] = ['a'.repeat(64), 'b'.repeat(64)];
  assert.is(await objects.bindNodeKey('pi-1', k1), k1);
  assert.is(await objects.bindNodeKey('pi-1', k2), k1, 'the name stays bound to the first key');
  assert.is(await objects.bindNodeKey('pi-1', k1), k1);
  await rejects(objects.bindNodeKey('pi-1', 'not-a-digest'), 400, /hex SHA-256/);
  await objects.create(nodes, undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'pi-1' } });
  await objects.delete(nodes, undefined, 'pi-1');
  assert.is(store.get(NODE_KEYS_RESOURCE, '', 'pi-1'), undefined, 'deleting the Node removed its binding');
  assert.is(objects.boundNodeKey('pi-1'), undefined);
  assert.is(await objects.bindNodeKey('pi-1', k2), k2, 'the name is free for another machine');
  assert.ok(await objects.unbindNodeKey('pi-1'));
  assert.not.ok(await objects.unbindNodeKey('pi-1'), 'nothing left to remove');
});

test.run();
