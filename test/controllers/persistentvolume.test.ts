// The PersistentVolume controller: Kubernetes' binding rules as a table, then the controller on a simulated
// cluster (binding, WaitForFirstConsumer provisioning on the consumer's node, reclaim, protection), the scheduler's
// reading of claims, admission and the StatefulSet's claims per ordinal.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  ANNOTATION_BIND_COMPLETED, ANNOTATION_DEFAULT_STORAGE_CLASS, ANNOTATION_LOCAL_PATH_DIR, ANNOTATION_SELECTED_NODE, FINALIZER_LOCAL_PATH,
  FINALIZER_PV_PROTECTION, FINALIZER_PVC_PROTECTION, LOCAL_PATH_PROVISIONER,
} from '../../api-types/index.js';
import type { PersistentVolume, PersistentVolumeClaim, Pod, StorageClass } from '../../api-types/index.js';
import { bestVolume, claimVolumeMismatch } from '../../server/controllers/persistentvolume.js';
import { NO_VOLUME_TO_BIND, UNBOUND_IMMEDIATE_CLAIMS, volumeVerdict } from '../../server/scheduler/volume-binding.js';
import { StoreError } from '../../server/store/types.js';
import { ClusterSim, R } from './cluster-sim.js';

const claim = (over: Partial<PersistentVolumeClaim['spec']> = {}, labels?: Record<string, string>): PersistentVolumeClaim => ({
  apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'data', namespace: 'default', uid: 'c1', ...(labels ? { labels } : {}) },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: 'manual', ...over },
});
const volume = (name: string, storage: string, over: Partial<PersistentVolume['spec']> = {}, labels?: Record<string, string>): PersistentVolume => ({
  apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name, ...(labels ? { labels } : {}) },
  spec: { capacity: { storage }, accessModes: ['ReadWriteOnce'], storageClassName: 'manual', hostPath: { path: `/srv/${name}` }, ...over },
  status: { phase: 'Available' },
});
const onNode = (node: string): PersistentVolume['spec']['nodeAffinity'] => ({ required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] }] } });

test('binding rules: which volume a claim gets', () => {
  const cases: [string, PersistentVolumeClaim, PersistentVolume[], string | undefined, Record<string, string>?][] = [
    ['the smallest that is large enough', claim(), [volume('big', '10Gi'), volume('small', '500Mi'), volume('fit', '2Gi'), volume('fit2', '1Gi')], 'fit2'],
    ['equal sizes: by name', claim(), [volume('b', '1Gi'), volume('a', '1Gi')], 'a'],
    ['another class does not match', claim(), [volume('x', '5Gi', { storageClassName: 'fast' })], undefined],
    ['no class matches only no class', claim({ storageClassName: '' }), [volume('x', '5Gi'), volume('y', '5Gi', { storageClassName: undefined })], 'y'],
    ['every access mode asked', claim({ accessModes: ['ReadWriteOnce', 'ReadOnlyMany'] }), [volume('x', '5Gi'), volume('y', '9Gi', { accessModes: ['ReadOnlyMany', 'ReadWriteOnce'] })], 'y'],
    ['volumeMode must agree', claim({ volumeMode: 'Block' }), [volume('x', '5Gi', { volumeMode: 'Filesystem' })], undefined],
    ['the selector picks by labels', claim({ selector: { matchLabels: { tier: 'ssd' } } }), [volume('x', '1Gi'), volume('y', '5Gi', {}, { tier: 'ssd' })], 'y'],
    ['pre-bound to the claim comes first', claim(), [volume('x', '1Gi'), volume('y', '5Gi', { claimRef: { namespace: 'default', name: 'data' } })], 'y'],
    ['pre-bound to another claim is out', claim(), [volume('y', '5Gi', { claimRef: { namespace: 'default', name: 'other' } })], undefined],
    ['volumeName takes only that one', claim({ volumeName: 'z' }), [volume('x', '1Gi'), volume('z', '5Gi')], 'z'],
    ['Released volumes are not reused', claim(), [{ ...volume('x', '1Gi'), status: { phase: 'Released' } }], undefined],
    ['the selected node must be in the affinity', claim(), [volume('n1', '1Gi', { nodeAffinity: onNode('n1') }), volume('n2', '1Gi', { nodeAffinity: onNode('n2') })], 'n2', { 'kubernetes.io/hostname': 'n2' }],
  ];
  for (const [what, c, volumes, want, node] of cases) {
    assert.is(bestVolume(c, volumes, node)?.metadata.name, want, what);
  }
  assert.is(claimVolumeMismatch(claim(), volume('x', '500Mi')), 'too small');
});

const klass = (name: string, volumeBindingMode: 'Immediate' | 'WaitForFirstConsumer', over: Partial<StorageClass> = {}) => ({
  apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name }, provisioner: LOCAL_PATH_PROVISIONER, volumeBindingMode, ...over,
});
const podUsing = (name: string, claimName: string): Pod => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' },
  spec: { containers: [{ name: 'main', image: 'busybox', volumeMounts: [{ name: 'data', mountPath: '/data' }] }], volumes: [{ name: 'data', persistentVolumeClaim: { claimName } }] },
});

test('scheduling: bound claims add their volume\'s node affinity, unbound Immediate claims keep the pod pending', () => {
  const claims: Record<string, PersistentVolumeClaim> = {
    bound: { ...claim({ volumeName: 'pv1' }), status: { phase: 'Bound' } },
    waiting: claim({ storageClassName: 'local-path' }),
    immediate: claim({ storageClassName: 'manual' }),
    disk: claim({ storageClassName: 'local-storage' }),
    huge: claim({ storageClassName: 'local-storage', resources: { requests: { storage: '1Ti' } } }),
  };
  const disks = [volume('d1', '10Gi', { storageClassName: 'local-storage', nodeAffinity: onNode('n1') }), volume('d3', '10Gi', { storageClassName: 'local-storage', nodeAffinity: onNode('n3') })];
  const reads = {
    claim: (_ns: string, name: string) => claims[name],
    volume: (name: string) => (name === 'pv1' ? volume('pv1', '1Gi', { nodeAffinity: onNode('n2') }) : undefined),
    storageClass: (name: string) => ({
      'local-path': klass('local-path', 'WaitForFirstConsumer'), manual: klass('manual', 'Immediate'),
      'local-storage': klass('local-storage', 'WaitForFirstConsumer', { provisioner: 'kubernetes.io/no-provisioner' }),
    } as Record<string, StorageClass>)[name],
    volumes: () => disks,
  };
  const placed = volumeVerdict({ ...podUsing('p', 'bound'), spec: { ...podUsing('p', 'bound').spec, affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'Exists' }] }] } } } } }, reads);
  assert.ok('pod' in placed);
  assert.equal(placed.pod.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms,
    [{ matchExpressions: [{ key: 'zone', operator: 'Exists' }, { key: 'kubernetes.io/hostname', operator: 'In', values: ['n2'] }] }], 'the pod\'s term and the volume\'s must both hold');
  const waiting = volumeVerdict(podUsing('p', 'waiting'), reads);
  assert.ok('pod' in waiting && waiting.pod.spec.affinity === undefined, 'WaitForFirstConsumer: placed freely');
  const disk = volumeVerdict(podUsing('p', 'disk'), reads);
  assert.ok('pod' in disk);
  assert.equal(disk.pod.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms,
    [...onNode('n1')!.required!.nodeSelectorTerms, ...onNode('n3')!.required!.nodeSelectorTerms], 'no provisioner: only where a volume that fits is');
  assert.equal(volumeVerdict(podUsing('p', 'huge'), reads), { unschedulable: NO_VOLUME_TO_BIND });
  assert.equal(volumeVerdict(podUsing('p', 'immediate'), reads), { unschedulable: UNBOUND_IMMEDIATE_CLAIMS });
  assert.equal(volumeVerdict(podUsing('p', 'missing'), reads), { unschedulable: 'persistentvolumeclaim "missing" not found' });
});

async function simWithLocalPath(): Promise<ClusterSim> {
  const sim = await new ClusterSim().start();
  await sim.objects.create(R('sc'), undefined, { ...klass('local-path', 'WaitForFirstConsumer', { reclaimPolicy: 'Delete' }), metadata: { name: 'local-path', annotations: { [ANNOTATION_DEFAULT_STORAGE_CLASS]: 'true' } } });
  return sim;
}

const claimOf = (sim: ClusterSim, name = 'data') => sim.get('pvc', name) as unknown as PersistentVolumeClaim | undefined;
const volumeOf = (sim: ClusterSim, name: string) => sim.get('pv', name) as unknown as PersistentVolume | undefined;

test('admission: a claim without a class gets the default class and the protection finalizer; a volume its own', async () => {
  const sim = await simWithLocalPath();
  try {
    const c = await sim.objects.create(R('pvc'), 'default', { metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }) as unknown as PersistentVolumeClaim;
    assert.is(c.spec.storageClassName, 'local-path');
    assert.equal(c.metadata.finalizers, [FINALIZER_PVC_PROTECTION]);
    assert.is(c.status?.phase, 'Pending');
    const none = await sim.objects.create(R('pvc'), 'default', { metadata: { name: 'none' }, spec: { storageClassName: '', accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }) as unknown as PersistentVolumeClaim;
    assert.is(none.spec.storageClassName, '', 'an explicit "" stays: no class');
    const v = await sim.objects.create(R('pv'), undefined, volume('pv1', '1Gi')) as unknown as PersistentVolume;
    assert.equal(v.metadata.finalizers, [FINALIZER_PV_PROTECTION]);
    assert.is(v.spec.persistentVolumeReclaimPolicy, 'Retain');
    await sim.objects.patch(R('pvc'), 'default', 'data', { spec: { accessModes: ['ReadWriteMany'] } }).then(() => assert.unreachable('spec changed'), (err: StoreError) => {
      assert.match(err.failure.message, 'spec is immutable after creation except resources.requests');
    });
    const again = await sim.objects.replace(R('pvc'), 'default', 'data', { metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }) as unknown as PersistentVolumeClaim;
    assert.is(again.spec.storageClassName, 'local-path', 'a PUT of the original manifest keeps the class admission gave');
    await sim.objects.patch(R('sc'), undefined, 'local-path', { provisioner: 'other' }).then(() => assert.unreachable('provisioner changed'), (err: StoreError) => {
      assert.match(err.failure.message, 'provisioner: Forbidden: updates to provisioner are forbidden.');
    });
  } finally {
    await sim.stop();
  }
});

test('static volume: the claim binds, and with Retain the volume is Released when the claim goes, once no pod uses it', async () => {
  const sim = await simWithLocalPath();
  try {
    await sim.addNode('n1');
    await sim.objects.create(R('pv'), undefined, volume('small', '1Gi'));
    await sim.objects.create(R('pv'), undefined, volume('large', '8Gi'));
    await sim.objects.create(R('pvc'), 'default', claim());
    await sim.until(() => claimOf(sim)?.status?.phase === 'Bound');
    const c = claimOf(sim)!;
    assert.is(c.spec.volumeName, 'small');
    assert.is(c.metadata.annotations?.[ANNOTATION_BIND_COMPLETED], 'yes');
    assert.equal(c.status?.capacity, { storage: '1Gi' });
    assert.is(volumeOf(sim, 'small')?.status?.phase, 'Bound');
    assert.is(volumeOf(sim, 'small')?.spec.claimRef?.uid, c.metadata.uid);
    assert.is(volumeOf(sim, 'large')?.status?.phase, 'Available');

    await sim.objects.create(R('pods'), 'default', podUsing('user', 'data'));
    await sim.until(() => sim.pods().some((p) => p.status?.phase === 'Running'));
    await sim.objects.delete(R('pvc'), 'default', 'data');
    await sim.step();
    assert.ok(claimOf(sim)?.metadata.deletionTimestamp, 'the claim is Terminating while a pod uses it');
    assert.equal(claimOf(sim)?.metadata.finalizers, [FINALIZER_PVC_PROTECTION]);
    await sim.objects.delete(R('pods'), 'default', 'user');
    await sim.until(() => claimOf(sim) === undefined);
    await sim.until(() => volumeOf(sim, 'small')?.status?.phase === 'Released');
    await sim.step();
    assert.is(volumeOf(sim, 'small')?.status?.phase, 'Released', 'Retain keeps it');
  } finally {
    await sim.stop();
  }
});

test('local-path: a WaitForFirstConsumer claim waits for its pod, is provisioned on the pod\'s node, and Delete removes the volume', async () => {
  const sim = await simWithLocalPath();
  try {
    await sim.addNode('n1');
    await sim.objects.patch(R('nodes'), undefined, 'n1', { metadata: { annotations: { [ANNOTATION_LOCAL_PATH_DIR]: '/var/lib/flotilla/storage' } } });
    await sim.objects.create(R('pvc'), 'default', { metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '2Gi' } } } });
    await sim.step();
    assert.is(claimOf(sim)?.status?.phase, 'Pending', 'no consumer yet');
    assert.is(sim.objects.list(R('pv')).items.length, 0);
    await sim.objects.create(R('pods'), 'default', podUsing('user', 'data'));
    await sim.until(() => claimOf(sim)?.status?.phase === 'Bound');
    const c = claimOf(sim)!;
    assert.is(c.metadata.annotations?.[ANNOTATION_SELECTED_NODE], 'n1');
    const pv = volumeOf(sim, c.spec.volumeName!)!;
    assert.is(pv.metadata.name, `pvc-${c.metadata.uid}`);
    assert.equal(pv.spec.hostPath, { path: `/var/lib/flotilla/storage/${pv.metadata.name}`, type: 'DirectoryOrCreate' });
    assert.equal(pv.spec.nodeAffinity, onNode('n1'));
    assert.is(pv.spec.persistentVolumeReclaimPolicy, 'Delete');
    assert.ok(pv.metadata.finalizers?.includes(FINALIZER_LOCAL_PATH));

    await sim.objects.delete(R('pods'), 'default', 'user');
    await sim.objects.delete(R('pvc'), 'default', 'data');
    await sim.until(() => volumeOf(sim, pv.metadata.name!)?.metadata.deletionTimestamp !== undefined);
    await sim.step();
    assert.equal(volumeOf(sim, pv.metadata.name!)?.metadata.finalizers, [FINALIZER_LOCAL_PATH], 'only the node\'s cleanup is left');
    await sim.objects.patch(R('pv'), undefined, pv.metadata.name!, { metadata: { finalizers: [] } });
    assert.is(volumeOf(sim, pv.metadata.name!), undefined);
  } finally {
    await sim.stop();
  }
});

test('StatefulSet: each ordinal gets its claims from the templates; whenDeleted Delete lets them go with the set', async () => {
  const sim = await simWithLocalPath();
  try {
    await sim.addNode('n1');
    await sim.objects.create(R('sts'), 'default', {
      metadata: { name: 'db' },
      spec: {
        replicas: 2, selector: { matchLabels: { app: 'db' } }, podManagementPolicy: 'Parallel',
        persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Delete' },
        template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'db', image: 'busybox', volumeMounts: [{ name: 'data', mountPath: '/data' }] }] } },
        volumeClaimTemplates: [{ metadata: { name: 'data', labels: { tier: 'disk' } }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
      },
    });
    await sim.until(() => claimOf(sim, 'data-db-0') !== undefined && claimOf(sim, 'data-db-1') !== undefined);
    const c0 = claimOf(sim, 'data-db-0')!;
    assert.equal(c0.metadata.labels, { tier: 'disk', app: 'db' });
    assert.is(c0.spec.storageClassName, 'local-path');
    assert.is(c0.metadata.ownerReferences?.[0]?.kind, 'StatefulSet');
    await sim.objects.delete(R('sts'), 'default', 'db');
    await sim.until(() => claimOf(sim, 'data-db-0') === undefined && claimOf(sim, 'data-db-1') === undefined);
  } finally {
    await sim.stop();
  }
});

test.run();
