// kubectl's columns for Services, Endpoints, EndpointSlices and pods -o wide; describe svc; service --url.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formatObjects } from '../../cli/printers.js';
import { describeObject } from '../../cli/describe.js';
import { serviceUrls } from '../../cli/service-url.js';
import { resourceByCliName } from '../../api-types/index.js';
import type { Endpoints, Node, Service } from '../../api-types/index.js';

const now = Date.parse('2026-05-01T12:00:00Z');
const meta = (name: string) => ({ name, namespace: 'default', creationTimestamp: '2026-05-01T11:00:00Z' });
const table = (plural: string, items: unknown[], format: 'table' | 'wide' = 'table') =>
  formatObjects(resourceByCliName(plural)!, items as never, format, { withNamespace: false, now });

const services: Service[] = [
  { apiVersion: 'v1', kind: 'Service', metadata: meta('kubernetes'), spec: { type: 'ClusterIP', clusterIP: '10.43.0.1', ports: [{ name: 'https', port: 443, protocol: 'TCP' }] } },
  { apiVersion: 'v1', kind: 'Service', metadata: meta('web'), spec: { type: 'NodePort', clusterIP: '10.43.0.12', selector: { app: 'web' }, ports: [{ name: 'http', port: 80, protocol: 'TCP', nodePort: 30191 }, { name: 'dns', port: 53, protocol: 'UDP', nodePort: 30053 }] } },
  { apiVersion: 'v1', kind: 'Service', metadata: meta('lb'), spec: { type: 'LoadBalancer', clusterIP: '10.43.0.13', ports: [{ port: 80, protocol: 'TCP', nodePort: 31000 }] } },
  { apiVersion: 'v1', kind: 'Service', metadata: meta('lb-up'), spec: { type: 'LoadBalancer', clusterIP: '10.43.0.14', ports: [{ port: 80, protocol: 'TCP', nodePort: 31001 }] }, status: { loadBalancer: { ingress: [{ ip: '192.168.1.240' }] } } },
  { apiVersion: 'v1', kind: 'Service', metadata: meta('db'), spec: { type: 'ClusterIP', clusterIP: 'None', ports: [{ port: 5432, protocol: 'TCP' }] } },
  { apiVersion: 'v1', kind: 'Service', metadata: meta('ext'), spec: { type: 'ExternalName', externalName: 'db.example.com' } },
];

test('get svc: NAME TYPE CLUSTER-IP EXTERNAL-IP PORT(S) AGE, as kubectl prints them', () => {
  assert.is(table('services', services), [
    'NAME         TYPE           CLUSTER-IP   EXTERNAL-IP      PORT(S)                     AGE',
    'kubernetes   ClusterIP      10.43.0.1    <none>           443/TCP                     60m',
    'web          NodePort       10.43.0.12   <none>           80:30191/TCP,53:30053/UDP   60m',
    'lb           LoadBalancer   10.43.0.13   <pending>        80:31000/TCP                60m',
    'lb-up        LoadBalancer   10.43.0.14   192.168.1.240    80:31001/TCP                60m',
    'db           ClusterIP      None         <none>           5432/TCP                    60m',
    'ext          ExternalName   <none>       db.example.com   <none>                      60m',
    '',
  ].join('\n'));
});

const endpoints = (name: string, subsets: Endpoints['subsets']): Endpoints => ({ apiVersion: 'v1', kind: 'Endpoints', metadata: meta(name), ...(subsets ? { subsets } : {}) });

test('get endpoints: the first three IP:port pairs, then "+ N more..."', () => {
  const many = endpoints('web', [{ addresses: ['10.42.1.5', '10.42.2.7', '10.42.3.9', '10.42.4.2'].map((ip) => ({ ip })), ports: [{ port: 80 }] }]);
  const two = endpoints('api', [{ addresses: [{ ip: '10.42.1.5' }, { ip: '10.42.2.7' }], notReadyAddresses: [{ ip: '10.42.9.9' }], ports: [{ port: 8080 }] }]);
  assert.is(table('endpoints', [many, two, endpoints('none', undefined)]), [
    'NAME   ENDPOINTS                                            AGE',
    'web    10.42.1.5:80,10.42.2.7:80,10.42.3.9:80 + 1 more...   60m',
    'api    10.42.1.5:8080,10.42.2.7:8080                        60m',
    'none   <none>                                               60m',
    '',
  ].join('\n'));
});

test('get endpointslices: NAME ADDRESSTYPE PORTS ENDPOINTS AGE', () => {
  const slice = (name: string, ips: string[], ports: number[]) => ({
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice', metadata: meta(name), addressType: 'IPv4',
    endpoints: ips.map((ip) => ({ addresses: [ip] })), ports: ports.map((port) => ({ port })),
  });
  assert.is(table('endpointslices', [slice('web-abcde', ['10.42.1.5', '10.42.2.7', '10.42.3.9', '10.42.4.2', '10.42.5.1'], [80, 443]), slice('idle-x2k9q', [], [])]), [
    'NAME         ADDRESSTYPE   PORTS     ENDPOINTS                                   AGE',
    'web-abcde    IPv4          80,443    10.42.1.5,10.42.2.7,10.42.3.9 + 2 more...   60m',
    'idle-x2k9q   IPv4          <unset>   <unset>                                     60m',
    '',
  ].join('\n'));
});

test('get pods -o wide: IP, NODE, NOMINATED NODE, READINESS GATES', () => {
  const pod = { apiVersion: 'v1', kind: 'Pod', metadata: meta('web-1'), spec: { nodeName: 'pi-1', containers: [{ name: 'c', image: 'i' }] }, status: { phase: 'Running', podIP: '10.42.1.5' } };
  const out = table('pods', [pod], 'wide');
  assert.match(out, /^NAME\s+READY\s+STATUS\s+RESTARTS\s+AGE\s+IP\s+NODE\s+NOMINATED NODE\s+READINESS GATES\s+GPUS\n/);
  assert.match(out, /web-1\s+0\/1\s+Running\s+0\s+60m\s+10\.42\.1\.5\s+pi-1\s+<none>\s+<none>\s+<none>\n$/);
});

test('describe svc lists each port with its Endpoints', () => {
  const ep = endpoints('web', [
    { addresses: [{ ip: '10.42.1.5' }, { ip: '10.42.2.7' }], ports: [{ name: 'http', port: 8080, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }] },
  ]);
  const text = describeObject(services[1]!, [], now, { endpoints: ep });
  assert.match(text, /Selector:\s+app=web\nType:\s+NodePort\nIP:\s+10\.43\.0\.12\nIPs:\s+<none>\n/);
  assert.match(text, /Port:\s+http {2}80\/TCP\nTargetPort:\s+80\/TCP\nNodePort:\s+http {2}30191\/TCP\nEndpoints:\s+10\.42\.1\.5:8080,10\.42\.2\.7:8080\n/);
  assert.match(text, /Port:\s+dns {2}53\/UDP\n.*\n.*\nEndpoints:\s+10\.42\.1\.5:53,10\.42\.2\.7:53\n/);
  assert.match(text, /Session Affinity:\s+None\nExternal Traffic Policy:\s+Cluster\n/);
  assert.match(describeObject(services[0]!, [], now), /Endpoints:\s+<none>\n/);
});

test('service --url: http://NODE:NODEPORT through the first Ready node; a ClusterIP Service has none', () => {
  const node = (name: string, ready: boolean, address: string): Node => ({
    apiVersion: 'v1', kind: 'Node', metadata: { name },
    status: { conditions: [{ type: 'Ready', status: ready ? 'True' : 'False' }], addresses: [{ type: 'InternalIP', address }] },
  });
  const nodes = [node('pi-2', true, '192.168.1.22'), node('pi-1', false, '192.168.1.21')];
  assert.equal(serviceUrls(services[1]!, nodes), ['http://192.168.1.22:30191', 'http://192.168.1.22:30053']);
  assert.throws(() => serviceUrls(services[0]!, nodes), /service default\/kubernetes has no node port: it is of type ClusterIP/);
  assert.throws(() => serviceUrls(services[1]!, [node('pi-1', false, '192.168.1.21')]), /no Ready node/);
});

test.run();
