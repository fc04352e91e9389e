// The agent's cluster DNS against a real server: Services and EndpointSlices made through the API are answered
// over UDP by the agent's DNS server, follow changes, and are still answered after the server is killed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { FakeRuntime } from '../../../node-agent/runtime/fake.js';
import { RealServer, type TestAgent } from '../real-server.js';
import { eventually } from '../../support/eventually.js';
import { ask } from './dns-client.js';

const service = (name: string, spec: Record<string, unknown>) => ({ apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default' }, spec });

test('Services and EndpointSlices from the API are answered, changes followed, and served while the API is gone', async () => {
  const real = new RealServer();
  let agent: TestAgent | undefined;
  try {
    await real.start();
    await real.client.request('POST', '/api/v1/namespaces/default/services', service('web', { clusterIP: '10.43.0.50', ports: [{ name: 'http', port: 80 }] }));
    await real.client.request('POST', '/api/v1/namespaces/default/services', service('db', { clusterIP: 'None', ports: [{ name: 'pg', port: 5432 }] }));
    await real.client.request('POST', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', {
      apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
      metadata: { name: 'db-abc', namespace: 'default', labels: { 'kubernetes.io/service-name': 'db' } },
      addressType: 'IPv4', endpoints: [{ addresses: ['10.42.0.7'], hostname: 'db-0', conditions: { ready: true } }], ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }],
    });
    agent = real.startAgent('dns-node', new FakeRuntime(), { dns: { address: '127.0.0.1', port: 0 } });
    const info = await agent.info;
    const port = await eventually('the DNS server listening', () => info.dns?.port);
    const a = (name: string) => ask(port, name, 'A').then((r) => (r.answers ?? []).map((x) => ('data' in x ? x.data : undefined)));
    assert.equal(await eventually('web answered', async () => { const l = await a('web.default.svc.cluster.local'); return l.length ? l : undefined; }), ['10.43.0.50']);
    assert.equal(await a('db-0.db.default.svc.cluster.local'), ['10.42.0.7']);

    await real.client.request('POST', '/api/v1/namespaces/default/services', service('late', { clusterIP: '10.43.0.51', ports: [{ port: 80 }] }));
    await eventually('a new Service answered', async () => (await a('late.default.svc.cluster.local'))[0] === '10.43.0.51');

    await real.kill();
    // No server: the last view is served, from memory.
    assert.equal(await a('web.default.svc.cluster.local'), ['10.43.0.50']);
    assert.equal(await a('late.default.svc.cluster.local'), ['10.43.0.51']);
    assert.equal(await a('db.default.svc.cluster.local'), ['10.42.0.7']);
    assert.is((await ask(port, 'gone.default.svc.cluster.local', 'A')).rcode, 'NXDOMAIN');
  } finally {
    await agent?.stop();
    await real.close();
  }
});

test.run();
