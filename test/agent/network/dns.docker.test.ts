// A real pod on Docker resolves a Service through its node's DNS server: the agent (against a real server) serves
// DNS on a host address of its own (the gateway of a Docker network made for this test), the pod's sandbox gets
// the ClusterFirst resolv.conf naming it, busybox nslookup in the pod resolves the Service's short name through
// the search list (and the kubernetes Service by its full name), and the container has the Services' environment variables.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DockerRuntime } from '../../../node-agent/runtime/docker.js';
import { LABEL_CONTAINER, LABEL_NODE, LABEL_POD } from '../../../node-agent/runtime/types.js';
import { eventually } from '../../support/eventually.js';
import { setUp } from '../../support/set-up.js';
import { RealServer, type TestAgent } from '../real-server.js';

const TESTBOX = 'flotilla/testbox:latest';
const NODE = `dns-docker-${process.pid}`;
const NETWORK = `flotilla-dns-${process.pid}`;
const srv = new RealServer();
const runtime = new DockerRuntime();
let agent: TestAgent | undefined;
let gateway = '';

setUp(test, async () => {
  await srv.start();
  const network = await runtime.docker.createNetwork({ Name: NETWORK, Driver: 'bridge', Labels: { 'io.flotilla.test': String(process.pid) } });
  const info = await network.inspect() as { IPAM?: { Config?: Array<{ Gateway?: string }> } };
  gateway = info.IPAM?.Config?.[0]?.Gateway ?? '';
  if (!gateway) throw new Error(`docker network ${NETWORK} has no gateway address`);
}, async () => {
  await agent?.stop();
  for (const c of await runtime.listContainers({ [LABEL_NODE]: NODE })) await runtime.removeContainer(c.id);
  await runtime.docker.getNetwork(NETWORK).remove().catch(() => undefined);
  await srv.close();
});

test('nslookup in a pod resolves a Service through the agent; resolv.conf is ClusterFirst; Service variables are set', async () => {
  await srv.client.request('POST', '/api/v1/namespaces/default/services', {
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web-front', namespace: 'default' },
    spec: { clusterIP: '10.43.0.60', ports: [{ name: 'http', port: 80 }] },
  });
  agent = srv.startAgent(NODE, runtime, { dns: { address: gateway } });
  const info = await agent.info;
  await eventually('the DNS server listening', () => info.dns?.port);
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
    const r = await exec(['nslookup', 'web-front']);
    return r.stdout.includes('10.43.0.60') ? r.stdout : undefined;
  }, 30_000);
  assert.match(lookup, 'web-front.default.svc.cluster.local');
  // busybox's nslookup applies the search list to names without a dot only.
  assert.match((await exec(['nslookup', 'kubernetes.default.svc.cluster.local'])).stdout, '10.43.0.1');
  const missing = await exec(['nslookup', 'nothing.default.svc.cluster.local']);
  assert.match(missing.stdout + missing.stderr, /NXDOMAIN|can't find/);
});

test.run();
