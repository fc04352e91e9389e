// The Endpoints/EndpointSlice controller over the real in-process store (ClusterSim: SQLite, ObjectService, the
// leader's controllers). Pods are made and given their status here (IP, readiness) as an agent would report it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isKind } from '../../api-types/index.js';
import type { EndpointSlice, Endpoints, Event, Pod } from '../../api-types/index.js';
import { ClusterSim, R } from './cluster-sim.js';
import { endpointsController } from '../../server/controllers/endpoints.js';
import type { WatchEvent } from '../../server/store/types.js';

interface PodOpts { ip?: string; ready?: boolean; labels?: Record<string, string>; ports?: { name: string; containerPort: number }[]; finalizer?: boolean; node?: string; phase?: 'Running' | 'Succeeded' }

async function pod(sim: ClusterSim, name: string, o: PodOpts = {}): Promise<void> {
  await sim.objects.create(R('pods'), 'default', {
    metadata: { name, labels: o.labels ?? { app: 'web' }, ...(o.finalizer ? { finalizers: ['example.com/hold'] } : {}) },
    spec: { nodeName: o.node ?? 'n1', containers: [{ name: 'c', image: 'busybox', ...(o.ports ? { ports: o.ports } : {}) }] },
  });
  if (o.ip !== undefined || o.ready !== undefined || o.phase) await status(sim, name, o);
}

async function status(sim: ClusterSim, name: string, o: PodOpts): Promise<void> {
  await sim.objects.replaceStatus(R('pods'), 'default', name, {
    phase: o.phase ?? 'Running', ...(o.ip ? { podIP: o.ip, podIPs: [{ ip: o.ip }] } : {}),
    conditions: [{ type: 'Ready', status: o.ready ? 'True' : 'False' }],
  });
}

async function service(sim: ClusterSim, name: string, spec: Record<string, unknown>): Promise<void> {
  await sim.objects.create(R('services'), 'default', { metadata: { name }, spec });
}

const endpoints = (sim: ClusterSim, name: string) => sim.get('endpoints', name) as unknown as Endpoints | undefined;
const slices = (sim: ClusterSim, name: string) => (sim.objects.list(R('endpointslices'), 'default').items as unknown as EndpointSlice[])
  .filter((s) => s.metadata.labels?.['kubernetes.io/service-name'] === name).sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
/** Slice endpoints as "ip ready/serving/terminating", sorted. */
const sliceView = (sim: ClusterSim, name: string) => slices(sim, name).flatMap((s) => s.endpoints.map((e) =>
  `${e.addresses[0]} ${e.conditions?.ready}/${e.conditions?.serving}/${e.conditions?.terminating}`)).sort();
const ips = (list: { ip: string }[] | undefined) => (list ?? []).map((a) => a.ip).sort();

async function withSim(fn: (sim: ClusterSim) => Promise<void>): Promise<void> {
  const sim = await new ClusterSim().start();
  try {
    await sim.addNode('n1', { 'topology.kubernetes.io/zone': 'shelf-a' });
    await fn(sim);
  } finally {
    await sim.stop();
  }
}

test('readiness: a pod without an IP is left out, a not-ready one is notReady, a Ready one is an address; finished pods go', () => withSim(async (sim) => {
  await service(sim, 'web', { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 8080 }] });
  await pod(sim, 'a');
  await pod(sim, 'b', { ip: '10.42.0.5', ready: false });
  await sim.manager.settle();
  let ep = endpoints(sim, 'web')!;
  assert.equal(ep.subsets, [{
    notReadyAddresses: [{ ip: '10.42.0.5', nodeName: 'n1', targetRef: { kind: 'Pod', namespace: 'default', name: 'b', uid: (sim.get('pods', 'b')!).metadata.uid } }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  }]);
  assert.equal(sliceView(sim, 'web'), ['10.42.0.5 false/false/false']);
  const [slice] = slices(sim, 'web');
  assert.is(slice!.addressType, 'IPv4');
  assert.equal(slice!.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
  assert.is(slice!.endpoints[0]!.zone, 'shelf-a');
  assert.is(slice!.metadata.labels?.['endpointslice.kubernetes.io/managed-by'], 'endpointslice-controller.flotilla.io');
  assert.equal(slice!.metadata.ownerReferences?.map((r) => [r.kind, r.name, r.controller]), [['Service', 'web', true]]);

  await status(sim, 'b', { ip: '10.42.0.5', ready: true });
  await status(sim, 'a', { ip: '10.42.0.6', ready: true });
  await sim.manager.settle();
  ep = endpoints(sim, 'web')!;
  assert.equal(ips(ep.subsets?.[0]?.addresses), ['10.42.0.5', '10.42.0.6']);
  assert.is(ep.subsets?.[0]?.notReadyAddresses, undefined);
  assert.equal(sliceView(sim, 'web'), ['10.42.0.5 true/true/false', '10.42.0.6 true/true/false']);

  await status(sim, 'a', { ip: '10.42.0.6', ready: false, phase: 'Succeeded' });
  await sim.manager.settle();
  assert.equal(ips(endpoints(sim, 'web')!.subsets?.[0]?.addresses), ['10.42.0.5']);
  assert.equal(sliceView(sim, 'web'), ['10.42.0.5 true/true/false']);
}));

test('terminating: out of Endpoints, in the slice as terminating (serving while Ready); publishNotReadyAddresses keeps it ready', () => withSim(async (sim) => {
  await service(sim, 'web', { selector: { app: 'web' }, ports: [{ port: 80 }] });
  await service(sim, 'peers', { selector: { app: 'web' }, ports: [{ port: 80 }], publishNotReadyAddresses: true, clusterIP: 'None' });
  await pod(sim, 'a', { ip: '10.42.0.5', ready: true, finalizer: true });
  await pod(sim, 'b', { ip: '10.42.0.6', ready: false });
  await sim.manager.settle();
  assert.equal(ips(endpoints(sim, 'peers')!.subsets?.[0]?.addresses), ['10.42.0.5', '10.42.0.6']);
  assert.equal(sliceView(sim, 'peers'), ['10.42.0.5 true/true/false', '10.42.0.6 true/true/false']);

  await sim.objects.delete(R('pods'), 'default', 'a');
  await sim.manager.settle();
  assert.ok(sim.get('pods', 'a')?.metadata.deletionTimestamp, 'the finalizer holds the pod');
  assert.equal(ips(endpoints(sim, 'web')!.subsets?.[0]?.addresses), []);
  assert.equal(ips(endpoints(sim, 'web')!.subsets?.[0]?.notReadyAddresses), ['10.42.0.6']);
  assert.equal(sliceView(sim, 'web'), ['10.42.0.5 false/true/true', '10.42.0.6 false/false/false']);
  assert.equal(ips(endpoints(sim, 'peers')!.subsets?.[0]?.addresses), ['10.42.0.5', '10.42.0.6']);
  assert.equal(sliceView(sim, 'peers'), ['10.42.0.5 true/true/true', '10.42.0.6 true/true/false']);
}));

test('named target ports resolve per pod; a pod without the name is left out of that port, with a Warning on the Service', () => withSim(async (sim) => {
  await service(sim, 'web', { selector: { app: 'web' }, ports: [{ name: 'web', port: 80, targetPort: 'http' }] });
  await pod(sim, 'a', { ip: '10.42.0.5', ready: true, ports: [{ name: 'http', containerPort: 8080 }] });
  await pod(sim, 'b', { ip: '10.42.0.6', ready: true, ports: [{ name: 'http', containerPort: 9090 }] });
  await pod(sim, 'c', { ip: '10.42.0.7', ready: true, ports: [{ name: 'metrics', containerPort: 9100 }] });
  await sim.manager.settle();
  const subsets = endpoints(sim, 'web')!.subsets!.map((s) => `${ips(s.addresses).join(',')}:${s.ports?.[0]?.port}`).sort();
  assert.equal(subsets, ['10.42.0.5:8080', '10.42.0.6:9090']);
  const view = slices(sim, 'web').map((s) => `${s.endpoints.map((e) => e.addresses[0]).join(',')}:${s.ports?.[0]?.port}`).sort();
  assert.equal(view, ['10.42.0.5:8080', '10.42.0.6:9090']);
  const warnings = (sim.objects.list(R('events'), 'default').items as unknown as Event[]).filter((e) => e.involvedObject.kind === 'Service' && e.type === 'Warning');
  assert.is(warnings.length, 1);
  assert.match(warnings[0]!.message ?? '', /pod c has no container port named "http" \(TCP\) for service port "web"/);
}));

test('more than 100 endpoints make slices of at most 100; one pod leaving rewrites only its slice', () => withSim(async (sim) => {
  await service(sim, 'big', { selector: { app: 'big' }, ports: [{ port: 80 }] });
  for (let i = 0; i < 250; i++) await pod(sim, `p${String(i).padStart(3, '0')}`, { labels: { app: 'big' }, ip: `10.42.${Math.floor(i / 200)}.${(i % 200) + 1}`, ready: true });
  await sim.manager.settle();
  const before = slices(sim, 'big');
  assert.equal(before.map((s) => s.endpoints.length).sort(), [100, 100, 50]);
  assert.is(new Set(before.flatMap((s) => s.endpoints.map((e) => e.addresses[0]))).size, 250);
  assert.is(endpoints(sim, 'big')!.subsets?.[0]?.addresses?.length, 250);
  const victim = before[1]!.endpoints[7]!.targetRef!.name!;
  await sim.objects.delete(R('pods'), 'default', victim, { gracePeriodSeconds: 0 });
  await sim.manager.settle();
  const after = slices(sim, 'big');
  const changed = after.filter((s, i) => s.metadata.resourceVersion !== before[i]!.metadata.resourceVersion).map((s) => s.metadata.name);
  assert.equal(changed, [before[1]!.metadata.name]);
  assert.equal(after.map((s) => s.endpoints.length), before.map((s, i) => s.endpoints.length - (i === 1 ? 1 : 0)));
  await pod(sim, 'new', { labels: { app: 'big' }, ip: '10.42.9.9', ready: true });
  await sim.manager.settle();
  assert.is(slices(sim, 'big').reduce((n, s) => n + s.endpoints.length, 0), 250);
  assert.ok(slices(sim, 'big').every((s) => s.endpoints.length <= 100));
}));

test('a selector matching nothing gives empty Endpoints and one empty slice; Services without a selector are left alone', () => withSim(async (sim) => {
  await service(sim, 'nobody', { selector: { app: 'nothing-here' }, ports: [{ port: 80 }] });
  await service(sim, 'external', { ports: [{ port: 5432 }] });
  const manual = { metadata: { name: 'external' }, subsets: [{ addresses: [{ ip: '192.168.1.50' }], ports: [{ port: 5432 }] }] };
  await sim.objects.create(R('endpoints'), 'default', manual);
  await sim.manager.settle();
  const ep = endpoints(sim, 'nobody')!;
  assert.ok(ep, 'Endpoints exist');
  assert.is(ep.subsets, undefined);
  assert.equal(slices(sim, 'nobody').map((s) => s.endpoints.length), [0]);
  assert.equal(endpoints(sim, 'external')!.subsets, manual.subsets);
  assert.equal(slices(sim, 'external'), []);
}));

test('a deleted Service takes its Endpoints and slices with it', () => withSim(async (sim) => {
  await service(sim, 'web', { selector: { app: 'web' }, ports: [{ port: 80 }] });
  await pod(sim, 'a', { ip: '10.42.0.5', ready: true });
  await sim.manager.settle();
  assert.is(slices(sim, 'web').length, 1);
  await sim.objects.delete(R('services'), 'default', 'web');
  await sim.until(() => endpoints(sim, 'web') === undefined && slices(sim, 'web').length === 0, 20);
}));

test('a pod change wakes only the Services whose selector matches it now or matched it before', () => withSim(async (sim) => {
  await service(sim, 'web', { selector: { app: 'web' }, ports: [{ port: 80 }] });
  await service(sim, 'web-canary', { selector: { app: 'web', track: 'canary' }, ports: [{ port: 80 }] });
  await service(sim, 'db', { selector: { app: 'db' }, ports: [{ port: 5432 }] });
  await sim.manager.settle();
  const controller = endpointsController(sim.deps);
  const podWatch = controller.watches.find((w) => w.resource.kind === 'Pod')!;
  const event = (type: WatchEvent['type'], labels: Record<string, string>): WatchEvent => {
    const object = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'x', namespace: 'default', labels }, spec: { containers: [] } };
    assert.ok(isKind(object, 'Pod'));
    return { revision: 1, resource: 'pods', namespace: 'default', type, object: object as Pod & { metadata: { name: string } } };
  };
  assert.equal([...podWatch.keys(event('ADDED', { app: 'web', track: 'canary' }))].sort(), ['default/web', 'default/web-canary']);
  assert.equal([...podWatch.keys(event('MODIFIED', { app: 'web' }))].sort(), ['default/web', 'default/web-canary']);
  assert.equal([...podWatch.keys(event('MODIFIED', { app: 'web' }))].sort(), ['default/web']);
  assert.equal([...podWatch.keys(event('DELETED', { app: 'web' }))].sort(), ['default/web']);
  assert.equal([...podWatch.keys(event('ADDED', { app: 'other' }))], []);
}));

test.run();
