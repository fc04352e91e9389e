// Graceful pod deletion carried out by the agent (FakeRuntime, in this process) against a real `flotilla
// server`: a deleted pod is Terminating while its containers get the grace period (SIGTERM, SIGKILL once it runs
// out), then the agent removes the pod object (grace 0, uid precondition); a pod that stops at SIGTERM goes at once.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { resourceByCliName } from '../../api-types/index.js';
import type { KubeObject } from '../../api-types/index.js';
import { formatObjects } from '../../cli/printers.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { LABEL_POD } from '../../node-agent/runtime/types.js';
import { eventually } from '../support/eventually.js';
import { recordStops } from './stop-recorder.js';
import { RealServer, appPod } from './real-server.js';

const NODE = 'edge-grace';

const srv = new RealServer();
const runtime = new FakeRuntime();
const stops = recordStops(runtime);
runtime.setBehaviour('fake/stubborn', { ignoresTerm: true });
let stopAgent: (() => Promise<void>) | undefined;

test.before(async () => {
  await srv.start();
  stopAgent = srv.startAgent(NODE, runtime).stop;
});
test.after(async () => {
  await stopAgent?.();
  await srv.close();
});

test('a pod ignoring SIGTERM is Terminating for its grace period, killed when it ends, then removed by the agent', async () => {
  await srv.createPod({ ...appPod('stubborn', NODE, 'fake/stubborn'), spec: { nodeName: NODE, terminationGracePeriodSeconds: 30, containers: [{ name: 'main', image: 'fake/stubborn' }] } });
  await srv.podReady('stubborn');
  const asked = Date.now();
  const deleted = await srv.client.request<KubeObject>('DELETE', '/api/v1/namespaces/default/pods/stubborn', { kind: 'DeleteOptions', apiVersion: 'v1', gracePeriodSeconds: 2 });
  assert.is(deleted.metadata.deletionGracePeriodSeconds, 2);
  const terminating = await srv.client.request<KubeObject>('GET', '/api/v1/namespaces/default/pods/stubborn');
  assert.ok(terminating.metadata.deletionTimestamp, 'the pod object stays while its containers stop');
  assert.match(formatObjects(resourceByCliName('pods')!, [terminating], 'table', { withNamespace: false, now: Date.now() }), /stubborn\s+\S+\s+Terminating/);

  await eventually('the pod object removed by the agent', async () => ((await srv.getPod('stubborn')) === undefined ? true : undefined));
  assert.ok(Date.now() - asked >= 2000, 'not before the grace period ran out');
  assert.equal(stops.filter((s) => s.pod === 'stubborn'), [{ pod: 'stubborn', graceSeconds: 2, exitCode: 137 }], 'stopped with the grace period of the delete, then killed');
  assert.is((await runtime.listContainers({ [LABEL_POD]: 'stubborn' })).length, 0, 'its containers are gone');
});

test('a pod that stops at SIGTERM is removed at once, well within its grace period', async () => {
  await srv.createPod({ ...appPod('polite', NODE, 'fake/polite'), spec: { nodeName: NODE, terminationGracePeriodSeconds: 30, containers: [{ name: 'main', image: 'fake/polite' }] } });
  await srv.podReady('polite');
  const deleted = await srv.client.request<KubeObject>('DELETE', '/api/v1/namespaces/default/pods/polite');
  assert.is(deleted.metadata.deletionGracePeriodSeconds, 30, 'the pod\'s own terminationGracePeriodSeconds');
  await eventually('the pod object removed by the agent', async () => ((await srv.getPod('polite')) === undefined ? true : undefined), 10_000);
  assert.equal(stops.filter((s) => s.pod === 'polite'), [{ pod: 'polite', graceSeconds: 30, exitCode: 143 }]);
});

test.run();
