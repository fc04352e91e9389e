// `get pv`, `get pvc`, `get sc` print kubectl's columns, in kubectl's words.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatObjects } from '../../cli/printers.js';
import { resourceByCliName } from '../../api-types/index.js';

const now = Date.parse('2026-05-01T12:00:00Z');
const created = '2026-05-01T11:00:00Z';
const table = (cli: string, items: unknown[]): string[] =>
  formatObjects(resourceByCliName(cli)!, items as never, 'table', { withNamespace: false, now }).trimEnd().split('\n').map((l) => l.trimEnd().replace(/\s{2,}/g, ' | '));

test('get pv', () => {
  const pv = {
    apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'pvc-1', creationTimestamp: created },
    spec: { capacity: { storage: '2Gi' }, accessModes: ['ReadWriteMany', 'ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Delete', storageClassName: 'local-path', claimRef: { namespace: 'default', name: 'data' }, hostPath: { path: '/d' } },
    status: { phase: 'Bound' },
  };
  const free = { ...pv, metadata: { name: 'free', creationTimestamp: created }, spec: { ...pv.spec, claimRef: undefined, storageClassName: undefined, persistentVolumeReclaimPolicy: 'Retain' }, status: { phase: 'Failed', reason: 'VolumeFailedDelete' } };
  assert.equal(table('pv', [pv, free]), [
    'NAME | CAPACITY | ACCESS MODES | RECLAIM POLICY | STATUS | CLAIM | STORAGECLASS | VOLUMEATTRIBUTESCLASS | REASON | AGE',
    'pvc-1 | 2Gi | RWO,RWX | Delete | Bound | default/data | local-path | <unset> | 60m',
    'free | 2Gi | RWO,RWX | Retain | Failed | <unset> | VolumeFailedDelete | 60m',
  ]);
});

test('get pvc: capacity and access modes once bound; Terminating while deleted', () => {
  const bound = {
    apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'data', namespace: 'default', creationTimestamp: created },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: 'local-path', volumeName: 'pvc-1' },
    status: { phase: 'Bound', accessModes: ['ReadWriteOnce'], capacity: { storage: '2Gi' } },
  };
  const pending = { ...bound, metadata: { ...bound.metadata, name: 'wait' }, spec: { ...bound.spec, volumeName: undefined }, status: { phase: 'Pending' } };
  const going = { ...bound, metadata: { ...bound.metadata, name: 'going', deletionTimestamp: created } };
  assert.equal(table('pvc', [bound, pending, going]), [
    'NAME | STATUS | VOLUME | CAPACITY | ACCESS MODES | STORAGECLASS | VOLUMEATTRIBUTESCLASS | AGE',
    'data | Bound | pvc-1 | 2Gi | RWO | local-path | <unset> | 60m',
    'wait | Pending | local-path | <unset> | 60m',
    'going | Terminating | pvc-1 | 2Gi | RWO | local-path | <unset> | 60m',
  ]);
});

test('get sc marks the default class', () => {
  const sc = { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'local-path', creationTimestamp: created, annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } }, provisioner: 'flotilla.io/local-path', reclaimPolicy: 'Delete', volumeBindingMode: 'WaitForFirstConsumer' };
  const nfs = { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'nfs', creationTimestamp: created }, provisioner: 'example.com/nfs', allowVolumeExpansion: true };
  assert.equal(table('sc', [sc, nfs]), [
    'NAME | PROVISIONER | RECLAIMPOLICY | VOLUMEBINDINGMODE | ALLOWVOLUMEEXPANSION | AGE',
    'local-path (default) | flotilla.io/local-path | Delete | WaitForFirstConsumer | false | 60m',
    'nfs | example.com/nfs | Delete | Immediate | true | 60m',
  ]);
});

test.run();
