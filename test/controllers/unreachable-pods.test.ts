import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Deployment, Pod } from '../../api-types/index.js';
import { ClusterSim, R, readyPods, startWebAndAgentOnThreeNodes } from './cluster-sim.js';

const readyOf = (p: Pod) => p.status?.conditions?.find((c) => c.type === 'Ready');
const deployment = (sim: ClusterSim) => sim.get('deployments', 'web') as unknown as Deployment;

test('pods of an unreachable node turn not Ready (NodeUnreachable) before eviction, and Ready again when it is back', async () => {
  const sim = await new ClusterSim({ settings: { nodeGracePeriodMs: 15_000, podEvictionDelayMs: 60_000 } }).start();
  try {
    await startWebAndAgentOnThreeNodes(sim);
    const onN3 = () => sim.pods().filter((p) => p.spec.nodeName === 'n3');
    const uidsOnN3 = onN3().map((p) => p.metadata.uid).sort();
    assert.is(uidsOnN3.length, 3, 'two web pods and the DaemonSet pod on n3');

    sim.down.add('n3');
    await sim.step(14_000);
    assert.ok(onN3().every((p) => readyOf(p)?.status === 'True'), 'within the grace period the pods stay Ready');
    await sim.until(() => onN3().every((p) => readyOf(p)?.status === 'False'), 5);
    for (const p of onN3()) {
      assert.is(readyOf(p)?.reason, 'NodeUnreachable');
      assert.match(readyOf(p)?.message ?? '', 'n3');
    }
    assert.is(deployment(sim).status?.readyReplicas, 4, 'the Deployment counts only the reachable pods');
    assert.ok(sim.objects.list(R('events'), 'default').items.some((e) => e.reason === 'NodeNotReady' && (e.involvedObject as { kind?: string }).kind === 'Pod'));

    // Still unreachable, before the eviction delay: the pods are not written again.
    const revision = sim.store.revision();
    await sim.step(5_000);
    assert.is(sim.store.revision(), revision, 'pods already marked are left alone');

    sim.down.delete('n3');
    await sim.until(() => readyPods(sim.pods()) === 9, 5);
    assert.equal(onN3().map((p) => p.metadata.uid).sort(), uidsOnN3, 'the same pods, not replacements');
    assert.is(deployment(sim).status?.readyReplicas, 6);
  } finally {
    await sim.stop();
  }
});

test('a late Ready report of a pod on a node still unreachable is marked not Ready again at the next poll', async () => {
  const sim = await new ClusterSim({ settings: { nodeGracePeriodMs: 5_000, podEvictionDelayMs: 600_000 } }).start();
  try {
    await sim.addNode('n1');
    await sim.objects.create(R('pods'), 'default', { metadata: { name: 'solo' }, spec: { containers: [{ name: 'c', image: 'busybox:1.36' }] } });
    await sim.until(() => readyPods(sim.pods()) === 1);
    sim.down.add('n1');
    await sim.until(() => readyOf(sim.pods()[0]!)?.status === 'False', 10);
    const marked = sim.pods()[0]!;
    // A late report from the agent (sent before the node went silent) lands after the mark.
    await sim.setPhase(marked, 'Running', new Date(sim.clock.now()).toISOString());
    assert.is(readyOf(sim.pods()[0]!)?.status, 'True');
    await sim.step();
    assert.is(readyOf(sim.pods()[0]!)?.status, 'False', 'marked again while the node stays unreachable');
  } finally {
    await sim.stop();
  }
});

test.run();
