// PersistentVolume, PersistentVolumeClaim and StorageClass: Kubernetes' validation messages and defaults.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyDefaults, validateObject } from '../../api-types/index.js';

const pvc = (spec: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'data', namespace: 'default' }, spec });
const pv = (spec: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'v' }, spec });
const issues = (o: unknown): string[] => {
  const v = validateObject(o);
  return v.ok ? [] : v.issues.map((i) => `${i.path}: ${i.message}`);
};
const good = { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } };
const source = { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], hostPath: { path: '/srv/v' } };

test('claims: access modes and a storage request are required', () => {
  assert.equal(issues(pvc(good)), []);
  assert.equal(issues(pvc({ resources: { requests: { storage: '1Gi' } } })), ['spec.accessModes: Required value: at least 1 access mode is required']);
  assert.equal(issues(pvc({ accessModes: ['ReadWriteOnce'] })), ['spec.resources.requests.storage: Required value']);
  assert.equal(issues(pvc({ ...good, resources: { requests: { storage: '0' } } })), ['spec.resources.requests.storage: Invalid value: "0": must be greater than zero']);
  assert.equal(issues(pvc({ ...good, volumeMod: 'Block' })), ['spec.volumeMod: unknown field "volumeMod"']);
});

test('volumes: one source, capacity, and node affinity for local volumes', () => {
  assert.equal(issues(pv(source)), []);
  assert.equal(issues(pv({ ...source, hostPath: undefined })), ['spec: Required value: must specify a volume type']);
  assert.equal(issues(pv({ ...source, nfs: { server: 'nas', path: '/x' } })), ['spec.nfs: Forbidden: may not specify more than 1 volume type']);
  assert.equal(issues(pv({ ...source, hostPath: undefined, local: { path: '/mnt/disk' } })), ['spec.nodeAffinity: Required value: Local volume requires node affinity']);
  assert.equal(issues(pv({ ...source, capacity: undefined })), ['spec.capacity: Required value: must specify storage']);
  assert.equal(issues({ ...pv(source), metadata: { name: 'v', namespace: 'default' } }), ['metadata.namespace: not allowed on a cluster-scoped kind']);
});

test('defaults: Retain and Filesystem for volumes, Delete and Immediate for classes, Retain for StatefulSet claims', () => {
  const v = applyDefaults(pv(source) as never) as unknown as { spec: Record<string, unknown>; status: unknown };
  assert.is(v.spec.persistentVolumeReclaimPolicy, 'Retain');
  assert.is(v.spec.volumeMode, 'Filesystem');
  assert.equal(v.status, { phase: 'Pending' });
  const sc = applyDefaults({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 's' }, provisioner: 'p' } as never) as unknown as Record<string, unknown>;
  assert.is(sc.reclaimPolicy, 'Delete');
  assert.is(sc.volumeBindingMode, 'Immediate');
  assert.equal(issues({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 's' } }), ['provisioner: required field is missing']);
});

test('a StatefulSet\'s containers may mount its claim templates, which are checked as claims', () => {
  const sts = (templates: unknown[]) => ({
    apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db', namespace: 'default' },
    spec: {
      selector: { matchLabels: { app: 'db' } }, volumeClaimTemplates: templates,
      template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'db', image: 'busybox', volumeMounts: [{ name: 'data', mountPath: '/data' }] }] } },
    },
  });
  assert.equal(issues(sts([{ metadata: { name: 'data' }, spec: good }])), []);
  assert.equal(issues(sts([])), ['spec.template.spec.containers[0].volumeMounts[0].name: no volume named "data" in spec.volumes']);
  assert.equal(issues(sts([{ metadata: { name: 'data' }, spec: { resources: good.resources } }])), ['spec.volumeClaimTemplates[0].spec.accessModes: Required value: at least 1 access mode is required']);
});

test.run();
