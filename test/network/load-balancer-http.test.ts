// LoadBalancer addresses over real HTTP against a real `flotilla server` started with --load-balancer-pool: the
// pool it keeps, an allocated address in status and `get svc`, and the refusals (overlapping pool, an address
// outside every pool or taken, a bad flag value).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ServerProcess, refusal, runCli } from '../support/server-process.js';
import { eventually } from '../support/eventually.js';
import { setUp } from '../support/set-up.js';
import { ApiClient, ApiClientError } from '../../client/client.js';
import type { AddressPool, Service } from '../../api-types/index.js';

let dir!: string;
let server!: ServerProcess;
let client!: ApiClient;
setUp(test, async () => {
  dir = mkdtempSync(join(tmpdir(), 'flotilla-lb-http-'));
  server = new ServerProcess(join(dir, 'm0'), '127.0.0.1', 0, ['--load-balancer-pool', '192.168.77.240-250,fd00:77::/126']);
  await server.start();
  client = new ApiClient(server.url, server.token, { tls: server.tls, timeoutMs: 10_000 });
}, async () => {
  client?.close();
  await server?.kill('SIGTERM');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const SVC = '/api/v1/namespaces/default/services';
const POOLS = '/apis/flotilla.io/v1/addresspools';

/** The error the server answered with; throws when it accepted the request. */
const refused = (method: string, path: string, body: unknown): Promise<ApiClientError> => refusal(client, method, path, body);

const lb = (name: string, extra: Record<string, unknown> = {}, annotations?: Record<string, string>) => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name, ...(annotations ? { annotations } : {}) },
  spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ port: 80 }], ...extra },
});

test('the flag makes the pool `default`', async () => {
  const pool = await eventually('the default pool', () => client.request<AddressPool>('GET', `${POOLS}/default`).catch(() => undefined));
  assert.equal(pool.spec, { addresses: ['192.168.77.240-250', 'fd00:77::/126'], autoAssign: true });
});

test('a LoadBalancer Service gets the first address: in spec.loadBalancerIP, status and `get svc`', async () => {
  const svc = await client.request<Service>('POST', SVC, lb('web'));
  assert.is(svc.spec?.loadBalancerIP, '192.168.77.240');
  assert.equal(svc.status?.loadBalancer?.ingress, [{ ip: '192.168.77.240' }]);
  const printed = runCli(['get', 'svc', 'web'], server.cliEnv);
  assert.match(printed.stdout, /web\s+LoadBalancer\s+\S+\s+192\.168\.77\.240\s+80:\d+\/TCP/, printed.stdout + printed.stderr);
  const v6 = await client.request<Service>('POST', SVC, lb('web6', {}, { 'flotilla.io/load-balancer-ips': 'FD00:77::3' }));
  assert.is(v6.spec?.loadBalancerIP, 'fd00:77::3');
  const pools = await eventually('the pool status counting both', async () => {
    const r = runCli(['get', 'addresspools'], server.cliEnv);
    return /default\s+true\s+192\.168\.77\.240-250,fd00:77::\/126\s+2\s/.test(r.stdout) ? r : undefined;
  });
  assert.match(pools.stdout, /^NAME\s+AUTO ASSIGN\s+ADDRESSES\s+ASSIGNED\s+AGE/);
});

test('refusals: an overlapping pool, an address outside every pool, a taken one', async () => {
  const overlap = await refused('POST', POOLS, { apiVersion: 'flotilla.io/v1', kind: 'AddressPool', metadata: { name: 'lan' }, spec: { addresses: ['192.168.77.0/24'] } });
  assert.is(overlap.code, 422);
  assert.match(overlap.message, /AddressPool "lan" is invalid: spec\.addresses\[0\]: Invalid value: "192\.168\.77\.0\/24": overlaps 192\.168\.77\.240-192\.168\.77\.250 of AddressPool "default"/);
  const outside = await refused('POST', SVC, lb('outside', { loadBalancerIP: '10.1.2.3' }));
  assert.is(outside.code, 422);
  assert.match(outside.message, /spec\.loadBalancerIP: Invalid value: "10\.1\.2\.3": not in any AddressPool: the pools are default/);
  const taken = await refused('POST', SVC, lb('taken', {}, { 'flotilla.io/load-balancer-ips': '192.168.77.240' }));
  assert.is(taken.code, 422);
  assert.match(taken.message, /address already allocated to Service default\/web/);
});

test('a bad --load-balancer-pool is a usage error naming the range', () => {
  const r = runCli(['server', '--data', join(dir, 'bad'), '--listen', '127.0.0.1:0', '--cluster-init', '--load-balancer-pool', '192.168.1.250-240'], {});
  assert.is.not(r.code, 0);
  assert.match(r.stderr, /--load-balancer-pool: "192\.168\.1\.250-240": the range ends \(192\.168\.1\.240\) before it starts \(192\.168\.1\.250\)/);
});

test.run();
