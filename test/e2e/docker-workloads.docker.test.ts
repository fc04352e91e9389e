// Controllers on real containers: a real server process and a real agent process on the local Docker engine
// running flotilla/testbox. A Deployment of 3 replicas reaches 3 ready, a container that exits is restarted
// (restartCount grows), and scaling to 1 removes the containers of the two pods scaled away.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { DockerRuntime } from '../../node-agent/runtime/docker.js';
import { LABEL_CONTAINER, LABEL_NODE, LABEL_POD, SANDBOX_CONTAINER_NAME } from '../../node-agent/runtime/types.js';
import { E2eCluster, FlotillaProcess, deployment, isReady } from './cluster.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';

const TESTBOX = 'flotilla/testbox:latest';
const NODE = `e2e-docker-${process.pid}`;
const DEPLOYMENTS = '/apis/apps/v1/namespaces/default/deployments';
const cluster = new E2eCluster();
const runtime = new DockerRuntime();
let agent: FlotillaProcess | undefined;

/** A testbox Deployment on this suite's node, running `script` in sh. */
function boxDeployment(name: string, replicas: number, script: string): Record<string, unknown> {
  const d = deployment(name, replicas, TESTBOX) as { spec: { template: { spec: { nodeSelector?: Record<string, string>; containers: Array<Record<string, unknown>> } } } };
  d.spec.template.spec.nodeSelector = { 'kubernetes.io/hostname': NODE };
  d.spec.template.spec.containers[0]!.command = ['/bin/sh', '-c', script];
  d.spec.template.spec.containers[0]!.resources = { requests: { cpu: '10m', memory: '8Mi' } };
  return d;
}

async function runningApps(): Promise<Array<{ id: string; pod: string }>> {
  return (await runtime.listContainers({ [LABEL_NODE]: NODE }))
    .filter((c) => c.state === 'running' && c.labels[LABEL_CONTAINER] !== SANDBOX_CONTAINER_NAME)
    .map((c) => ({ id: c.id, pod: c.labels[LABEL_POD] ?? '' }));
}

setUp(test, async () => {
  await cluster.start();
  agent = new FlotillaProcess(['agent', '--server', cluster.url, '--token', cluster.token, '--ca', cluster.caPath, '--data', join(cluster.dir, 'agent'),
    '--name', NODE, '--listen', '127.0.0.1:0', '--advertise-address', '127.0.0.1',
    // The machine's own namespace and an engine other suites share: pods stay on Docker's default bridge, and no
    // packet rules are written there, nor ports 80 and 443 taken.
    '--no-pod-network', '--service-proxy', 'off', '--ingress', 'off']);
  await cluster.nodesReady([NODE], 60_000).catch((err: Error) => { throw new Error(`${err.message}; agent output: ${agent?.output}`); });
}, async () => {
  await agent?.kill('SIGTERM');
  for (const c of await runtime.listContainers({ [LABEL_NODE]: NODE })) await runtime.removeContainer(c.id);
  await cluster.stop();
});

test('a Deployment of 3 testbox replicas reaches 3 ready, each with its own running container', async () => {
  await cluster.client.request('POST', DEPLOYMENTS, boxDeployment('box', 3, 'exec sleep 3600'));
  const pods = await eventually('3 ready box pods', async () => {
    const list = await cluster.pods('app=box');
    return list.length === 3 && list.every(isReady) ? list : undefined;
  }, 120_000);
  const apps = await runningApps();
  assert.equal(apps.map((a) => a.pod).sort(), pods.map((p) => p.metadata.name).sort());
});

test('a container that exits is restarted by the agent', async () => {
  await cluster.client.request('POST', DEPLOYMENTS, boxDeployment('quitter', 1, 'sleep 1; exit 3'));
  const pod = await eventually('quitter restarted', async () => {
    const [p] = await cluster.pods('app=quitter');
    return (p?.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1 ? p : undefined;
  }, 90_000);
  assert.is(pod.status?.containerStatuses?.[0]?.lastState?.terminated?.exitCode, 3);
  assert.is((await cluster.pods('app=quitter')).length, 1, 'restarted in place, not replaced');
  await cluster.client.request('DELETE', `${DEPLOYMENTS}/quitter`);
});

test('scaling to 1 removes the containers of the pods scaled away', async () => {
  await cluster.client.request('PATCH', `${DEPLOYMENTS}/box`, { spec: { replicas: 1 } }, { contentType: 'application/merge-patch+json' });
  const [kept] = await eventually('one box pod left', async () => {
    const list = (await cluster.pods('app=box'));
    return list.length === 1 && isReady(list[0]!) ? list : undefined;
  }, 60_000);
  await eventually('only the kept pod has containers', async () => {
    const all = await runtime.listContainers({ [LABEL_NODE]: NODE });
    const pods = new Set(all.filter((c) => c.labels[LABEL_POD]?.startsWith('box-')).map((c) => c.labels[LABEL_POD]));
    return pods.size === 1 && pods.has(kept!.metadata.name) ? true : undefined;
  }, 60_000);
  assert.equal((await runningApps()).filter((a) => a.pod.startsWith('box-')).map((a) => a.pod), [kept!.metadata.name]);
});

test.run();
