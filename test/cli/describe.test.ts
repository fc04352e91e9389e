import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { describeObject } from '../../cli/describe.js';

test('describe pod lists init containers before containers, with their states', () => {
  const pod = {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'default', creationTimestamp: '2026-05-01T12:00:00Z' },
    spec: { nodeName: 'pi-1', initContainers: [{ name: 'fetch', image: 'busybox' }], containers: [{ name: 'httpd', image: 'flotilla/testbox:latest' }] },
    status: {
      phase: 'Pending',
      initContainerStatuses: [{ name: 'fetch', ready: false, restartCount: 2, state: { waiting: { reason: 'CrashLoopBackOff' } } }],
      containerStatuses: [{ name: 'httpd', ready: false, restartCount: 0, state: { waiting: { reason: 'PodInitializing' } } }],
      conditions: [{ type: 'Initialized', status: 'False', reason: 'ContainersNotInitialized' }],
    },
  };
  const text = describeObject(pod as never, [], Date.parse('2026-05-01T12:01:00Z'));
  assert.match(text, /Init Containers:\n {2}fetch:\n {4}Image:\s+busybox\n {4}State:\s+Waiting \(CrashLoopBackOff\)/);
  assert.match(text, /Restart Count:\s+2/);
  assert.ok(text.indexOf('Init Containers:') < text.indexOf('\nContainers:'));
  assert.match(text, /Initialized\s+False\s+ContainersNotInitialized/);
});

test('describe pod without init containers has no such section', () => {
  const text = describeObject({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p' }, spec: { containers: [{ name: 'c', image: 'i' }] } } as never, []);
  assert.not.match(text, /Init Containers/);
  assert.match(text, /Containers:\n {2}c:/);
});

test('describe ingress shows the address, class, default backend, TLS and rules as kubectl', () => {
  const ing = {
    apiVersion: 'networking.k8s.io/v1', kind: 'Ingress', metadata: { name: 'site', namespace: 'default', creationTimestamp: '2026-05-01T12:00:00Z' },
    spec: {
      ingressClassName: 'flotilla', tls: [{ hosts: ['a.test'], secretName: 'a-tls' }],
      rules: [{ host: 'a.test', http: { paths: [{ path: '/api', pathType: 'Prefix', backend: { service: { name: 'api', port: { name: 'http' } } } }] } }],
    },
    status: { loadBalancer: { ingress: [{ ip: '10.0.0.5' }] } },
  };
  const text = describeObject(ing as never, [], Date.parse('2026-05-01T12:01:00Z'));
  assert.match(text, /Address:\s+10\.0\.0\.5\n/);
  assert.match(text, /Ingress Class:\s+flotilla\n/);
  assert.match(text, /Default backend:\s+<default>\n/);
  assert.match(text, /TLS:\n {2}a-tls terminates a\.test\n/);
  assert.match(text, /Rules:\n {2}Host\s+Path\s+Backends\n {2}----\s+----\s+--------\n {2}a\.test\s*\n\s+\/api\s+api:http\n/);
});

test.run();
