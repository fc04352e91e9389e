import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { normaliseInventory, parseNvidiaSmiCsv, labelSafe, InventoryError, type NodeInventory } from '../../hardware/inventory.js';
import type { RawHardware } from '../../hardware/probe.js';

// Compiled to dist-*/test/hardware/, so the fixtures are three folders up.
const fixtures = new URL('../../../hardware/fixtures/', import.meta.url);
function fixture(name: string): RawHardware {
  return JSON.parse(readFileSync(new URL(`${name}.json`, fixtures), 'utf8')) as RawHardware;
}
const base = (arch: string, os: string, host: string, gpus: number): Record<string, string> =>
  ({ 'kubernetes.io/arch': arch, 'kubernetes.io/os': os, 'kubernetes.io/hostname': host, 'flotilla.io/gpu.count': String(gpus) });

test('x86 server: no GPU; the Matrox BMC VGA is not counted', () => {
  const inv = normaliseInventory(fixture('x86-server-nogpu'));
  assert.equal(inv.labels, base('amd64', 'linux', 'rack3-node07', 0));
  assert.equal(inv.capacity, { cpu: '128', memory: '263849568Ki', pods: '110' });
  assert.equal(inv.allocatable, inv.capacity);
  assert.equal(inv.gpus, []);
  assert.equal(inv.hardware, { cpuModel: 'Intel Xeon® Gold 6338', temperatureC: 41 });
  assert.equal(inv.nodeInfo, { architecture: 'amd64', operatingSystem: 'linux', osImage: 'Debian GNU/Linux 12', kernelVersion: '6.1.0-18-amd64' });
});

test('two different NVIDIA GPUs: one entry each, UUIDs from nvidia-smi, model label "mixed", memory label the smaller', () => {
  const inv = normaliseInventory(fixture('x86-two-nvidia'));
  assert.equal(inv.labels, {
    ...base('amd64', 'linux', 'gpu-ws1', 2),
    'flotilla.io/gpu.vendor': 'nvidia', 'flotilla.io/gpu.model': 'mixed', 'flotilla.io/gpu.memory': '24564Mi',
  });
  assert.equal(inv.capacity, { cpu: '64', memory: '263710892Ki', pods: '110', 'nvidia.com/gpu': '2' });
  assert.equal(inv.gpus, [
    { index: 0, uuid: 'GPU-7b1e9c44-2f3a-5d6e-8a90-b1c2d3e4f506', vendor: 'nvidia', model: 'NVIDIA GeForce RTX 4090', memory: '24564Mi', health: 'Healthy', busId: '0000:01:00.0', driver: '550.54.14' },
    { index: 1, uuid: 'GPU-0c4d1a7e-93b2-4f11-a6d5-7e8f90a1b2c3', vendor: 'nvidia', model: 'NVIDIA GeForce RTX 3090', memory: '24Gi', health: 'Healthy', busId: '0000:21:00.0', driver: '550.54.14' },
  ]);
});

test('NVIDIA GPUs without nvidia-smi text fall back to systeminformation, identified by bus id', () => {
  const raw = fixture('x86-two-nvidia');
  delete raw.nvidiaSmiCsv;
  const inv = normaliseInventory(raw);
  assert.equal(inv.gpus.map((g) => [g.uuid, g.model, g.memory, g.driver]), [
    ['0000:01:00.0', 'NVIDIA GeForce RTX 4090', '24564Mi', '550.54.14'],
    ['0000:21:00.0', 'NVIDIA GeForce RTX 3090', '24Gi', '550.54.14'],
  ]);
});

test('Raspberry Pi 4: pi.model label without revision, VideoCore skipped, Cortex core in cpuModel', () => {
  const inv = normaliseInventory(fixture('rpi4'));
  assert.equal(inv.labels, { ...base('arm64', 'linux', 'pi4-kitchen', 0), 'flotilla.io/pi.model': 'Raspberry-Pi-4-Model-B' });
  assert.equal(inv.capacity, { cpu: '4', memory: '3885652Ki', pods: '110' });
  assert.equal(inv.gpus, []);
  assert.equal(inv.hardware, { piModel: 'Raspberry Pi 4 Model B Rev 1.4', cpuModel: 'BCM2711 Cortex-A72', temperatureC: 52.582 });
});

test('Raspberry Pi 5', () => {
  const inv = normaliseInventory(fixture('rpi5'));
  assert.equal(inv.labels, { ...base('arm64', 'linux', 'pi5-garage', 0), 'flotilla.io/pi.model': 'Raspberry-Pi-5-Model-B' });
  assert.equal(inv.capacity, { cpu: '4', memory: '8256792Ki', pods: '110' });
  assert.equal(inv.gpus, []);
  assert.equal(inv.hardware, { piModel: 'Raspberry Pi 5 Model B Rev 1.0', cpuModel: 'BCM2712 Cortex-A76', temperatureC: 61.65 });
});

test('Jetson Orin: the integrated GPU is one nvidia.com/gpu with the shared memory, named by the device tree', () => {
  const inv = normaliseInventory(fixture('jetson-orin'));
  assert.equal(inv.labels, {
    ...base('arm64', 'linux', 'orin-lab', 1),
    'flotilla.io/gpu.vendor': 'nvidia', 'flotilla.io/gpu.model': 'NVIDIA-Jetson-AGX-Orin-Developer-Kit', 'flotilla.io/gpu.memory': '62837Mi',
  });
  assert.equal(inv.capacity, { cpu: '12', memory: '64345744Ki', pods: '110', 'nvidia.com/gpu': '1' });
  assert.equal(inv.gpus, [{ index: 0, uuid: '0', vendor: 'nvidia', model: 'NVIDIA Jetson AGX Orin Developer Kit', memory: '62837Mi', health: 'Healthy' }]);
  assert.equal(inv.hardware, { jetsonModel: 'NVIDIA Jetson AGX Orin Developer Kit', cpuModel: 'Cortex-A78AE', temperatureC: 44.968 });
});

test('AMD box: two MI210 as amd.com/gpu, the ASPEED BMC VGA skipped', () => {
  const inv = normaliseInventory(fixture('amd-gpu'));
  assert.equal(inv.labels, {
    ...base('amd64', 'linux', 'mi210-a', 2),
    'flotilla.io/gpu.vendor': 'amd', 'flotilla.io/gpu.model': 'AMD-Instinct-MI210', 'flotilla.io/gpu.memory': '65520Mi',
  });
  assert.equal(inv.capacity, { cpu: '64', memory: '527990552Ki', pods: '110', 'amd.com/gpu': '2' });
  assert.equal(inv.gpus, [
    { index: 0, uuid: '0000:83:00.0', vendor: 'amd', model: 'AMD Instinct MI210', memory: '65520Mi', health: 'Healthy', busId: '0000:83:00.0' },
    { index: 1, uuid: '0000:c3:00.0', vendor: 'amd', model: 'AMD Instinct MI210', memory: '65520Mi', health: 'Healthy', busId: '0000:c3:00.0' },
  ]);
});

test('real H100 recording: nvidia-smi wins over the clinfo-derived controller and its wrong bus address', () => {
  const raw = fixture('h100-server');
  assert.is(raw.graphics.controllers[0]?.busAddress, '00:00.6', 'the recording keeps systeminformation\'s own answer');
  const inv = normaliseInventory(raw);
  assert.equal(inv.labels, {
    ...base('amd64', 'linux', 'vm', 1),
    'flotilla.io/gpu.vendor': 'nvidia', 'flotilla.io/gpu.model': 'NVIDIA-H100-80GB-HBM3', 'flotilla.io/gpu.memory': '81559Mi',
  });
  assert.equal(inv.capacity, { cpu: '16', memory: '131981020Ki', pods: '110', 'nvidia.com/gpu': '1' });
  assert.equal(inv.gpus, [{
    index: 0, uuid: 'GPU-59709197-3f3b-e03e-c2bf-a6a07843292d', vendor: 'nvidia', model: 'NVIDIA H100 80GB HBM3',
    memory: '81559Mi', health: 'Healthy', busId: '0000:00:06.0', driver: '580.159.04',
  }]);
  assert.equal(inv.nodeInfo.osImage, 'Ubuntu 24.04.3 LTS');
  // The same GPU as the CSV nvidia-smi wrote with headers beside the recording.
  const csv = readFileSync(new URL('h100-server.nvidia-smi.csv', fixtures), 'utf8').split('\n')[1] ?? '';
  assert.ok(csv.includes(inv.gpus[0]?.uuid ?? 'missing'));
});

test('display-only rule: AMD APU graphics and Intel integrated graphics are skipped, Intel Arc counts', () => {
  const raw = fixture('x86-server-nogpu');
  raw.graphics.controllers = [
    { vendor: 'Advanced Micro Devices, Inc. [AMD/ATI]', model: 'Cezanne [Radeon Vega Series / Radeon Vega Mobile Series]', bus: 'Onboard', busAddress: '05:00.0', vram: 512, vramDynamic: true },
    { vendor: 'Intel Corporation', model: 'CometLake-S GT2 [UHD Graphics 630]', bus: 'Onboard', busAddress: '00:02.0', vram: 256, vramDynamic: false },
    { vendor: 'Intel Corporation', model: 'DG2 [Arc A770]', bus: 'PCIe', busAddress: '03:00.0', vram: 16384, vramDynamic: false },
  ];
  const inv = normaliseInventory(raw);
  assert.equal(inv.gpus, [{ index: 0, uuid: '0000:03:00.0', vendor: 'intel', model: 'DG2 [Arc A770]', memory: '16Gi', health: 'Healthy', busId: '0000:03:00.0' }]);
  assert.equal(inv.capacity, { cpu: '128', memory: '263849568Ki', pods: '110' }, 'Intel GPUs have no capacity key in the shared shape');
  assert.is(inv.labels['flotilla.io/gpu.vendor'], 'intel');
});

test('reserved amounts come off allocatable only', () => {
  const inv: NodeInventory = normaliseInventory(fixture('rpi4'), { reserved: { cpu: '500m', memory: '256Mi' }, maxPods: 40, hostname: 'Kitchen-Pi' });
  assert.equal(inv.capacity, { cpu: '4', memory: '3885652Ki', pods: '40' });
  assert.equal(inv.allocatable, { cpu: '3500m', memory: '3623508Ki', pods: '40' });
  assert.is(inv.labels['kubernetes.io/hostname'], 'kitchen-pi');
  const gpu = normaliseInventory(fixture('x86-two-nvidia'), { reserved: { cpu: '2', memory: '1Gi' } });
  assert.equal(gpu.allocatable, { cpu: '62', memory: '262662316Ki', pods: '110', 'nvidia.com/gpu': '2' });
});

test('bad options and unknown input give errors naming what is wrong', () => {
  const raw = fixture('rpi4');
  assert.throws(() => normaliseInventory(raw, { reserved: { cpu: '5' } }), /reserved\.cpu "5"/);
  assert.throws(() => normaliseInventory(raw, { reserved: { memory: '1Ti' } }), /reserved\.memory "1Ti"/);
  assert.throws(() => normaliseInventory(raw, { reserved: { memory: 'lots' } }), /invalid quantity "lots"/);
  assert.throws(() => normaliseInventory(raw, { maxPods: 0 }), /maxPods 0/);
  assert.throws(() => normaliseInventory(raw, { hostname: 'bad host!' }), (e: unknown) => e instanceof InventoryError && /hostname "bad host!"/.test(e.message));
  assert.throws(() => normaliseInventory({ ...raw, osInfo: { ...raw.osInfo, arch: 'sparc' } }), /osInfo\.arch "sparc"/);
  assert.throws(() => parseNvidiaSmiCsv('0, GPU-x, Tesla T4\n'), /line 1 .* expected 6/);
});

test('GPU health from outside checks, board health over the probed temperature', () => {
  const inv = normaliseInventory(fixture('x86-two-nvidia'), { gpuHealth: { 'GPU-0c4d1a7e-93b2-4f11-a6d5-7e8f90a1b2c3': 'Unhealthy' } });
  assert.equal(inv.gpus.map((g) => g.health), ['Healthy', 'Unhealthy']);
  const pi = normaliseInventory(fixture('rpi4'), { boardHealth: { temperatureC: 80.1, throttled: true, undervoltage: false } });
  assert.equal(pi.hardware, { piModel: 'Raspberry Pi 4 Model B Rev 1.4', cpuModel: 'BCM2711 Cortex-A72', temperatureC: 80.1, throttled: true, undervoltage: false });
});

test('nvidia-smi rows sort by index and bus ids shorten to a 4-digit domain', () => {
  const rows = parseNvidiaSmiCsv('1, GPU-b, Tesla T4, 15360, 535.1, 00000000:3B:00.0\n0, GPU-a, NVIDIA A100-SXM4-40GB, 40960, 535.1, 00000000:07:00.0\n');
  assert.equal(rows.map((r) => [r.index, r.uuid, r.busId, r.memoryMiB]), [[0, 'GPU-a', '0000:07:00.0', 40960], [1, 'GPU-b', '0000:3b:00.0', 15360]]);
  assert.is(labelSafe('NVIDIA A100-SXM4-40GB'), 'NVIDIA-A100-SXM4-40GB');
  assert.is(labelSafe(' (weird) name/with:colons '), 'weird-name-with-colons');
  assert.is(labelSafe('x'.repeat(70)).length, 63);
});

test.run();
