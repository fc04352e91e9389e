import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyDefaults, formatPath, kindSchemas, validateObject, type Service } from '../../api-types/index.js';

type Json = Record<string, unknown>;

// ---- one valid manifest per kind ------------------------------------------------------------------------

const podSpec = (): Json => ({
  containers: [{
    name: 'web',
    image: 'nginx:1.27',
    ports: [{ name: 'http', containerPort: 80 }],
    resources: { requests: { cpu: '250m', memory: '64Mi' }, limits: { cpu: 1, memory: '128Mi', 'nvidia.com/gpu': 1 } },
    env: [{ name: 'MODE', value: 'prod' }, { name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
    volumeMounts: [{ name: 'cache', mountPath: '/cache' }],
    livenessProbe: { httpGet: { path: '/healthz', port: 'http' }, periodSeconds: 5 },
    readinessProbe: { tcpSocket: { port: 80 } },
  }],
  volumes: [{ name: 'cache', emptyDir: { sizeLimit: '1Gi' } }],
  nodeSelector: { 'kubernetes.io/arch': 'arm64' },
  tolerations: [{ key: 'gpu', operator: 'Exists', effect: 'NoSchedule' }],
});

const template = (): Json => ({ metadata: { labels: { app: 'web' } }, spec: podSpec() });

const valid: Record<string, () => Json> = {
  Namespace: () => ({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'prod' } }),
  Node: () => ({
    apiVersion: 'v1', kind: 'Node',
    metadata: { name: 'gpu-box.lan', labels: { 'kubernetes.io/arch': 'amd64', 'flotilla.io/gpu.count': '2' } },
    spec: { taints: [{ key: 'gpu', effect: 'NoSchedule' }] },
    status: {
      capacity: { cpu: '16', memory: '64Gi', pods: 110, 'nvidia.com/gpu': 2 },
      allocatable: { cpu: '15500m', memory: '62Gi', pods: '110', 'nvidia.com/gpu': '2' },
      conditions: [{ type: 'Ready', status: 'True', lastHeartbeatTime: '2024-05-01T10:00:00Z' }],
      addresses: [{ type: 'InternalIP', address: '192.168.1.20' }],
      nodeInfo: { architecture: 'amd64', operatingSystem: 'linux' },
      gpus: [
        { index: 0, uuid: 'GPU-aaaa', vendor: 'nvidia', model: 'NVIDIA A100-SXM4-40GB', memory: '40Gi', health: 'Healthy', busId: '0000:01:00.0' },
        { index: 1, uuid: 'GPU-bbbb', vendor: 'nvidia', model: 'NVIDIA RTX 4090', memory: '24Gi', health: 'Unhealthy' },
      ],
      hardware: { cpuModel: 'AMD EPYC', temperatureC: 54.5, throttled: false },
    },
  }),
  Pod: () => ({
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name: 'web-0', namespace: 'default', labels: { 'app.kubernetes.io/name': 'web' },
      annotations: { 'flotilla.io/gpu-memory-min': '16Gi', 'flotilla.io/gpu-model': 'A100|H100', 'flotilla.io/placement': 'spread' },
    },
    spec: podSpec(),
  }),
  Binding: () => ({
    apiVersion: 'v1', kind: 'Binding',
    metadata: { name: 'web-0', annotations: { 'flotilla.io/assigned-gpus': 'GPU-aaaa' } },
    target: { apiVersion: 'v1', kind: 'Node', name: 'gpu-box.lan' },
  }),
  Service: () => ({
    apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' },
    spec: { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'http' }, { name: 'https', port: 443, targetPort: 8443 }] },
  }),
  Endpoints: () => ({
    apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'web', namespace: 'default' },
    subsets: [{
      addresses: [{ ip: '10.42.1.5', nodeName: 'pi-1', targetRef: { kind: 'Pod', name: 'web-a', namespace: 'default', uid: 'u1' } }],
      notReadyAddresses: [{ ip: '10.42.2.7', hostname: 'web-b' }],
      ports: [{ name: 'http', port: 8080, protocol: 'TCP', appProtocol: 'http' }],
    }],
  }),
  EndpointSlice: () => ({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: 'web-x7k2p', namespace: 'default', labels: { 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.flotilla.io' } },
    addressType: 'IPv4',
    endpoints: [{
      addresses: ['10.42.1.5'], conditions: { ready: true, serving: true, terminating: false }, nodeName: 'pi-1', zone: 'shelf-a',
      targetRef: { kind: 'Pod', name: 'web-a', namespace: 'default', uid: 'u1' },
    }],
    ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
  }),
  ConfigMap: () => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'web.conf' }, data: { 'nginx.conf': 'x', A_B: 'y' }, binaryData: { 'logo.png': 'iVBORw0KGgo=' } }),
  Secret: () => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'creds' }, type: 'Opaque', data: { password: 'c2VjcmV0' }, stringData: { user: 'admin' } }),
  Role: () => ({
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: 'pod-reader', namespace: 'default' },
    rules: [{ apiGroups: [''], resources: ['pods', 'pods/log'], resourceNames: ['web-0'], verbs: ['get', 'list'] }],
  }),
  ClusterRole: () => ({
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name: 'monitoring', labels: { 'rbac.authorization.k8s.io/aggregate-to-view': 'true' } },
    rules: [{ nonResourceURLs: ['/metrics', '/healthz/*'], verbs: ['get'] }],
    aggregationRule: { clusterRoleSelectors: [{ matchLabels: { 'example.com/aggregate-to-monitoring': 'true' } }] },
  }),
  RoleBinding: () => ({
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'read-pods', namespace: 'default' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
    subjects: [{ kind: 'User', apiGroup: 'rbac.authorization.k8s.io', name: 'jane' }, { kind: 'ServiceAccount', name: 'builder', namespace: 'default' }],
  }),
  ClusterRoleBinding: () => ({
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding', metadata: { name: 'ops-view' },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
    subjects: [{ kind: 'Group', apiGroup: 'rbac.authorization.k8s.io', name: 'ops' }],
  }),
  ServiceAccount: () => ({ apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'builder' }, automountServiceAccountToken: false, imagePullSecrets: [{ name: 'regcred' }] }),
  Event: () => ({
    apiVersion: 'v1', kind: 'Event', metadata: { name: 'web-0.17a2', namespace: 'default' },
    involvedObject: { kind: 'Pod', name: 'web-0', namespace: 'default' }, reason: 'Scheduled', message: 'assigned', type: 'Normal',
    count: 1, firstTimestamp: '2024-05-01T10:00:00Z', lastTimestamp: '2024-05-01T10:00:00.123456Z', source: { component: 'scheduler' },
  }),
  Lease: () => ({
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'gpu-box.lan', namespace: 'flotilla-node-lease' },
    spec: { holderIdentity: 'gpu-box.lan', leaseDurationSeconds: 40, renewTime: '2024-05-01T10:00:00.000000Z' },
  }),
  Deployment: () => ({
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web' },
    spec: {
      replicas: 3, selector: { matchLabels: { app: 'web' } }, template: template(),
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 1, maxUnavailable: '25%' } },
    },
    status: { observedGeneration: 1, replicas: 3, readyReplicas: 2, conditions: [{ type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable' }] },
  }),
  ReplicaSet: () => ({
    apiVersion: 'apps/v1', kind: 'ReplicaSet',
    metadata: { name: 'web-5d8f', ownerReferences: [{ apiVersion: 'apps/v1', kind: 'Deployment', name: 'web', uid: 'u1', controller: true }] },
    spec: { replicas: 2, selector: { matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'www'] }] }, template: template() },
    status: { replicas: 2 },
  }),
  DaemonSet: () => ({
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'node-exporter' },
    spec: { selector: { matchLabels: { app: 'web' } }, template: template(), updateStrategy: { type: 'OnDelete' } },
  }),
  StatefulSet: () => ({
    apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db' },
    spec: {
      replicas: 3, serviceName: 'db', selector: { matchLabels: { app: 'web' } }, template: template(),
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Gi' } } } }],
    },
  }),
  Job: () => ({
    apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'train' },
    spec: { backoffLimit: 2, template: { spec: { ...podSpec(), restartPolicy: 'Never' } } },
  }),
  CronJob: () => ({
    apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'nightly-backup' },
    spec: {
      schedule: '30 2 * * MON-FRI', timeZone: 'Europe/Berlin', concurrencyPolicy: 'Forbid', startingDeadlineSeconds: 300,
      successfulJobsHistoryLimit: 5, failedJobsHistoryLimit: 2, suspend: false,
      jobTemplate: { metadata: { labels: { app: 'backup' } }, spec: { backoffLimit: 1, template: { spec: { ...podSpec(), restartPolicy: 'OnFailure' } } } },
    },
  }),
  // NVIDIA's own example, with the optional parts Kubernetes documents.
  RuntimeClass: () => ({
    apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'nvidia' }, handler: 'nvidia',
    overhead: { podFixed: { cpu: '250m', memory: '120Mi' } },
    scheduling: { nodeSelector: { 'flotilla.io/gpu.vendor': 'nvidia' }, tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] },
  }),
  PriorityClass: () => ({
    apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: 'high-priority' },
    value: 1000000, globalDefault: false, description: 'This priority class should be used for XYZ service pods only.', preemptionPolicy: 'Never',
  }),
  // Kubernetes' Ingress documentation examples, merged: TLS, host and wildcard rules, every pathType, a default backend.
  Ingress: () => ({
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'minimal-ingress', annotations: { 'flotilla.io/ssl-redirect': 'false' } },
    spec: {
      ingressClassName: 'flotilla',
      defaultBackend: { service: { name: 'default-http', port: { name: 'http' } } },
      tls: [{ hosts: ['https-example.foo.com', '*.foo.com'], secretName: 'testsecret-tls' }],
      rules: [
        { host: 'foo.bar.com', http: { paths: [{ path: '/bar', pathType: 'Prefix', backend: { service: { name: 'service1', port: { number: 80 } } } }] } },
        { host: '*.foo.com', http: { paths: [{ path: '/foo', pathType: 'Exact', backend: { service: { name: 'service2', port: { number: 80 } } } }] } },
        { http: { paths: [
          { path: '/icons', pathType: 'ImplementationSpecific', backend: { resource: { apiGroup: 'k8s.example.com', kind: 'StorageBucket', name: 'icon-assets' } } },
          { pathType: 'ImplementationSpecific', backend: { service: { name: 'service3', port: { number: 8080 } } } },
        ] } },
      ],
    },
    status: { loadBalancer: { ingress: [{ ip: '192.168.1.20' }] } },
  }),
  IngressClass: () => ({
    apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass',
    metadata: { name: 'external-lb', annotations: { 'ingressclass.kubernetes.io/is-default-class': 'true' } },
    spec: { controller: 'example.com/ingress-controller', parameters: { apiGroup: 'k8s.example.com', kind: 'IngressParameters', name: 'external-lb', scope: 'Cluster' } },
  }),
  AddressPool: () => ({
    apiVersion: 'flotilla.io/v1', kind: 'AddressPool', metadata: { name: 'lan' },
    spec: { addresses: ['192.168.1.240-192.168.1.250', 'fd00:1::/120'], autoAssign: true },
  }),
  PersistentVolume: () => ({
    apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name: 'data-1' },
    spec: {
      capacity: { storage: '5Gi' }, accessModes: ['ReadWriteOnce'], persistentVolumeReclaimPolicy: 'Retain', storageClassName: 'manual',
      volumeMode: 'Filesystem', local: { path: '/mnt/disks/ssd1' },
      nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['pi-1'] }] }] } },
    },
    status: { phase: 'Available' },
  }),
  PersistentVolumeClaim: () => ({
    apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name: 'data' },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } }, storageClassName: 'manual', volumeMode: 'Filesystem' },
    status: { phase: 'Pending' },
  }),
  StorageClass: () => ({
    apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'fast' },
    provisioner: 'flotilla.io/local-path', reclaimPolicy: 'Retain', volumeBindingMode: 'WaitForFirstConsumer', allowVolumeExpansion: true,
  }),
  HorizontalPodAutoscaler: () => ({
    apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'web' },
    spec: {
      scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, minReplicas: 2, maxReplicas: 10,
      metrics: [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 70 } } }],
    },
  }),
};

test('every kind with a schema has a valid manifest here', () => {
  assert.equal(Object.keys(valid).sort(), Object.keys(kindSchemas).sort());
});

for (const [kind, build] of Object.entries(valid)) {
  test(`a valid ${kind} passes and comes back unchanged`, () => {
    const input = build();
    const r = validateObject(input);
    if (!r.ok) return assert.unreachable(JSON.stringify(r.issues));
    assert.is(r.resource.kind, kind);
    assert.equal(JSON.parse(JSON.stringify(r.object)), input);
  });
}

for (const [kind, build] of Object.entries(valid)) {
  test(`${kind}: unknown fields are refused at the top, in metadata and in every nested object`, () => {
    const objectPaths: (string | number)[][] = [];
    const walk = (v: unknown, p: (string | number)[]): void => {
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
      else if (v !== null && typeof v === 'object') {
        // Maps with free-form keys (labels, data, resource lists, selectors' matchLabels) take any key.
        const last = p[p.length - 1];
        const freeForm = ['labels', 'annotations', 'data', 'binaryData', 'stringData', 'limits', 'requests', 'capacity',
          'allocatable', 'matchLabels', 'nodeSelector', 'selector', 'podFixed', 'overhead'].includes(String(last)) && !(kind !== 'Service' && last === 'selector');
        if (!freeForm) objectPaths.push(p);
        for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
      }
    };
    walk(build(), []);
    assert.ok(objectPaths.length >= 2);
    for (const p of objectPaths) {
      const r = validateObject(mutate(build, [...p, 'surplus'], 1));
      if (r.ok) return assert.unreachable(`accepted surplus at ${formatPath(p)}`);
      assert.equal(r.issues, [{ path: formatPath([...p, 'surplus']), message: 'unknown field "surplus"' }]);
    }
  });
}

for (const [kind, build] of Object.entries(valid)) {
  test(`${kind}: the defaulted object validates again and defaulting twice changes nothing`, () => {
    const r = validateObject(build());
    if (!r.ok) return assert.unreachable(JSON.stringify(r.issues));
    const defaulted = applyDefaults(r.object);
    const again = validateObject(JSON.parse(JSON.stringify(defaulted)));
    if (!again.ok) return assert.unreachable(JSON.stringify(again.issues));
    assert.equal(applyDefaults(defaulted), defaulted);
    if (r.resource.namespaced && kind !== 'Binding') assert.type(defaulted.metadata.namespace, 'string');
  });
}

test('objects the server sent back (server-set metadata and status) validate again', () => {
  const pod = valid.Pod!();
  pod.metadata = {
    ...(pod.metadata as Json), uid: '6f1c', resourceVersion: '42', generation: 3, creationTimestamp: '2024-05-01T10:00:00Z',
    deletionTimestamp: '2024-05-01T11:00:00+02:00', deletionGracePeriodSeconds: 30, finalizers: ['flotilla.io/gpu'],
  };
  pod.status = {
    phase: 'Running', podIP: '10.42.0.5', hostIP: '192.168.1.20', startTime: '2024-05-01T10:00:01Z', qosClass: 'Burstable',
    conditions: [{ type: 'Ready', status: 'True', lastProbeTime: null }],
    containerStatuses: [
      { name: 'web', ready: true, restartCount: 2, image: 'nginx:1.27', state: { running: { startedAt: '2024-05-01T10:00:02Z' } },
        lastState: { terminated: { exitCode: 137, reason: 'OOMKilled', finishedAt: '2024-05-01T10:00:01Z' } } },
      { name: 'side', ready: false, restartCount: 0, image: 'busybox', state: { waiting: { reason: 'ImagePullBackOff', message: 'pull failed' } } },
    ],
  };
  const r = validateObject(pod);
  if (!r.ok) return assert.unreachable(JSON.stringify(r.issues));
});

test('kubectl dry-run output (creationTimestamp: null) is accepted and the null becomes unset', () => {
  const d = valid.Deployment!();
  (d.metadata as Json).creationTimestamp = null;
  ((d.spec as Json).template as Json).metadata = { creationTimestamp: null, labels: { app: 'web' } };
  const r = validateObject(d);
  if (!r.ok) return assert.unreachable(JSON.stringify(r.issues));
  assert.is(JSON.parse(JSON.stringify(r.object)).metadata.creationTimestamp, undefined);
});

// ---- single faults: each must give exactly one issue at exactly this path --------------------------------

function mutate(build: () => Json, path: (string | number)[], value: unknown): Json {
  const o = build();
  let at: Record<string | number, unknown> = o;
  for (const key of path.slice(0, -1)) at = at[key] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (value === undefined) delete at[last];
  else at[last] = value;
  return o;
}

const P = valid.Pod!;
const D = valid.Deployment!;
const b64 = (text: string) => Buffer.from(text).toString('base64');
const dockerSecret = (type: string, content: Json): Json => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name: 'regcred' }, type, ...content });
const C0 = ['spec', 'containers', 0];
const T0 = ['spec', 'template', 'spec', 'containers', 0];
const IR0 = ['spec', 'rules', 0, 'http', 'paths', 0];

// [case, manifest, expected path, expected message pattern]
const faults: [string, Json, string, RegExp][] = [
  // unknown fields at several depths
  ['unknown top-level field', mutate(P, ['specs'], {}), 'specs', /unknown field "specs"/],
  ['unknown metadata field', mutate(P, ['metadata', 'label'], {}), 'metadata.label', /unknown field "label"/],
  ['unknown pod spec field', mutate(P, ['spec', 'restartPolicyy'], 'Always'), 'spec.restartPolicyy', /unknown field/],
  ['unknown container field', mutate(P, [...C0, 'imagePullPolicyy'], 'Always'), 'spec.containers[0].imagePullPolicyy', /unknown field/],
  ['unknown resources field', mutate(P, [...C0, 'resources', 'limit'], {}), 'spec.containers[0].resources.limit', /unknown field "limit"/],
  ['unknown probe field', mutate(P, [...C0, 'livenessProbe', 'httpGet', 'paht'], '/'), 'spec.containers[0].livenessProbe.httpGet.paht', /unknown field/],
  ['unknown template container field', mutate(D, [...T0, 'volumeMount'], []), 'spec.template.spec.containers[0].volumeMount', /unknown field/],
  ['unknown template metadata field', mutate(D, ['spec', 'template', 'metadata', 'label'], {}), 'spec.template.metadata.label', /unknown field/],
  ['unknown status field', mutate(D, ['status', 'ready'], 1), 'status.ready', /unknown field/],
  ['unknown GPU field', mutate(valid.Node!, ['status', 'gpus', 0, 'vram'], '40Gi'), 'status.gpus[0].vram', /unknown field/],
  ['unknown hardware field', mutate(valid.Node!, ['status', 'hardware', 'fan'], 1), 'status.hardware.fan', /unknown field/],
  ['unknown ConfigMap field', mutate(valid.ConfigMap!, ['spec'], {}), 'spec', /unknown field/],
  ['unknown selector field', mutate(D, ['spec', 'selector', 'matchLabel'], {}), 'spec.selector.matchLabel', /unknown field/],
  // quantities
  ['bad memory limit', mutate(D, [...T0, 'resources', 'limits', 'memory'], '1Gb'), 'spec.template.spec.containers[0].resources.limits.memory', /invalid quantity "1Gb"/],
  ['bad cpu request', mutate(P, [...C0, 'resources', 'requests', 'cpu'], 'lots'), 'spec.containers[0].resources.requests.cpu', /invalid quantity "lots"/],
  ['quantity of wrong type', mutate(P, [...C0, 'resources', 'requests', 'cpu'], true), 'spec.containers[0].resources.requests.cpu', /quantity/],
  ['negative request', mutate(P, [...C0, 'resources', 'requests', 'memory'], '-1Mi'), 'spec.containers[0].resources.requests.memory', /greater than or equal to 0/],
  ['request above limit', mutate(P, [...C0, 'resources', 'requests', 'cpu'], '2'), 'spec.containers[0].resources.requests.cpu', /less than or equal to the cpu limit/],
  ['fractional GPU', mutate(P, [...C0, 'resources', 'limits', 'nvidia.com/gpu'], '500m'), 'spec.containers[0].resources.limits["nvidia.com/gpu"]', /whole number of GPUs/],
  ['GPU request different from limit', mutate(P, [...C0, 'resources', 'requests', 'nvidia.com/gpu'], 2), 'spec.containers[0].resources.requests["nvidia.com/gpu"]', /must equal the limit/],
  ['bad resource name', mutate(P, [...C0, 'resources', 'limits', 'bad name'], 1), 'spec.containers[0].resources.limits["bad name"]', /invalid resource name/],
  ['bad node capacity', mutate(valid.Node!, ['status', 'capacity', 'memory'], '64 Gi'), 'status.capacity.memory', /invalid quantity "64 Gi"/],
  ['bad GPU memory', mutate(valid.Node!, ['status', 'gpus', 1, 'memory'], '24GB'), 'status.gpus[1].memory', /invalid quantity/],
  ['bad emptyDir size', mutate(P, ['spec', 'volumes', 0, 'emptyDir', 'sizeLimit'], 'big'), 'spec.volumes[0].emptyDir.sizeLimit', /invalid quantity "big"/],
  // names
  ['uppercase pod name', mutate(P, ['metadata', 'name'], 'Web'), 'metadata.name', /lowercase/],
  ['pod name with underscore', mutate(P, ['metadata', 'name'], 'web_0'), 'metadata.name', /lowercase/],
  ['pod name too long', mutate(P, ['metadata', 'name'], 'a'.repeat(254)), 'metadata.name', /253/],
  ['missing name', mutate(P, ['metadata', 'name'], undefined), 'metadata.name', /name or generateName is required/],
  ['namespace with a dot', mutate(valid.Namespace!, ['metadata', 'name'], 'prod.eu'), 'metadata.name', /lowercase alphanumeric characters or '-'/],
  ['service name with a dot', mutate(valid.Service!, ['metadata', 'name'], 'web.v1'), 'metadata.name', /lowercase alphanumeric characters or '-'/],
  ['service name too long', mutate(valid.Service!, ['metadata', 'name'], 's'.repeat(64)), 'metadata.name', /63/],
  ['bad namespace', mutate(P, ['metadata', 'namespace'], 'Default'), 'metadata.namespace', /lowercase/],
  ['namespace on a cluster-scoped kind', mutate(valid.Node!, ['metadata', 'namespace'], 'default'), 'metadata.namespace', /cluster-scoped/],
  ['bad container name', mutate(P, [...C0, 'name'], 'Web'), 'spec.containers[0].name', /lowercase/],
  ['metadata of wrong type', mutate(P, ['metadata'], 'web'), 'metadata', /expected object/],
  // labels and annotations
  ['label key with space', mutate(P, ['metadata', 'labels', 'my app'], 'x'), 'metadata.labels["my app"]', /key "my app"/],
  ['label key bad prefix', mutate(P, ['metadata', 'labels', 'Flotilla.IO/x'], 'x'), 'metadata.labels["Flotilla.IO/x"]', /prefix/],
  ['label value too long', mutate(P, ['metadata', 'labels', 'app'], 'v'.repeat(64)), 'metadata.labels.app', /63 characters/],
  ['label value with slash', mutate(P, ['metadata', 'labels', 'app'], 'a/b'), 'metadata.labels.app', /value "a\/b"/],
  ['label value not a string', mutate(P, ['metadata', 'labels', 'app'], 1), 'metadata.labels.app', /expected string/],
  ['template label value', mutate(D, ['spec', 'template', 'metadata', 'labels', 'tier'], '-x'), 'spec.template.metadata.labels.tier', /value "-x"/],
  ['annotation key', mutate(P, ['metadata', 'annotations', '/x'], 'y'), 'metadata.annotations["/x"]', /prefix/],
  ['bad gpu-model pattern', mutate(P, ['metadata', 'annotations', 'flotilla.io/gpu-model'], 'A100('), 'metadata.annotations["flotilla.io/gpu-model"]', /unsupported pattern "A100\(": groups/],
  ['backtracking gpu-model pattern', mutate(P, ['metadata', 'annotations', 'flotilla.io/gpu-model'], '(a+)+$'), 'metadata.annotations["flotilla.io/gpu-model"]', /unsupported pattern "\(a\+\)\+\$"/],
  ['gpu-model pattern too long', mutate(P, ['metadata', 'annotations', 'flotilla.io/gpu-model'], 'a'.repeat(129)), 'metadata.annotations["flotilla.io/gpu-model"]', /no more than 128 characters \(got 129\)/],
  // node-supplied strings are bounded
  ['GPU model too long', mutate(valid.Node!, ['status', 'gpus', 0, 'model'], 'A'.repeat(257)), 'status.gpus[0].model', /no more than 256 characters \(got 257\)/],
  ['GPU driver too long', mutate(valid.Node!, ['status', 'gpus', 1, 'driver'], '5'.repeat(300)), 'status.gpus[1].driver', /no more than 256 characters/],
  ['GPU uuid too long', mutate(valid.Node!, ['status', 'gpus', 0, 'uuid'], 'G'.repeat(257)), 'status.gpus[0].uuid', /no more than 256 characters/],
  ['GPU vendor too long', mutate(valid.Node!, ['status', 'gpus', 0, 'vendor'], 'n'.repeat(257)), 'status.gpus[0].vendor', /no more than 256 characters/],
  ['kernel version too long', mutate(valid.Node!, ['status', 'nodeInfo', 'kernelVersion'], '6'.repeat(257)), 'status.nodeInfo.kernelVersion', /no more than 256 characters/],
  ['architecture too long', mutate(valid.Node!, ['status', 'nodeInfo', 'architecture'], 'a'.repeat(257)), 'status.nodeInfo.architecture', /no more than 256 characters/],
  ['CPU model too long', mutate(valid.Node!, ['status', 'hardware', 'cpuModel'], 'c'.repeat(257)), 'status.hardware.cpuModel', /no more than 256 characters/],
  ['taint key not a label key', mutate(valid.Node!, ['spec', 'taints', 0, 'key'], 'has space'), 'spec.taints[0].key', /key "has space"/],
  ['taint value too long', mutate(valid.Node!, ['spec', 'taints', 0, 'value'], 'v'.repeat(64)), 'spec.taints[0].value', /63 characters/],
  ['bad gpu-memory-min', mutate(P, ['metadata', 'annotations', 'flotilla.io/gpu-memory-min'], '16 GiB'), 'metadata.annotations["flotilla.io/gpu-memory-min"]', /invalid quantity/],
  ['bad gpu-sharing', mutate(P, ['metadata', 'annotations', 'flotilla.io/gpu-sharing'], 'yes'), 'metadata.annotations["flotilla.io/gpu-sharing"]', /"shared"/],
  ['bad placement', mutate(P, ['metadata', 'annotations', 'flotilla.io/placement'], 'pack'), 'metadata.annotations["flotilla.io/placement"]', /binpack/],
  ['bad image-arch', mutate(D, ['spec', 'template', 'metadata', 'annotations'], { 'flotilla.io/image-arch': 'amd64, arm64' }), 'spec.template.metadata.annotations["flotilla.io/image-arch"]', /comma-separated/],
  // pod structure
  ['duplicate container name', mutate(P, ['spec', 'containers', 1], { name: 'web', image: 'busybox' }), 'spec.containers[1].name', /duplicate container name "web"/],
  ['init container clashes with container', mutate(P, ['spec', 'initContainers'], [{ name: 'web', image: 'busybox' }]), 'spec.containers[0].name', /duplicate container name/],
  ['no containers', mutate(P, ['spec', 'containers'], []), 'spec.containers', /at least one container/],
  ['missing containers', mutate(P, ['spec', 'containers'], undefined), 'spec.containers', /required/],
  ['missing image', mutate(P, [...C0, 'image'], undefined), 'spec.containers[0].image', /required/],
  ['empty image', mutate(P, [...C0, 'image'], ''), 'spec.containers[0].image', /empty/],
  ['port 0', mutate(P, [...C0, 'ports', 0, 'containerPort'], 0), 'spec.containers[0].ports[0].containerPort', /1 and 65535/],
  ['port 65536', mutate(P, [...C0, 'ports', 0, 'containerPort'], 65536), 'spec.containers[0].ports[0].containerPort', /1 and 65535/],
  ['port as string', mutate(P, [...C0, 'ports', 0, 'containerPort'], '80'), 'spec.containers[0].ports[0].containerPort', /expected number/],
  ['fractional port', mutate(P, [...C0, 'ports', 0, 'hostPort'], 80.5), 'spec.containers[0].ports[0].hostPort', /int/],
  ['hostPort out of range', mutate(P, [...C0, 'ports', 0, 'hostPort'], 65536), 'spec.containers[0].ports[0].hostPort', /0 and 65535/],
  ['negative hostPort', mutate(P, [...C0, 'ports', 0, 'hostPort'], -1), 'spec.containers[0].ports[0].hostPort', /0 and 65535/],
  ['bad protocol', mutate(P, [...C0, 'ports', 0, 'protocol'], 'tcp'), 'spec.containers[0].ports[0].protocol', /TCP/],
  ['bad port name', mutate(P, [...C0, 'ports', 0, 'name'], 'HTTP'), 'spec.containers[0].ports[0].name', /lowercase/],
  ['bad restartPolicy', mutate(P, ['spec', 'restartPolicy'], 'Sometimes'), 'spec.restartPolicy', /Always/],
  ['bad pull policy', mutate(P, [...C0, 'imagePullPolicy'], 'Maybe'), 'spec.containers[0].imagePullPolicy', /IfNotPresent/],
  ['probe without handler', mutate(P, [...C0, 'readinessProbe'], { periodSeconds: 5 }), 'spec.containers[0].readinessProbe', /exactly one handler/],
  ['probe with two handlers', mutate(P, [...C0, 'readinessProbe', 'exec'], { command: ['true'] }), 'spec.containers[0].readinessProbe', /exactly one handler/],
  ['probe period 0', mutate(P, [...C0, 'livenessProbe', 'periodSeconds'], 0), 'spec.containers[0].livenessProbe.periodSeconds', /greater than or equal to 1/],
  ['probe named port invalid', mutate(P, [...C0, 'livenessProbe', 'httpGet', 'port'], 'Not A Name'), 'spec.containers[0].livenessProbe.httpGet.port', /port name "Not A Name"/],
  ['env value and valueFrom', mutate(P, [...C0, 'env', 1, 'value'], 'x'), 'spec.containers[0].env[1].valueFrom', /together with value/],
  ['env without name', mutate(P, [...C0, 'env', 0, 'name'], ''), 'spec.containers[0].env[0].name', /empty/],
  ['mount of a missing volume', mutate(P, [...C0, 'volumeMounts', 0, 'name'], 'data'), 'spec.containers[0].volumeMounts[0].name', /no volume named "data"/],
  ['volume without source', mutate(P, ['spec', 'volumes', 0], { name: 'cache' }), 'spec.volumes[0]', /exactly one volume source/],
  ['duplicate volume', mutate(P, ['spec', 'volumes', 1], { name: 'cache', hostPath: { path: '/tmp' } }), 'spec.volumes[1].name', /duplicate volume name/],
  ['negative grace period', mutate(P, ['spec', 'terminationGracePeriodSeconds'], -1), 'spec.terminationGracePeriodSeconds', /greater than or equal to 0/],
  ['bad nodeSelector value', mutate(P, ['spec', 'nodeSelector', 'kubernetes.io/arch'], 'arm 64'), 'spec.nodeSelector["kubernetes.io/arch"]', /value/],
  ['bad toleration effect', mutate(P, ['spec', 'tolerations', 0, 'effect'], 'Never'), 'spec.tolerations[0].effect', /NoSchedule/],
  ['two container states', mutate(P, ['status'], { containerStatuses: [{ name: 'web', ready: true, restartCount: 0, image: 'x', state: { running: {}, waiting: {} } }] }), 'status.containerStatuses[0].state', /at most one/],
  ['bad phase', mutate(P, ['status'], { phase: 'Done' }), 'status.phase', /Pending/],
  ['bad time', mutate(P, ['status'], { startTime: 'yesterday' }), 'status.startTime', /RFC 3339/],
  // workloads
  ['negative replicas', mutate(D, ['spec', 'replicas'], -1), 'spec.replicas', /greater than or equal to 0/],
  ['fractional replicas', mutate(D, ['spec', 'replicas'], 1.5), 'spec.replicas', /int/],
  ['replicas as string', mutate(D, ['spec', 'replicas'], '3'), 'spec.replicas', /expected number/],
  // Kubernetes decodes replicas into an int32: 2^31 is refused, not 2 billion pods to create.
  ['replicas beyond int32', mutate(D, ['spec', 'replicas'], 2 ** 31), 'spec.replicas', /must fit in 32 bits/],
  ['selector does not match template', mutate(D, ['spec', 'selector', 'matchLabels', 'app'], 'api'), 'spec.template.metadata.labels', /does not match/],
  ['empty selector', mutate(D, ['spec', 'selector'], {}), 'spec.selector', /must not be empty/],
  ['missing selector', mutate(D, ['spec', 'selector'], undefined), 'spec.selector', /required/],
  ['missing template', mutate(D, ['spec', 'template'], undefined), 'spec.template', /required/],
  ['bad selector operator', mutate(valid.ReplicaSet!, ['spec', 'selector', 'matchExpressions', 0, 'operator'], 'Equals'), 'spec.selector.matchExpressions[0].operator', /In/],
  ['In without values', mutate(valid.ReplicaSet!, ['spec', 'selector', 'matchExpressions', 0, 'values'], []), 'spec.selector.matchExpressions[0].values', /non-empty/],
  ['Deployment restartPolicy Never', mutate(D, ['spec', 'template', 'spec', 'restartPolicy'], 'Never'), 'spec.template.spec.restartPolicy', /must be Always/],
  ['Recreate with rollingUpdate', mutate(D, ['spec', 'strategy', 'type'], 'Recreate'), 'spec.strategy.rollingUpdate', /Recreate/],
  ['bad strategy type', mutate(D, ['spec', 'strategy', 'type'], 'BlueGreen'), 'spec.strategy.type', /RollingUpdate/],
  ['maxSurge of wrong type', mutate(D, ['spec', 'strategy', 'rollingUpdate', 'maxSurge'], true), 'spec.strategy.rollingUpdate.maxSurge', /integer or a string/],
  ['Job restartPolicy Always', mutate(valid.Job!, ['spec', 'template', 'spec', 'restartPolicy'], 'Always'), 'spec.template.spec.restartPolicy', /OnFailure or Never/],
  ['Job without restartPolicy', mutate(valid.Job!, ['spec', 'template', 'spec', 'restartPolicy'], undefined), 'spec.template.spec.restartPolicy', /OnFailure or Never/],
  ['DaemonSet bad update strategy', mutate(valid.DaemonSet!, ['spec', 'updateStrategy', 'type'], 'Recreate'), 'spec.updateStrategy.type', /OnDelete/],
  ['StatefulSet bad claim request', mutate(valid.StatefulSet!, ['spec', 'volumeClaimTemplates', 0, 'spec', 'resources', 'requests', 'storage'], '10 GB'), 'spec.volumeClaimTemplates[0].spec.resources.requests.storage', /invalid quantity/],
  ['HPA min above max', mutate(valid.HorizontalPodAutoscaler!, ['spec', 'minReplicas'], 11), 'spec.minReplicas', /maxReplicas/],
  ['HPA metric without its source', mutate(valid.HorizontalPodAutoscaler!, ['spec', 'metrics', 0, 'type'], 'Pods'), 'spec.metrics[0].pods', /required when type is Pods/],
  ['HPA missing maxReplicas', mutate(valid.HorizontalPodAutoscaler!, ['spec', 'maxReplicas'], undefined), 'spec.maxReplicas', /required/],
  // services
  ['service port 0', mutate(valid.Service!, ['spec', 'ports', 0, 'port'], 0), 'spec.ports[0].port', /1 and 65535/],
  ['service targetPort out of range', mutate(valid.Service!, ['spec', 'ports', 1, 'targetPort'], 70000), 'spec.ports[1].targetPort', /1 and 65535/],
  ['service multi-port without name', mutate(valid.Service!, ['spec', 'ports', 1, 'name'], undefined), 'spec.ports[1].name', /more than one port/],
  ['service affinity timeout over a day', mutate(valid.Service!, ['spec', 'sessionAffinityConfig'], { clientIP: { timeoutSeconds: 86401 } }), 'spec.sessionAffinityConfig.clientIP.timeoutSeconds', /less than or equal to 86400/],
  ['service duplicate port', mutate(valid.Service!, ['spec', 'ports', 1, 'port'], 80), 'spec.ports[1].port', /duplicate port 80\/TCP/],
  ['service nodePort on ClusterIP', mutate(valid.Service!, ['spec', 'ports', 0, 'nodePort'], 30080), 'spec.ports[0].nodePort', /NodePort/],
  ['service bad type', mutate(valid.Service!, ['spec', 'type'], 'Ingress'), 'spec.type', /ClusterIP/],
  ['service selector value', mutate(valid.Service!, ['spec', 'selector', 'app'], 'web app'), 'spec.selector.app', /value/],
  // config and secrets
  ['ConfigMap bad key', mutate(valid.ConfigMap!, ['data', 'a/b'], 'x'), 'data["a/b"]', /invalid key/],
  ['ConfigMap value not a string', mutate(valid.ConfigMap!, ['data', 'port'], 80), 'data.port', /expected string/],
  ['ConfigMap binaryData not base64', mutate(valid.ConfigMap!, ['binaryData', 'logo.png'], 'not base64!'), 'binaryData["logo.png"]', /base64/],
  ['ConfigMap key in data and binaryData', mutate(valid.ConfigMap!, ['binaryData', 'A_B'], 'AA=='), 'binaryData.A_B', /duplicate/],
  ['Secret data not base64', mutate(valid.Secret!, ['data', 'password'], 'secret'), 'data.password', /base64/],
  ['dockerconfigjson Secret without its key', dockerSecret('kubernetes.io/dockerconfigjson', {}), 'data[".dockerconfigjson"]', /required field is missing/],
  ['dockerconfigjson Secret not JSON', dockerSecret('kubernetes.io/dockerconfigjson', { data: { '.dockerconfigjson': b64('{"auths": ') } }), 'data[".dockerconfigjson"]', /^Invalid value: "<secret contents redacted>": /],
  ['dockerconfigjson Secret a JSON list', dockerSecret('kubernetes.io/dockerconfigjson', { data: { '.dockerconfigjson': b64('[]') } }), 'data[".dockerconfigjson"]', /must be a JSON object/],
  ['dockerconfigjson Secret auths not a map', dockerSecret('kubernetes.io/dockerconfigjson', { stringData: { '.dockerconfigjson': '{"auths": {"reg.lan": "alice:pw"}}' } }), 'stringData[".dockerconfigjson"]', /"auths" must map each registry to an object/],
  ['dockercfg Secret without its key', dockerSecret('kubernetes.io/dockercfg', { data: { '.dockerconfigjson': b64('{}') } }), 'data[".dockercfg"]', /required field is missing/],
  ['dockercfg Secret not JSON', dockerSecret('kubernetes.io/dockercfg', { stringData: { '.dockercfg': 'reg.lan alice pw' } }), 'stringData[".dockercfg"]', /redacted/],
  // node, event, lease, binding
  ['GPU vendor uppercase', mutate(valid.Node!, ['status', 'gpus', 0, 'vendor'], 'NVIDIA'), 'status.gpus[0].vendor', /lowercase vendor/],
  ['GPU bad health', mutate(valid.Node!, ['status', 'gpus', 0, 'health'], 'OK'), 'status.gpus[0].health', /Healthy/],
  ['GPU negative index', mutate(valid.Node!, ['status', 'gpus', 0, 'index'], -1), 'status.gpus[0].index', /greater than or equal to 0/],
  ['GPU duplicate uuid', mutate(valid.Node!, ['status', 'gpus', 1, 'uuid'], 'GPU-aaaa'), 'status.gpus[1].uuid', /duplicate GPU uuid/],
  ['GPU missing uuid', mutate(valid.Node!, ['status', 'gpus', 0, 'uuid'], undefined), 'status.gpus[0].uuid', /required/],
  ['temperature as string', mutate(valid.Node!, ['status', 'hardware', 'temperatureC'], '54'), 'status.hardware.temperatureC', /expected number/],
  ['node condition status', mutate(valid.Node!, ['status', 'conditions', 0, 'status'], 'true'), 'status.conditions[0].status', /True/],
  ['node address type', mutate(valid.Node!, ['status', 'addresses', 0, 'type'], 'LAN'), 'status.addresses[0].type', /InternalIP/],
  ['event type', mutate(valid.Event!, ['type'], 'Error'), 'type', /Warning/],
  ['event without involvedObject', mutate(valid.Event!, ['involvedObject'], undefined), 'involvedObject', /required/],
  ['lease duration 0', mutate(valid.Lease!, ['spec', 'leaseDurationSeconds'], 0), 'spec.leaseDurationSeconds', /greater than or equal to 1/],
  ['lease renewTime', mutate(valid.Lease!, ['spec', 'renewTime'], '10:00'), 'spec.renewTime', /RFC 3339/],
  ['binding without target name', mutate(valid.Binding!, ['target', 'name'], undefined), 'target.name', /required/],
  ['binding unknown field', mutate(valid.Binding!, ['spec'], {}), 'spec', /unknown field/],
  // pod fields users paste from Kubernetes docs
  ['pod topologySpreadConstraints', mutate(P, ['spec', 'topologySpreadConstraints'], [{ maxSkew: 1, topologyKey: 'topology.kubernetes.io/zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { app: 'web' } } }]),
    'spec.topologySpreadConstraints', /not supported yet.*podAntiAffinity/],
  ['template topologySpreadConstraints', mutate(D, ['spec', 'template', 'spec', 'topologySpreadConstraints'], [{ maxSkew: 1 }]), 'spec.template.spec.topologySpreadConstraints', /not supported yet/],
  ['pod os other than linux or windows', mutate(P, ['spec', 'os'], { name: 'darwin' }), 'spec.os.name', /linux/],
  ['pod runtimeClassName not a name', mutate(P, ['spec', 'runtimeClassName'], 'Nvidia'), 'spec.runtimeClassName', /lowercase/],
  ['pod priorityClassName not a name', mutate(P, ['spec', 'priorityClassName'], 'High Priority'), 'spec.priorityClassName', /lowercase/],
  ['pod priority beyond int32', mutate(P, ['spec', 'priority'], 2 ** 31), 'spec.priority', /32 bits/],
  ['pod preemptionPolicy', mutate(P, ['spec', 'preemptionPolicy'], 'Always'), 'spec.preemptionPolicy', /PreemptLowerPriority/],
  ['pod overhead quantity', mutate(P, ['spec', 'overhead'], { cpu: 'lots' }), 'spec.overhead.cpu', /invalid quantity/],
  // RuntimeClass, PriorityClass
  ['RuntimeClass without handler', mutate(valid.RuntimeClass!, ['handler'], undefined), 'handler', /required/],
  ['RuntimeClass handler not a DNS label', mutate(valid.RuntimeClass!, ['handler'], 'nvidia.runtime'), 'handler', /lowercase alphanumeric characters or '-'/],
  ['RuntimeClass bad overhead', mutate(valid.RuntimeClass!, ['overhead', 'podFixed', 'memory'], '120MB'), 'overhead.podFixed.memory', /invalid quantity/],
  ['RuntimeClass namespaced', mutate(valid.RuntimeClass!, ['metadata', 'namespace'], 'default'), 'metadata.namespace', /cluster-scoped/],
  ['PriorityClass without value', mutate(valid.PriorityClass!, ['value'], undefined), 'value', /required/],
  ['PriorityClass above the user maximum', mutate(valid.PriorityClass!, ['value'], 1000000001), 'value', /maximum allowed value of a user defined priority is 1000000000/],
  ['PriorityClass with a system- name', mutate(valid.PriorityClass!, ['metadata', 'name'], 'system-mine'), 'metadata.name', /reserved for system use only/],
  ['system PriorityClass with another value', mutate(() => mutate(valid.PriorityClass!, ['metadata', 'name'], 'system-node-critical'), ['value'], 5), 'metadata.name', /value of system-node-critical PriorityClass must be 2000001000/],
  ['PriorityClass preemptionPolicy', mutate(valid.PriorityClass!, ['preemptionPolicy'], 'Sometimes'), 'preemptionPolicy', /Never/],
  // kind
  ['unknown kind', mutate(P, ['kind'], 'Pood'), 'kind', /unknown kind "Pood"/],
  ['kind in the wrong group', mutate(D, ['apiVersion'], 'v1'), 'kind', /unknown kind "Deployment" in apiVersion "v1"/],
  ['old apiVersion', mutate(D, ['apiVersion'], 'extensions/v1beta1'), 'kind', /extensions\/v1beta1/],
  ['missing kind', mutate(P, ['kind'], undefined), 'kind', /kind is missing/],
  ['missing apiVersion', mutate(P, ['apiVersion'], undefined), 'kind', /apiVersion is missing/],
  // Endpoints, EndpointSlice
  ['endpoint address without ip', mutate(valid.Endpoints!, ['subsets', 0, 'addresses', 0, 'ip'], undefined), 'subsets[0].addresses[0].ip', /./],
  ['endpoint slice without addressType', mutate(valid.EndpointSlice!, ['addressType'], 'IP'), 'addressType', /./],
  ['slice endpoint without addresses', mutate(valid.EndpointSlice!, ['endpoints', 0, 'addresses'], []), 'endpoints[0].addresses', /at least 1 address/],
  ['slice port out of range', mutate(valid.EndpointSlice!, ['ports', 0, 'port'], 70000), 'ports[0].port', /between 1 and 65535/],
  // Ingress, IngressClass: Kubernetes' networking validation
  ['Ingress path without pathType', mutate(valid.Ingress!, [...IR0, 'pathType'], undefined), 'spec.rules[0].http.paths[0].pathType', /^pathType must be specified$/],
  ['Ingress relative path', mutate(valid.Ingress!, [...IR0, 'path'], 'bar'), 'spec.rules[0].http.paths[0].path', /^must be an absolute path$/],
  ['Ingress Exact path without a path', mutate(valid.Ingress!, ['spec', 'rules', 1, 'http', 'paths', 0, 'path'], undefined), 'spec.rules[1].http.paths[0].path', /^must be an absolute path$/],
  ['Ingress relative ImplementationSpecific path', mutate(valid.Ingress!, ['spec', 'rules', 2, 'http', 'paths', 1, 'path'], 'x'), 'spec.rules[2].http.paths[1].path', /^must be an absolute path$/],
  ['Ingress path with //', mutate(valid.Ingress!, [...IR0, 'path'], '/a//b'), 'spec.rules[0].http.paths[0].path', /^must not contain '\/\/'$/],
  ['Ingress path ending in /..', mutate(valid.Ingress!, [...IR0, 'path'], '/a/..'), 'spec.rules[0].http.paths[0].path', /^cannot end with '\/\.\.'$/],
  ['Ingress pathType unknown', mutate(valid.Ingress!, [...IR0, 'pathType'], 'Regex'), 'spec.rules[0].http.paths[0].pathType', /Exact/],
  ['Ingress host with a port', mutate(valid.Ingress!, ['spec', 'rules', 0, 'host'], 'foo.bar.com:80'), 'spec.rules[0].host', /lowercase alphanumeric/],
  ['Ingress host an IP address', mutate(valid.Ingress!, ['spec', 'rules', 0, 'host'], '10.0.0.1'), 'spec.rules[0].host', /^must be a DNS name, not an IP address$/],
  ['Ingress wildcard of two labels', mutate(valid.Ingress!, ['spec', 'rules', 1, 'host'], '*.*.foo.com'), 'spec.rules[1].host', /wildcard DNS-1123 subdomain must start with '\*\.'/],
  ['Ingress wildcard inside a label', mutate(valid.Ingress!, ['spec', 'rules', 1, 'host'], 'a*.foo.com'), 'spec.rules[1].host', /wildcard DNS-1123 subdomain/],
  ['Ingress TLS host bad', mutate(valid.Ingress!, ['spec', 'tls', 0, 'hosts', 1], 'Foo.com'), 'spec.tls[0].hosts[1]', /lowercase alphanumeric/],
  ['Ingress backend with service and resource', mutate(valid.Ingress!, [...IR0, 'backend', 'resource'], { kind: 'StorageBucket', name: 'b' }), 'spec.rules[0].http.paths[0].backend', /^cannot set both resource and service backends$/],
  ['Ingress backend empty', mutate(valid.Ingress!, [...IR0, 'backend'], {}), 'spec.rules[0].http.paths[0].backend', /^resource or service backend is required$/],
  ['Ingress port name and number', mutate(valid.Ingress!, [...IR0, 'backend', 'service', 'port', 'name'], 'http'), 'spec.rules[0].http.paths[0].backend.service.port', /^cannot set both port name & port number$/],
  ['Ingress port missing', mutate(valid.Ingress!, [...IR0, 'backend', 'service', 'port'], {}), 'spec.rules[0].http.paths[0].backend.service.port', /^port name or number is required$/],
  ['Ingress port number out of range', mutate(valid.Ingress!, [...IR0, 'backend', 'service', 'port', 'number'], 0), 'spec.rules[0].http.paths[0].backend.service.port.number', /between 1 and 65535/],
  ['Ingress service name bad', mutate(valid.Ingress!, [...IR0, 'backend', 'service', 'name'], '1svc'), 'spec.rules[0].http.paths[0].backend.service.name', /start with a letter/],
  ['Ingress without rules or defaultBackend', mutate(() => mutate(valid.Ingress!, ['spec', 'rules'], undefined), ['spec', 'defaultBackend'], undefined), 'spec', /^either `defaultBackend` or `rules` must be specified$/],
  ['Ingress http without paths', mutate(valid.Ingress!, ['spec', 'rules', 0, 'http', 'paths'], []), 'spec.rules[0].http.paths', /Required value/],
  ['IngressClass controller not domain-prefixed', mutate(valid.IngressClass!, ['spec', 'controller'], 'nginx'), 'spec.controller', /domain-prefixed path/],
  ['IngressClass Namespace scope without a namespace', mutate(valid.IngressClass!, ['spec', 'parameters', 'scope'], 'Namespace'), 'spec.parameters.namespace', /`parameters.scope` is set to 'Namespace'/],
  ['IngressClass namespaced', mutate(valid.IngressClass!, ['metadata', 'namespace'], 'default'), 'metadata.namespace', /cluster-scoped/],
];

for (const [name, manifest, path, message] of faults) {
  test(`refuses: ${name} (at ${path})`, () => {
    const r = validateObject(manifest);
    if (r.ok) return assert.unreachable('accepted');
    assert.equal(r.issues.map((i) => i.path), [path], JSON.stringify(r.issues));
    assert.match(r.issues[0]!.message, message);
  });
}

test('several faults are all reported, each at its own path', () => {
  const pod = valid.Pod!();
  const c = (pod.spec as { containers: Json[] }).containers[0]!;
  c.bogus = 1;
  (c.resources as { limits: Json }).limits.memory = 'x';
  (pod.metadata as Json).name = 'Bad';
  (pod.spec as { containers: Json[] }).containers.push({ name: 'web', image: 'x', extra: true });
  const r = validateObject(pod);
  if (r.ok) return assert.unreachable('accepted');
  assert.equal(r.issues.map((i) => i.path).sort(), [
    'metadata.name', 'spec.containers[0].bogus', 'spec.containers[0].resources.limits.memory', 'spec.containers[1].extra',
    'spec.containers[1].name',
  ]);
});

test('non-objects are refused at the root', () => {
  for (const input of [null, undefined, 'pod', 3, [valid.Pod!()]]) {
    const r = validateObject(input);
    if (r.ok) return assert.unreachable(`accepted ${String(input)}`);
    assert.equal(r.issues.map((i) => i.path), ['']);
    assert.match(r.issues[0]!.message, /expected an object/);
  }
});

test('hostPort 0 and nodePort 0 mean "not set" and are accepted', () => {
  assert.ok(validateObject(mutate(P, [...C0, 'ports', 0, 'hostPort'], 0)).ok);
  assert.ok(validateObject(mutate(valid.Service!, ['spec', 'ports', 0, 'nodePort'], 0)).ok);
});

test("Kubernetes' int64 fields take values beyond 32 bits (uids, grace periods, generations), its int32 fields do not", () => {
  assert.ok(validateObject(mutate(P, ['spec', 'terminationGracePeriodSeconds'], 2 ** 31)).ok);
  assert.ok(validateObject(mutate(P, ['spec', 'securityContext'], { runAsUser: 3_000_000_000 })).ok);
  assert.ok(validateObject(mutate(D, ['metadata', 'generation'], 2 ** 40)).ok);
  assert.not.ok(validateObject(mutate(D, ['spec', 'revisionHistoryLimit'], 2 ** 31)).ok);
});

test("NVIDIA's GPU pod example and the pod fields of Kubernetes' scheduling docs are accepted", () => {
  const gpuPod = {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'gpu-pod' },
    spec: {
      restartPolicy: 'Never', runtimeClassName: 'nvidia',
      containers: [{ name: 'cuda-container', image: 'nvcr.io/nvidia/k8s/cuda-sample:vectoradd-cuda12.5.0', resources: { limits: { 'nvidia.com/gpu': 1 } } }],
      tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
    },
  };
  const r = validateObject(gpuPod);
  if (!r.ok) return assert.unreachable(JSON.stringify(r.issues));
  const more = mutate(() => gpuPod, ['spec'], {
    ...gpuPod.spec, priorityClassName: 'high-priority', preemptionPolicy: 'Never', os: { name: 'linux' }, overhead: { cpu: '250m' }, topologySpreadConstraints: [],
  });
  const m = validateObject(more);
  if (!m.ok) return assert.unreachable(JSON.stringify(m.issues));
});

test('the built-in system PriorityClasses validate; PriorityClass.preemptionPolicy defaults as in Kubernetes', () => {
  for (const [name, value] of [['system-node-critical', 2000001000], ['system-cluster-critical', 2000000000]] as const) {
    const r = validateObject({ apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name }, value });
    if (!r.ok) return assert.unreachable(JSON.stringify(r.issues));
    assert.is((applyDefaults(r.object) as unknown as { preemptionPolicy: string }).preemptionPolicy, 'PreemptLowerPriority');
  }
});

test('generateName stands in for name', () => {
  const r = validateObject(mutate(P, ['metadata'], { generateName: 'web-' }));
  assert.ok(r.ok);
});

test('validation never throws on garbage at any field of any kind, and every refusal carries issues', () => {
  const garbage: unknown[] = [null, -1, 1.5, 'x', true, [], {}, [1], { zz: 1 }];
  let refused = 0;
  for (const build of Object.values(valid)) {
    const paths: (string | number)[][] = [];
    const walk = (v: unknown, p: (string | number)[]): void => {
      if (p.length > 0) paths.push(p);
      if (Array.isArray(v)) v.forEach((x, i) => walk(x, [...p, i]));
      else if (v !== null && typeof v === 'object') for (const [k, x] of Object.entries(v)) walk(x, [...p, k]);
    };
    walk(build(), []);
    for (const p of paths) {
      for (const g of garbage) {
        const r = validateObject(mutate(build, p, g));
        if (!r.ok) {
          refused++;
          assert.ok(r.issues.length > 0);
          for (const i of r.issues) assert.type(i.path, 'string');
        }
      }
    }
  }
  assert.ok(refused > 1000, `refused ${refused}`);
});

test('Docker config Secrets as kubectl create secret docker-registry writes them, and in stringData, are accepted', () => {
  const config = JSON.stringify({ auths: { 'reg.lan:5000': { username: 'alice', password: 's3cret', auth: b64('alice:s3cret') } } });
  for (const manifest of [
    dockerSecret('kubernetes.io/dockerconfigjson', { data: { '.dockerconfigjson': b64(config) } }),
    dockerSecret('kubernetes.io/dockerconfigjson', { stringData: { '.dockerconfigjson': config } }),
    dockerSecret('kubernetes.io/dockerconfigjson', { data: { '.dockerconfigjson': b64('{"credsStore": "pass"}') } }),
    dockerSecret('kubernetes.io/dockercfg', { data: { '.dockercfg': b64(JSON.stringify({ 'https://reg.lan': { auth: b64('a:b') } })) } }),
  ]) {
    const r = validateObject(manifest);
    assert.ok(r.ok, JSON.stringify(r.ok ? '' : r.issues));
  }
});

test('formatPath quotes keys that are not identifiers', () => {
  assert.is(formatPath(['spec', 'containers', 0, 'resources', 'limits', 'memory']), 'spec.containers[0].resources.limits.memory');
  assert.is(formatPath(['metadata', 'labels', 'app.kubernetes.io/name']), 'metadata.labels["app.kubernetes.io/name"]');
  assert.is(formatPath([0, 'a']), '[0].a');
  assert.is(formatPath([]), '');
});

test('sessionAffinity ClientIP defaults its timeout to 3 hours, as Kubernetes', () => {
  const svc = (extra: Json) => {
    const v = validateObject({ apiVersion: 'v1', kind: 'Service', metadata: { name: 'web' }, spec: { ports: [{ port: 80 }], ...extra } });
    assert.ok(v.ok);
    return (applyDefaults(v.object) as Service).spec ?? {};
  };
  assert.equal(svc({ sessionAffinity: 'ClientIP' }).sessionAffinityConfig, { clientIP: { timeoutSeconds: 10800 } });
  assert.equal(svc({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }).sessionAffinityConfig, { clientIP: { timeoutSeconds: 60 } });
  assert.is(svc({}).sessionAffinityConfig, undefined);
});

test.run();
