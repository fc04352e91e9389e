import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { totalmem } from 'node:os';
import { probeHardware } from '../../hardware/probe.js';
import { normaliseInventory } from '../../hardware/inventory.js';

test('a live probe of this machine normalises, and agrees with what Node itself reports', async () => {
  const raw = await probeHardware();
  assert.is(raw.mem.total, totalmem());
  assert.is(raw.osInfo.arch, process.arch);
  assert.ok(Array.isArray(raw.graphics.controllers));
  const inv = normaliseInventory(raw, { hostname: 'probe-test' });
  assert.is(inv.labels['kubernetes.io/arch'], { x64: 'amd64', arm64: 'arm64', arm: 'arm' }[process.arch as string] ?? inv.labels['kubernetes.io/arch']);
  assert.is(inv.labels['flotilla.io/gpu.count'], String(inv.gpus.length));
  assert.is(Number(inv.capacity.cpu), raw.cpu.cores);
});

test.run();
