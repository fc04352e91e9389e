// The Ingress controller on the simulated cluster: status.loadBalancer follows the Ready nodes whose router
// serves; Warning Events name each problem once while it lasts; Ingresses of other controllers are left alone.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { Event, Ingress } from '../../api-types/index.js';
import { ClusterSim, R } from '../controllers/cluster-sim.js';

const ingresses = R('ingresses');

async function node(sim: ClusterSim, name: string, ip: string, serving: boolean): Promise<void> {
  await sim.addNode(name);
  await sim.objects.patch(R('nodes'), undefined, name, { status: { addresses: [{ type: 'InternalIP', address: ip }] } }, 'status');
  if (serving) await sim.objects.patch(R('nodes'), undefined, name, { metadata: { annotations: { 'flotilla.io/ingress-ports': 'http=80,https=443' } } });
}

const warnings = (sim: ClusterSim, name: string): Event[] =>
  (sim.objects.list(R('events'), 'default').items as unknown as Event[]).filter((e) => e.involvedObject.name === name && e.type === 'Warning');

test('status lists the serving Ready nodes; problems are Warning Events, each once; other classes are not touched', async () => {
  const sim = await new ClusterSim().start();
  try {
    await sim.objects.create(R('ingressclasses'), undefined, { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'flotilla', annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } }, spec: { controller: 'flotilla.io/ingress' } });
    await sim.objects.create(R('ingressclasses'), undefined, { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'other' }, spec: { controller: 'example.com/other' } });
    await node(sim, 'n1', '192.168.1.11', true);
    await node(sim, 'n2', '192.168.1.12', true);
    await node(sim, 'n3', '192.168.1.13', false);
    await sim.objects.create(R('services'), 'default', { metadata: { name: 'web' }, spec: { ports: [{ name: 'http', port: 80 }] } });
    const spec = { rules: [{ host: 'a.test', http: { paths: [
      { path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { name: 'http' } } } },
      { path: '/x', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 8080 } } } },
      { path: '/y', pathType: 'Prefix', backend: { service: { name: 'nope', port: { number: 80 } } } },
    ] } }], tls: [{ hosts: ['a.test'], secretName: 'missing-tls' }] };
    await sim.objects.create(ingresses, 'default', { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'site', annotations: { 'flotilla.io/rewrite': 'x' } }, spec });
    await sim.objects.create(ingresses, 'default', { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'foreign' }, spec: { ...spec, ingressClassName: 'other' } });
    const status = (name: string) => (sim.get('ingresses', name) as unknown as Ingress).status?.loadBalancer?.ingress;
    await sim.until(() => status('site')?.length === 2);
    assert.equal(status('site'), [{ ip: '192.168.1.11' }, { ip: '192.168.1.12' }]);
    assert.equal(warnings(sim, 'site').map((e) => e.reason).sort(), ['InvalidTLSSecret', 'PortNotFound', 'ServiceNotFound', 'UnsupportedAnnotation']);
    assert.is(status('foreign'), undefined, 'another controller\'s Ingress keeps its status');
    assert.equal(warnings(sim, 'foreign'), []);
    // A node going NotReady leaves the status; resyncs and other changes record nothing again.
    await sim.objects.patch(R('nodes'), undefined, 'n2', { status: { conditions: [{ type: 'Ready', status: 'False', reason: 'KubeletNotReady' }] } }, 'status');
    sim.agents.delete('n2');
    await sim.until(() => status('site')?.length === 1);
    assert.equal(status('site'), [{ ip: '192.168.1.11' }]);
    for (let i = 0; i < 3; i++) await sim.step();
    assert.ok(warnings(sim, 'site').every((e) => e.count === 1), JSON.stringify(warnings(sim, 'site').map((e) => [e.reason, e.count])));
    // The missing Service appears: no new event; the others stay as they were.
    await sim.objects.create(R('services'), 'default', { metadata: { name: 'nope' }, spec: { ports: [{ port: 80 }] } });
    await sim.step();
    assert.is(warnings(sim, 'site').length, 4);
  } finally {
    await sim.stop();
  }
});

test.run();
