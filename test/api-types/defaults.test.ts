import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyDefaults, defaultPullPolicy, specChanged, validateObject } from '../../api-types/index.js';
import type { KubeObject } from '../../api-types/index.js';

function parsed(input: Record<string, unknown>): KubeObject {
  const r = validateObject(input);
  if (!r.ok) throw new Error(`fixture is invalid: ${JSON.stringify(r.issues)}`);
  return r.object;
}

const pullPolicies: [string, string][] = [
  ['nginx', 'Always'], ['nginx:latest', 'Always'], ['nginx:1.27', 'IfNotPresent'], ['localhost:5000/app', 'Always'],
  ['localhost:5000/app:v2', 'IfNotPresent'], ['localhost:5000/app:latest', 'Always'],
  ['ghcr.io/org/app@sha256:0123abcd', 'IfNotPresent'], ['registry.lan/team/img:2024.05', 'IfNotPresent'],
  // A digest with the tag latest still has the tag latest; a name Docker cannot parse has no tag at all.
  [`ghcr.io/org/app:latest@sha256:${'0'.repeat(64)}`, 'Always'], [`ghcr.io/org/app@sha256:${'0'.repeat(64)}`, 'IfNotPresent'],
  ['Nginx', 'IfNotPresent'], ['nginx:', 'IfNotPresent'], ['localhost:5000', 'IfNotPresent'],
];
for (const [image, policy] of pullPolicies) {
  test(`default pull policy of ${image} is ${policy}`, () => assert.is(defaultPullPolicy(image), policy));
}

test('Pod defaults', () => {
  const pod = parsed({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' },
    spec: {
      containers: [
        { name: 'a', image: 'nginx', ports: [{ containerPort: 80 }, { containerPort: 53, protocol: 'UDP' }], livenessProbe: { httpGet: { port: 80 } } },
        { name: 'b', image: 'busybox:1.36', imagePullPolicy: 'Never' },
      ],
      initContainers: [{ name: 'init', image: 'alpine:3' }],
    },
  });
  const d = applyDefaults(pod) as unknown as { metadata: { namespace: string }; spec: Record<string, unknown> & { containers: Record<string, unknown>[]; initContainers: Record<string, unknown>[] } };
  assert.is(d.metadata.namespace, 'default');
  assert.is(d.spec.restartPolicy, 'Always');
  assert.is(d.spec.terminationGracePeriodSeconds, 30);
  assert.is(d.spec.containers[0]!.imagePullPolicy, 'Always');
  assert.equal(d.spec.containers[0]!.ports, [{ containerPort: 80, protocol: 'TCP' }, { containerPort: 53, protocol: 'UDP' }]);
  assert.equal(d.spec.containers[0]!.livenessProbe, {
    httpGet: { port: 80, path: '/', scheme: 'HTTP' }, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3,
  });
  assert.is(d.spec.containers[1]!.imagePullPolicy, 'Never', 'a set value is kept');
  assert.is(d.spec.initContainers[0]!.imagePullPolicy, 'IfNotPresent');
  assert.is((pod.spec as { restartPolicy?: string }).restartPolicy, undefined, 'the input is not modified');
  const again = validateObject(d);
  assert.ok(again.ok, 'a defaulted object still validates');
});

test('an explicit namespace and restartPolicy are kept; cluster-scoped kinds get no namespace', () => {
  const pod = applyDefaults(parsed({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'prod' },
    spec: { restartPolicy: 'OnFailure', terminationGracePeriodSeconds: 0, containers: [{ name: 'a', image: 'x:1' }] },
  })) as unknown as { metadata: { namespace: string }; spec: { restartPolicy: string; terminationGracePeriodSeconds: number } };
  assert.is(pod.metadata.namespace, 'prod');
  assert.is(pod.spec.restartPolicy, 'OnFailure');
  assert.is(pod.spec.terminationGracePeriodSeconds, 0);
  const node = applyDefaults(parsed({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } }));
  assert.is(node.metadata.namespace, undefined);
  const ns = applyDefaults(parsed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'prod' } }));
  assert.is(ns.metadata.namespace, undefined);
  assert.equal(ns.spec, { finalizers: ['kubernetes'] }, 'held until the namespace controller emptied it');
  assert.equal(ns.status, { phase: 'Active' });
  const bare = applyDefaults(parsed({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'scratch' }, spec: { finalizers: [] } }));
  assert.equal(bare.spec, { finalizers: [] }, 'an explicit empty list stays');
});

const template = { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'a', image: 'nginx:1', ports: [{ containerPort: 80 }] }] } };

test('Deployment defaults', () => {
  const d = applyDefaults(parsed({
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { selector: { matchLabels: { app: 'web' } }, template },
  })) as unknown as { metadata: { namespace: string }; spec: Record<string, unknown> & { template: { spec: Record<string, unknown> & { containers: Record<string, unknown>[] } } } };
  assert.is(d.metadata.namespace, 'default');
  assert.is(d.spec.replicas, 1);
  assert.equal(d.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } });
  assert.is(d.spec.revisionHistoryLimit, 10);
  assert.is(d.spec.progressDeadlineSeconds, 600);
  assert.is(d.spec.template.spec.restartPolicy, 'Always');
  assert.is(d.spec.template.spec.terminationGracePeriodSeconds, 30);
  assert.is(d.spec.template.spec.containers[0]!.imagePullPolicy, 'IfNotPresent');
  assert.equal(d.spec.template.spec.containers[0]!.ports, [{ containerPort: 80, protocol: 'TCP' }]);
});

test('Deployment: set values are kept, Recreate gets no rollingUpdate, a partial rollingUpdate is completed', () => {
  const base = { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' } };
  const recreate = applyDefaults(parsed({
    ...base, spec: { replicas: 0, revisionHistoryLimit: 2, strategy: { type: 'Recreate' }, selector: { matchLabels: { app: 'web' } }, template },
  })) as unknown as { spec: Record<string, unknown> };
  assert.is(recreate.spec.replicas, 0);
  assert.is(recreate.spec.revisionHistoryLimit, 2);
  assert.equal(recreate.spec.strategy, { type: 'Recreate' });
  const partial = applyDefaults(parsed({
    ...base, spec: { strategy: { rollingUpdate: { maxSurge: 2 } }, selector: { matchLabels: { app: 'web' } }, template },
  })) as unknown as { spec: Record<string, unknown> };
  assert.equal(partial.spec.strategy, { type: 'RollingUpdate', rollingUpdate: { maxSurge: 2, maxUnavailable: '25%' } });
});

test('ReplicaSet, DaemonSet, StatefulSet, Job and HPA defaults', () => {
  const selector = { matchLabels: { app: 'web' } };
  const rs = applyDefaults(parsed({ apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'r' }, spec: { selector, template } })) as unknown as { spec: Record<string, unknown> };
  assert.is(rs.spec.replicas, 1);
  const ds = applyDefaults(parsed({ apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'd' }, spec: { selector, template } })) as unknown as { spec: Record<string, unknown> };
  assert.equal(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
  const sts = applyDefaults(parsed({ apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 's' }, spec: { selector, template } })) as unknown as { spec: Record<string, unknown> };
  assert.is(sts.spec.replicas, 1);
  assert.is(sts.spec.podManagementPolicy, 'OrderedReady');
  assert.equal(sts.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { partition: 0 } });
  const job = applyDefaults(parsed({
    apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'j' },
    spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'a', image: 'x:1' }] } } },
  })) as unknown as { spec: Record<string, unknown> & { template: { spec: Record<string, unknown> } } };
  assert.equal([job.spec.parallelism, job.spec.completions, job.spec.backoffLimit, job.spec.completionMode, job.spec.suspend], [1, 1, 6, 'NonIndexed', false]);
  assert.is(job.spec.template.spec.restartPolicy, 'Never');
  const hpa = applyDefaults(parsed({
    apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'h' },
    spec: { scaleTargetRef: { kind: 'Deployment', name: 'web' }, maxReplicas: 4 },
  })) as unknown as { spec: Record<string, unknown> };
  assert.is(hpa.spec.minReplicas, 1);
  assert.equal(hpa.spec.metrics, [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }]);
});

test('Service defaults: ClusterIP, TCP, targetPort = port', () => {
  const svc = applyDefaults(parsed({
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80 }, { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 }] },
  })) as unknown as { metadata: { namespace: string }; spec: Record<string, unknown> };
  assert.is(svc.metadata.namespace, 'default');
  assert.is(svc.spec.type, 'ClusterIP');
  assert.equal(svc.spec.ports, [
    { name: 'http', port: 80, protocol: 'TCP', targetPort: 80 },
    { name: 'dns', port: 53, protocol: 'UDP', targetPort: 5353 },
  ]);
  const bare = applyDefaults(parsed({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'x' } })) as unknown as { spec: Record<string, unknown> };
  assert.is(bare.spec.type, 'ClusterIP');
});

test('Secret type defaults to Opaque; ConfigMap is left alone apart from its namespace', () => {
  const s = applyDefaults(parsed({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, stringData: { a: 'b' } }));
  assert.is(s.type, 'Opaque');
  const cm = parsed({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data: { a: 'b' } });
  assert.equal(applyDefaults(cm), { ...cm, metadata: { name: 'c', namespace: 'default' } });
});

test('applyDefaults is idempotent', () => {
  const d = applyDefaults(parsed({
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' }, spec: { selector: { matchLabels: { app: 'web' } }, template },
  }));
  assert.equal(applyDefaults(d), d);
});

// ---- specChanged ---------------------------------------------------------------------------------------

const dep = (): KubeObject => parsed({
  apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', labels: { a: 'b' }, resourceVersion: '1', generation: 1 },
  spec: { replicas: 2, selector: { matchLabels: { app: 'web' } }, template },
});

test('specChanged: spec edits bump the generation', () => {
  const after = dep();
  (after.spec as { replicas: number }).replicas = 3;
  assert.ok(specChanged(dep(), after));
  const image = dep();
  ((image.spec as typeof template & { template: typeof template }).template.spec.containers[0]!).image = 'nginx:2';
  assert.ok(specChanged(dep(), image));
});

test('specChanged: metadata, status and key order do not', () => {
  const after = dep();
  after.metadata = { ...after.metadata, labels: { a: 'c' }, resourceVersion: '9', annotations: { x: 'y' } };
  after.status = { replicas: 2, readyReplicas: 2 };
  assert.not.ok(specChanged(dep(), after));
  const reordered = dep();
  const spec = reordered.spec as Record<string, unknown>;
  reordered.spec = Object.fromEntries(Object.entries(spec).reverse());
  assert.not.ok(specChanged(dep(), reordered));
});

test('specChanged: ConfigMap and Secret data count as their spec', () => {
  const cm = (data: Record<string, string>): KubeObject => parsed({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c' }, data });
  assert.ok(specChanged(cm({ a: '1' }), cm({ a: '2' })));
  assert.ok(specChanged(cm({ a: '1' }), cm({ a: '1', b: '2' })));
  assert.not.ok(specChanged(cm({ a: '1', b: '2' }), cm({ b: '2', a: '1' })));
  const secret = (data: Record<string, string>): KubeObject => parsed({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 's' }, data });
  assert.ok(specChanged(secret({ p: 'YQ==' }), secret({ p: 'Yg==' })));
  const labelled = secret({ p: 'YQ==' });
  labelled.metadata.labels = { x: 'y' };
  assert.not.ok(specChanged(secret({ p: 'YQ==' }), labelled));
});

test.run();
