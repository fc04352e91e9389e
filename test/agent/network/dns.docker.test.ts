// A real pod on Docker resolves a Service through its node's DNS server as under `flotilla up`: no pod network, the
// pod on Docker's default bridge, the agent (against a real server) serving DNS on the bridge's gateway
// (defaultBridgeDns, what `flotilla up` uses) and answering the bridge's subnet. The pod's sandbox gets the
// ClusterFirst resolv.conf naming the gateway, busybox nslookup in the pod resolves Services through it, and the
// container has the Services' environment variables. The server listens on a free port, never on the root
// namespace's port 53 (so nslookup is told the port), which is what a host's own resolver may hold; busybox's
// nslookup then skips resolv.conf, search list included, so names are asked in full here.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DockerRuntime } from '../../../node-agent/runtime/docker.js';
import { defaultBridgeDns, type DockerNetworkInfo } from '../../../node-agent/network/cluster-dns.js';
import { LABEL_CONTAINER, LABEL_NODE, LABEL_POD } from '../../../node-agent/runtime/types.js';
import { eventually } from '../../support/eventually.js';
import { setUp } from '../../support/set-up.js';
import { RealServer, type TestAgent } from '../real-server.js';

const TESTBOX = 'flotilla/testbox:latest';
const NODE = `dns-docker-${process.pid}`;
const srv = new RealServer();
const runtime = new DockerRuntime();
let agent: TestAgent | undefined;
let bridge: Awaited<ReturnType<typeof defaultBridgeDns>>;

setUp(test, async () => {
  await srv.start();
  bridge = await defaultBridgeDns(await runtime.docker.getNetwork('bridge').inspect() as DockerNetworkInfo);
  if (!bridge) throw new Error('Docker\'s default bridge has no gateway address');
}, async () => {
  await agent?.stop();
  for (const c of await runtime.listContainers({ [LABEL_NODE]: NODE })) await runtime.removeContainer(c.id);
  await srv.close();
});

test('nslookup in a pod on the default bridge resolves a Service through the agent on the bridge gateway; resolv.conf is ClusterFirst; Service variables are set', async () => {
  const gateway = bridge!.address;
  await srv.client.request('POST', '/api/v1/namespaces/default/services', {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web-front', namespace: 'default' },
    spec: { clusterIP: '10.43.0.60', ports: [{ name: 'http', port: 80 }] },
  });
  agent = srv.startAgent(NODE, runtime, { dns: { ...bridge!, port: 0 } });
  const info = await agent.info;
  const server = `${gateway}:${await eventually('the DNS server listening', () => info.dns?.port)}`;
  await srv.createPod({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'asker' },
    spec: { nodeName: NODE, terminationGracePeriodSeconds: 1, containers: [{ name: 'main', image: TESTBOX, command: ['sleep', '3600'] }] },
  });
  await srv.podReady('asker', 90_000);
  const [main] = (await runtime.listContainers({ [LABEL_NODE]: NODE, [LABEL_POD]: 'asker', [LABEL_CONTAINER]: 'main' }));
  assert.ok(main, 'the pod container exists');
  const exec = (cmd: string[]) => runtime.exec(main.id, cmd);

  const resolv = (await exec(['cat', '/etc/resolv.conf'])).stdout;
  assert.match(resolv, `nameserver ${gateway}`);
  assert.match(resolv, 'search default.svc.cluster.local svc.cluster.local cluster.local');
  assert.match(resolv, 'options ndots:5');

  const env = (await exec(['env'])).stdout;
  assert.match(env, 'WEB_FRONT_SERVICE_HOST=10.43.0.60');
  assert.match(env, 'WEB_FRONT_SERVICE_PORT_HTTP=80');
  assert.match(env, 'WEB_FRONT_PORT_80_TCP=tcp://10.43.0.60:80');
  assert.match(env, 'KUBERNETES_SERVICE_HOST=10.43.0.1');

  const lookup = await eventually('nslookup answers', async () => {
    const r = await exec(['nslookup', 'web-front.default.svc.cluster.local', server]);
    return r.stdout.includes('10.43.0.60') ? r.stdout : undefined;
  }, 30_000);
  assert.match(lookup, 'web-front.default.svc.cluster.local');
  assert.match((await exec(['nslookup', 'kubernetes.default.svc.cluster.local', server])).stdout, '10.43.0.1');
  const missing = await exec(['nslookup', 'nothing.default.svc.cluster.local', server]);
  assert.match(missing.stdout + missing.stderr, /NXDOMAIN|can't find/);
});

test.run();
