// The Ingress router inside a real agent, against a real server process, in the root network namespace (no pod
// network, no service proxy; the router on ports the system picks): selectorless Services with manual
// EndpointSlices point at fake backends on 127.0.0.x. The agent reads Ingresses, IngressClasses and the TLS
// Secrets they name with its node certificate (the Node authorizer's rules), the server fills the default class
// and status.loadBalancer, and the Ingress controller's Warning Events name what the router cannot serve.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import tls from 'node:tls';
import { ApiClientError } from '../../client/client.js';
import type { Event, Ingress } from '../../api-types/index.js';
import { FakeRuntime } from '../../node-agent/runtime/fake.js';
import { ClusterCa } from '../../server/pki/ca.js';
import { RealServer, type TestAgent } from '../agent/real-server.js';
import { eventually } from '../support/eventually.js';
import { get, pathTo, serviceFor, startBackends, stopBackends, type Backend } from './backends.js';

const ING = '/apis/networking.k8s.io/v1/namespaces/default/ingresses';

let server: RealServer;
let agent: TestAgent | undefined;
let backends: Backend[] = [];
let ports: { httpPort?: number; httpsPort?: number } = {};

test.before(async () => {
  server = new RealServer();
  await server.start();
  backends = await startBackends(['web', 'api'], 70);
  for (const b of backends) {
    const { service, slice } = serviceFor(b.name, [b]);
    await server.client.request('POST', '/api/v1/namespaces/default/services', service);
    await server.client.request('POST', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', slice);
  }
  agent = server.startAgent('ingress-node', new FakeRuntime(), { advertiseAddress: '127.0.0.1', ingress: { host: '127.0.0.1', httpPort: 0, httpsPort: 0 } });
  ports = (await agent.info).ingress ?? {};
});

test.after(async () => {
  await agent?.stop();
  await stopBackends(backends);
  await server.close();
});

const events = async (name: string): Promise<Event[]> =>
  (await server.client.request<{ items: Event[] }>('GET', '/api/v1/namespaces/default/events')).items.filter((e) => e.involvedObject.kind === 'Ingress' && e.involvedObject.name === name);

test('the servers make the default IngressClass; an Ingress without a class gets it, is routed, and lists the node in its status', async () => {
  const cls = await server.client.request<{ spec: { controller: string }; metadata: { annotations?: Record<string, string> } }>('GET', '/apis/networking.k8s.io/v1/ingressclasses/flotilla');
  assert.is(cls.spec.controller, 'flotilla.io/ingress');
  assert.is(cls.metadata.annotations?.['ingressclass.kubernetes.io/is-default-class'], 'true');
  const created = await server.client.request<Ingress>('POST', ING, {
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'site' },
    spec: { rules: [{ host: 'site.test', http: { paths: [pathTo('web', '/', 'Prefix'), pathTo('api', '/api', 'Prefix')] } }] },
  });
  assert.is(created.spec.ingressClassName, 'flotilla', 'admission set the default class');
  assert.ok(ports.httpPort && ports.httpsPort, JSON.stringify(ports));
  await eventually('the router answers for site.test', async () => (await get(ports.httpPort!, 'site.test', '/api/x')).body === 'api');
  assert.is((await get(ports.httpPort!, 'site.test', '/')).body, 'web');
  const status = await eventually('status.loadBalancer lists the node', async () => {
    const ing = await server.client.request<Ingress>('GET', `${ING}/site`);
    return ing.status?.loadBalancer?.ingress?.length ? ing.status.loadBalancer.ingress : undefined;
  });
  assert.equal(status, [{ ip: '127.0.0.1' }]);
  const node = await server.client.request<{ metadata: { annotations?: Record<string, string> } }>('GET', '/api/v1/nodes/ingress-node');
  assert.is(node.metadata.annotations?.['flotilla.io/ingress-ports'], `http=${ports.httpPort},https=${ports.httpsPort}`);
});

test('a new EndpointSlice endpoint is routed to without a change of the Ingress', async () => {
  const [extra] = await startBackends(['web-2'], 80);
  try {
    const { slice } = serviceFor('web', [extra!]);
    await server.client.request('POST', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices', { ...slice, metadata: { ...slice.metadata, name: 'web-second' } });
    await eventually('web-2 answers for site.test too', async () => (await get(ports.httpPort!, 'site.test', '/')).body === 'web-2');
  } finally {
    await stopBackends([extra!]);
    await server.client.request('DELETE', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/web-second');
  }
});

test('TLS from kubernetes.io/tls Secrets, by SNI; a bad key pair gets a Warning Event and the other host keeps its certificate', async () => {
  const ca = await ClusterCa.create('agent-ingress');
  const one = await ca.issue({ commonName: 'one.test', altNames: ['one.test'] }, { usage: 'server' });
  const two = await ca.issue({ commonName: 'two.test', altNames: ['two.test'] }, { usage: 'server' });
  const secret = (name: string, cert: string, key: string) => server.client.request('POST', '/api/v1/namespaces/default/secrets', {
    apiVersion: 'v1', kind: 'Secret', metadata: { name }, type: 'kubernetes.io/tls',
    data: { 'tls.crt': Buffer.from(cert).toString('base64'), 'tls.key': Buffer.from(key).toString('base64') },
  });
  await secret('one-tls', one.certPem, one.keyPem);
  await secret('two-tls', two.certPem, one.keyPem);
  await server.client.request('POST', ING, {
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'secure' },
    spec: {
      tls: [{ hosts: ['one.test'], secretName: 'one-tls' }, { hosts: ['two.test'], secretName: 'two-tls' }],
      rules: ['one.test', 'two.test'].map((host) => ({ host, http: { paths: [pathTo('web', '/', 'Prefix')] } })),
    },
  });
  const cn = (servername: string) => new Promise<string>((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: ports.httpsPort!, servername, rejectUnauthorized: false }, () => { resolve(String(s.getPeerCertificate().subject?.CN ?? '')); s.end(); });
    s.on('error', reject);
  });
  await eventually('one.test is served its certificate', async () => (await cn('one.test')) === 'one.test');
  assert.is(await cn('two.test'), 'one.test', 'two.test falls back to the other certificate');
  const warning = await eventually('an InvalidTLSSecret event', async () => (await events('secure')).find((e) => e.reason === 'InvalidTLSSecret'));
  assert.is(warning.type, 'Warning');
  assert.match(warning.message ?? '', /"two-tls" holds a key that does not match its certificate/);
  assert.is((await get(ports.httpPort!, 'one.test', '/')).status, 308, 'a host with a certificate redirects plain HTTP');
});

test('a missing Service and an unknown annotation: Warning Events, 503 for that path, the other paths keep working', async () => {
  await server.client.request('POST', ING, {
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress',
    metadata: { name: 'broken', annotations: { 'nginx.ingress.kubernetes.io/rewrite-target': '/', 'flotilla.io/proxy-read-timeout': 'soon' } },
    spec: { rules: [{ host: 'broken.test', http: { paths: [pathTo('missing', '/gone', 'Prefix'), pathTo('web', '/', 'Prefix')] } }] },
  });
  await eventually('broken.test routes its working path', async () => (await get(ports.httpPort!, 'broken.test', '/')).body === 'web');
  assert.is((await get(ports.httpPort!, 'broken.test', '/gone')).status, 503);
  const all = await eventually('the three warnings', async () => {
    const list = await events('broken');
    return list.length >= 3 ? list : undefined;
  });
  const byReason = Object.fromEntries(all.map((e) => [e.reason, e.message]));
  assert.match(byReason.ServiceNotFound ?? '', /service "missing" not found/);
  assert.match(byReason.UnsupportedAnnotation ?? '', /nginx\.ingress\.kubernetes\.io\/rewrite-target/);
  assert.match(byReason.InvalidAnnotation ?? '', /flotilla\.io\/proxy-read-timeout: "soon"/);
});

test('an Ingress refused by validation names the field', async () => {
  const err = await server.client.request('POST', ING, {
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'bad' },
    spec: { rules: [{ host: 'bad.test', http: { paths: [{ path: 'relative', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] },
  }).then(() => undefined, (e: unknown) => e);
  assert.instance(err, ApiClientError);
  assert.is((err as ApiClientError).code, 422);
  assert.match((err as Error).message, /spec\.rules\[0\]\.http\.paths\[0\]\.pathType: pathType must be specified/);
});

test.run();
