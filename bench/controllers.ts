// Controller throughput on a simulated cluster (in-memory SQLite, fake clock, test binder and kubelet):
// wall time and store writes for a Deployment to reach N ready pods, to roll out a new template
// (maxSurge 25%, maxUnavailable 0), and for deleting it to remove every pod through the garbage collector.
// Usage: node dist/bench/controllers.js [REPLICAS] [NODES]. The last line is one JSON object.
import { performance } from 'node:perf_hooks';
import type { Deployment } from '../api-types/index.js';
import { ClusterSim, R, readyPods, webDeployment } from '../test/controllers/cluster-sim.js';

const replicas = Number(process.argv[2] ?? 300);
const nodeCount = Number(process.argv[3] ?? 20);
if (!Number.isInteger(replicas) || replicas < 1 || !Number.isInteger(nodeCount) || nodeCount < 1) {
  console.error('usage: controllers.js [REPLICAS >= 1] [NODES >= 1]');
  process.exit(2);
}

const sim = await new ClusterSim().start();
try {
  for (let i = 0; i < nodeCount; i++) await sim.addNode(`node-${i}`);
  const deployment = () => sim.get('deployments', 'bench') as unknown as Deployment;

  async function phase(run: () => Promise<void>, done: () => boolean): Promise<{ ms: number; writes: number; steps: number }> {
    const rev = sim.store.revision();
    const t0 = performance.now();
    await run();
    const steps = await sim.until(done, 10_000);
    return { ms: Math.round(performance.now() - t0), writes: sim.store.revision() - rev, steps };
  }

  const scaleUp = await phase(
    async () => { await sim.objects.create(R('deployments'), 'default', webDeployment('bench', replicas, 'app:1')); },
    () => deployment().status?.readyReplicas === replicas && readyPods(sim.pods()) === replicas,
  );
  const rollout = await phase(
    async () => {
      const d = deployment();
      await sim.objects.patch(R('deployments'), 'default', 'bench', { spec: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: 0 } }, template: { spec: { containers: [{ ...d.spec.template.spec.containers[0]!, image: 'app:2' }] } } } });
    },
    () => {
      const pods = sim.pods();
      return pods.length === replicas && readyPods(pods, (p) => p.spec.containers[0]!.image === 'app:2') === replicas;
    },
  );
  const cascade = await phase(
    async () => { await sim.objects.delete(R('deployments'), 'default', 'bench'); },
    () => sim.pods().length === 0 && sim.objects.list(R('replicasets'), 'default').items.length === 0,
  );
  console.log(JSON.stringify({
    bench: 'controllers', replicas, nodes: nodeCount,
    scaleUpMs: scaleUp.ms, scaleUpWrites: scaleUp.writes, scaleUpSteps: scaleUp.steps,
    rolloutMs: rollout.ms, rolloutWrites: rollout.writes, rolloutSteps: rollout.steps,
    cascadeDeleteMs: cascade.ms, cascadeDeleteWrites: cascade.writes,
  }));
} finally {
  await sim.stop();
}
