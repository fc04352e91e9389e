// One contract suite for every StateStore (SqliteStore, MemoryStore): the same commands give the same results,
// state, revisions and watch events on each.
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { GoneError } from '../../server/store/types.js';
import type { ApplyResult, Command, StateStore, StoredObject, WatchEvent } from '../../server/store/types.js';

export interface OpenedStore { store: StateStore; close(): void }

export const cm = (name: string, data: Record<string, string> = { a: '1' }, rv?: string): StoredObject => ({
  apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: 'default', ...(rv ? { resourceVersion: rv } : {}) }, data,
});
export const create = (object: StoredObject, uid = `uid-${object.metadata.name}`): Command => ({ op: 'create', resource: 'configmaps', object, uid, now: '2026-01-01T00:00:00Z' });
export function applyOne(store: StateStore, command: Command): ApplyResult {
  return store.apply([{ command, revision: store.revision() + 1 }])[0]!;
}
export function ok(r: ApplyResult): StoredObject {
  if (!r.ok) throw new Error(`expected success, got ${r.failure.code} ${r.failure.message}`);
  return r.object;
}
function failure(r: ApplyResult): { code: number; reason: string } {
  if (r.ok) throw new Error(`expected a failure, got ${r.type} ${r.object.metadata.name}`);
  return r.failure;
}

/** `open` makes an empty store; `historyWindow` is how many changes a watch can resume from. */
export function runStoreContract(name: string, open: (opts?: { historyWindow?: number }) => OpenedStore): void {
  const s = suite(`StateStore contract: ${name}`);
  const opened: OpenedStore[] = [];
  const fresh = (opts?: { historyWindow?: number }): StateStore => {
    const o = open(opts);
    opened.push(o);
    return o.store;
  };
  s.after.each(() => { for (const o of opened.splice(0)) o.close(); });

  s('an empty store is at revision 0 and holds nothing', () => {
    const store = fresh();
    assert.is(store.revision(), 0);
    assert.is(store.get('configmaps', 'default', 'a'), undefined);
    assert.equal(store.list('configmaps'), { items: [], revision: 0 });
  });

  s('create sets uid, creationTimestamp, generation 1 and the revision as resourceVersion; get returns it', () => {
    const store = fresh();
    const o = ok(applyOne(store, create({ ...cm('a'), metadata: { ...cm('a').metadata, deletionTimestamp: '2020-01-01T00:00:00Z' } })));
    assert.is(o.metadata.uid, 'uid-a');
    assert.is(o.metadata.creationTimestamp, '2026-01-01T00:00:00Z');
    assert.is(o.metadata.generation, 1);
    assert.is(o.metadata.deletionTimestamp, undefined, 'deletionTimestamp belongs to the server');
    assert.is(store.revision(), 1);
    assert.is(o.metadata.resourceVersion, '1');
    assert.equal(store.get('configmaps', 'default', 'a'), o);
  });

  s('get returns a copy: changing it changes nothing stored', () => {
    const store = fresh();
    ok(applyOne(store, create(cm('a'))));
    const got = store.get('configmaps', 'default', 'a')!;
    (got.data as Record<string, string>).a = 'mutated';
    assert.equal(store.get('configmaps', 'default', 'a')?.data, { a: '1' });
  });

  s('a second create of the same name is 409 AlreadyExists and changes nothing but the revision', () => {
    const store = fresh();
    ok(applyOne(store, create(cm('a'))));
    const r = failure(applyOne(store, create(cm('a', { b: '2' }), 'other')));
    assert.is(r.code, 409);
    assert.is(r.reason, 'AlreadyExists');
    assert.equal(store.get('configmaps', 'default', 'a')?.data, { a: '1' });
    assert.is(store.revision(), 2, 'a failed command still takes its revision (its log index)');
  });

  s('list filters by namespace, orders by namespace and name, and reports the store revision', () => {
    const store = fresh();
    for (const [ns, n] of [['default', 'b'], ['other', 'a'], ['default', 'a'], ['a-first', 'z']] as const) {
      ok(applyOne(store, create({ ...cm(n), metadata: { name: n, namespace: ns } }, `${ns}-${n}`)));
    }
    ok(applyOne(store, { op: 'create', resource: 'pods', object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' } }, uid: 'p', now: 't' }));
    assert.equal(store.list('configmaps', 'default').items.map((o) => o.metadata.name), ['a', 'b']);
    assert.equal(store.list('configmaps').items.map((o) => `${o.metadata.namespace}/${o.metadata.name}`), ['a-first/z', 'default/a', 'default/b', 'other/a']);
    assert.is(store.list('configmaps').revision, store.revision());
    assert.equal(store.list('configmaps', 'nowhere').items, []);
  });

  s('an update with a stale resourceVersion is 409 Conflict; with the current one, or none, it succeeds', () => {
    const store = fresh();
    const first = ok(applyOne(store, create(cm('a'))));
    const second = ok(applyOne(store, { op: 'update', resource: 'configmaps', object: cm('a', { a: '2' }, first.metadata.resourceVersion) }));
    assert.is(second.metadata.resourceVersion, '2');
    const stale = failure(applyOne(store, { op: 'update', resource: 'configmaps', object: cm('a', { a: '3' }, first.metadata.resourceVersion) }));
    assert.is(stale.code, 409);
    assert.is(stale.reason, 'Conflict');
    assert.equal(store.get('configmaps', 'default', 'a')?.data, { a: '2' });
    ok(applyOne(store, { op: 'update', resource: 'configmaps', object: cm('a', { a: '4' }) }));
    assert.equal(store.get('configmaps', 'default', 'a')?.data, { a: '4' });
    const missing = failure(applyOne(store, { op: 'update', resource: 'configmaps', object: cm('nope') }));
    assert.is(missing.code, 404);
  });

  s('an update with another uid is 409; uid and creationTimestamp cannot be changed by an update', () => {
    const store = fresh();
    ok(applyOne(store, create(cm('a'))));
    assert.is(failure(applyOne(store, { op: 'update', resource: 'configmaps', object: { ...cm('a'), metadata: { name: 'a', namespace: 'default', uid: 'other' } } })).code, 409);
    const u = ok(applyOne(store, { op: 'update', resource: 'configmaps', object: { ...cm('a', { a: '2' }), metadata: { name: 'a', namespace: 'default', creationTimestamp: '1999-01-01T00:00:00Z' } } }));
    assert.is(u.metadata.uid, 'uid-a');
    assert.is(u.metadata.creationTimestamp, '2026-01-01T00:00:00Z');
  });

  s('an update that changes nothing keeps the resourceVersion and emits no watch event', () => {
    const store = fresh();
    const created = ok(applyOne(store, create(cm('a', { x: '1', y: '2' }))));
    const seen: string[] = [];
    const stop = store.watch('configmaps', undefined, store.revision(), (e) => seen.push(e.type));
    const same = applyOne(store, { op: 'update', resource: 'configmaps', object: cm('a', { y: '2', x: '1' }) });
    assert.ok(same.ok && same.unchanged, 'the same content in another key order is unchanged');
    assert.is(ok(same).metadata.resourceVersion, created.metadata.resourceVersion);
    assert.equal(store.get('configmaps', 'default', 'a'), created);
    ok(applyOne(store, { op: 'update', resource: 'configmaps', object: cm('a', { x: 'new' }) }));
    stop();
    assert.equal(seen, ['MODIFIED']);
  });

  s('the main resource keeps status; the status subresource changes only status', () => {
    const store = fresh();
    const pod = (spec: unknown, status?: unknown, labels?: Record<string, string>): StoredObject => ({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', ...(labels ? { labels } : {}) }, spec, ...(status ? { status } : {}),
    });
    ok(applyOne(store, { op: 'create', resource: 'pods', object: pod({ containers: [] }, { phase: 'Pending' }), uid: 'u', now: 't' }));
    const main = ok(applyOne(store, { op: 'update', resource: 'pods', object: pod({ containers: [], nodeName: 'n1' }, { phase: 'Failed' }) }));
    assert.equal(main.status, { phase: 'Pending' });
    const st = ok(applyOne(store, { op: 'update', resource: 'pods', subresource: 'status', object: pod({ ignored: true }, { phase: 'Running' }, { ignored: 'too' }) }));
    assert.equal(st.status, { phase: 'Running' });
    assert.equal(st.spec, { containers: [], nodeName: 'n1' });
    assert.is(st.metadata.labels, undefined, 'metadata comes from the stored object');
    assert.is(st.metadata.generation, 2, 'status writes do not bump generation');
  });

  s('generation counts changes of the desired state only: spec, or data for a ConfigMap; not metadata or status', () => {
    const store = fresh();
    const dep = (replicas: number, extra: Partial<StoredObject> = {}): StoredObject => ({
      apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'd', namespace: 'default' }, spec: { replicas, template: { spec: { containers: [] } } }, ...extra,
    });
    const write = (object: StoredObject, subresource?: 'status') => ok(applyOne(store, { op: 'update', resource: 'deployments.apps', object, ...(subresource ? { subresource } : {}) })).metadata.generation;
    ok(applyOne(store, { op: 'create', resource: 'deployments.apps', object: dep(1), uid: 'd', now: 't' }));
    assert.is(write({ ...dep(1), metadata: { name: 'd', namespace: 'default', labels: { a: 'b' }, annotations: { x: 'y' } } }), 1, 'metadata');
    assert.is(write(dep(1, { status: { replicas: 1 } }), 'status'), 1, 'status');
    assert.is(write(dep(3)), 2, 'spec');
    assert.is(write({ ...dep(3), spec: { template: { spec: { containers: [] } }, replicas: 3 } }), 2, 'the same spec in another key order');
    ok(applyOne(store, create(cm('c'))));
    assert.is(ok(applyOne(store, { op: 'update', resource: 'configmaps', object: cm('c', { a: '2' }) })).metadata.generation, 2, 'ConfigMap data');
  });

  s('delete returns the object, honours uid and resourceVersion preconditions, and is 404 when missing', () => {
    const store = fresh();
    const a = ok(applyOne(store, create(cm('a'))));
    const del = (preconditions?: { uid?: string; resourceVersion?: string }): Command => ({ op: 'delete', resource: 'configmaps', namespace: 'default', name: 'a', ...(preconditions ? { preconditions } : {}), now: '2026-01-01T00:01:00Z' });
    assert.is(failure(applyOne(store, del({ uid: 'nope' }))).code, 409);
    assert.is(failure(applyOne(store, del({ resourceVersion: '999' }))).code, 409);
    const gone = applyOne(store, del({ uid: a.metadata.uid!, resourceVersion: a.metadata.resourceVersion! }));
    assert.ok(gone.ok && gone.type === 'DELETED');
    assert.equal(ok(gone), a);
    assert.is(store.get('configmaps', 'default', 'a'), undefined);
    assert.is(failure(applyOne(store, del())).code, 404);
  });

  s('graceful deletion: a bound pod is marked with deletionTimestamp and grace; a repeat may shorten it, grace 0 removes it', () => {
    const store = fresh();
    const pod: StoredObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' }, spec: { nodeName: 'n1', terminationGracePeriodSeconds: 30, containers: [] } };
    ok(applyOne(store, { op: 'create', resource: 'pods', object: pod, uid: 'uid-p', now: '2026-01-01T00:00:00Z' }));
    const del = (now: string, gracePeriodSeconds?: number): Command => ({ op: 'delete', resource: 'pods', namespace: 'default', name: 'p', now, ...(gracePeriodSeconds !== undefined ? { gracePeriodSeconds } : {}) });
    const marked = ok(applyOne(store, del('2026-01-01T00:01:00Z')));
    assert.is(marked.metadata.deletionTimestamp, '2026-01-01T00:01:30.000Z');
    assert.is(marked.metadata.deletionGracePeriodSeconds, 30);
    assert.is(marked.metadata.generation, 1);
    const longer = applyOne(store, del('2026-01-01T00:01:10Z', 60));
    assert.ok(longer.ok && longer.unchanged, 'a longer grace period changes nothing');
    const shorter = ok(applyOne(store, del('2026-01-01T00:01:10Z', 5)));
    assert.is(shorter.metadata.deletionTimestamp, '2026-01-01T00:01:05.000Z', 'counted from the first request');
    const update = ok(applyOne(store, { op: 'update', resource: 'pods', object: { ...pod, metadata: { name: 'p', namespace: 'default', labels: { x: 'y' } } } }));
    assert.is(update.metadata.deletionTimestamp, '2026-01-01T00:01:05.000Z', 'updates keep the server-owned deletion fields');
    assert.ok(ok(applyOne(store, del('2026-01-01T00:01:20Z', 0))) && store.get('pods', 'default', 'p') === undefined);
  });

  s('finalizers hold a deleted object; none can be added then, and the update removing the last one removes it', () => {
    const store = fresh();
    const held = { ...cm('held'), metadata: { ...cm('held').metadata, finalizers: ['example.com/keep'] } };
    ok(applyOne(store, create(held)));
    const seen: string[] = [];
    const stop = store.watch('configmaps', 'default', store.revision(), (e) => seen.push(`${e.type} ${e.object.metadata.finalizers?.join(',') ?? ''}`));
    const marked = ok(applyOne(store, { op: 'delete', resource: 'configmaps', namespace: 'default', name: 'held', now: '2026-01-01T00:01:00Z', propagationPolicy: 'Foreground' }));
    assert.is(marked.metadata.deletionTimestamp, '2026-01-01T00:01:00.000Z');
    assert.is(marked.metadata.deletionGracePeriodSeconds, 0);
    assert.equal(marked.metadata.finalizers, ['example.com/keep', 'foregroundDeletion']);
    const added = failure(applyOne(store, { op: 'update', resource: 'configmaps', object: { ...marked, metadata: { ...marked.metadata, finalizers: ['example.com/keep', 'foregroundDeletion', 'example.com/new'] } } }));
    assert.is(added.code, 422);
    const current = store.get('configmaps', 'default', 'held')!;
    ok(applyOne(store, { op: 'update', resource: 'configmaps', object: { ...current, metadata: { ...current.metadata, finalizers: ['foregroundDeletion'] } } }));
    assert.ok(store.get('configmaps', 'default', 'held'), 'still held by one finalizer');
    const last = store.get('configmaps', 'default', 'held')!;
    const removed = applyOne(store, { op: 'update', resource: 'configmaps', object: { ...last, metadata: { ...last.metadata, finalizers: [] } } });
    assert.ok(removed.ok && removed.type === 'DELETED');
    assert.is(store.get('configmaps', 'default', 'held'), undefined);
    stop();
    assert.equal(seen, ['MODIFIED example.com/keep,foregroundDeletion', 'MODIFIED foregroundDeletion', 'DELETED ']);
  });

  s('a delete command without now (logged before graceful deletion, or of internal records) removes at once', () => {
    const store = fresh();
    const pod: StoredObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', finalizers: ['example.com/keep'] }, spec: { nodeName: 'n1', containers: [] } };
    ok(applyOne(store, { op: 'create', resource: 'pods', object: pod, uid: 'uid-p', now: '2026-01-01T00:00:00Z' }));
    const gone = applyOne(store, { op: 'delete', resource: 'pods', namespace: 'default', name: 'p' });
    assert.ok(gone.ok && gone.type === 'DELETED');
    assert.is(store.get('pods', 'default', 'p'), undefined);
  });

  s('concurrent deletes and a stale finalizer removal in one batch come out the same on two replicas', () => {
    const replicas = [fresh(), fresh()];
    const pod: StoredObject = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' }, spec: { nodeName: 'n1', terminationGracePeriodSeconds: 30, containers: [] } };
    const held = { ...cm('held'), metadata: { ...cm('held').metadata, finalizers: ['example.com/keep'] } };
    for (const store of replicas) {
      ok(applyOne(store, { op: 'create', resource: 'pods', object: pod, uid: 'uid-p', now: '2026-01-01T00:00:00Z' }));
      ok(applyOne(store, create(held)));
    }
    const before = replicas[0]!.get('configmaps', 'default', 'held')!;
    const del = (name: string, resource: string, extra: Partial<Extract<Command, { op: 'delete' }>>): Command => ({ op: 'delete', resource, namespace: 'default', name, now: '2026-01-01T00:01:00Z', ...extra });
    const batch: Command[] = [
      del('p', 'pods', {}),
      del('p', 'pods', { gracePeriodSeconds: 5, now: '2026-01-01T00:01:02Z' }),
      del('held', 'configmaps', { propagationPolicy: 'Foreground' }),
      { op: 'update', resource: 'configmaps', object: { ...before, metadata: { ...before.metadata, finalizers: [] } } },
    ];
    const results = replicas.map((store) => store.apply(batch.map((command, i) => ({ command, revision: store.revision() + 1 + i }))));
    assert.equal(results[0], results[1]);
    assert.equal(replicas[0]!.get('pods', 'default', 'p'), replicas[1]!.get('pods', 'default', 'p'));
    assert.is(ok(results[0]![1]!).metadata.deletionTimestamp, '2026-01-01T00:01:05.000Z');
    assert.is(failure(results[0]![3]!).code, 409, 'the removal did not see the finalizer the delete added');
  });

  s('watch replays changes after a revision, then streams live ones, per resource and namespace, until stopped', () => {
    const store = fresh();
    ok(applyOne(store, create(cm('a'))));
    const mark = store.revision();
    ok(applyOne(store, create(cm('b'))));
    ok(applyOne(store, create({ ...cm('x'), metadata: { name: 'x', namespace: 'other' } })));
    ok(applyOne(store, { op: 'create', resource: 'pods', object: { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default' } }, uid: 'p', now: 't' }));
    const seen: WatchEvent[] = [];
    const all: string[] = [];
    const stop = store.watch('configmaps', 'default', mark, (e) => seen.push(e));
    const stopAll = store.watch('configmaps', undefined, mark, (e) => all.push(`${e.namespace}/${e.object.metadata.name}`));
    assert.is(store.watcherCount, 2);
    ok(applyOne(store, { op: 'delete', resource: 'configmaps', namespace: 'default', name: 'a' }));
    stop();
    stopAll();
    assert.is(store.watcherCount, 0);
    ok(applyOne(store, create(cm('c'))));
    assert.equal(seen.map((e) => `${e.revision} ${e.type} ${e.object.metadata.name}`), ['2 ADDED b', '5 DELETED a']);
    assert.equal(all, ['default/b', 'other/x', 'default/a']);
  });

  s('a watch older than the history window is 410 Gone; one inside it replays what it missed', () => {
    const store = fresh({ historyWindow: 3 });
    const start = store.revision();
    for (const n of ['a', 'b', 'c', 'd', 'e']) ok(applyOne(store, create(cm(n))));
    assert.throws(() => store.watch('configmaps', undefined, start, () => {}), (e: unknown) => e instanceof GoneError && e.failure.code === 410 && e.failure.reason === 'Expired');
    const seen: string[] = [];
    store.watch('configmaps', undefined, store.revision() - 2, (e) => seen.push(e.object.metadata.name))();
    assert.equal(seen, ['d', 'e']);
  });

  s('apply rejects a batch whose revisions do not advance, and leaves state untouched', () => {
    const store = fresh();
    ok(applyOne(store, create(cm('a'))));
    const rev = store.revision();
    assert.throws(() => store.apply([{ command: create(cm('b')), revision: rev + 1 }, { command: create(cm('c')), revision: rev }]));
    assert.is(store.revision(), rev);
    assert.is(store.get('configmaps', 'default', 'b'), undefined);
    assert.throws(() => store.apply([{ command: create(cm('b')), revision: rev }]));
  });

  s('a proposal id applies once: its repeat is 409 AlreadyApplied and still takes its revision', () => {
    const store = fresh();
    const [first, again, other] = store.apply([
      { command: create(cm('a')), revision: 1, proposalId: 'p1' },
      { command: create(cm('b')), revision: 2, proposalId: 'p1' },
      { command: create(cm('c')), revision: 3, proposalId: 'p2' },
    ]);
    assert.ok(first!.ok && other!.ok);
    assert.is(failure(again!).reason, 'AlreadyApplied');
    assert.is(store.get('configmaps', 'default', 'b'), undefined);
    assert.is(store.revision(), 3);
  });

  s.run();
}
