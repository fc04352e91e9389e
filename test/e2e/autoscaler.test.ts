// The HorizontalPodAutoscaler end to end: a real agent process of hollow nodes reports synthetic usage
// (pod annotation flotilla.io/simulated-cpu, node-agent/usage.ts) every 10 s; the server runs in this process
// because the command line does not offer the autoscaler's sync period (15 s by default), here 1 s. A
// Deployment burning 160% of its CPU request scales up to maxReplicas; once its pods report 10% it scales back
// down to minReplicas after the scale-down stabilisation window (3 s in the HPA's behavior).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { E2eCluster, deployment, isReady } from './cluster.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';

const cluster = new E2eCluster({ inProcessControllers: { hpaSyncPeriodMs: 1000 } });
const DEPLOYMENT = '/apis/apps/v1/namespaces/default/deployments/burn';
const HPA = '/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers';

interface HpaView { status?: { desiredReplicas?: number; currentMetrics?: Array<{ resource?: { current?: { averageUtilization?: number } } }> } }

async function readyReplicas(n: number, limitMs: number): Promise<void> {
  await eventually(`burn at ${n} replicas, all ready`, async () => {
    const d = await cluster.client.request<{ spec: { replicas: number } }>('GET', DEPLOYMENT);
    const pods = (await cluster.pods('app=burn')).filter((p) => !p.metadata.deletionTimestamp);
    return d.spec.replicas === n && pods.length === n && pods.every(isReady) ? true : undefined;
  }, limitMs);
}

setUp(test, async () => {
  await cluster.start();
  await cluster.addAgent('hpa', 3);
}, async () => {
  await cluster.stop();
});

test('an HPA scales a CPU-burning Deployment up to maxReplicas and, when the load goes, back down', async () => {
  // Each pod requests 500m and reports 800m: 160% against a 50% target.
  await cluster.client.request('POST', '/apis/apps/v1/namespaces/default/deployments', deployment('burn', 1, 'app:1', { annotations: { 'flotilla.io/simulated-cpu': '800m' } }));
  await readyReplicas(1, 30_000);
  await cluster.client.request('POST', HPA, {
    apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'burn' },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'burn' }, minReplicas: 1, maxReplicas: 4,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 50 } } }],
      behavior: { scaleDown: { stabilizationWindowSeconds: 3 } },
    },
  });
  await readyReplicas(4, 60_000);
  const hot = await cluster.client.request<HpaView>('GET', `${HPA}/burn`);
  assert.is(hot.status?.currentMetrics?.[0]?.resource?.current?.averageUtilization, 160);
  const top = await cluster.cli(['top', 'pods']);
  assert.is(top.code, 0, top.stderr);
  assert.match(top.stdout, /burn-\S+\s+800m/);

  // The load goes: every pod now reports 50m (10%).
  for (const p of await cluster.pods('app=burn')) {
    await cluster.client.request('PATCH', `/api/v1/namespaces/default/pods/${p.metadata.name}`, { metadata: { annotations: { 'flotilla.io/simulated-cpu': '50m' } } }, { contentType: 'application/merge-patch+json' });
  }
  await readyReplicas(1, 60_000);
  const cool = await cluster.client.request<HpaView>('GET', `${HPA}/burn`);
  assert.is(cool.status?.desiredReplicas, 1);
  const events = await cluster.client.request<{ items: Array<{ reason: string; message: string; involvedObject: { name: string } }> }>('GET', '/api/v1/namespaces/default/events');
  const rescales = events.items.filter((e) => e.reason === 'SuccessfulRescale' && e.involvedObject.name === 'burn').map((e) => e.message);
  assert.ok(rescales.some((m) => /above target/.test(m)) && rescales.some((m) => /New size: 1; .*below target/.test(m)), rescales.join('\n'));
});

test.run();
