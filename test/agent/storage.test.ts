// The node side of persistent storage: mounting a claim's volume (hostPath, local-path, NFS through a Docker
// volume of the local driver), removing the directories of deleted local-path volumes, and what NodeRestriction
// lets a node write of a volume.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ANNOTATION_PROVISIONED_BY, FINALIZER_LOCAL_PATH, FINALIZER_PV_PROTECTION, LOCAL_PATH_PROVISIONER, resourceOfKind } from '../../api-types/index.js';
import type { PersistentVolume, Pod } from '../../api-types/index.js';
import { preparePodVolumes } from '../../node-agent/container-config.js';
import { cleanUpLocalVolumes, localPathDir, nfsVolumeOptions } from '../../node-agent/storage.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { admitNodeWrite } from '../../server/objects/node-restriction.js';
import type { StoredObject } from '../../server/store/types.js';

const pod: Pod = {
  apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', uid: 'u1' },
  spec: { containers: [{ name: 'main', image: 'busybox' }], volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }] },
};
const localPath = (name: string, path: string, deleting = false): PersistentVolume => ({
  apiVersion: 'v1', kind: 'PersistentVolume',
  metadata: {
    name, annotations: { [ANNOTATION_PROVISIONED_BY]: LOCAL_PATH_PROVISIONER }, finalizers: [FINALIZER_PV_PROTECTION, FINALIZER_LOCAL_PATH], resourceVersion: '7',
    ...(deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}),
  },
  spec: {
    capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], hostPath: { path, type: 'DirectoryOrCreate' },
    nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['n1'] }] }] } },
  },
});

test('a claim mounts its volume: a local-path directory is made world-writable; an unbound claim waits', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-storage-'));
  try {
    const path = join(localPathDir(dir), 'pvc-1');
    const paths = await preparePodVolumes({ pod, configMaps: {}, secrets: {}, persistentVolumes: { data: localPath('pvc-1', path) } }, join(dir, 'pod'));
    assert.is(paths.get('data'), path);
    assert.is(statSync(path).mode & 0o777, 0o777);
    await preparePodVolumes({ pod, configMaps: {}, secrets: {} }, join(dir, 'pod')).then(() => assert.unreachable('mounted an unbound claim'), (err: Error) => {
      assert.is(err.message, 'persistentvolumeclaim "data" is not bound to a volume yet');
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an NFS volume is mounted through a Docker volume of the local driver with NFS options', async () => {
  const nfs: PersistentVolume = {
    apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'share' },
    spec: { capacity: { storage: '10Gi' }, accessModes: ['ReadWriteMany'], mountOptions: ['nfsvers=4.1'], nfs: { server: '10.0.0.5', path: '/exports/share', readOnly: true } },
  };
  assert.equal(nfsVolumeOptions(nfs), { Name: 'flotilla-pv-share', Driver: 'local', DriverOpts: { type: 'nfs', o: 'addr=10.0.0.5,ro,nfsvers=4.1', device: ':/exports/share' } });
  const runtime = new FakeRuntime();
  const paths = await preparePodVolumes({ pod, configMaps: {}, secrets: {}, persistentVolumes: { data: nfs } }, '/nonexistent', runtime);
  assert.is(paths.get('data'), 'flotilla-pv-share', 'Docker binds it by name');
  assert.equal(runtime.volumes.get('flotilla-pv-share'), nfsVolumeOptions(nfs));
});

test('cleanup removes only the directories of volumes being deleted, then their finalizer', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'flotilla-storage-'));
  try {
    const root = localPathDir(dir);
    for (const name of ['gone', 'kept', 'unknown']) {
      mkdirSync(join(root, name), { recursive: true });
      writeFileSync(join(root, name, 'f'), name);
    }
    const volumes: Record<string, PersistentVolume> = { gone: localPath('gone', join(root, 'gone'), true), kept: localPath('kept', join(root, 'kept')) };
    const removed: [string, string[]][] = [];
    const api = {
      getPersistentVolume: async (name: string) => volumes[name],
      removeVolumeFinalizer: async (v: PersistentVolume, f: string) => { removed.push([v.metadata.name!, (v.metadata.finalizers ?? []).filter((x) => x !== f)]); },
    };
    assert.equal(await cleanUpLocalVolumes(dir, api), ['gone']);
    assert.equal(removed, [['gone', [FINALIZER_PV_PROTECTION]]]);
    assert.not.ok(existsSync(join(root, 'gone')));
    assert.ok(existsSync(join(root, 'kept', 'f')), 'a live volume keeps its data');
    assert.ok(existsSync(join(root, 'unknown', 'f')), 'a directory without a readable volume is kept');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('NodeRestriction: a node may only remove the cleanup finalizer of its own local-path volume', () => {
  const pvs = resourceOfKind('PersistentVolume');
  const stored = localPath('pvc-1', '/d/pvc-1', true) as unknown as StoredObject;
  const lifted = { ...stored, metadata: { ...stored.metadata, finalizers: [FINALIZER_PV_PROTECTION] } } as StoredObject;
  const objects = { get: () => undefined };
  admitNodeWrite('n1', pvs, stored, lifted, false, objects);
  assert.throws(() => admitNodeWrite('n2', pvs, stored, lifted, false, objects), /may only remove finalizer/);
  const both = { ...stored, metadata: { ...stored.metadata, finalizers: [] } } as StoredObject;
  assert.throws(() => admitNodeWrite('n1', pvs, stored, both, false, objects), /may only remove finalizer/, 'pv-protection is not the node\'s');
  const moved = { ...lifted, spec: { ...(lifted as unknown as PersistentVolume).spec, capacity: { storage: '9Gi' } } } as unknown as StoredObject;
  assert.throws(() => admitNodeWrite('n1', pvs, stored, moved, false, objects), /may only remove finalizer/);
});

test.run();
