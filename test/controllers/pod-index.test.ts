// The controllers' pod index (PodsByOwner) against a real SQLite store, through a snapshot install.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ObjectService } from '../../server/objects/service.js';
import { SqliteStore } from '../../server/store/sqlite-store.js';
import { LocalProposer } from '../../server/store/proposer.js';
import type { StoredObject } from '../../server/store/types.js';
import { PodsByOwner } from '../../server/controllers/cluster-objects.js';
import { R } from './cluster-sim.js';

const owner = { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'web', namespace: 'default', uid: 'rs-uid' } } as StoredObject;
const pod = (name: string, owned = true) => ({
  metadata: { name, ...(owned ? { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'rs-uid', controller: true }] } : {}) },
  spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] },
});

async function storeWith(path: string, pods: ReturnType<typeof pod>[]): Promise<{ store: SqliteStore; objects: ObjectService }> {
  const store = new SqliteStore({ path });
  const objects = new ObjectService(store, new LocalProposer(store), () => new Date());
  await objects.create(R('namespaces'), undefined, { metadata: { name: 'default' } });
  await objects.create(R('serviceaccounts'), 'default', { metadata: { name: 'default' } });
  for (const p of pods) await objects.create(R('pods'), 'default', p);
  return { store, objects };
}

test('the pod index answers for the new state after a snapshot install replaced the store, and follows it from there', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-pod-index-'));
  const stores: SqliteStore[] = [];
  const index: { value?: PodsByOwner } = {};
  try {
    const member = await storeWith(join(dir, 'member.db'), [pod('old-1'), pod('stray', false)]);
    const leader = await storeWith(join(dir, 'leader.db'), [pod('new-1'), pod('new-2'), pod('loose', false)]);
    stores.push(member.store, leader.store);
    index.value = new PodsByOwner(member.objects);
    const names = (pods: { metadata: { name?: string } }[]) => pods.map((p) => p.metadata.name).sort();
    assert.equal(names(index.value.ownedBy(owner)), ['old-1']);
    assert.equal(names(index.value.unowned('default')), ['stray']);

    leader.store.snapshotTo(join(dir, 'snapshot.db'));
    member.store.restoreFrom(join(dir, 'snapshot.db'));
    assert.equal(names(index.value.ownedBy(owner)), ['new-1', 'new-2']);
    assert.equal(names(index.value.unowned('default')), ['loose']);

    await member.objects.create(R('pods'), 'default', pod('new-3'));
    assert.equal(names(index.value.ownedBy(owner)), ['new-1', 'new-2', 'new-3'], 'writes after the install reach the index');
  } finally {
    index.value?.close();
    for (const s of stores) s.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a closed pod index stops following the store', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-pod-index-'));
  const { store, objects } = await storeWith(join(dir, 'state.db'), [pod('a')]);
  try {
    const index = new PodsByOwner(objects);
    assert.is(index.ownedBy(owner).length, 1);
    const watchers = store.watcherCount;
    index.close();
    assert.is(store.watcherCount, watchers - 1);
    assert.throws(() => index.ownedBy(owner), /after close/);
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
