import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { DaemonSet, Job, Pod, StatefulSet } from '../../api-types/index.js';
import { ClusterSim, R, readyPods } from './cluster-sim.js';
import { JOB_BACKOFF_BASE_MS } from '../../server/controllers/job.js';

const container = { name: 'main', image: 'busybox:1.36' };

test('a DaemonSet runs one bound pod per matching node, including a node that joins later', async () => {
  const sim = await new ClusterSim().start();
  try {
    await sim.addNode('pi1', { role: 'edge' });
    await sim.addNode('pi2', { role: 'edge' });
    await sim.addNode('big', { role: 'server' });
    await sim.objects.create(R('daemonsets'), 'default', {
      metadata: { name: 'agent' },
      spec: { selector: { matchLabels: { app: 'agent' } }, template: { metadata: { labels: { app: 'agent' } }, spec: { nodeSelector: { role: 'edge' }, containers: [container] } } },
    });
    const ds = () => sim.get('daemonsets', 'agent') as unknown as DaemonSet;
    await sim.until(() => ds().status?.numberReady === 2);
    assert.equal(sim.pods().map((p) => p.spec.nodeName).sort(), ['pi1', 'pi2']);
    await sim.addNode('pi3', { role: 'edge' });
    await sim.until(() => ds().status?.numberReady === 3);
    assert.equal(sim.pods().map((p) => p.spec.nodeName).sort(), ['pi1', 'pi2', 'pi3']);
    assert.is(ds().status?.desiredNumberScheduled, 3);
    // A node that stops matching loses its pod.
    await sim.objects.patch(R('nodes'), undefined, 'pi1', { metadata: { labels: { role: 'retired' } } });
    await sim.until(() => sim.pods().length === 2);
    assert.equal(sim.pods().map((p) => p.spec.nodeName).sort(), ['pi2', 'pi3']);
  } finally {
    await sim.stop();
  }
});

test('a DaemonSet rolls a new template out node by node, at most maxUnavailable at a time', async () => {
  const sim = await new ClusterSim().start();
  try {
    for (const n of ['a', 'b', 'c', 'd']) await sim.addNode(n);
    await sim.objects.create(R('daemonsets'), 'default', {
      metadata: { name: 'logs' },
      spec: { selector: { matchLabels: { app: 'logs' } }, template: { metadata: { labels: { app: 'logs' } }, spec: { containers: [container] } } },
    });
    await sim.until(() => readyPods(sim.pods()) === 4);
    await sim.objects.patch(R('daemonsets'), 'default', 'logs', { spec: { template: { spec: { containers: [{ ...container, image: 'busybox:1.37' }] } } } });
    let minReady = Infinity;
    let mostOnANode = 0;
    await sim.until(() => readyPods(sim.pods(), (p) => p.spec.containers[0]!.image === 'busybox:1.37') === 4, 50, 1000, () => {
      minReady = Math.min(minReady, readyPods(sim.pods()));
      for (const n of ['a', 'b', 'c', 'd']) mostOnANode = Math.max(mostOnANode, sim.pods().filter((p) => p.spec.nodeName === n).length);
    });
    assert.is(minReady, 3, 'one node at a time (maxUnavailable 1)');
    assert.is(mostOnANode, 1, 'a node\'s new pod starts once its old one, Terminating, is gone');
    assert.is(sim.pods().length, 4);
    assert.is((sim.get('daemonsets', 'logs') as unknown as DaemonSet).status?.updatedNumberScheduled, 4);
  } finally {
    await sim.stop();
  }
});

test('a DaemonSet skips nodes with a taint it does not tolerate', async () => {
  const sim = await new ClusterSim().start();
  try {
    await sim.addNode('a');
    await sim.addNode('gpu');
    await sim.objects.patch(R('nodes'), undefined, 'gpu', { spec: { taints: [{ key: 'dedicated', value: 'gpu', effect: 'NoSchedule' }] } });
    await sim.objects.create(R('daemonsets'), 'default', {
      metadata: { name: 'logs' },
      spec: { selector: { matchLabels: { app: 'logs' } }, template: { metadata: { labels: { app: 'logs' } }, spec: { containers: [container] } } },
    });
    await sim.until(() => readyPods(sim.pods()) === 1);
    for (let i = 0; i < 3; i++) await sim.step();
    assert.equal(sim.pods().map((p) => p.spec.nodeName), ['a']);
  } finally {
    await sim.stop();
  }
});

test('a Job with completions 5 and parallelism 2 completes, backing off after failures', async () => {
  let failuresLeft = 2;
  const sim = await new ClusterSim({
    finish: () => {
      if (failuresLeft > 0) { failuresLeft--; return 'Failed'; }
      return 'Succeeded';
    },
  }).start();
  try {
    await sim.addNode('n1');
    await sim.addNode('n2');
    await sim.objects.create(R('jobs'), 'default', {
      metadata: { name: 'batch' },
      spec: { completions: 5, parallelism: 2, backoffLimit: 4, template: { spec: { restartPolicy: 'Never', containers: [container] } } },
    });
    const job = () => sim.get('jobs', 'batch') as unknown as Job;
    let maxActive = 0;
    let createdDuringBackoff = false;
    let failedAt: number | undefined;
    const observe = () => {
      const pods = sim.pods();
      maxActive = Math.max(maxActive, pods.filter((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed').length);
      const failed = pods.filter((p) => p.status?.phase === 'Failed').length;
      if (failed > 0 && failedAt === undefined) failedAt = sim.clock.now();
      // Right after the first failures no new pod may appear before the back-off (10 s) has passed.
      if (failedAt !== undefined && sim.clock.now() < failedAt + JOB_BACKOFF_BASE_MS) {
        const newer = pods.filter((p) => Date.parse(p.metadata.creationTimestamp ?? '') > failedAt!).length;
        if (newer > 0) createdDuringBackoff = true;
      }
    };
    const steps = await sim.until(() => job().status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') === true, 300, 1000, observe);
    assert.ok(steps >= 10, `completing with two failures must wait out the back-off (took ${steps} steps)`);
    assert.is(createdDuringBackoff, false, 'a pod was created during the back-off');
    assert.ok(maxActive <= 2, `more than parallelism pods ran at once: ${maxActive}`);
    const s = job().status!;
    assert.is(s.succeeded, 5);
    assert.is(s.failed, 2);
    assert.is(s.active, 0);
    assert.ok(s.completionTime);
    for (const p of sim.pods()) await sim.objects.delete(R('pods'), 'default', p.metadata.name ?? '');
    await sim.step();
    assert.is(job().status?.succeeded, 5, 'deleting finished pods does not undo the count');
    assert.is(sim.pods().length, 0, 'a complete job starts nothing again');
  } finally {
    await sim.stop();
  }
});

test('a Job fails once failures exceed backoffLimit, and when it outlives activeDeadlineSeconds', async () => {
  const sim = await new ClusterSim({ finish: (p) => (p.metadata.labels?.['job-name'] === 'doomed' ? 'Failed' : undefined) }).start();
  try {
    await sim.addNode('n1');
    await sim.objects.create(R('jobs'), 'default', {
      metadata: { name: 'doomed' },
      spec: { backoffLimit: 1, template: { spec: { restartPolicy: 'Never', containers: [container] } } },
    });
    await sim.objects.create(R('jobs'), 'default', {
      metadata: { name: 'slow' },
      spec: { activeDeadlineSeconds: 30, template: { spec: { restartPolicy: 'Never', containers: [container] } } },
    });
    const failedReason = (name: string) => (sim.get('jobs', name) as unknown as Job).status?.conditions?.find((c) => c.type === 'Failed' && c.status === 'True')?.reason;
    await sim.until(() => failedReason('doomed') !== undefined && failedReason('slow') !== undefined, 120);
    assert.is(failedReason('doomed'), 'BackoffLimitExceeded');
    assert.is(failedReason('slow'), 'DeadlineExceeded');
    assert.is(sim.pods().filter((p) => p.metadata.labels?.['job-name'] === 'slow' && p.status?.phase === 'Running').length, 0, 'the running pod of a failed job is deleted');
  } finally {
    await sim.stop();
  }
});

test('a StatefulSet starts NAME-0.. in order with stable claim names and stops in reverse order', async () => {
  const sim = await new ClusterSim().start();
  try {
    await sim.addNode('n1');
    await sim.addNode('n2');
    await sim.objects.create(R('statefulsets'), 'default', {
      metadata: { name: 'db' },
      spec: {
        replicas: 3, serviceName: 'db', selector: { matchLabels: { app: 'db' } },
        // No volumeMounts of "data": api-types validation does not yet count volumeClaimTemplates as volumes.
        template: { metadata: { labels: { app: 'db' } }, spec: { containers: [container] } },
        volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
      },
    });
    const sts = () => sim.get('statefulsets', 'db') as unknown as StatefulSet;
    const seen: string[] = [];
    const observe = () => {
      for (const p of sim.pods()) if (!seen.includes(p.metadata.name ?? '')) seen.push(p.metadata.name ?? '');
      // OrderedReady: pod i exists only when pods 0..i-1 are ready.
      const pods = new Map(sim.pods().map((p) => [p.metadata.name, p]));
      for (let i = 1; i < 3; i++) {
        if (pods.has(`db-${i}`)) assert.ok(readyPods([pods.get(`db-${i - 1}`)].filter(Boolean) as Pod[]) === 1, `db-${i} exists before db-${i - 1} is ready`);
      }
    };
    await sim.until(() => sts().status?.readyReplicas === 3, 100, 1000, observe);
    assert.equal(seen, ['db-0', 'db-1', 'db-2']);
    const db1 = sim.get('pods', 'db-1') as unknown as Pod;
    assert.equal(db1.spec.volumes, [{ name: 'data', persistentVolumeClaim: { claimName: 'data-db-1' } }]);
    assert.is(db1.spec.hostname, 'db-1');
    assert.is(db1.spec.subdomain, 'db');
    // A deleted pod comes back under the same name with the same claim.
    await sim.objects.delete(R('pods'), 'default', 'db-1');
    const replaced = () => { const p = sim.get('pods', 'db-1'); return p !== undefined && p.metadata.uid !== db1.metadata.uid; };
    await sim.until(() => sts().status?.readyReplicas === 3 && replaced());
    assert.equal((sim.get('pods', 'db-1') as unknown as Pod).spec.volumes, [{ name: 'data', persistentVolumeClaim: { claimName: 'data-db-1' } }]);
    const removed: string[] = [];
    const stopWatch = sim.store.watch('pods', 'default', sim.store.revision(), (e) => { if (e.type === 'DELETED') removed.push(e.object.metadata.name); });
    await sim.objects.patch(R('statefulsets'), 'default', 'db', { spec: { replicas: 0 } });
    await sim.until(() => sim.pods().length === 0, 50);
    stopWatch();
    assert.equal(removed, ['db-2', 'db-1', 'db-0']);
  } finally {
    await sim.stop();
  }
});

test('a StatefulSet replaces pods for a new template from the highest ordinal down; Parallel starts all at once', async () => {
  const sim = await new ClusterSim().start();
  try {
    await sim.addNode('n1');
    const set = (name: string, policy: string) => ({
      metadata: { name },
      spec: { replicas: 3, podManagementPolicy: policy, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [container] } } },
    });
    await sim.objects.create(R('statefulsets'), 'default', set('par', 'Parallel'));
    await sim.step();
    assert.is(sim.pods().filter((p) => p.metadata.labels?.app === 'par').length, 3, 'Parallel creates every pod in one pass');
    await sim.objects.create(R('statefulsets'), 'default', set('db', 'OrderedReady'));
    await sim.until(() => (sim.get('statefulsets', 'db') as unknown as StatefulSet).status?.readyReplicas === 3);
    const deleted: string[] = [];
    const stop = sim.store.watch('pods', 'default', sim.store.revision(), (e) => { if (e.type === 'DELETED' && e.object.metadata.labels?.app === 'db') deleted.push(e.object.metadata.name); });
    await sim.objects.patch(R('statefulsets'), 'default', 'db', { spec: { template: { spec: { containers: [{ ...container, image: 'busybox:1.37' }] } } } });
    await sim.until(() => readyPods(sim.pods(), (p) => p.metadata.labels?.app === 'db' && p.spec.containers[0]!.image === 'busybox:1.37') === 3, 50);
    stop();
    assert.equal(deleted, ['db-2', 'db-1', 'db-0']);
    const status = (sim.get('statefulsets', 'db') as unknown as StatefulSet).status!;
    assert.is(status.updatedReplicas, 3);
  } finally {
    await sim.stop();
  }
});

test('dependents of an owner deleted with orphaning stay (and are adopted by a new owner); others are collected', async () => {
  const sim = await new ClusterSim().start();
  try {
    await sim.addNode('n1');
    const rs = (name: string) => ({
      metadata: { name }, spec: { replicas: 2, selector: { matchLabels: { app: name } }, template: { metadata: { labels: { app: name } }, spec: { containers: [container] } } },
    });
    await sim.objects.create(R('replicasets'), 'default', rs('orphaned'));
    await sim.objects.create(R('replicasets'), 'default', rs('cascaded'));
    await sim.until(() => readyPods(sim.pods()) === 4);
    const marked = await sim.objects.delete(R('replicasets'), 'default', 'orphaned', { propagationPolicy: 'Orphan' });
    assert.equal(marked.metadata.finalizers, ['orphan'], 'the owner waits for the garbage collector to release its dependents');
    assert.ok(marked.metadata.deletionTimestamp);
    await sim.manager.settle();
    assert.is(sim.get('replicasets', 'orphaned'), undefined, 'the owner goes once its dependents are released');
    const released = sim.pods().filter((p) => p.metadata.labels?.app === 'orphaned');
    assert.is(released.length, 2, 'the owner on its way out neither replaced nor re-adopted its released pods');
    assert.ok(released.every((p) => !p.metadata.ownerReferences));
    await sim.objects.delete(R('replicasets'), 'default', 'cascaded');
    await sim.until(() => sim.pods().length === 2);
    for (let i = 0; i < 3; i++) await sim.step();
    assert.ok(sim.pods().every((p) => p.metadata.labels?.app === 'orphaned' && !p.metadata.ownerReferences));
    // A new ReplicaSet with the same selector adopts them instead of starting new pods.
    const names = sim.pods().map((p) => p.metadata.name).sort();
    await sim.objects.create(R('replicasets'), 'default', rs('orphaned'));
    await sim.step();
    const adopter = sim.get('replicasets', 'orphaned')!;
    assert.equal(sim.pods().map((p) => p.metadata.name).sort(), names);
    assert.ok(sim.pods().every((p) => p.metadata.ownerReferences?.[0]?.uid === adopter.metadata.uid));
  } finally {
    await sim.stop();
  }
});

test.run();
