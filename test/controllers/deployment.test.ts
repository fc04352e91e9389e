import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Deployment, Pod, ReplicaSet } from '../../api-types/index.js';
import { ClusterSim, R, readyPods, webDeployment } from './cluster-sim.js';

async function cluster(nodes = 3): Promise<ClusterSim> {
  const sim = await new ClusterSim().start();
  for (let i = 1; i <= nodes; i++) await sim.addNode(`n${i}`);
  return sim;
}

const image = (p: Pod) => p.spec.containers[0]!.image;
const replicaSets = (sim: ClusterSim) => sim.objects.list(R('replicasets'), 'default').items as unknown as ReplicaSet[];
const deployment = (sim: ClusterSim, name: string) => sim.get('deployments', name) as unknown as Deployment;

test('a Deployment of 10 replicas reaches 10 ready pods, spread over the nodes, with its status', async () => {
  const sim = await cluster();
  try {
    await sim.objects.create(R('deployments'), 'default', webDeployment('web', 10, 'nginx:1.25'));
    await sim.until(() => deployment(sim, 'web').status?.readyReplicas === 10);
    const pods = sim.pods();
    assert.is(pods.length, 10);
    assert.is(readyPods(pods), 10);
    assert.equal(new Set(pods.map((p) => p.spec.nodeName)).size, 3);
    const d = deployment(sim, 'web');
    assert.is(d.status?.availableReplicas, 10);
    assert.is(d.status?.updatedReplicas, 10);
    assert.is(d.status?.conditions?.find((c) => c.type === 'Available')?.status, 'True');
    assert.is(d.status?.conditions?.find((c) => c.type === 'Progressing')?.reason, 'NewReplicaSetAvailable');
    const [rs] = replicaSets(sim);
    assert.is(rs?.metadata.annotations?.['deployment.kubernetes.io/revision'], '1');
    assert.ok(pods.every((p) => p.metadata.labels?.['pod-template-hash'] === rs?.metadata.labels?.['pod-template-hash']));
    assert.ok(pods.every((p) => p.metadata.ownerReferences?.[0]?.uid === rs?.metadata.uid));
    const events = sim.objects.list(R('events'), 'default').items;
    assert.ok(events.some((e) => e.reason === 'ScalingReplicaSet'), 'the scaling is recorded as an event');
    // Settled: time passing and resyncs write nothing.
    const revision = sim.store.revision();
    for (let i = 0; i < 3; i++) {
      await sim.step(400_000);
      sim.heartbeat();
    }
    assert.is(sim.store.revision(), revision, 'a settled cluster is not rewritten');
  } finally {
    await sim.stop();
  }
});

test('a rolling update with maxUnavailable 0 never drops below 10 ready pods and ends on the new image', async () => {
  const sim = await cluster();
  try {
    await sim.objects.create(R('deployments'), 'default', webDeployment('web', 10, 'nginx:1.25', { strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 2 } } }));
    await sim.until(() => deployment(sim, 'web').status?.readyReplicas === 10);
    const d = deployment(sim, 'web');
    await sim.objects.patch(R('deployments'), 'default', 'web', { spec: { template: { spec: { containers: [{ ...d.spec.template.spec.containers[0]!, image: 'nginx:1.26' }] } } } });
    let minReady = Infinity;
    let maxPods = 0;
    const observe = () => {
      const pods = sim.pods();
      minReady = Math.min(minReady, readyPods(pods));
      // maxSurge bounds the pods that count as replicas: Terminating ones do not (Kubernetes).
      maxPods = Math.max(maxPods, pods.filter((p) => !p.metadata.deletionTimestamp).length);
    };
    const steps = await sim.until(() => {
      const pods = sim.pods();
      return pods.length === 10 && readyPods(pods, (p) => image(p) === 'nginx:1.26') === 10;
    }, 200, 1000, observe);
    assert.ok(steps > 1, 'the rollout took several steps');
    assert.ok(minReady >= 10, `ready pods dropped to ${minReady}`);
    assert.ok(maxPods <= 12, `more than replicas+maxSurge pods existed: ${maxPods}`);
    const rss = replicaSets(sim);
    assert.is(rss.length, 2);
    const fresh = rss.find((rs) => rs.spec.replicas === 10)!;
    assert.is(fresh.metadata.annotations?.['deployment.kubernetes.io/revision'], '2');
    await sim.until(() => deployment(sim, 'web').status?.updatedReplicas === 10 && deployment(sim, 'web').status?.replicas === 10);
  } finally {
    await sim.stop();
  }
});

test('rollout undo (the old ReplicaSet template put back) restores the previous image under the next revision', async () => {
  const sim = await cluster();
  try {
    await sim.objects.create(R('deployments'), 'default', webDeployment('web', 4, 'nginx:1.25'));
    await sim.until(() => deployment(sim, 'web').status?.readyReplicas === 4);
    const d = deployment(sim, 'web');
    await sim.objects.patch(R('deployments'), 'default', 'web', { spec: { template: { spec: { containers: [{ ...d.spec.template.spec.containers[0]!, image: 'nginx:broken' }] } } } });
    await sim.until(() => readyPods(sim.pods(), (p) => image(p) === 'nginx:broken') === 4 && sim.pods().length === 4);
    // What `flotilla rollout undo` does: the template of revision 1, without the pod-template-hash label.
    const old = replicaSets(sim).find((rs) => rs.metadata.annotations?.['deployment.kubernetes.io/revision'] === '1')!;
    const { 'pod-template-hash': _h, ...labels } = old.spec.template!.metadata!.labels!;
    await sim.objects.patch(R('deployments'), 'default', 'web', { spec: { template: { ...old.spec.template, metadata: { ...old.spec.template!.metadata, labels } } } });
    await sim.until(() => sim.pods().length === 4 && readyPods(sim.pods(), (p) => image(p) === 'nginx:1.25') === 4);
    const rss = replicaSets(sim);
    assert.is(rss.length, 2, 'the old ReplicaSet is reused, not copied');
    assert.is(rss.find((rs) => rs.metadata.uid === old.metadata.uid)?.metadata.annotations?.['deployment.kubernetes.io/revision'], '3');
  } finally {
    await sim.stop();
  }
});

test('Recreate stops every old pod before starting new ones', async () => {
  const sim = await cluster();
  try {
    await sim.objects.create(R('deployments'), 'default', webDeployment('db', 3, 'postgres:15', { strategy: { type: 'Recreate' } }));
    await sim.until(() => deployment(sim, 'db').status?.readyReplicas === 3);
    const d = deployment(sim, 'db');
    await sim.objects.patch(R('deployments'), 'default', 'db', { spec: { template: { spec: { containers: [{ ...d.spec.template.spec.containers[0]!, image: 'postgres:16' }] } } } });
    let mixed = false;
    await sim.until(() => readyPods(sim.pods(), (p) => image(p) === 'postgres:16') === 3, 100, 1000, () => {
      const images = new Set(sim.pods().map(image));
      if (images.size > 1) mixed = true;
    });
    assert.is(mixed, false, 'old and new pods never coexist');
  } finally {
    await sim.stop();
  }
});

test('a paused Deployment does not roll out a new template until resumed', async () => {
  const sim = await cluster();
  try {
    await sim.objects.create(R('deployments'), 'default', webDeployment('web', 2, 'nginx:1.25'));
    await sim.until(() => deployment(sim, 'web').status?.readyReplicas === 2);
    const d = deployment(sim, 'web');
    await sim.objects.patch(R('deployments'), 'default', 'web', { spec: { paused: true, template: { spec: { containers: [{ ...d.spec.template.spec.containers[0]!, image: 'nginx:1.26' }] } } } });
    for (let i = 0; i < 5; i++) await sim.step();
    assert.is(replicaSets(sim).length, 1);
    assert.ok(sim.pods().every((p) => image(p) === 'nginx:1.25'));
    assert.is(deployment(sim, 'web').status?.conditions?.find((c) => c.type === 'Progressing')?.reason, 'DeploymentPaused');
    await sim.objects.patch(R('deployments'), 'default', 'web', { spec: { paused: false } });
    await sim.until(() => sim.pods().length === 2 && readyPods(sim.pods(), (p) => image(p) === 'nginx:1.26') === 2);
  } finally {
    await sim.stop();
  }
});

test('a rollout that makes no progress for progressDeadlineSeconds is reported, and the old pods keep serving', async () => {
  const sim = await new ClusterSim({ hold: (p) => image(p) === 'nginx:missing' }).start();
  try {
    for (const n of ['n1', 'n2']) await sim.addNode(n);
    await sim.objects.create(R('deployments'), 'default', webDeployment('web', 4, 'nginx:1.25', { progressDeadlineSeconds: 60, strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } } }));
    await sim.until(() => deployment(sim, 'web').status?.readyReplicas === 4);
    const d = deployment(sim, 'web');
    await sim.objects.patch(R('deployments'), 'default', 'web', { spec: { template: { spec: { containers: [{ ...d.spec.template.spec.containers[0]!, image: 'nginx:missing' }] } } } });
    const progressing = () => deployment(sim, 'web').status?.conditions?.find((c) => c.type === 'Progressing');
    await sim.until(() => progressing()?.reason === 'ReplicaSetUpdated');
    const started = sim.clock.now();
    await sim.until(() => progressing()?.reason === 'ProgressDeadlineExceeded', 100, 5_000);
    const waited = sim.clock.now() - started;
    assert.ok(waited >= 55_000 && waited <= 70_000, `reported after ${waited} ms`);
    assert.is(progressing()?.status, 'False');
    assert.is(readyPods(sim.pods(), (p) => image(p) === 'nginx:1.25'), 4);
    for (let i = 0; i < 5; i++) await sim.step(60_000);
    assert.is(progressing()?.reason, 'ProgressDeadlineExceeded', 'it stays reported without progress');
    assert.ok(sim.objects.list(R('events'), 'default').items.some((e) => e.reason === 'ProgressDeadlineExceeded'));
  } finally {
    await sim.stop();
  }
});

test('deleting a Deployment removes its ReplicaSets and pods', async () => {
  const sim = await cluster();
  try {
    await sim.objects.create(R('deployments'), 'default', webDeployment('web', 5, 'nginx:1.25'));
    await sim.until(() => deployment(sim, 'web').status?.readyReplicas === 5);
    await sim.objects.create(R('deployments'), 'default', webDeployment('keep', 1, 'nginx:1.25'));
    await sim.until(() => deployment(sim, 'keep').status?.readyReplicas === 1);
    await sim.objects.delete(R('deployments'), 'default', 'web');
    await sim.until(() => sim.pods().length === 1);
    assert.is(replicaSets(sim).length, 1);
    assert.ok(sim.pods()[0]!.metadata.labels?.app === 'keep');
  } finally {
    await sim.stop();
  }
});

test('a ReplicaSet replaces a deleted pod and a failed one', async () => {
  const sim = await cluster();
  try {
    await sim.objects.create(R('deployments'), 'default', webDeployment('web', 3, 'nginx:1.25'));
    await sim.until(() => deployment(sim, 'web').status?.readyReplicas === 3);
    const [a, b] = sim.pods();
    await sim.objects.delete(R('pods'), 'default', a!.metadata.name ?? '');
    await sim.setPhase(b!, 'Failed', new Date(sim.clock.now()).toISOString());
    await sim.until(() => readyPods(sim.pods()) === 3 && sim.pods().length === 3);
    const names = sim.pods().map((p) => p.metadata.name);
    assert.not.ok(names.includes(a!.metadata.name));
    assert.not.ok(names.includes(b!.metadata.name));
  } finally {
    await sim.stop();
  }
});

test.run();
