// Controllers end to end: a real server process and a real agent process running five hollow nodes. A
// Deployment reaches its replicas, a rolling update never drops below them, `flotilla rollout undo` brings the
// old template back, a crashing container is restarted, a Job completes through a failure and its back-off, a
// DaemonSet lands on a node that joins later, and deleting a Deployment removes its ReplicaSets and pods.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { E2eCluster, PodCountWatch, deployment, isReady, type PodView } from './cluster.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';

const cluster = new E2eCluster();
const NODES = ['e2e-0', 'e2e-1', 'e2e-2', 'e2e-3', 'e2e-4'];
const DEPLOYMENTS = '/apis/apps/v1/namespaces/default/deployments';

interface DeploymentView { spec: { template: { spec: { containers: Array<{ image: string }> } } }; status?: { readyReplicas?: number; updatedReplicas?: number; replicas?: number } }

async function readyWith(selector: string, count: number, image: string, limitMs = 30_000): Promise<PodView[]> {
  return eventually(`${count} ready pods of ${selector} running ${image}, and no others`, async () => {
    const pods = await cluster.pods(selector);
    const ready = pods.filter((p) => isReady(p) && p.spec.containers[0]?.image === image);
    return ready.length === count && pods.length === count ? ready : undefined;
  }, limitMs);
}

setUp(test, async () => {
  await cluster.start();
  await cluster.addAgent('e2e', NODES.length);
}, async () => {
  await cluster.stop();
});

test('a Deployment of 10 replicas over 5 hollow nodes reaches 10 ready, spread over the nodes', async () => {
  await cluster.client.request('POST', DEPLOYMENTS, deployment('web', 10, 'app:1'));
  const pods = await readyWith('app=web', 10, 'app:1');
  const perNode = new Map<string, number>();
  for (const p of pods) perNode.set(p.spec.nodeName ?? '', (perNode.get(p.spec.nodeName ?? '') ?? 0) + 1);
  assert.equal([...perNode.keys()].sort(), NODES, 'every node runs some of them');
  const d = await cluster.client.request<DeploymentView>('GET', `${DEPLOYMENTS}/web`);
  await eventually('deployment status readyReplicas 10', async () => ((await cluster.client.request<DeploymentView>('GET', `${DEPLOYMENTS}/web`)).status?.readyReplicas === 10 ? true : undefined));
  assert.is(d.spec.template.spec.containers[0]?.image, 'app:1');
});

test('a rolling update with maxUnavailable 0 never has fewer than 10 ready pods', async () => {
  const floor = new PodCountWatch(cluster, 'app=web');
  await floor.start();
  try {
    await cluster.client.request('PATCH', `${DEPLOYMENTS}/web`, {
      spec: { strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 2, maxUnavailable: 0 } }, template: { spec: { containers: [{ name: 'main', image: 'app:2' }] } } },
    }, { contentType: 'application/merge-patch+json' });
    await readyWith('app=web', 10, 'app:2', 60_000);
  } finally {
    await floor.stop();
  }
  assert.ok(floor.lowestReady >= 10, `ready pods fell to ${floor.lowestReady} during the rollout`);
});

test('flotilla rollout undo restores the previous template', async () => {
  const undo = await cluster.cli(['rollout', 'undo', 'deployment/web']);
  assert.is(undo.code, 0, undo.stderr);
  const d = await cluster.client.request<DeploymentView>('GET', `${DEPLOYMENTS}/web`);
  assert.is(d.spec.template.spec.containers[0]?.image, 'app:1');
  await readyWith('app=web', 10, 'app:1', 60_000);
});

test('a crashed container is restarted: restartCount grows and the last state says exit code 1', async () => {
  await cluster.client.request('POST', DEPLOYMENTS, deployment('crasher', 1, 'crash:500'));
  const pod = await eventually('crasher restarted', async () => {
    const [p] = await cluster.pods('app=crasher');
    return (p?.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 ? p : undefined;
  }, 40_000);
  assert.is(pod.status?.containerStatuses?.[0]?.lastState?.terminated?.exitCode, 1);
  assert.is((await cluster.pods('app=crasher')).length, 1, 'restarted in place, not replaced');
  await cluster.client.request('DELETE', `${DEPLOYMENTS}/crasher`);
});

interface JobView { status?: { succeeded?: number; failed?: number; conditions?: Array<{ type: string; status: string }> } }

test('a Job of 5 completions, parallelism 2, completes after a failure, waiting out the back-off', async () => {
  // flaky:1-300: the fleet's first container of this image exits 1, every later one exits 0 (node-agent/hollow.ts).
  await cluster.client.request('POST', '/apis/batch/v1/namespaces/default/jobs', {
    apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'batch' },
    spec: {
      completions: 5, parallelism: 2, backoffLimit: 3,
      template: { spec: { restartPolicy: 'Never', terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: 'flaky:1-300' }] } },
    },
  });
  const job = await eventually('job Complete', async () => {
    const j = await cluster.client.request<JobView>('GET', '/apis/batch/v1/namespaces/default/jobs/batch');
    return j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') ? j : undefined;
  }, 60_000);
  assert.is(job.status?.succeeded, 5);
  assert.is(job.status?.failed, 1);
  const pods = await cluster.pods('job-name=batch');
  assert.is(pods.length, 6, 'five successes and the one failure are kept');
  const failed = pods.filter((p) => p.status?.phase === 'Failed');
  assert.is(failed.length, 1);
  const failedAt = Date.parse(failed[0]!.status?.containerStatuses?.[0]?.state?.terminated?.finishedAt ?? '');
  assert.ok(Number.isFinite(failedAt), 'the failed pod says when it finished');
  // The first two pods were created together; every later one waited for the 10 s back-off after the failure
  // (creationTimestamp has whole seconds, hence the one-second allowance).
  const created = pods.map((p) => Date.parse(p.metadata.creationTimestamp ?? '')).sort((a, b) => a - b);
  const later = created.slice(2);
  assert.ok(later.every((t) => t >= failedAt + 9_000), `pods created ${later.map((t) => t - failedAt).join(', ')} ms after the failure`);
});

test('a DaemonSet runs on every node, and on a node that joins later', async () => {
  await cluster.client.request('POST', '/apis/apps/v1/namespaces/default/daemonsets', {
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'agentd' },
    spec: {
      selector: { matchLabels: { app: 'agentd' } },
      template: { metadata: { labels: { app: 'agentd' } }, spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: 'daemon:1' }] } },
    },
  });
  const onNodes = async (names: string[]) => eventually(`daemon pods ready on ${names.join(', ')}`, async () => {
    const pods = await cluster.pods('app=agentd');
    const nodes = pods.filter(isReady).map((p) => p.spec.nodeName).sort();
    return pods.length === names.length && nodes.join() === [...names].sort().join() ? nodes : undefined;
  });
  await onNodes(NODES);
  await cluster.addAgent('late', 1);
  await onNodes([...NODES, 'late-0']);
});

test('deleting a Deployment removes its ReplicaSets and pods', async () => {
  const before = await cluster.client.request<{ items: Array<{ metadata: { name: string; ownerReferences?: Array<{ name: string }> } }> }>('GET', '/apis/apps/v1/namespaces/default/replicasets');
  assert.ok(before.items.filter((rs) => rs.metadata.ownerReferences?.some((o) => o.name === 'web')).length >= 2, 'web has the ReplicaSets of its two templates');
  await cluster.client.request('DELETE', `${DEPLOYMENTS}/web`);
  await eventually('web ReplicaSets and pods gone', async () => {
    const rs = await cluster.client.request<{ items: Array<{ metadata: { ownerReferences?: Array<{ name: string }> } }> }>('GET', '/apis/apps/v1/namespaces/default/replicasets');
    const left = rs.items.filter((r) => r.metadata.ownerReferences?.some((o) => o.name === 'web')).length + (await cluster.pods('app=web')).length;
    return left === 0 ? true : undefined;
  });
  assert.is((await cluster.pods('app=agentd')).length, NODES.length + 1, 'other workloads stay');
});

test.run();
