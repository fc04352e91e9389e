import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatObjects } from '../../cli/printers.js';
import { nodeStatusText, podStatusText, age, resourceByCliName } from '../../api-types/index.js';

const now = Date.parse('2026-05-01T12:00:00Z');
const node = (ready: string, annotations: Record<string, string> = {}, unschedulable = false) => ({
  apiVersion: 'v1', kind: 'Node', metadata: { name: 'pi-1', annotations, creationTimestamp: '2026-05-01T11:00:00Z' },
  spec: { unschedulable }, status: { conditions: [{ type: 'Ready', status: ready }] },
});

test('node status shows cordoning and the countdown before an unreachable node loses its pods', () => {
  assert.is(nodeStatusText(node('True') as never, now), 'Ready');
  assert.is(nodeStatusText(node('True', {}, true) as never, now), 'Ready,SchedulingDisabled');
  assert.is(nodeStatusText(node('Unknown', { 'flotilla.io/eviction-at': '2026-05-01T12:00:23Z' }) as never, now), 'NotReady (pods move in 23s)');
  assert.is(nodeStatusText(node('Unknown', { 'flotilla.io/eviction-at': '2026-05-01T11:59:00Z' }) as never, now), 'NotReady (pods moved)');
  const table = formatObjects(resourceByCliName('nodes')!, [node('Unknown', { 'flotilla.io/eviction-at': '2026-05-01T12:00:05Z' })] as never, 'table', { withNamespace: false, now });
  assert.match(table, /pi-1\s+NotReady \(pods move in 5s\)/);
});

test('pod status prefers a container waiting reason, then the phase', () => {
  const pod = (status: unknown) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c' }] }, status });
  assert.is(podStatusText(pod({ phase: 'Running', containerStatuses: [{ state: { waiting: { reason: 'CrashLoopBackOff' } } }] }) as never), 'CrashLoopBackOff');
  assert.is(podStatusText(pod({ phase: 'Running', containerStatuses: [{ state: { running: {} } }] }) as never), 'Running');
  assert.is(podStatusText(pod(undefined) as never), 'Pending');
});

test('pod status reads init containers like kubectl: Init:N/M, Init:REASON, then the app containers', () => {
  const pod = (initStatuses: unknown[], containerStatuses: unknown[] = [{ state: { waiting: { reason: 'PodInitializing' } } }]) => ({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' },
    spec: { initContainers: [{ name: 'i0' }, { name: 'i1' }], containers: [{ name: 'c' }] },
    status: { phase: 'Pending', initContainerStatuses: initStatuses, containerStatuses },
  });
  const done = { state: { terminated: { exitCode: 0, reason: 'Completed' } }, restartCount: 0 };
  assert.is(podStatusText(pod([{ state: { running: {} } }, { state: { waiting: { reason: 'PodInitializing' } } }]) as never), 'Init:0/2');
  assert.is(podStatusText(pod([done, { state: { running: {} } }]) as never), 'Init:1/2');
  assert.is(podStatusText(pod([done, { state: { waiting: { reason: 'CrashLoopBackOff' } } }]) as never), 'Init:CrashLoopBackOff');
  assert.is(podStatusText(pod([{ state: { terminated: { exitCode: 4, reason: 'Error' } } }]) as never), 'Init:Error');
  assert.is(podStatusText(pod([done, done], [{ state: { running: {} } }]) as never), 'Pending');
  const restarted = { ...pod([done, { state: { waiting: { reason: 'CrashLoopBackOff' } }, restartCount: 3 }]), metadata: { name: 'p', namespace: 'default' } };
  const table = formatObjects(resourceByCliName('pods')!, [restarted] as never, 'table', { withNamespace: false, now });
  assert.match(table, /p\s+0\/1\s+Init:CrashLoopBackOff\s+3\s/);
});

test('RuntimeClasses and PriorityClasses print the columns kubectl prints', () => {
  const meta = (name: string) => ({ name, creationTimestamp: '2026-05-01T11:00:00Z' });
  const rc = formatObjects(resourceByCliName('runtimeclasses')!, [{ apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: meta('nvidia'), handler: 'nvidia' }] as never, 'table', { withNamespace: false, now });
  assert.is(rc, 'NAME     HANDLER   AGE\nnvidia   nvidia    60m\n');
  const pcs = [
    { apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: meta('system-node-critical'), value: 2000001000, globalDefault: false },
    { apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: meta('normal'), value: 100, globalDefault: true },
  ];
  const pc = formatObjects(resourceByCliName('pc')!, pcs as never, 'table', { withNamespace: false, now });
  assert.is(pc, 'NAME                   VALUE        GLOBAL-DEFAULT   AGE\nsystem-node-critical   2000001000   false            60m\nnormal                 100          true             60m\n');
});

test('Ingresses and IngressClasses print the columns kubectl prints', () => {
  const meta = (name: string) => ({ name, namespace: 'default', creationTimestamp: '2026-05-01T11:00:00Z' });
  const backend = { service: { name: 'web', port: { number: 80 } } };
  const paths = { paths: [{ path: '/', pathType: 'Prefix', backend }] };
  const ings = [
    { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: meta('site'), spec: { ingressClassName: 'flotilla', tls: [{ hosts: ['a.test'], secretName: 's' }], rules: [{ host: 'a.test', http: paths }, { host: 'b.test', http: paths }] },
      status: { loadBalancer: { ingress: [{ ip: '192.168.1.10' }, { ip: '192.168.1.11' }] } } },
    { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: meta('many'), spec: { rules: ['a', 'b', 'c', 'd', 'e'].map((h) => ({ host: `${h}.test`, http: paths })) } },
    { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: meta('any'), spec: { ingressClassName: 'flotilla', defaultBackend: backend } },
  ];
  assert.is(formatObjects(resourceByCliName('ing')!, ings as never, 'table', { withNamespace: false, now }), [
    'NAME   CLASS      HOSTS                              ADDRESS            PORTS     AGE',
    'site   flotilla   a.test,b.test                      192.168.1.10,...   80, 443   60m',
    'many   <none>     a.test,b.test,c.test + 2 more...                      80        60m',
    'any    flotilla   *                                                     80        60m',
    '',
  ].join('\n'));
  const classes = [
    { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'flotilla', creationTimestamp: '2026-05-01T11:00:00Z' }, spec: { controller: 'flotilla.io/ingress' } },
    { apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass', metadata: { name: 'lb', creationTimestamp: '2026-05-01T11:00:00Z' }, spec: { controller: 'example.com/lb', parameters: { apiGroup: 'k8s.example.com', kind: 'Params', name: 'p' } } },
  ];
  assert.is(formatObjects(resourceByCliName('ingressclasses')!, classes as never, 'table', { withNamespace: false, now }), [
    'NAME       CONTROLLER            PARAMETERS                 AGE',
    'flotilla   flotilla.io/ingress   <none>                     60m',
    'lb         example.com/lb        Params.k8s.example.com/p   60m',
    '',
  ].join('\n'));
});

test('ages read like kubectl', () => {
  assert.is(age('2026-05-01T11:59:15Z', now), '45s');
  assert.is(age('2026-05-01T11:48:00Z', now), '12m');
  assert.is(age('2026-05-01T07:00:00Z', now), '5h');
  assert.is(age('2026-04-28T12:00:00Z', now), '3d');
  assert.is(age(undefined, now), '<unknown>');
  // apimachinery's HumanDuration, as kubectl prints AGE.
  assert.is(age('2026-05-01T11:54:48Z', now), '5m12s');
  assert.is(age('2026-05-01T11:55:00Z', now), '5m');
  assert.is(age('2026-05-01T05:30:00Z', now), '6h30m');
  assert.is(age('2026-04-30T16:00:00Z', now), '20h');
  assert.is(age('2026-04-27T08:00:00Z', now), '4d4h');
  assert.is(age('2026-03-01T12:00:00Z', now), '61d');
  assert.is(age('2023-04-01T12:00:00Z', now), '3y31d');
  assert.is(age('2026-05-01T12:00:05Z', now), '<invalid>');
});

test('get cronjobs prints kubectl\'s columns: time zone or <none>, suspend, active Jobs, the last schedule\'s age', () => {
  const cj = (spec: Record<string, unknown>, status: Record<string, unknown> = {}) => ({
    apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'report', creationTimestamp: '2026-05-01T10:00:00Z' },
    spec: { schedule: '*/5 * * * *', jobTemplate: { spec: { template: { spec: { containers: [{ name: 'run', image: 'busybox:1.36' }] } } } }, ...spec }, status,
  });
  const cronjobs = resourceByCliName('cronjobs')!;
  const table = formatObjects(cronjobs, [
    cj({ suspend: false }, { active: [{ name: 'report-1' }, { name: 'report-2' }], lastScheduleTime: '2026-05-01T11:55:00Z' }),
    cj({ timeZone: 'Europe/Berlin', suspend: true }),
  ] as never, 'wide', { withNamespace: false, now });
  assert.equal(table.trimEnd().split('\n').map((l) => l.split(/\s{3,}/)), [
    ['NAME', 'SCHEDULE', 'TIMEZONE', 'SUSPEND', 'ACTIVE', 'LAST SCHEDULE', 'AGE', 'CONTAINERS', 'IMAGES', 'SELECTOR'],
    ['report', '*/5 * * * *', '<none>', 'False', '2', '5m', '120m', 'run', 'busybox:1.36', '<none>'],
    ['report', '*/5 * * * *', 'Europe/Berlin', 'True', '0', '<none>', '120m', 'run', 'busybox:1.36', '<none>'],
  ]);
});

test.run();
