import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Deployment, HorizontalPodAutoscaler, Node, Pod } from '../../api-types/index.js';
import { ClusterSim, R, readyPods, webDeployment, startWebAndAgentOnThreeNodes } from './cluster-sim.js';
import { ANNOTATION_EVICTION_AT, TAINT_UNREACHABLE } from '../../api-types/index.js';

const node = (sim: ClusterSim, name: string) => sim.get('nodes', name) as unknown as Node;
const ready = (n: Node) => n.status?.conditions?.find((c) => c.type === 'Ready');

test('a silent node goes NotReady after the grace period, loses its pods after the eviction delay, keeps DaemonSet pods, and recovers', async () => {
  const sim = await new ClusterSim({ settings: { nodeGracePeriodMs: 15_000, podEvictionDelayMs: 30_000 } }).start();
  try {
    await startWebAndAgentOnThreeNodes(sim);
    const onN3 = () => sim.pods().filter((p) => p.spec.nodeName === 'n3');
    const webOnN3 = onN3().filter((p) => p.metadata.labels?.app === 'web').map((p) => p.metadata.name);
    assert.is(webOnN3.length, 2);
    const daemonOnN3 = onN3().filter((p) => p.metadata.labels?.app === 'agent').map((p) => p.metadata.uid);

    sim.down.add('n3');
    const silentSince = sim.clock.now();
    await sim.until(() => ready(node(sim, 'n3'))?.status === 'Unknown', 30);
    const notReadyAfter = sim.clock.now() - silentSince;
    assert.ok(notReadyAfter > 15_000 && notReadyAfter <= 17_000, `NotReady after ${notReadyAfter} ms`);
    const n3 = node(sim, 'n3');
    assert.is(ready(n3)?.reason, 'NodeStatusUnknown');
    assert.match(ready(n3)?.message ?? '', new Date(silentSince).toISOString());
    const taint = n3.spec?.taints?.find((t) => t.key === TAINT_UNREACHABLE);
    assert.is(taint?.effect, 'NoExecute');
    const evictAt = Date.parse(n3.metadata.annotations?.[ANNOTATION_EVICTION_AT] ?? '');
    assert.is(evictAt, Date.parse(taint!.timeAdded!) + 30_000);
    assert.equal(onN3().filter((p) => p.metadata.labels?.app === 'web').map((p) => p.metadata.name), webOnN3, 'pods stay until the eviction delay');

    await sim.until(() => sim.clock.now() >= evictAt, 40);
    await sim.step();
    assert.equal(onN3().map((p) => p.metadata.uid), daemonOnN3, 'only the DaemonSet pod is left on n3, never deleted');
    await sim.until(() => (sim.get('deployments', 'web') as unknown as Deployment).status?.readyReplicas === 6);
    assert.ok(sim.pods().filter((p) => p.metadata.labels?.app === 'web').every((p) => p.spec.nodeName !== 'n3'));
    assert.ok(sim.objects.list(R('events'), 'default').items.some((e) => e.reason === 'NodeNotReady'));

    sim.down.delete('n3');
    await sim.step();
    const back = node(sim, 'n3');
    assert.is(ready(back)?.status, 'True');
    assert.not.ok(back.spec?.taints?.some((t) => t.key === TAINT_UNREACHABLE));
    assert.is(back.metadata.annotations?.[ANNOTATION_EVICTION_AT], undefined);
  } finally {
    await sim.stop();
  }
});

test('a node that registers long after the leader started is judged from its own registration and heartbeats', async () => {
  const sim = await new ClusterSim({ settings: { nodeGracePeriodMs: 15_000 } }).start();
  try {
    await sim.addNode('n1');
    for (let i = 0; i < 20; i++) await sim.step(); // the leader has run for 20 s
    const notReadyEvents = (name: string) => sim.objects.list(R('events'), 'default').items
      .filter((e) => e.reason === 'NodeNotReady' && (e as { involvedObject?: { name?: string } }).involvedObject?.name === name);
    // An agent registers its Node first and renews its lease right after (node-agent/agent.ts).
    await sim.objects.create(R('nodes'), undefined, { metadata: { name: 'late' }, spec: {} });
    await sim.manager.settle();
    assert.is.not(ready(node(sim, 'late'))?.status, 'Unknown', 'not NotReady before its first heartbeat was due');
    sim.agents.add('late');
    await sim.step();
    for (let i = 0; i < 30; i++) await sim.step(1000, () => assert.is(ready(node(sim, 'late'))?.status, 'True'));
    assert.equal(notReadyEvents('late'), []);

    // A node that registers and never heartbeats gets the grace period from its registration.
    const registeredAt = sim.clock.now();
    await sim.objects.create(R('nodes'), undefined, { metadata: { name: 'mute' }, spec: {} });
    await sim.until(() => ready(node(sim, 'mute'))?.status === 'Unknown', 30);
    const after = sim.clock.now() - registeredAt;
    assert.ok(after > 15_000 && after <= 17_000, `NotReady ${after} ms after registering`);
    assert.match(ready(node(sim, 'mute'))?.message ?? '', new Date(registeredAt).toISOString());
    assert.is(notReadyEvents('mute').length, 1);
  } finally {
    await sim.stop();
  }
});

test('a toleration with tolerationSeconds overrides the eviction delay per pod', async () => {
  const sim = await new ClusterSim({ settings: { nodeGracePeriodMs: 5_000, podEvictionDelayMs: 60_000 } }).start();
  try {
    await sim.addNode('n1');
    const pod = (name: string, tolerations: unknown[]) => ({ metadata: { name }, spec: { nodeName: 'n1', tolerations, containers: [{ name: 'c', image: 'busybox:1.36' }] } });
    await sim.objects.create(R('pods'), 'default', pod('quick', [{ key: TAINT_UNREACHABLE, operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 10 }]));
    await sim.objects.create(R('pods'), 'default', pod('default', []));
    await sim.objects.create(R('pods'), 'default', pod('forever', [{ key: TAINT_UNREACHABLE, operator: 'Exists', effect: 'NoExecute' }]));
    await sim.step();
    sim.down.add('n1');
    await sim.until(() => node(sim, 'n1').spec?.taints !== undefined && node(sim, 'n1').spec!.taints!.length > 0, 20);
    const taintedAt = Date.parse(node(sim, 'n1').spec!.taints![0]!.timeAdded!);
    const names = () => sim.pods().map((p: Pod) => p.metadata.name).sort();
    await sim.until(() => !names().includes('quick'), 30);
    assert.ok(sim.clock.now() - taintedAt >= 10_000 && sim.clock.now() - taintedAt <= 12_000);
    assert.equal(names(), ['default', 'forever']);
    await sim.until(() => !names().includes('default'), 70);
    assert.ok(sim.clock.now() - taintedAt >= 60_000);
    for (let i = 0; i < 30; i++) await sim.step(10_000);
    assert.equal(names(), ['forever']);
  } finally {
    await sim.stop();
  }
});

test('Terminating pods of a node that never comes back, or whose Node is gone, are force-deleted after the eviction delay', async () => {
  const sim = await new ClusterSim({ settings: { nodeGracePeriodMs: 5_000, podEvictionDelayMs: 20_000 } }).start();
  try {
    for (const n of ['n1', 'n2']) await sim.addNode(n);
    // Tolerating the unreachable taint forever: eviction alone would never remove these.
    const pod = (name: string, nodeName: string) => ({
      metadata: { name }, spec: { nodeName, terminationGracePeriodSeconds: 3600, tolerations: [{ key: TAINT_UNREACHABLE, operator: 'Exists', effect: 'NoExecute' }], containers: [{ name: 'c', image: 'busybox:1.36' }] },
    });
    for (const [name, n] of [['silent', 'n1'], ['kept', 'n1'], ['homeless', 'n2']] as const) await sim.objects.create(R('pods'), 'default', pod(name, n));
    await sim.step();
    const names = () => sim.pods().map((p: Pod) => p.metadata.name).sort();

    sim.down.add('n1');
    const deleted = await sim.objects.delete(R('pods'), 'default', 'silent');
    assert.ok(deleted.metadata.deletionTimestamp, 'a pod of a silent node is deleted gracefully first');
    await sim.until(() => (node(sim, 'n1').spec?.taints?.length ?? 0) > 0, 20);
    const taintedAt = Date.parse(node(sim, 'n1').spec!.taints![0]!.timeAdded!);
    await sim.until(() => sim.clock.now() >= taintedAt + 19_000, 30);
    assert.equal(names(), ['homeless', 'kept', 'silent'], 'its agent might still stop it until the eviction delay ends');
    await sim.until(() => !names().includes('silent'), 5);
    assert.ok(sim.clock.now() >= taintedAt + 20_000);
    assert.ok(names().includes('kept'), 'a pod that is not Terminating stays, as its toleration says');

    sim.down.add('n2');
    await sim.objects.delete(R('pods'), 'default', 'homeless');
    await sim.objects.delete(R('nodes'), undefined, 'n2');
    const goneAt = sim.clock.now();
    await sim.until(() => !names().includes('homeless'), 40);
    assert.ok(sim.clock.now() - goneAt >= 20_000, `removed ${sim.clock.now() - goneAt} ms after its node went`);
    assert.equal(names(), ['kept']);
  } finally {
    await sim.stop();
  }
});

test('an HPA scales a Deployment up under load and back down after the stabilisation window', async () => {
  const sim = await new ClusterSim({ settings: { hpaSyncPeriodMs: 15_000, hpaScaleDownStabilizationMs: 120_000 } }).start();
  try {
    await sim.addNode('n1');
    await sim.addNode('n2');
    await sim.objects.create(R('deployments'), 'default', webDeployment('api', 2, 'api:1'));
    await sim.objects.create(R('horizontalpodautoscalers'), 'default', {
      metadata: { name: 'api' },
      spec: {
        scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'api' }, minReplicas: 2, maxReplicas: 8,
        metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }],
      },
    });
    const replicas = () => (sim.get('deployments', 'api') as unknown as Deployment).spec.replicas;
    let cpuPerPod = 90; // of 100m requested: 90% against a 50% target
    const report = () => {
      for (const p of sim.pods()) if (p.status?.phase === 'Running') sim.metrics.reportPod('default', p.metadata.name ?? '', { cpuMillis: cpuPerPod, memoryBytes: 1 << 20, timestampMs: sim.clock.now() });
    };
    await sim.until(() => readyPods(sim.pods()) === 2);
    // Total demand 180m: at 50% of 100m that needs 4 pods.
    await sim.until(() => { report(); cpuPerPod = 180 / Math.max(1, sim.pods().filter((p) => p.status?.phase === 'Running').length); return replicas() === 4 && readyPods(sim.pods()) === 4; }, 120, 5_000);
    const hpa = () => sim.get('horizontalpodautoscalers', 'api') as unknown as HorizontalPodAutoscaler;
    assert.is(hpa().status?.desiredReplicas, 4);
    assert.ok(hpa().status?.lastScaleTime);
    // Load drops to 10m per pod: the recommendation is the minimum (2), but only after the window.
    cpuPerPod = 10;
    const dropAt = sim.clock.now();
    await sim.until(() => { report(); return replicas() === 2; }, 100, 5_000);
    const waited = sim.clock.now() - dropAt;
    assert.ok(waited >= 120_000, `scaled down after only ${waited} ms`);
    assert.ok(sim.objects.list(R('events'), 'default').items.some((e) => e.reason === 'SuccessfulRescale'));
  } finally {
    await sim.stop();
  }
});

test('an HPA without metrics or with pods lacking requests reports why it cannot scale', async () => {
  const sim = await new ClusterSim().start();
  try {
    await sim.addNode('n1');
    const d = webDeployment('bare', 1, 'api:1') as { spec: { template: { spec: { containers: { resources?: unknown }[] } } } };
    delete d.spec.template.spec.containers[0]!.resources;
    await sim.objects.create(R('deployments'), 'default', d);
    await sim.objects.create(R('horizontalpodautoscalers'), 'default', {
      metadata: { name: 'bare' }, spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'bare' }, maxReplicas: 3 },
    });
    await sim.until(() => readyPods(sim.pods()) === 1);
    await sim.step(15_000);
    const active = (sim.get('horizontalpodautoscalers', 'bare') as unknown as HorizontalPodAutoscaler).status?.conditions?.find((c) => c.type === 'ScalingActive');
    assert.is(active?.status, 'False');
    assert.match(active?.message ?? '', 'missing request for cpu');
  } finally {
    await sim.stop();
  }
});

test.run();
