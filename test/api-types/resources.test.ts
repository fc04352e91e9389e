import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SCALABLE_KINDS, allResources, apiPath, bindingResource, isKind, kindSchemas, resourceByCliName, resourceFor, resourceForKind, resourceOfKind, statusObject } from '../../api-types/index.js';

// [cli name, expected kind]
const cliNames: [string, string][] = [
  ['pods', 'Pod'], ['pod', 'Pod'], ['po', 'Pod'], ['Pod', 'Pod'], ['PODS', 'Pod'],
  ['deployments', 'Deployment'], ['deployment', 'Deployment'], ['deploy', 'Deployment'], ['deployments.apps', 'Deployment'],
  ['deployment.apps', 'Deployment'], ['deployments.v1.apps', 'Deployment'],
  ['rs', 'ReplicaSet'], ['replicasets.apps', 'ReplicaSet'],
  ['svc', 'Service'], ['services', 'Service'],
  ['cm', 'ConfigMap'], ['configmap', 'ConfigMap'], ['ConfigMap', 'ConfigMap'],
  ['ns', 'Namespace'], ['namespaces', 'Namespace'],
  ['no', 'Node'], ['nodes', 'Node'],
  ['ev', 'Event'], ['events', 'Event'],
  ['secret', 'Secret'], ['secrets', 'Secret'], ['sa', 'ServiceAccount'], ['serviceaccounts', 'ServiceAccount'],
  ['leases', 'Lease'], ['leases.coordination.k8s.io', 'Lease'],
  ['ds', 'DaemonSet'], ['sts', 'StatefulSet'], ['jobs', 'Job'], ['jobs.batch', 'Job'],
  ['hpa', 'HorizontalPodAutoscaler'], ['horizontalpodautoscalers.autoscaling', 'HorizontalPodAutoscaler'],
  ['runtimeclasses', 'RuntimeClass'], ['runtimeclass', 'RuntimeClass'], ['runtimeclasses.node.k8s.io', 'RuntimeClass'],
  ['pc', 'PriorityClass'], ['priorityclasses', 'PriorityClass'], ['priorityclasses.scheduling.k8s.io', 'PriorityClass'],
  ['ep', 'Endpoints'], ['endpoints', 'Endpoints'], ['endpointslices', 'EndpointSlice'], ['endpointslice', 'EndpointSlice'],
  ['endpointslices.discovery.k8s.io', 'EndpointSlice'],
  ['cj', 'CronJob'], ['cronjobs', 'CronJob'], ['cronjob', 'CronJob'], ['cronjobs.batch', 'CronJob'],
];
for (const [name, kind] of cliNames) {
  test(`resourceByCliName("${name}") is ${kind}`, () => {
    assert.is(resourceByCliName(name)?.kind, kind);
  });
}

test('resourceByCliName refuses unknown names and wrong groups', () => {
  for (const name of ['', 'pdos', 'deployments.batch', 'pods.apps', 'bindings', 'binding', 'x.y']) {
    assert.is(resourceByCliName(name), undefined, name);
  }
});

test('resourceFor finds served paths only', () => {
  assert.is(resourceFor('', 'v1', 'pods')?.kind, 'Pod');
  assert.is(resourceFor('apps', 'v1', 'deployments')?.kind, 'Deployment');
  assert.is(resourceFor('coordination.k8s.io', 'v1', 'leases')?.kind, 'Lease');
  assert.is(resourceFor('autoscaling', 'v2', 'horizontalpodautoscalers')?.kind, 'HorizontalPodAutoscaler');
  assert.is(resourceFor('batch', 'v1', 'jobs')?.kind, 'Job');
  assert.is(resourceFor('', 'v1', 'deployments'), undefined);
  assert.is(resourceFor('apps', 'v1beta1', 'deployments'), undefined);
  assert.is(resourceFor('apps', 'v1', 'pods'), undefined);
  assert.is(resourceFor('', 'v1', 'Pod'), undefined);
});

test('resourceForKind is exact, and knows Binding bodies', () => {
  assert.is(resourceForKind('v1', 'Pod')?.plural, 'pods');
  assert.is(resourceForKind('apps/v1', 'Deployment')?.plural, 'deployments');
  assert.is(resourceForKind('v1', 'Binding')?.kind, 'Binding');
  assert.is(resourceForKind('v1', 'Deployment'), undefined);
  assert.is(resourceForKind('apps/v1', 'pod'), undefined);
  assert.is(resourceForKind('extensions/v1beta1', 'Deployment'), undefined);
});

test('the table is consistent: unique plurals, kinds and short names; apiVersion from group and version', () => {
  const seen = new Set<string>();
  for (const r of allResources) {
    assert.is(r.apiVersion, r.group === '' ? r.version : `${r.group}/${r.version}`);
    assert.is(r.singular, r.kind.toLowerCase());
    // A kind may be its own plural (Endpoints, as in Kubernetes).
    for (const name of new Set([r.plural, r.kind.toLowerCase(), ...r.shortNames])) {
      assert.not.ok(seen.has(name.toLowerCase()), `${name} appears twice`);
      seen.add(name.toLowerCase());
      assert.is(resourceByCliName(name), r);
    }
    assert.is(resourceFor(r.group, r.version, r.plural), r);
    assert.is(resourceForKind(r.apiVersion, r.kind), r);
  }
  const kinds = allResources.map((r) => r.kind).sort();
  assert.equal(kinds, ['AddressPool', 'ConfigMap', 'CronJob', 'DaemonSet', 'Deployment', 'EndpointSlice', 'Endpoints', 'Event', 'HorizontalPodAutoscaler', 'Ingress', 'IngressClass', 'Job',
    'Lease', 'Namespace', 'Node', 'PersistentVolume', 'PersistentVolumeClaim', 'Pod', 'PriorityClass', 'ReplicaSet', 'RuntimeClass', 'Secret', 'Service', 'ServiceAccount', 'StatefulSet', 'StorageClass']);
});

test('every kind in the table has a schema, and every schema a line in the table', () => {
  const tableKinds = [...allResources, bindingResource].map((r) => r.kind).sort();
  assert.equal(Object.keys(kindSchemas).sort(), tableKinds);
  for (const kind of tableKinds) assert.is(resourceOfKind(kind as keyof typeof kindSchemas).kind, kind);
  assert.throws(() => resourceOfKind('Scale' as never), /no entry in resources.ts/);
  assert.equal(allResources.filter((r) => r.subresources.includes('scale')).map((r) => r.kind).sort(), [...SCALABLE_KINDS].sort());
});

test('isKind narrows by kind', () => {
  const o = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a' }, spec: { containers: [{ name: 'c', image: 'x' }] } };
  assert.ok(isKind(o, 'Pod'));
  assert.not.ok(isKind(o, 'Node'));
});

test('scope and subresources', () => {
  assert.is(resourceByCliName('nodes')?.namespaced, false);
  assert.is(resourceByCliName('namespaces')?.namespaced, false);
  assert.is(resourceByCliName('runtimeclasses')?.namespaced, false);
  assert.is(resourceByCliName('pc')?.namespaced, false);
  assert.is(resourceByCliName('pods')?.namespaced, true);
  assert.equal(resourceByCliName('deploy')?.subresources, ['status', 'scale']);
  assert.equal(resourceByCliName('rs')?.subresources, ['status', 'scale']);
  assert.equal(resourceByCliName('pods')?.subresources, ['status']);
  assert.equal(resourceByCliName('cm')?.subresources, []);
  assert.is(resourceByCliName('endpoints')?.namespaced, true);
  assert.is(resourceByCliName('endpointslices')?.namespaced, true);
  assert.equal(resourceByCliName('endpointslices')?.subresources, []);
  assert.is(resourceByCliName('ing')?.kind, 'Ingress');
  assert.is(resourceByCliName('ingresses.networking.k8s.io')?.namespaced, true);
  assert.equal(resourceByCliName('ingress')?.subresources, ['status']);
  assert.is(resourceByCliName('ingressclass')?.namespaced, false);
});

test('apiPath builds core and group paths', () => {
  const pods = resourceByCliName('pods')!;
  const deploy = resourceByCliName('deploy')!;
  const nodes = resourceByCliName('nodes')!;
  const leases = resourceByCliName('leases')!;
  assert.is(apiPath(pods), '/api/v1/pods');
  assert.is(apiPath(pods, 'default'), '/api/v1/namespaces/default/pods');
  assert.is(apiPath(pods, 'default', 'web-1'), '/api/v1/namespaces/default/pods/web-1');
  assert.is(apiPath(deploy, 'prod', 'web'), '/apis/apps/v1/namespaces/prod/deployments/web');
  assert.is(apiPath(deploy), '/apis/apps/v1/deployments');
  assert.is(apiPath(nodes), '/api/v1/nodes');
  assert.is(apiPath(nodes, undefined, 'pi-4'), '/api/v1/nodes/pi-4');
  assert.is(apiPath(leases, 'kube-system', 'a'), '/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/a');
  assert.is(apiPath(pods, 'default', 'a b/c'), '/api/v1/namespaces/default/pods/a%20b%2Fc');
  assert.throws(() => apiPath(nodes, 'default'), /cluster-scoped/);
});

test('statusObject builds a Kubernetes Status', () => {
  assert.equal(statusObject({ code: 404, reason: 'NotFound', message: 'pods "x" not found', details: { name: 'x', kind: 'pods' } }), {
    kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message: 'pods "x" not found', reason: 'NotFound',
    code: 404, details: { name: 'x', kind: 'pods' },
  });
  const conflict = statusObject({ code: 409, reason: 'Conflict', message: 'stale resourceVersion' });
  assert.is(conflict.code, 409);
  assert.is(conflict.reason, 'Conflict');
  assert.not.ok('details' in conflict);
  const invalid = statusObject({ code: 422, reason: 'Invalid', message: 'bad', details: { causes: [{ field: 'spec.replicas', message: 'must be >= 0' }] } });
  assert.equal(invalid.details?.causes, [{ field: 'spec.replicas', message: 'must be >= 0' }]);
  // Success bodies (a binding, a revocation) carry only what they are given.
  assert.equal(statusObject({ code: 201 }), { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Success', code: 201 });
  assert.is(statusObject({ code: 200, message: 'revoked' }).status, 'Success');
});

test.run();
