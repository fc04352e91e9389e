// Allocations over real HTTP against a real `flotilla server` process started with the network flags: the
// published settings, the `kubernetes` Service, and every refusal (status, reason, Kubernetes' message) with
// what it must not reach left untouched.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerProcess, refusal, runCli } from '../support/server-process.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';
import { ApiClient, ApiClientError } from '../../client/client.js';
import type { ConfigMap, EndpointSlice, Endpoints, Node, Service } from '../../api-types/index.js';

let dir!: string;
let server!: ServerProcess;
let client!: ApiClient;
setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-svc-http-'));
  server = new ServerProcess(join(dir, 'm0'), '127.0.0.1', 0, ['--service-cidr', '10.96.0.0/24', '--service-node-port-range', '31000-31005', '--cluster-cidr', '10.50.0.0/16']);
  await server.start();
  client = new ApiClient(server.url, server.token, { tls: server.tls, timeoutMs: 10_000 });
}, async () => {
  client?.close();
  await server?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const SVC = '/api/v1/namespaces/default/services';

/** The error the server answered with; throws when it accepted the request. */
const refused = (method: string, path: string, body: unknown): Promise<ApiClientError> => refusal(client, method, path, body);

async function missing(path: string): Promise<boolean> {
  return (await refused('GET', path, undefined)).code === 404;
}

test('the leader publishes the flags in kube-system/flotilla-network', async () => {
  const cm = await client.request<ConfigMap>('GET', '/api/v1/namespaces/kube-system/configmaps/flotilla-network');
  assert.equal(cm.data, { clusterCIDR: '10.50.0.0/16', serviceCIDR: '10.96.0.0/24', nodePortRange: '31000-31005', clusterDomain: 'cluster.local', clusterDNS: 'node' });
});

test('the published settings cannot be changed: 422, and the ConfigMap stays as it was', async () => {
  const path = '/api/v1/namespaces/kube-system/configmaps/flotilla-network';
  const before = await client.request<ConfigMap>('GET', path);
  const err = await refused('PATCH', path, { data: { serviceCIDR: '10.97.0.0/24' } });
  assert.is(err.code, 422);
  assert.match(err.message, /ConfigMap "flotilla-network" is invalid: data: Forbidden: the network settings of a cluster are fixed when it is made/);
  const after = await client.request<ConfigMap>('GET', path);
  assert.equal(after.data, before.data);
  assert.is(after.metadata.resourceVersion, before.metadata.resourceVersion);
});

test('the kubernetes Service: the first address of the service CIDR, 443 to the API port, the API server in its Endpoints and slice', async () => {
  const port = Number(new URL(server.url).port);
  const svc = await eventually('the kubernetes Service', () => client.request<Service>('GET', `${SVC}/kubernetes`).catch(() => undefined));
  assert.is(svc.spec?.clusterIP, '10.96.0.1');
  assert.equal(svc.spec?.ports?.map((p) => [p.name, p.port, p.targetPort]), [['https', 443, port]]);
  const ep = await eventually('its Endpoints', () => client.request<Endpoints>('GET', '/api/v1/namespaces/default/endpoints/kubernetes').catch(() => undefined));
  assert.equal(ep.subsets, [{ addresses: [{ ip: '127.0.0.1' }], ports: [{ name: 'https', port, protocol: 'TCP' }] }]);
  const slice = await eventually('its slice', () => client.request<EndpointSlice>('GET', '/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes').catch(() => undefined));
  assert.equal(slice.endpoints.map((e) => e.addresses), [['127.0.0.1']]);
  assert.is(slice.metadata.labels?.['kubernetes.io/service-name'], 'kubernetes');
});

test('a ClusterIP already held is refused with 422 and the holder stays as it was', async () => {
  const holder = await eventually('the kubernetes Service', () => client.request<Service>('GET', `${SVC}/kubernetes`).catch(() => undefined));
  const err = await refused('POST', SVC, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'thief' }, spec: { clusterIP: '10.96.0.1', ports: [{ port: 80 }] } });
  assert.is(err.code, 422);
  assert.is(err.reason, 'Invalid');
  assert.is(err.message, 'Service "thief" is invalid: spec.clusterIPs: Invalid value: ["10.96.0.1"]: failed to allocate IP 10.96.0.1: provided IP is already allocated');
  assert.ok(await missing(`${SVC}/thief`));
  const after = await client.request<Service>('GET', `${SVC}/kubernetes`);
  assert.is(after.metadata.resourceVersion, holder.metadata.resourceVersion);

  const outside = await refused('POST', SVC, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'far' }, spec: { clusterIP: '10.43.0.9', ports: [{ port: 80 }] } });
  assert.is(outside.code, 422);
  assert.is(outside.message, 'Service "far" is invalid: spec.clusterIPs: Invalid value: ["10.43.0.9"]: failed to allocate IP 10.43.0.9: the provided IP (10.43.0.9) is not in the valid range. The range of valid IPs is 10.96.0.0/24');
  assert.ok(await missing(`${SVC}/far`));
});

test('a NodePort already held is refused with 422; the holder keeps it; the range is the flag\'s', async () => {
  const first = await client.request<Service>('POST', SVC, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'np1' }, spec: { type: 'NodePort', ports: [{ port: 80, nodePort: 31003 }] } });
  assert.is(first.spec?.ports?.[0]?.nodePort, 31003);
  const err = await refused('POST', SVC, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'np2' }, spec: { type: 'NodePort', ports: [{ port: 80, nodePort: 31003 }] } });
  assert.is(err.code, 422);
  assert.is(err.message, 'Service "np2" is invalid: spec.ports[0].nodePort: Invalid value: 31003: provided port is already allocated');
  assert.ok(await missing(`${SVC}/np2`));
  const out = await refused('POST', SVC, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'np3' }, spec: { type: 'NodePort', ports: [{ port: 80, nodePort: 30080 }] } });
  assert.is(out.message, 'Service "np3" is invalid: spec.ports[0].nodePort: Invalid value: 30080: provided port is not in the valid range. The range of valid ports is 31000-31005');
  const dynamic = await client.request<Service>('POST', SVC, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'np4' }, spec: { type: 'NodePort', ports: [{ port: 80 }] } });
  assert.ok(dynamic.spec!.ports![0]!.nodePort! >= 31000 && dynamic.spec!.ports![0]!.nodePort! <= 31005);
  assert.is.not(dynamic.spec!.ports![0]!.nodePort, 31003);
  const after = await client.request<Service>('GET', `${SVC}/np1`);
  assert.is(after.metadata.resourceVersion, first.metadata.resourceVersion);
});

test('spec.clusterIP is immutable: a replace that changes it is refused and the stored Service keeps its address', async () => {
  const svc = await client.request<Service>('POST', SVC, { apiVersion: 'v1', kind: 'Service', metadata: { name: 'fixed' }, spec: { ports: [{ port: 80 }] } });
  const ip = svc.spec!.clusterIP!;
  assert.match(ip, /^10\.96\.0\.\d+$/);
  const other = ip === '10.96.0.200' ? '10.96.0.201' : '10.96.0.200';
  const err = await refused('PUT', `${SVC}/fixed`, { ...svc, spec: { ...svc.spec, clusterIP: other, clusterIPs: [other] } });
  assert.is(err.code, 422);
  assert.is(err.message, `Service "fixed" is invalid: spec.clusterIPs[0]: Invalid value: ["${other}"]: may not change once set`);
  const stored = await client.request<Service>('GET', `${SVC}/fixed`);
  assert.is(stored.spec?.clusterIP, ip);
  assert.is(stored.metadata.resourceVersion, svc.metadata.resourceVersion);
  // A replace that leaves the address out keeps it.
  const { clusterIP: _a, clusterIPs: _b, ...rest } = svc.spec!;
  const kept = await client.request<Service>('PUT', `${SVC}/fixed`, { ...svc, spec: { ...rest, ports: [{ port: 81 }] } });
  assert.is(kept.spec?.clusterIP, ip);
});

test('a Node gets a /24 of the cluster CIDR; a podCIDR change is refused', async () => {
  const node = await client.request<Node>('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'pi-1' } });
  assert.match(node.spec?.podCIDR ?? '', /^10\.50\.\d+\.0\/24$/);
  assert.equal(node.spec?.podCIDRs, [node.spec!.podCIDR]);
  // No resourceVersion: the node lifecycle controller writes this node too.
  const { resourceVersion: _, ...metadata } = node.metadata;
  const err = await refused('PUT', '/api/v1/nodes/pi-1', { ...node, metadata, spec: { podCIDR: '10.50.200.0/24', podCIDRs: ['10.50.200.0/24'] } });
  assert.is(err.code, 422);
  assert.is(err.message, 'Node "pi-1" is invalid: spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid');
  assert.is((await client.request<Node>('GET', '/api/v1/nodes/pi-1')).spec?.podCIDR, node.spec?.podCIDR);
});

test('the CLI: get svc / endpoints / endpointslices as kubectl, describe svc with its Endpoints, service --url', async () => {
  // Written before the CLI runs: spawnSync blocks this process for longer than the server keeps an idle connection.
  await client.request('POST', '/api/v1/nodes', { apiVersion: 'v1', kind: 'Node', metadata: { name: 'edge-1' } });
  await client.request('PATCH', '/api/v1/nodes/edge-1/status', { status: { conditions: [{ type: 'Ready', status: 'True' }], addresses: [{ type: 'InternalIP', address: '192.168.7.7' }] } }, { contentType: 'application/merge-patch+json' });
  const env = { ...server.cliEnv, HOME: join(dir, 'home') };
  const port = Number(new URL(server.url).port);
  const svc = runCli(['get', 'svc'], env);
  assert.is(svc.code, 0, svc.stderr);
  assert.match(svc.stdout, /^NAME\s+TYPE\s+CLUSTER-IP\s+EXTERNAL-IP\s+PORT\(S\)\s+AGE\n/);
  assert.match(svc.stdout, /\nkubernetes\s+ClusterIP\s+10\.96\.0\.1\s+<none>\s+443\/TCP\s+\d+s\n/);
  assert.match(svc.stdout, /\nnp1\s+NodePort\s+10\.96\.0\.\d+\s+<none>\s+80:31003\/TCP\s+\d+s\n/);
  const ep = runCli(['get', 'endpoints', 'kubernetes'], env);
  assert.match(ep.stdout, new RegExp(`^NAME\\s+ENDPOINTS\\s+AGE\\nkubernetes\\s+127\\.0\\.0\\.1:${port}\\s+\\d+s\\n$`));
  const slices = runCli(['get', 'endpointslices'], env);
  assert.match(slices.stdout, new RegExp(`^NAME\\s+ADDRESSTYPE\\s+PORTS\\s+ENDPOINTS\\s+AGE\\nkubernetes\\s+IPv4\\s+${port}\\s+127\\.0\\.0\\.1\\s`));
  const described = runCli(['describe', 'svc', 'kubernetes'], env);
  assert.match(described.stdout, new RegExp(`Port:\\s+https  443/TCP\\nTargetPort:\\s+${port}/TCP\\nEndpoints:\\s+127\\.0\\.0\\.1:${port}\\n`));

  const url = runCli(['service', 'np1', '--url'], env);
  assert.is(url.code, 0, url.stderr);
  assert.is(url.stdout, 'http://192.168.7.7:31003\n');
  const clusterOnly = runCli(['service', 'kubernetes', '--url'], env);
  assert.is(clusterOnly.code, 1);
  assert.match(clusterOnly.stderr, /service default\/kubernetes has no node port: it is of type ClusterIP/);
  assert.is(clusterOnly.stdout, '');
});

test('bad network flags are refused before the server starts, naming the flag', () => {
  const r = runCli(['server', '--data', join(dir, 'bad'), '--listen', '127.0.0.1:0', '--service-cidr', '10.96.0.1/24'], {});
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /--service-cidr: "10.96.0.1\/24" has host bits set: the network is 10.96.0.0\/24/);
  const overlap = runCli(['server', '--data', join(dir, 'bad'), '--listen', '127.0.0.1:0', '--service-cidr', '10.42.0.0/24'], {});
  assert.is(overlap.code, 2, overlap.stderr);
  assert.match(overlap.stderr, /clusterCIDR 10.42.0.0\/16 and serviceCIDR 10.42.0.0\/24 overlap/);
});

test.run();
