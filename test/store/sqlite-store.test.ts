import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import { GoneError } from '../../server/store/types.js';
import type { ApplyResult, Command, StoredObject, WatchEvent } from '../../server/store/types.js';

const dirs: string[] = [];
function freshStore(historyWindow?: number): { store: SqliteStore; path: string } {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-store-'));
  dirs.push(dir);
  const path = join(dir, 'state.db');
  return { store: new SqliteStore({ path, ...(historyWindow ? { historyWindow } : {}) }), path };
}

const cm = (name: string, data: Record<string, string> = { a: '1' }, rv?: string): StoredObject => ({
  apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default', ...(rv ? { resourceVersion: rv } : {}) }, data,
});
const create = (object: StoredObject, uid = `uid-${object.metadata.name}`): Command => ({ op: 'create', resource: 'configmaps', object, uid, now: '2026-01-01T00:00:00Z' });
function applyOne(store: SqliteStore, command: Command): ApplyResult {
  return store.apply([{ command, revision: store.revision() + 1 }])[0]!;
}
function ok(r: ApplyResult): StoredObject {
  if (!r.ok) throw new Error(`expected success, got ${r.failure.code} ${r.failure.message}`);
  return r.object;
}

test('create sets uid, creationTimestamp, generation and the revision as resourceVersion', () => {
  const { store } = freshStore();
  const o = ok(applyOne(store, create(cm('a'))));
  assert.is(o.metadata.uid, 'uid-a');
  assert.is(o.metadata.creationTimestamp, '2026-01-01T00:00:00Z');
  assert.is(o.metadata.generation, 1);
  assert.is(o.metadata.resourceVersion, String(store.revision()));
  assert.equal(store.get('configmaps', 'default', 'a'), o);
  store.close();
});

test('a second create of the same name is 409 AlreadyExists and changes nothing', () => {
  const { store } = freshStore();
  ok(applyOne(store, create(cm('a'))));
  const r = applyOne(store, create(cm('a', { b: '2' }), 'other'));
  assert.not.ok(r.ok);
  if (!r.ok) { assert.is(r.failure.code, 409); assert.is(r.failure.reason, 'AlreadyExists'); }
  assert.equal(store.get('configmaps', 'default', 'a')?.data, { a: '1' });
  store.close();
});

test('an update with a stale resourceVersion is 409 Conflict; with the current one it succeeds', () => {
  const { store } = freshStore();
  const first = ok(applyOne(store, create(cm('a'))));
  const second = ok(applyOne(store, { op: 'update', resource: 'configmaps', object: cm('a', { a: '2' }, first.metadata.resourceVersion) }));
  assert.ok(Number(second.metadata.resourceVersion) > Number(first.metadata.resourceVersion));
  const stale = applyOne(store, { op: 'update', resource: 'configmaps', object: cm('a', { a: '3' }, first.metadata.resourceVersion) });
  assert.not.ok(stale.ok);
  if (!stale.ok) { assert.is(stale.failure.code, 409); assert.is(stale.failure.reason, 'Conflict'); }
  assert.equal(store.get('configmaps', 'default', 'a')?.data, { a: '2' });
  store.close();
});

test('generation counts content changes only; uid and creationTimestamp cannot be changed by an update', () => {
  const { store } = freshStore();
  ok(applyOne(store, create(cm('a'))));
  const relabelled = ok(applyOne(store, { op: 'update', resource: 'configmaps', object: { ...cm('a'), metadata: { name: 'a', namespace: 'default', labels: { x: 'y' }, creationTimestamp: '1999-01-01T00:00:00Z' } } }));
  assert.is(relabelled.metadata.generation, 1);
  assert.is(relabelled.metadata.creationTimestamp, '2026-01-01T00:00:00Z');
  assert.is(relabelled.metadata.uid, 'uid-a');
  const changed = ok(applyOne(store, { op: 'update', resource: 'configmaps', object: cm('a', { a: 'changed' }) }));
  assert.is(changed.metadata.generation, 2);
  store.close();
});

test('an update of the main resource keeps status; the status subresource changes only status', () => {
  const { store } = freshStore();
  const pod = (spec: unknown, status?: unknown): StoredObject => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' }, spec, ...(status ? { status } : {}) });
  ok(applyOne(store, { op: 'create', resource: 'pods', object: pod({ containers: [] }, { phase: 'Pending' }), uid: 'u', now: 't' }));
  const main = ok(applyOne(store, { op: 'update', resource: 'pods', object: pod({ containers: [], nodeName: 'n1' }, { phase: 'Failed' }) }));
  assert.equal(main.status, { phase: 'Pending' });
  const st = ok(applyOne(store, { op: 'update', resource: 'pods', subresource: 'status', object: pod({ ignored: true }, { phase: 'Running' }) }));
  assert.equal(st.status, { phase: 'Running' });
  assert.equal(st.spec, { containers: [], nodeName: 'n1' });
  assert.is(st.metadata.generation, 2, 'status writes do not bump generation');
  store.close();
});

test('an update that changes nothing keeps the resourceVersion and emits no watch event', () => {
  const { store } = freshStore();
  const created = ok(applyOne(store, create(cm('a'))));
  const seen: string[] = [];
  const stop = store.watch('configmaps', undefined, store.revision(), (e) => seen.push(e.type));
  const same = applyOne(store, { op: 'update', resource: 'configmaps', object: cm('a') });
  assert.ok(same.ok && same.unchanged);
  assert.is(ok(same).metadata.resourceVersion, created.metadata.resourceVersion);
  ok(applyOne(store, { op: 'update', resource: 'configmaps', object: cm('a', { a: 'new' }) }));
  stop();
  assert.equal(seen, ['MODIFIED']);
  store.close();
});

test('delete returns the object, honours uid preconditions, and is 404 when missing', () => {
  const { store } = freshStore();
  ok(applyOne(store, create(cm('a'))));
  const wrong = applyOne(store, { op: 'delete', resource: 'configmaps', namespace: 'default', name: 'a', preconditions: { uid: 'nope' } });
  assert.not.ok(wrong.ok);
  if (!wrong.ok) assert.is(wrong.failure.code, 409);
  const del = applyOne(store, { op: 'delete', resource: 'configmaps', namespace: 'default', name: 'a' });
  assert.ok(del.ok);
  if (del.ok) assert.is(del.type, 'DELETED');
  assert.is(store.get('configmaps', 'default', 'a'), undefined);
  const again = applyOne(store, { op: 'delete', resource: 'configmaps', namespace: 'default', name: 'a' });
  assert.not.ok(again.ok);
  if (!again.ok) assert.is(again.failure.code, 404);
  store.close();
});

test('deletes that mark an object are decided in the log: concurrent deletes shorten, a stale finalizer removal conflicts, replicas agree', () => {
  const pod: StoredObject = {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' },
    spec: { nodeName: 'n1', terminationGracePeriodSeconds: 30, containers: [{ name: 'c', image: 'i' }] },
  };
  const commands: Command[] = [
    { op: 'create', resource: 'pods', object: pod, uid: 'uid-p', now: '2026-01-01T00:00:00Z' },
    create({ ...cm('held'), metadata: { ...cm('held').metadata, finalizers: ['example.com/keep'] } }),
  ];
  const replicas = [freshStore().store, freshStore().store];
  for (const store of replicas) for (const c of commands) ok(applyOne(store, c));
  const held = replicas[0]!.get('configmaps', 'default', 'held')!;
  const del = (name: string, resource: string, extra: Partial<Extract<Command, { op: 'delete' }>>): Command => ({ op: 'delete', resource, namespace: 'default', name, now: '2026-01-01T00:01:00Z', ...extra });
  // Two deletes in one batch (one Raft group commit), then a finalizer removal written against the object as
  // it was before the delete added the garbage collector's finalizer.
  const batch: Command[] = [
    del('p', 'pods', {}),
    del('p', 'pods', { gracePeriodSeconds: 5, now: '2026-01-01T00:01:02Z' }),
    del('held', 'configmaps', { propagationPolicy: 'Foreground' }),
    { op: 'update', resource: 'configmaps', object: { ...held, metadata: { ...held.metadata, finalizers: [] } } },
  ];
  const results = replicas.map((store) => store.apply(batch.map((command, i) => ({ command, revision: store.revision() + 1 + i }))));
  assert.equal(results[0], results[1], 'every replica gets the same results');
  assert.equal(replicas[0]!.get('pods', 'default', 'p'), replicas[1]!.get('pods', 'default', 'p'));
  const [first, second, marked, stale] = results[0]!;
  assert.is(ok(first!).metadata.deletionTimestamp, '2026-01-01T00:01:30.000Z');
  assert.is(ok(second!).metadata.deletionTimestamp, '2026-01-01T00:01:05.000Z', 'shortened, counted from the first delete');
  assert.is(ok(second!).metadata.deletionGracePeriodSeconds, 5);
  assert.equal(ok(marked!).metadata.finalizers, ['example.com/keep', 'foregroundDeletion']);
  assert.ok(!stale!.ok && stale!.failure.code === 409, 'the removal did not see the new finalizer');
  const current = replicas[0]!.get('configmaps', 'default', 'held')!;
  const removed = ok(applyOne(replicas[0]!, { op: 'update', resource: 'configmaps', object: { ...current, metadata: { ...current.metadata, finalizers: [] } } }));
  assert.ok(removed.metadata.deletionTimestamp);
  assert.is(replicas[0]!.get('configmaps', 'default', 'held'), undefined, 'the update that removed the last finalizer removed the object');
  for (const store of replicas) store.close();
});

test('list filters by namespace and reports the store revision', () => {
  const { store } = freshStore();
  ok(applyOne(store, create(cm('a'))));
  ok(applyOne(store, create({ ...cm('b'), metadata: { name: 'b', namespace: 'other' } })));
  assert.equal(store.list('configmaps', 'default').items.map((o) => o.metadata.name), ['a']);
  assert.equal(store.list('configmaps').items.map((o) => o.metadata.name), ['a', 'b']);
  assert.is(store.list('configmaps').revision, store.revision());
  store.close();
});

test('watch replays changes after a revision, then streams live ones, per resource and namespace', () => {
  const { store } = freshStore();
  ok(applyOne(store, create(cm('a'))));
  const mark = store.revision();
  ok(applyOne(store, create(cm('b'))));
  ok(applyOne(store, { op: 'create', resource: 'pods', object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' } }, uid: 'p', now: 't' }));
  const seen: WatchEvent[] = [];
  const stop = store.watch('configmaps', 'default', mark, (e) => seen.push(e));
  ok(applyOne(store, { op: 'delete', resource: 'configmaps', namespace: 'default', name: 'a' }));
  stop();
  ok(applyOne(store, create(cm('c'))));
  assert.equal(seen.map((e) => `${e.type} ${e.object.metadata.name}`), ['ADDED b', 'DELETED a']);
  store.close();
});

test('a watch older than the history window is 410 Gone; one inside it works', () => {
  const { store } = freshStore(3);
  const start = store.revision();
  for (const n of ['a', 'b', 'c', 'd', 'e']) ok(applyOne(store, create(cm(n))));
  assert.throws(() => store.watch('configmaps', undefined, start, () => {}), (e: unknown) => e instanceof GoneError && e.failure.code === 410);
  const seen: string[] = [];
  store.watch('configmaps', undefined, store.revision() - 2, (e) => seen.push(e.object.metadata.name))();
  assert.equal(seen, ['d', 'e']);
  store.close();
});

test('state and revision survive closing and reopening the file; the history window restarts there', () => {
  const { store, path } = freshStore();
  ok(applyOne(store, create(cm('a'))));
  const rev = store.revision();
  store.close();
  const again = new SqliteStore({ path });
  assert.is(again.revision(), rev);
  assert.equal(again.get('configmaps', 'default', 'a')?.data, { a: '1' });
  assert.throws(() => again.watch('configmaps', undefined, rev - 1, () => {}), (e: unknown) => e instanceof GoneError);
  again.close();
});

test('apply rejects a batch whose revisions do not advance, and leaves state untouched', () => {
  const { store } = freshStore();
  ok(applyOne(store, create(cm('a'))));
  const rev = store.revision();
  assert.throws(() => store.apply([{ command: create(cm('b')), revision: rev + 1 }, { command: create(cm('c')), revision: rev }]));
  assert.is(store.revision(), rev);
  assert.is(store.get('configmaps', 'default', 'b'), undefined);
  store.close();
});

test('LocalProposer commits concurrent proposals in one batch with consecutive revisions', async () => {
  const { store } = freshStore();
  const proposer = new LocalProposer(store);
  let transactions = 0;
  const apply = store.apply.bind(store);
  store.apply = (batch) => { transactions++; return apply(batch); };
  const before = store.revision();
  const results = await Promise.all(Array.from({ length: 50 }, (_, i) => proposer.propose(create(cm(`n${i}`)))));
  assert.is(transactions, 1);
  assert.equal(results.map((r) => Number(ok(r).metadata.resourceVersion)), Array.from({ length: 50 }, (_, i) => before + 1 + i));
  store.close();
});

test.after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });
test.run();
