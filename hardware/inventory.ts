// Pure normalisation of one RawHardware recording into what a Node object carries: labels, capacity,
// allocatable, status.gpus, status.hardware and nodeInfo. No I/O here: the same function runs on a live
// probe and on the fixtures under hardware/fixtures/.
//
// Quantities use api-types/quantity.ts (a leaf module with no imports), so that the inventory writes exactly
// the quantities the API validates and the scheduler parses.
import { bytes, cpuMillis, formatBytes, formatCpu } from '../api-types/quantity.js';
import type { RawHardware } from './probe.js';
import { GPU_RESOURCE_AMD, GPU_RESOURCE_NVIDIA, LABEL_ARCH, LABEL_GPU_COUNT, LABEL_GPU_MEMORY, LABEL_GPU_MODEL, LABEL_GPU_VENDOR, LABEL_HOSTNAME, LABEL_OS, LABEL_PI_MODEL } from '../api-types/index.js';

export type GpuHealth = 'Healthy' | 'Unhealthy';

/** One compute GPU; the shape of Node.status.gpus[]. */
export interface InventoryGpu {
  /** Position in status.gpus; for NVIDIA GPUs it equals nvidia-smi's index (they come first, in its order). */
  index: number;
  /** What Docker's DeviceIDs get: the NVIDIA UUID; else the PCI bus id; "0" for a Jetson's integrated GPU. */
  uuid: string;
  vendor: string;
  model: string;
  /** A quantity, e.g. "81559Mi". */
  memory: string;
  health: GpuHealth;
  busId?: string;
  driver?: string;
}

export interface InventoryHardware {
  piModel?: string;
  jetsonModel?: string;
  temperatureC?: number;
  throttled?: boolean;
  undervoltage?: boolean;
  cpuModel?: string;
}

export interface InventoryNodeInfo {
  /** Go architecture name: amd64, arm64, arm, ... */
  architecture: string;
  operatingSystem: string;
  osImage: string;
  kernelVersion: string;
}

export interface NodeInventory {
  labels: Record<string, string>;
  capacity: Record<string, string>;
  allocatable: Record<string, string>;
  gpus: InventoryGpu[];
  hardware: InventoryHardware;
  nodeInfo: InventoryNodeInfo;
}

export interface InventoryOptions {
  /** Overrides osInfo.hostname; lowercased, must be a valid label value. */
  hostname?: string;
  /** Kept back from allocatable for the OS and the agent itself (quantities, e.g. cpu "500m", memory "256Mi"). */
  reserved?: { cpu?: string; memory?: string };
  /** Pods this node accepts; default 110, as the kubelet. */
  maxPods?: number;
  /** Health verdicts by GPU uuid from outside checks (e.g. XID errors); a GPU not named is Healthy. */
  gpuHealth?: Record<string, GpuHealth>;
  /** Board health read separately (preflight.ts readPiHealth); fills status.hardware. */
  boardHealth?: { temperatureC?: number; throttled?: boolean; undervoltage?: boolean };
}

export class InventoryError extends Error {
  override name = 'InventoryError';
}

export const DEFAULT_MAX_PODS = 110;

// Node's process.arch names (as systeminformation's osInfo.arch reports them) to Go's GOARCH, which is what
// kubernetes.io/arch and image manifests use.
const GO_ARCH: Record<string, string> = {
  x64: 'amd64', ia32: '386', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x',
  riscv64: 'riscv64', loong64: 'loong64', mips: 'mips', mipsel: 'mipsle',
};
const GO_OS: Record<string, string> = { linux: 'linux', darwin: 'darwin', win32: 'windows', freebsd: 'freebsd' };

const MIB = 1024 * 1024;

export function normaliseInventory(raw: RawHardware, opts: InventoryOptions = {}): NodeInventory {
  const architecture = GO_ARCH[raw.osInfo.arch];
  if (architecture === undefined) {
    throw new InventoryError(`osInfo.arch "${raw.osInfo.arch}" is not a known architecture (known: ${Object.keys(GO_ARCH).join(', ')})`);
  }
  const operatingSystem = GO_OS[raw.osInfo.platform];
  if (operatingSystem === undefined) {
    throw new InventoryError(`osInfo.platform "${raw.osInfo.platform}" is not a supported operating system`);
  }
  const hostname = (opts.hostname ?? raw.osInfo.hostname).toLowerCase();
  if (!isLabelValue(hostname) || hostname === '') {
    throw new InventoryError(`hostname "${hostname}" is not a valid label value (at most 63 of [a-z0-9-_.], starting and ending alphanumeric)`);
  }
  const maxPods = opts.maxPods ?? DEFAULT_MAX_PODS;
  if (!Number.isInteger(maxPods) || maxPods < 1) throw new InventoryError(`maxPods ${maxPods} is not a positive integer`);

  const piModel = raw.system.manufacturer === 'Raspberry Pi Foundation' ? raw.system.model : undefined;
  const jetsonModel = raw.deviceTreeModel !== undefined && /jetson/i.test(raw.deviceTreeModel) ? raw.deviceTreeModel : undefined;
  const gpus = collectGpus(raw, jetsonModel, opts.gpuHealth ?? {});

  const labels: Record<string, string> = {
    [LABEL_ARCH]: architecture,
    [LABEL_OS]: operatingSystem,
    [LABEL_HOSTNAME]: hostname,
    [LABEL_GPU_COUNT]: String(gpus.length),
  };
  if (gpus.length > 0) {
    // A node label holds one value; where the GPUs differ, vendor and model say "mixed" and memory gives the
    // smallest GPU, so that a selector on gpu.memory promises every GPU at least that much. Per-GPU placement
    // reads status.gpus, not these labels.
    labels[LABEL_GPU_VENDOR] = labelSafe(sameOrMixed(gpus.map((g) => g.vendor)));
    labels[LABEL_GPU_MODEL] = labelSafe(sameOrMixed(gpus.map((g) => g.model)));
    labels[LABEL_GPU_MEMORY] = formatBytes(Math.min(...gpus.map((g) => bytes(g.memory))));
  }
  if (piModel !== undefined) {
    // The board revision ("Rev 1.4") is left out of the label so that one selector matches every revision.
    labels[LABEL_PI_MODEL] = labelSafe(piModel.replace(/\s+Rev\s+[\d.]+$/i, ''));
  }

  const cpuMilli = raw.cpu.cores * 1000;
  const memoryBytes = raw.mem.total;
  const capacity: Record<string, string> = {
    cpu: formatCpu(cpuMilli),
    memory: formatBytes(memoryBytes),
    pods: String(maxPods),
  };
  const nvidiaCount = gpus.filter((g) => g.vendor === 'nvidia').length;
  const amdCount = gpus.filter((g) => g.vendor === 'amd').length;
  if (nvidiaCount > 0) capacity[GPU_RESOURCE_NVIDIA] = String(nvidiaCount);
  if (amdCount > 0) capacity[GPU_RESOURCE_AMD] = String(amdCount);

  const reservedCpu = opts.reserved?.cpu === undefined ? 0 : cpuMillis(opts.reserved.cpu);
  const reservedMemory = opts.reserved?.memory === undefined ? 0 : bytes(opts.reserved.memory);
  if (reservedCpu < 0 || reservedCpu > cpuMilli) {
    throw new InventoryError(`reserved.cpu "${opts.reserved?.cpu}" must lie between 0 and the node's ${capacity.cpu} cores`);
  }
  if (reservedMemory < 0 || reservedMemory > memoryBytes) {
    throw new InventoryError(`reserved.memory "${opts.reserved?.memory}" must lie between 0 and the node's ${capacity.memory} of memory`);
  }
  const allocatable: Record<string, string> = {
    ...capacity,
    cpu: formatCpu(cpuMilli - reservedCpu),
    memory: formatBytes(memoryBytes - reservedMemory),
  };

  const hardware: InventoryHardware = {};
  if (piModel !== undefined) hardware.piModel = piModel;
  if (jetsonModel !== undefined) hardware.jetsonModel = jetsonModel;
  const cpuModel = describeCpu(raw);
  if (cpuModel !== '') hardware.cpuModel = cpuModel;
  const temperature = opts.boardHealth?.temperatureC ?? raw.cpuTemperature.main;
  if (typeof temperature === 'number' && Number.isFinite(temperature)) hardware.temperatureC = temperature;
  if (opts.boardHealth?.throttled !== undefined) hardware.throttled = opts.boardHealth.throttled;
  if (opts.boardHealth?.undervoltage !== undefined) hardware.undervoltage = opts.boardHealth.undervoltage;

  const nodeInfo: InventoryNodeInfo = {
    architecture,
    operatingSystem,
    osImage: [raw.osInfo.distro, raw.osInfo.release].filter((s) => s !== '').join(' '),
    kernelVersion: raw.osInfo.kernel,
  };
  return { labels, capacity, allocatable, gpus, hardware, nodeInfo };
}

/** Letters, digits, '-', '_', '.'; runs of anything else become one '-'; trimmed to alphanumeric ends; 63 at most. */
export function labelSafe(text: string): string {
  return text
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .slice(0, 63)
    .replace(/^[^A-Za-z0-9]+|[^A-Za-z0-9]+$/g, '');
}

function isLabelValue(text: string): boolean {
  return /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/.test(text);
}

function sameOrMixed(values: string[]): string {
  return values.every((v) => v === values[0]) ? (values[0] ?? '') : 'mixed';
}

function describeCpu(raw: RawHardware): string {
  // On a Pi, systeminformation moves the core name ("Cortex-A72") into family and puts the SoC in brand.
  if (raw.system.raspberry !== undefined) return [raw.cpu.brand, raw.cpu.family].filter((s) => s !== '').join(' ');
  return [raw.cpu.manufacturer, raw.cpu.brand].filter((s) => s !== '').join(' ');
}

interface GpuCandidate {
  vendor: string;
  model: string;
  memoryMiB: number;
  uuid: string;
  busId?: string;
  driver?: string;
}

function collectGpus(raw: RawHardware, jetsonModel: string | undefined, health: Record<string, GpuHealth>): InventoryGpu[] {
  const smi = raw.nvidiaSmiCsv === undefined ? [] : parseNvidiaSmiCsv(raw.nvidiaSmiCsv);
  const found: GpuCandidate[] = smi.map((row) => ({
    vendor: 'nvidia', model: row.name, memoryMiB: row.memoryMiB, uuid: row.uuid, busId: row.busId, driver: row.driver,
  }));
  for (const c of raw.graphics.controllers) {
    const vendor = computeVendor(c);
    if (vendor === undefined) continue;
    // nvidia-smi, when it answered, is the authority on NVIDIA GPUs: systeminformation's own NVIDIA entries
    // come from lspci or clinfo and can carry a wrong bus address (clinfo reads the slot as the function:
    // see fixtures/h100-server.json, "00:00.6" for 00000000:00:06.0).
    if (vendor === 'nvidia' && smi.length > 0) continue;
    const busId = c.pciBus ? shortBusId(c.pciBus) : c.busAddress ? shortBusId(`0000:${c.busAddress}`) : undefined;
    const candidate: GpuCandidate = {
      vendor,
      model: c.name ?? c.model,
      memoryMiB: c.memoryTotal ?? c.vram ?? 0,
      uuid: busId ?? '',
    };
    if (busId !== undefined) candidate.busId = busId;
    if (c.driverVersion) candidate.driver = c.driverVersion;
    if (candidate.uuid === '') throw new InventoryError(`graphics controller "${c.vendor} ${c.model}" has no bus address to identify it`);
    found.push(candidate);
  }
  if (jetsonModel !== undefined && !found.some((g) => g.vendor === 'nvidia')) {
    // A Jetson's GPU sits inside the SoC, not on PCI, and shares system memory. The NVIDIA container runtime
    // there takes device indices, so "0" is its identifier.
    found.push({ vendor: 'nvidia', model: jetsonModel, memoryMiB: Math.floor(raw.mem.total / MIB), uuid: '0' });
  }
  return found.map((g, index) => {
    const gpu: InventoryGpu = {
      index,
      uuid: g.uuid,
      vendor: g.vendor,
      model: g.model,
      memory: formatBytes(g.memoryMiB * MIB),
      health: health[g.uuid] ?? 'Healthy',
    };
    if (g.busId !== undefined) gpu.busId = g.busId;
    if (g.driver !== undefined) gpu.driver = g.driver;
    return gpu;
  });
}

/**
 * The lowercase vendor of a compute GPU, or undefined for an adapter that only drives a display. The rule:
 * NVIDIA and AMD adapters with their own memory are compute GPUs, as are Intel's discrete Arc, Flex and Max
 * cards. Everything else is display-only: BMC VGA (ASPEED, Matrox), the Pi's VideoCore (Broadcom), virtual
 * adapters (QEMU, VMware, VirtualBox), Intel integrated graphics and AMD APU graphics (vramDynamic: they
 * share system memory and Docker cannot hand them out whole).
 */
function computeVendor(c: RawHardware['graphics']['controllers'][number]): string | undefined {
  const vendor = c.vendor.toLowerCase();
  if (vendor.includes('nvidia')) return 'nvidia';
  if (c.vramDynamic) return undefined;
  if (vendor.includes('advanced micro devices') || /\b(amd|ati)\b/.test(vendor)) return 'amd';
  if (vendor.includes('intel') && /\b(arc|flex|max)\b/i.test(c.model)) return 'intel';
  return undefined;
}

/** "00000000:01:00.0" (nvidia-smi's 8-digit domain) -> "0000:01:00.0", lowercased. */
function shortBusId(busId: string): string {
  return busId.toLowerCase().replace(/^0000(?=[0-9a-f]{4}:)/, '');
}

export interface NvidiaSmiRow {
  index: number;
  uuid: string;
  name: string;
  memoryMiB: number;
  driver: string;
  busId: string;
}

/**
 * Parses `nvidia-smi --query-gpu=index,uuid,name,memory.total,driver_version,pci.bus_id
 * --format=csv,noheader,nounits` (probe.ts NVIDIA_SMI_FIELDS), sorted by index, bus ids shortened (shortBusId).
 */
export function parseNvidiaSmiCsv(text: string): NvidiaSmiRow[] {
  const rows: NvidiaSmiRow[] = [];
  for (const [lineNo, line] of text.split('\n').entries()) {
    if (line.trim() === '') continue;
    const cells = line.split(',').map((s) => s.trim());
    const [index, uuid, name, memory, driver, busId] = cells;
    if (cells.length !== 6 || index === undefined || uuid === undefined || name === undefined
      || memory === undefined || driver === undefined || busId === undefined) {
      throw new InventoryError(`nvidia-smi line ${lineNo + 1} "${line}": expected 6 comma-separated fields (index, uuid, name, memory.total, driver_version, pci.bus_id)`);
    }
    const memoryMiB = Number(memory);
    if (!/^\d+$/.test(index) || !Number.isInteger(memoryMiB)) {
      throw new InventoryError(`nvidia-smi line ${lineNo + 1} "${line}": index and memory.total must be whole numbers`);
    }
    rows.push({ index: Number(index), uuid, name, memoryMiB, driver, busId: shortBusId(busId) });
  }
  return rows.sort((a, b) => a.index - b.index);
}
