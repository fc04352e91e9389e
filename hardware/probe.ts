// The impure edge of the hardware inventory: it asks the machine, keeps every answer exactly as its source
// gives it, and decides nothing. All interpretation lives in inventory.ts, so that a RawHardware recorded
// on a real machine (hardware/fixtures/*.json) replays through the same code as a live probe.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import si from 'systeminformation';

/**
 * One recording of a machine. The seven systeminformation results are kept in the exact shape the library
 * returns. Two facts systeminformation does not collect are kept as the raw text of their source:
 * - deviceTreeModel: /proc/device-tree/model (the only place a Jetson names itself; a Pi names itself
 *   there too), with the trailing NUL removed; absent on machines without a device tree.
 * - nvidiaSmiCsv: stdout of `nvidia-smi --query-gpu=<NVIDIA_SMI_FIELDS> --format=csv,noheader,nounits`,
 *   because systeminformation drops the GPU UUID, and the UUID is what Docker's DeviceIDs need; absent
 *   where nvidia-smi is missing or fails.
 */
export interface RawHardware {
  cpu: si.Systeminformation.CpuData;
  mem: si.Systeminformation.MemData;
  osInfo: si.Systeminformation.OsData;
  system: si.Systeminformation.SystemData;
  graphics: si.Systeminformation.GraphicsData;
  fsSize: si.Systeminformation.FsSizeData[];
  cpuTemperature: si.Systeminformation.CpuTemperatureData;
  deviceTreeModel?: string;
  nvidiaSmiCsv?: string;
}

/** The nvidia-smi columns recorded in RawHardware.nvidiaSmiCsv, in this order. */
export const NVIDIA_SMI_FIELDS = ['index', 'uuid', 'name', 'memory.total', 'driver_version', 'pci.bus_id'] as const;

export async function probeHardware(): Promise<RawHardware> {
  // One after another: systeminformation spawns several processes per call and edge machines have few cores.
  const cpu = await si.cpu();
  const mem = await si.mem();
  const osInfo = await si.osInfo();
  const system = await si.system();
  const graphics = await si.graphics();
  const fsSize = await si.fsSize();
  const cpuTemperature = await si.cpuTemperature();
  const raw: RawHardware = { cpu, mem, osInfo, system, graphics, fsSize, cpuTemperature };
  const deviceTreeModel = await readDeviceTreeModel();
  if (deviceTreeModel !== undefined) raw.deviceTreeModel = deviceTreeModel;
  const nvidiaSmiCsv = await queryNvidiaSmi();
  if (nvidiaSmiCsv !== undefined) raw.nvidiaSmiCsv = nvidiaSmiCsv;
  return raw;
}

async function readDeviceTreeModel(): Promise<string | undefined> {
  try {
    return (await readFile('/proc/device-tree/model', 'utf8')).replace(/\0+$/, '');
  } catch {
    return undefined;
  }
}

function queryNvidiaSmi(): Promise<string | undefined> {
  const args = [`--query-gpu=${NVIDIA_SMI_FIELDS.join(',')}`, '--format=csv,noheader,nounits'];
  return new Promise((resolve) => {
    execFile('nvidia-smi', args, { timeout: 15_000 }, (error, stdout) => resolve(error ? undefined : stdout));
  });
}
