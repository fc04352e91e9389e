// Architecture-aware placement end to end: a real server and four agents in this process on FakeRuntimes, one
// amd64 node that holds web:1 and three arm64 hollow nodes. The amd64 node reports the image's platform in
// Node.status.imagePlatforms; a pod of web:1 goes to it and never to a Pi, and when it does not fit there, the
// pod stays pending with the reason naming the image (PodScheduled condition and FailedScheduling event).
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Event, Node, Pod } from '../../api-types/index.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';
import { RealServer, type TestAgent } from './real-server.js';

const srv = new RealServer();
const agents: TestAgent[] = [];
const PIS = ['pi-1', 'pi-2', 'pi-3'];

function pod(name: string, cpu: string): Record<string, unknown> {
  return {
    apiVersion: 'v1', kind: 'Pod', metadata: { name },
    spec: { terminationGracePeriodSeconds: 1, containers: [{ name: 'web', image: 'web:1', resources: { requests: { cpu } } }] },
  };
}

setUp(test, async () => {
  await srv.start();
  const start = (name: string, arch: string, runtime: FakeRuntime, cpu: string) => {
    const agent = srv.startAgent(name, runtime, { resources: { cpu, memory: '4Gi', arch }, dataDir: join(srv.dir, name) });
    agents.push(agent);
    return agent.ready;
  };
  await Promise.all([
    start('pc', 'amd64', new FakeRuntime({ images: ['web:1'] }), '2'),
    ...PIS.map((name) => start(name, 'arm64', new FakeRuntime({ platform: { os: 'linux', architecture: 'arm64' } }), '8')),
  ]);
}, async () => {
  await Promise.all(agents.map((a) => a.stop()));
  await srv.close();
});

test('web:1, held for linux/amd64 only, goes to the amd64 node; too big for it, it waits and says why', async () => {
  await eventually('pc reports the platform of web:1', async () => {
    const node = await srv.client.request<Node>('GET', '/api/v1/nodes/pc');
    return node.status?.imagePlatforms?.some((p) => p.names.includes('web:1') && p.architecture === 'amd64') ? true : undefined;
  });
  for (let i = 0; i < 3; i++) await srv.createPod(pod(`small-${i}`, '500m'));
  const placed = await Promise.all([0, 1, 2].map((i) => eventually(`small-${i} bound`, async () => (await srv.getPod(`small-${i}`))?.spec.nodeName)));
  assert.equal(placed, ['pc', 'pc', 'pc'], 'never on a Pi, though the Pis have four times the room');

  await srv.createPod(pod('big', '4'));
  const expected = "0/4 nodes are available: 3 node(s) didn't match the image architecture, 1 Insufficient cpu. "
    + 'image web:1 has linux/amd64 only; 3 arm64 nodes skipped.';
  const condition = await eventually('big reports why it is pending', async () => {
    const p = await srv.client.request<Pod>('GET', '/api/v1/namespaces/default/pods/big');
    return p.status?.conditions?.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  });
  assert.is(condition.reason, 'Unschedulable');
  assert.is(condition.message, expected);
  const events = await srv.client.request<{ items: Event[] }>('GET', '/api/v1/namespaces/default/events');
  const failed = events.items.find((e) => e.reason === 'FailedScheduling' && e.involvedObject.name === 'big');
  assert.is(failed?.message, expected);
  assert.is((await srv.getPod('big'))?.spec.nodeName, undefined);
});

test.run();
