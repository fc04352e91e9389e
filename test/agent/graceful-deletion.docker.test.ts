// Graceful pod deletion on a real Docker engine: the agent (in this process, DockerRuntime) against a real
// server. A flotilla/testbox pod that exits on SIGTERM is Terminating after its delete, gets SIGTERM, exits 0,
// and its pod object is gone long before the grace period; one that ignores SIGTERM is killed once its short
// terminationGracePeriodSeconds runs out.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resourceByCliName } from '../../api-types/index.js';
import type { KubeObject } from '../../api-types/index.js';
import { formatObjects } from '../../cli/printers.js';
import { DockerRuntime } from '../../node-agent/runtime/docker.js';
import { LABEL_NODE, LABEL_POD } from '../../node-agent/runtime/types.js';
import { eventually } from '../support/eventually.js';
import { recordStops } from './stop-recorder.js';
import { RealServer } from './real-server.js';

const TESTBOX = 'flotilla/testbox:latest';
const NODE = `docker-grace-${process.pid}`;

const srv = new RealServer();
const runtime = new DockerRuntime();
const stops = recordStops(runtime);
let stopAgent: (() => Promise<void>) | undefined;

function boxPod(name: string, script: string, terminationGracePeriodSeconds: number): Record<string, unknown> {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name },
    spec: { nodeName: NODE, terminationGracePeriodSeconds, containers: [{ name: 'main', image: TESTBOX, command: ['/bin/sh', '-c', script] }] },
  };
}

test.before(async () => {
  await srv.start();
  stopAgent = srv.startAgent(NODE, runtime, { tuning: { heartbeatSeconds: 0.5, retrySeconds: 0.2, retryMaxSeconds: 1, podWorkers: { resyncMs: 500 } } }).stop;
});
test.after(async () => {
  await stopAgent?.();
  for (const c of await runtime.listContainers({ [LABEL_NODE]: NODE })) await runtime.removeContainer(c.id);
  await srv.close();
});

test('a pod that traps SIGTERM shows Terminating, gets SIGTERM, exits, and is gone long before its grace period', async () => {
  await srv.createPod(boxPod('trapper', "trap 'exit 0' TERM; while true; do sleep 1; done", 60));
  await srv.podReady('trapper', 90_000);
  const asked = Date.now();
  const deleted = await srv.client.request<KubeObject>('DELETE', '/api/v1/namespaces/default/pods/trapper');
  assert.is(deleted.metadata.deletionGracePeriodSeconds, 60);
  const terminating = await srv.client.request<KubeObject>('GET', '/api/v1/namespaces/default/pods/trapper');
  assert.match(formatObjects(resourceByCliName('pods')!, [terminating], 'table', { withNamespace: false, now: Date.now() }), /trapper\s+\S+\s+Terminating/);
  await eventually('the trapper pod object removed', async () => ((await srv.getPod('trapper')) === undefined ? true : undefined), 30_000);
  assert.ok(Date.now() - asked < 30_000, `gone after ${Date.now() - asked} ms, long before the 60 s grace period`);
  assert.equal(stops.filter((s) => s.pod === 'trapper'), [{ pod: 'trapper', graceSeconds: 60, exitCode: 0 }], 'SIGTERM ran its trap');
  assert.is((await runtime.listContainers({ [LABEL_NODE]: NODE, [LABEL_POD]: 'trapper' })).length, 0);
});

test('a pod ignoring SIGTERM is killed when its terminationGracePeriodSeconds (2 s) runs out', async () => {
  await srv.createPod(boxPod('ignorer', "trap '' TERM; while true; do sleep 1; done", 2));
  await srv.podReady('ignorer', 90_000);
  const asked = Date.now();
  await srv.client.request('DELETE', '/api/v1/namespaces/default/pods/ignorer');
  await eventually('the ignorer pod object removed', async () => ((await srv.getPod('ignorer')) === undefined ? true : undefined), 30_000);
  assert.ok(Date.now() - asked >= 2000, 'not before its grace period ran out');
  assert.equal(stops.filter((s) => s.pod === 'ignorer'), [{ pod: 'ignorer', graceSeconds: 2, exitCode: 137 }], 'SIGKILL after the grace period');
});

test.run();
