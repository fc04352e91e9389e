// The scheduling loop with PersistentVolumeClaims: a bound claim's volume node affinity holds against the pod's
// own preference, and a pod with an unbound Immediate claim waits with Kubernetes' message until the claim binds.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { PersistentVolume, PersistentVolumeClaim, Pod, StorageClass } from '../../api-types/index.js';
import { runSchedulingLoop } from '../../server/scheduler/loop.js';
import { MemoryCluster } from '../../server/scheduler/memory-cluster.js';
import { Scheduler } from '../../server/scheduler/scheduler.js';
import { volumeVerdict, type VolumeVerdict } from '../../server/scheduler/volume-binding.js';
import { makeNode, makePod } from './cluster-gen.js';
import { eventually } from '../support/eventually.js';
import { stopAfterEach } from '../support/set-up.js';

const stopLater = stopAfterEach(test);

/** The in-memory cluster with claims, volumes and classes the loop reads through volumes(). */
class StorageCluster extends MemoryCluster {
  readonly claims = new Map<string, PersistentVolumeClaim>();
  readonly persistentVolumes = new Map<string, PersistentVolume>();
  readonly classes = new Map<string, StorageClass>();
  volumes(pod: Pod): VolumeVerdict {
    return volumeVerdict(pod, { claim: (_ns, name) => this.claims.get(name), volume: (name) => this.persistentVolumes.get(name), storageClass: (name) => this.classes.get(name), volumes: () => [...this.persistentVolumes.values()] });
  }
}

const claim = (name: string, storageClassName: string, volumeName?: string): PersistentVolumeClaim => ({
  apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: 'default' },
  spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName, ...(volumeName ? { volumeName } : {}) },
  status: { phase: volumeName ? 'Bound' : 'Pending' },
});
const withClaim = (name: string, claimName: string, preferred?: string): Pod => {
  const pod = makePod({
    name,
    ...(preferred ? { affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, preference: { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [preferred] }] } }] } } } : {}),
  });
  return { ...pod, spec: { ...pod.spec, volumes: [{ name: 'data', persistentVolumeClaim: { claimName } }] } };
};

function start(cluster: MemoryCluster) {
  const ac = new AbortController();
  const done = runSchedulingLoop(cluster, ac.signal, { scheduler: new Scheduler({ engine: 'wasm' }), backoff: { initialMs: 20, maxMs: 100 } });
  stopLater(async () => { ac.abort(); await done; });
}

test('a bound claim\'s volume affinity wins over the pod\'s preference; an Immediate claim holds the pod until bound', async () => {
  const c = new StorageCluster();
  for (const name of ['n1', 'n2']) c.putNode(makeNode({ name, cpu: 4, memoryGi: 8 }));
  c.classes.set('manual', { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'manual' }, provisioner: 'kubernetes.io/no-provisioner', volumeBindingMode: 'Immediate' });
  c.persistentVolumes.set('pv-n2', {
    apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'pv-n2' },
    spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], local: { path: '/mnt/disk' }, nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['n2'] }] }] } } },
  });
  c.claims.set('bound', claim('bound', 'manual', 'pv-n2'));
  c.claims.set('waiting', claim('waiting', 'manual'));
  start(c);
  c.putPod(withClaim('db', 'bound', 'n1'));
  c.putPod(withClaim('app', 'waiting'));
  await eventually('db bound', () => c.pods.get('uid-default-db')?.spec.nodeName);
  assert.is(c.pods.get('uid-default-db')!.spec.nodeName, 'n2');
  assert.is(c.pods.get('uid-default-db')!.spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution, undefined, 'the stored pod is not rewritten');
  await eventually('app reported', () => c.unschedulable.get('uid-default-app'));
  assert.is(c.unschedulable.get('uid-default-app'), '0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims.');
  assert.is(c.pods.get('uid-default-app')!.spec.nodeName, undefined);
  c.claims.set('waiting', claim('waiting', 'manual', 'pv-n2'));
  await eventually('app bound once its claim is', () => c.pods.get('uid-default-app')?.spec.nodeName);
  assert.is(c.pods.get('uid-default-app')!.spec.nodeName, 'n2');
});

test.run();
