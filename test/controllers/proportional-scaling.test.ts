import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Deployment, ReplicaSet } from '../../api-types/index.js';
import { ClusterSim, R, readyPods, webDeployment } from './cluster-sim.js';

const replicaSets = (sim: ClusterSim) => sim.objects.list(R('replicasets'), 'default').items as unknown as ReplicaSet[];
const deployment = (sim: ClusterSim) => sim.get('deployments', 'web') as unknown as Deployment;
const image = (rs: ReplicaSet) => rs.spec.template?.spec.containers[0]?.image;
const sizes = (sim: ClusterSim): Record<string, number> => Object.fromEntries(replicaSets(sim).map((rs) => [image(rs) ?? '', rs.spec.replicas ?? 0]));
const scaledMessages = (sim: ClusterSim) => sim.objects.list(R('events'), 'default').items.filter((e) => e.reason === 'ScalingReplicaSet').map((e) => String(e.message));

/**
 * 10 replicas of v1, then a rollout to v2 whose pods never start (held): with maxSurge 3 and maxUnavailable 2
 * it stops at 8 old + 5 new = 13 = replicas + maxSurge, both ReplicaSets annotated max-replicas 13.
 */
async function stuckRollout(release: { held: boolean }): Promise<ClusterSim> {
  const sim = await new ClusterSim({ hold: (p) => release.held && p.spec.containers[0]?.image === 'web:v2' }).start();
  for (const n of ['n1', 'n2', 'n3']) await sim.addNode(n);
  await sim.objects.create(R('deployments'), 'default', webDeployment('web', 10, 'web:v1', { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 3, maxUnavailable: 2 } } }));
  await sim.until(() => deployment(sim).status?.readyReplicas === 10);
  const d = deployment(sim);
  await sim.objects.patch(R('deployments'), 'default', 'web', { spec: { template: { spec: { containers: [{ ...d.spec.template.spec.containers[0]!, image: 'web:v2' }] } } } });
  for (let i = 0; i < 5; i++) await sim.step();
  assert.equal(sizes(sim), { 'web:v1': 8, 'web:v2': 5 }, 'the rollout is stuck half-way');
  return sim;
}

test('scaling up during a rollout adds to both ReplicaSets in proportion, then the rollout completes', async () => {
  const release = { held: true };
  const sim = await stuckRollout(release);
  try {
    await sim.objects.patch(R('deployments'), 'default', 'web', { spec: { replicas: 20 } });
    for (let i = 0; i < 3; i++) await sim.step();
    // 10 more fit (20 + 3 surge - 13): v1 gets round(8 * 23/13) - 8 = 6, v2 round(5 * 23/13) - 5 = 4.
    assert.equal(sizes(sim), { 'web:v1': 14, 'web:v2': 9 });
    const rsByImage = new Map(replicaSets(sim).map((rs) => [image(rs), rs]));
    assert.ok(scaledMessages(sim).includes(`Scaled up replica set ${rsByImage.get('web:v1')!.metadata.name} from 8 to 14`));
    assert.ok(scaledMessages(sim).includes(`Scaled up replica set ${rsByImage.get('web:v2')!.metadata.name} from 5 to 9`));
    for (const rs of replicaSets(sim)) {
      assert.is(rs.metadata.annotations?.['deployment.kubernetes.io/desired-replicas'], '20');
      assert.is(rs.metadata.annotations?.['deployment.kubernetes.io/max-replicas'], '23');
    }

    release.held = false;
    await sim.until(() => readyPods(sim.pods(), (p) => p.spec.containers[0]?.image === 'web:v2') === 20 && sim.pods().length === 20);
    assert.equal(sizes(sim), { 'web:v1': 0, 'web:v2': 20 });
    assert.is(deployment(sim).status?.updatedReplicas, 20);
  } finally {
    await sim.stop();
  }
});

test('scaling down during a rollout takes from both ReplicaSets in proportion, never below zero', async () => {
  const release = { held: true };
  const sim = await stuckRollout(release);
  try {
    const before = new Map(replicaSets(sim).map((rs) => [image(rs), rs.metadata.name]));
    await sim.objects.patch(R('deployments'), 'default', 'web', { spec: { replicas: 4 } });
    for (let i = 0; i < 3; i++) await sim.step();
    // 13 -> 4 + 3 surge = 7: v1 gets round(8 * 7/13) = 4, v2 round(5 * 7/13) = 3 (the rollout moves on from there).
    const messages = scaledMessages(sim);
    assert.ok(messages.includes(`Scaled down replica set ${before.get('web:v1')} from 8 to 4`), messages.join('\n'));
    assert.ok(messages.includes(`Scaled down replica set ${before.get('web:v2')} from 5 to 3`), messages.join('\n'));
    assert.ok(Object.values(sizes(sim)).every((n) => n >= 0));

    await sim.objects.patch(R('deployments'), 'default', 'web', { spec: { replicas: 0 } });
    for (let i = 0; i < 3; i++) await sim.step();
    assert.equal(sizes(sim), { 'web:v1': 0, 'web:v2': 0 });
    assert.is(sim.pods().length, 0);
  } finally {
    await sim.stop();
  }
});

test('a paused Deployment mid-rollout follows a scale change proportionally and keeps its template split', async () => {
  const release = { held: true };
  const sim = await stuckRollout(release);
  try {
    await sim.objects.patch(R('deployments'), 'default', 'web', { spec: { paused: true, replicas: 20 } });
    for (let i = 0; i < 3; i++) await sim.step();
    assert.equal(sizes(sim), { 'web:v1': 14, 'web:v2': 9 });
    release.held = false;
    for (let i = 0; i < 5; i++) await sim.step();
    assert.equal(sizes(sim), { 'web:v1': 14, 'web:v2': 9 }, 'paused: no rollout progress, even with v2 ready');
  } finally {
    await sim.stop();
  }
});

test.run();
