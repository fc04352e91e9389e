// The load-balancer controller (server/controllers/load-balancer.ts) on the simulated cluster: who announces a
// pool address, when it moves (only after the announcer's speaker lease lapsed), Local, the node-address
// fallback without pools, a pending Service taking an address once a pool has one, and the pools' status.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ClusterSim, R } from './cluster-sim.js';
import { LB_SPEAKER_EXPIRY_MS } from '../../api-types/index.js';

const NODES = ['n1', 'n2', 'n3'];
const ANNOUNCER = 'flotilla.io/load-balancer-node';

async function sim(): Promise<ClusterSim> {
  const s = await new ClusterSim().start();
  for (const [i, n] of NODES.entries()) {
    await s.addNode(n);
    await s.objects.patch(R('nodes'), undefined, n, { status: { addresses: [{ type: 'InternalIP', address: `192.168.1.${i + 1}` }] } }, 'status');
  }
  return s;
}

const service = (name: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: 'v1', kind: 'Service', metadata: { name },
  spec: { type: 'LoadBalancer', selector: { app: name }, ports: [{ port: 80, targetPort: 8080 }], ...extra },
});

const svc = (s: ClusterSim, name: string) => s.get('services', name) as unknown as { metadata: { annotations?: Record<string, string> }; spec: { loadBalancerIP?: string }; status?: { loadBalancer?: { ingress?: { ip: string }[] } } };

/** Steps of `ms`, every speaker in `speaking` renewing at each, until `done`. */
async function stepUntil(s: ClusterSim, speaking: () => readonly string[], done: () => boolean, ms = 100, max = 100): Promise<number> {
  for (let i = 0; i < max; i++) {
    if (done()) return i * ms;
    for (const n of speaking()) s.lbSpeakers.renew(n, n, 1);
    await s.step(ms);
  }
  throw new Error('not reached');
}

test('a pool address is announced by one live speaker, and moves only after its speaker lease lapsed', async () => {
  const s = await sim();
  try {
    await s.objects.create(R('addresspools'), undefined, { apiVersion: 'flotilla.io/v1', kind: 'AddressPool', metadata: { name: 'lan' }, spec: { addresses: ['192.168.1.240-192.168.1.241'] } });
    await s.objects.create(R('services'), 'default', service('web'));
    let speakers = ['n1', 'n2', 'n3'];
    await stepUntil(s, () => speakers, () => svc(s, 'web').metadata.annotations?.[ANNOUNCER] !== undefined);
    assert.equal(svc(s, 'web').status?.loadBalancer?.ingress, [{ ip: '192.168.1.240' }]);
    const first = svc(s, 'web').metadata.annotations![ANNOUNCER]!;
    speakers = NODES.filter((n) => n !== first);
    const moved = await stepUntil(s, () => speakers, () => svc(s, 'web').metadata.annotations?.[ANNOUNCER] !== first);
    assert.ok(moved >= LB_SPEAKER_EXPIRY_MS - 100, `moved after ${moved} ms`);
    assert.ok(speakers.includes(svc(s, 'web').metadata.annotations![ANNOUNCER]!));
    // The pool's status counts what its Services hold.
    await s.step(100);
    assert.equal(s.get('addresspools', 'lan', undefined)!.status, { assignedIPv4: 1, assignedIPv6: 0, availableIPv4: 1, availableIPv6: 0 });
    // With no live speaker nobody announces.
    speakers = [];
    await stepUntil(s, () => speakers, () => svc(s, 'web').metadata.annotations?.[ANNOUNCER] === undefined);
  } finally {
    await s.stop();
  }
});

test('without pools: the Ready nodes\' addresses, and under Local only those with a ready endpoint', async () => {
  const s = await sim();
  try {
    await s.objects.create(R('services'), 'default', service('any'));
    await s.objects.create(R('services'), 'default', service('local', { externalTrafficPolicy: 'Local' }));
    await s.objects.create(R('pods'), 'default', { metadata: { name: 'local-1', labels: { app: 'local' } }, spec: { nodeName: 'n2', containers: [{ name: 'c', image: 'x', ports: [{ containerPort: 8080 }] }] } });
    await s.step(100);
    await s.objects.patch(R('pods'), 'default', 'local-1', { status: { podIP: '10.42.1.5', podIPs: [{ ip: '10.42.1.5' }] } }, 'status');
    const ips = (name: string) => (svc(s, name).status?.loadBalancer?.ingress ?? []).map((i) => i.ip);
    await stepUntil(s, () => [], () => ips('any').length === 3 && ips('local').length === 1);
    assert.equal(ips('any'), ['192.168.1.1', '192.168.1.2', '192.168.1.3']);
    assert.equal(ips('local'), ['192.168.1.2']);
  } finally {
    await s.stop();
  }
});

test('a pending Service (pools full) takes an address once a pool has one', async () => {
  const s = await sim();
  try {
    await s.objects.create(R('addresspools'), undefined, { apiVersion: 'flotilla.io/v1', kind: 'AddressPool', metadata: { name: 'one' }, spec: { addresses: ['192.168.1.240'] } });
    await s.objects.create(R('services'), 'default', service('a'));
    await s.objects.create(R('services'), 'default', service('b'));
    await s.step(100);
    assert.is(svc(s, 'a').spec.loadBalancerIP, '192.168.1.240');
    assert.is(svc(s, 'b').spec.loadBalancerIP, undefined);
    const events = () => s.objects.list(R('events'), 'default').items.map((e) => (e as { reason?: string }).reason);
    assert.ok(events().includes('AllocationFailed'));
    await s.objects.create(R('addresspools'), undefined, { apiVersion: 'flotilla.io/v1', kind: 'AddressPool', metadata: { name: 'two' }, spec: { addresses: ['192.168.1.241'] } });
    await stepUntil(s, () => [], () => svc(s, 'b').spec.loadBalancerIP !== undefined);
    assert.is(svc(s, 'b').spec.loadBalancerIP, '192.168.1.241');
  } finally {
    await s.stop();
  }
});

test.run();
