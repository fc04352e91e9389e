// Two clusters on one Docker engine, each with an agent of the SAME node name (as two `flotilla up` on one
// machine have): each agent owns only the containers of its own cluster. Both run a pod of the same name; after
// each agent has started, and again after each has been restarted (a full list, adoption and clean-up pass),
// both pods still run in their very first containers, no restart counted, and exec through either server
// reaches that cluster's pod.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DockerRuntime } from '../../node-agent/runtime/docker.js';
import { LABEL_CONTAINER, LABEL_NODE, LABEL_POD_UID, SANDBOX_CONTAINER_NAME } from '../../node-agent/runtime/types.js';
import { eventually } from '../support/eventually.js';
import { RealServer, appPod, type PodView } from './real-server.js';

const TESTBOX = 'flotilla/testbox:latest';
const NODE = `twin-${process.pid}`;
const runtime = new DockerRuntime();
const clusters: { name: string; srv: RealServer; stop?: () => Promise<void> }[] = [];

/** The agent of one cluster for node NODE on this Docker engine, in this process, until stop(). */
async function startAgent(c: { name: string; srv: RealServer; stop?: () => Promise<void> }): Promise<void> {
  const agent = c.srv.startAgent(NODE, runtime, {
    advertiseAddress: '127.0.0.1', resources: { cpu: '2', memory: '2Gi' },
    tuning: { heartbeatSeconds: 0.5, retrySeconds: 0.2, retryMaxSeconds: 1, podWorkers: { resyncMs: 500 } },
  });
  c.stop = agent.stop;
  await agent.ready;
}

/** A pod of NODE in cluster c: its server view once Running and Ready, and its app container on the engine. */
async function runningPod(c: { name: string; srv: RealServer }, name: string): Promise<{ pod: PodView; appContainer: string }> {
  await c.srv.createPod(appPod(name, NODE, TESTBOX, { command: ['/bin/sh', '-c', 'exec sleep 600'], env: [{ name: 'WHO', value: c.name }] }));
  const pod = await c.srv.podReady(name, 90_000);
  return { pod, appContainer: (await appContainers(pod.metadata.uid))[0]! };
}

async function appContainers(uid: string): Promise<string[]> {
  return (await runtime.listContainers({ [LABEL_POD_UID]: uid }))
    .filter((c) => c.state === 'running' && c.labels[LABEL_CONTAINER] !== SANDBOX_CONTAINER_NAME).map((c) => c.id);
}

test.before(async () => {
  for (const name of ['a', 'b']) {
    const srv = new RealServer();
    clusters.push({ name, srv });
    await srv.start();
  }
});
test.after(async () => {
  for (const c of clusters) await c.stop?.();
  for (const c of await runtime.listContainers({ [LABEL_NODE]: NODE })) await runtime.removeContainer(c.id);
  for (const c of clusters) await c.srv.close();
});

test('agents of two clusters with one node name leave each other\'s containers alone', async () => {
  const [a, b] = clusters as [typeof clusters[0], typeof clusters[0]];
  await startAgent(a);
  const first = await runningPod(a, 'twin');
  await startAgent(b); // its first list finds no pod of its own: clean-up of everything else would start here
  const second = await runningPod(b, 'twin');
  // Restarted agents list, adopt and clean up again; a pod created after that pass ran proves the pass is over.
  for (const c of [a, b]) {
    await c.stop!();
    await startAgent(c);
    await runningPod(c, 'after-restart');
  }

  for (const [c, p] of [[a, first], [b, second]] as const) {
    assert.equal(await appContainers(p.pod.metadata.uid), [p.appContainer], `cluster ${c.name}: the pod's first container still runs`);
    const now = await c.srv.getPod('twin');
    assert.is(now?.status?.containerStatuses?.[0]?.restartCount, 0, `cluster ${c.name}: no restart`);
    assert.is(now?.metadata.uid, p.pod.metadata.uid);
    const who = await eventually(`exec through server ${c.name}`, () => c.srv.client.request<{ stdout: string }>('POST', '/api/v1/namespaces/default/pods/twin/exec', { command: ['/bin/sh', '-c', 'echo $WHO'] }));
    assert.is(who.stdout, `${c.name}\n`, `exec through server ${c.name} reaches its own pod`);
  }
});

test.run();
