// The announcing side of LoadBalancer addresses (node-agent/network/lb-announcer.ts) against an in-memory LAN
// link and Service view, with a fake clock: what it adds, refreshes, announces and withdraws, and when it fences.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pino } from 'pino';
import { LB_SPEAKER_FENCE_MS, type EndpointSlice, type Service } from '../../../api-types/index.js';
import { LoadBalancerAnnouncer, type AnnouncerLink } from '../../../node-agent/network/lb-announcer.js';
import type { NodeEvent } from '../../../node-agent/api-client.js';

class FakeLink implements AnnouncerLink {
  readonly ops: string[] = [];
  readonly others = new Set<string>();
  async inUse(address: string) { this.ops.push(`probe ${address}`); return this.others.has(address); }
  async hold(address: string) { this.ops.push(`hold ${address}`); }
  async announce(address: string) { this.ops.push(`announce ${address}`); }
  async release(address: string) { this.ops.push(`release ${address}`); }
  take(): string[] { return this.ops.splice(0); }
}

function lbService(name: string, address: string, node: string | undefined): Service {
  return {
    apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: 'default', ...(node ? { annotations: { 'flotilla.io/load-balancer-node': node } } : {}) },
    spec: { type: 'LoadBalancer', loadBalancerIP: address, ports: [{ port: 80 }] },
  } as Service;
}

function setup() {
  let now = 10_000;
  let services: Service[] = [];
  const link = new FakeLink();
  const events: { service: string; event: NodeEvent }[] = [];
  const announcer = new LoadBalancerAnnouncer({
    nodeName: 'me',
    view: { services: () => services, slicesOf: (): EndpointSlice[] => [], onChange: () => () => {} },
    link,
    renew: async () => {},
    event: async (service, event) => { events.push({ service: service.metadata.name ?? '', event }); },
    log: pino({ level: 'silent' }),
    now: () => now,
  });
  return {
    announcer, link, events,
    set: (s: Service[]) => { services = s; },
    advance: (ms: number) => { now += ms; },
  };
}

test('nothing is held before a renewal was confirmed', async () => {
  const t = setup();
  t.set([lbService('web', '10.0.0.240', 'me')]);
  await t.announcer.tick();
  assert.equal(t.link.take(), []);
});

test('an assigned, free address is probed, added and announced once, then refreshed every tick', async () => {
  const t = setup();
  t.set([lbService('web', '10.0.0.240', 'me'), lbService('other', '10.0.0.241', 'someone-else'), lbService('none', '10.0.0.242', undefined)]);
  await t.announcer.renew();
  await t.announcer.tick();
  assert.equal(t.link.take(), ['probe 10.0.0.240', 'hold 10.0.0.240', 'announce 10.0.0.240']);
  await t.announcer.tick();
  assert.equal(t.link.take(), ['hold 10.0.0.240']);
  assert.equal(t.announcer.held(), ['10.0.0.240']);
});

test('an address moved to another node is withdrawn', async () => {
  const t = setup();
  t.set([lbService('web', '10.0.0.240', 'me')]);
  await t.announcer.renew();
  await t.announcer.tick();
  t.link.take();
  t.set([lbService('web', '10.0.0.240', 'other')]);
  await t.announcer.tick();
  assert.equal(t.link.take(), ['release 10.0.0.240']);
  assert.equal(t.announcer.held(), []);
});

test('without a confirmed renewal for longer than the fence time every address is withdrawn, and taken again after one', async () => {
  const t = setup();
  t.set([lbService('web', '10.0.0.240', 'me')]);
  await t.announcer.renew();
  await t.announcer.tick();
  t.link.take();
  t.advance(LB_SPEAKER_FENCE_MS);
  await t.announcer.tick();
  assert.equal(t.link.take(), ['hold 10.0.0.240'], 'at the fence time itself it still holds');
  t.advance(1);
  await t.announcer.tick();
  assert.equal(t.link.take(), ['release 10.0.0.240']);
  await t.announcer.renew();
  await t.announcer.tick();
  assert.equal(t.link.take(), ['probe 10.0.0.240', 'hold 10.0.0.240', 'announce 10.0.0.240']);
});

test('an address another host answers for is not taken; AddressInUse once it lasts longer than a handover', async () => {
  const t = setup();
  t.set([lbService('web', '10.0.0.245', 'me')]);
  t.link.others.add('10.0.0.245');
  for (let i = 0; i < 20; i++) {
    await t.announcer.renew();
    await t.announcer.tick();
    t.advance(250);
  }
  assert.ok(t.link.take().every((op) => op === 'probe 10.0.0.245'));
  assert.equal(t.events.map((e) => `${e.service} ${e.event.reason}`), ['web AddressInUse']);
  t.link.others.delete('10.0.0.245');
  await t.announcer.tick();
  assert.equal(t.link.take(), ['probe 10.0.0.245', 'hold 10.0.0.245', 'announce 10.0.0.245']);
});

test.run();
