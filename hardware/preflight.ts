// Preflight checks of a node, each with the exact fix for this machine's OS and board. readPreflightInputs
// is the only part that touches the file system (under a root that tests point at a fake tree);
// runPreflight and readPiHealth are pure over what they are given.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

export interface PreflightInputs {
  /** /proc/cgroups (cgroup v1 table; still present on v2 hosts). */
  procCgroups?: string;
  /** /sys/fs/cgroup/cgroup.controllers; present only on a cgroup v2 host. */
  cgroupControllers?: string;
  /** /proc/cmdline: what the running kernel was booted with. */
  procCmdline?: string;
  /** /boot/firmware/cmdline.txt and /boot/cmdline.txt as found (a Pi's kernel command line). */
  bootCmdlines: { path: string; text: string }[];
  /** /proc/device-tree/model without its trailing NUL. */
  deviceTreeModel?: string;
  /** /etc/os-release as key/value pairs, quotes removed. */
  osRelease: Record<string, string>;
  /** true or false when known; undefined when nothing could tell. */
  clockSynchronised?: boolean;
  /** /proc/sys/net/ipv4/ip_forward of the agent's network namespace ("1" or "0"). */
  ipForward?: string;
}

export interface PreflightFacts {
  dockerReachable: boolean;
  /** Names from `docker info` Runtimes, e.g. ["runc", "nvidia"]. */
  dockerRuntimes: string[];
  /** CDI spec files found (/etc/cdi, /var/run/cdi). */
  cdiSpecs: string[];
  hasNvidiaGpu: boolean;
  /** Only where the agent runs the pod network (node-agent/network/pod-network.ts). */
  podNetwork?: {
    /** The cluster CIDR the fixes name (the default until the servers are asked). */
    clusterCidr: string;
    /** Whether an iptables command exists to add the agent's rules with. */
    iptablesFound: boolean;
    /** Policy of the filter table's FORWARD chain, when iptables could tell. */
    forwardPolicy?: string;
    /** firewalld runs (its nftables table inet firewalld exists): it filters forwarded traffic in a table of its own. */
    firewalld: boolean;
  };
}

export interface Finding {
  id: 'memory-cgroup-disabled' | 'docker-unreachable' | 'nvidia-runtime-missing' | 'clock-unsynchronised' | 'clock-sync-unknown'
    | 'ip-forward-disabled' | 'forward-policy-drop' | 'firewalld-forwarding';
  severity: 'error' | 'warning' | 'info';
  message: string;
  /** What to run or change, verbatim. */
  fix: string;
}

const BOOT_CMDLINE_PATHS = ['/boot/firmware/cmdline.txt', '/boot/cmdline.txt'] as const;

/**
 * Reads the preflight inputs under root ("/" on a live machine). `timedatectl` is the output of
 * `timedatectl show -p NTPSynchronized --value` ("yes"/"no") where the caller could run it; it decides the
 * clock state when systemd-timesyncd's flag file is absent (chrony and ntpd set the kernel flag it reads).
 */
export async function readPreflightInputs(root = '/', injected: { timedatectl?: string } = {}): Promise<PreflightInputs> {
  const read = async (path: string): Promise<string | undefined> => {
    try {
      return await readFile(join(root, path), 'utf8');
    } catch {
      return undefined;
    }
  };
  const [procCgroups, cgroupControllers, procCmdline, deviceTreeModel, osReleaseText, timesyncFlag, ipForward, ...cmdlines] = await Promise.all([
    read('/proc/cgroups'),
    read('/sys/fs/cgroup/cgroup.controllers'),
    read('/proc/cmdline'),
    read('/proc/device-tree/model'),
    read('/etc/os-release'),
    read('/run/systemd/timesync/synchronized'),
    read('/proc/sys/net/ipv4/ip_forward'),
    ...BOOT_CMDLINE_PATHS.map(read),
  ]);
  const inputs: PreflightInputs = {
    bootCmdlines: BOOT_CMDLINE_PATHS.flatMap((path, i) => {
      const text = cmdlines[i];
      return text === undefined ? [] : [{ path, text }];
    }),
    osRelease: parseOsRelease(osReleaseText ?? ''),
  };
  if (procCgroups !== undefined) inputs.procCgroups = procCgroups;
  if (cgroupControllers !== undefined) inputs.cgroupControllers = cgroupControllers;
  if (procCmdline !== undefined) inputs.procCmdline = procCmdline;
  if (deviceTreeModel !== undefined) inputs.deviceTreeModel = deviceTreeModel.replace(/\0+$/, '');
  if (ipForward !== undefined) inputs.ipForward = ipForward.trim();
  const timedatectl = injected.timedatectl?.trim();
  if (timesyncFlag !== undefined || timedatectl === 'yes') inputs.clockSynchronised = true;
  else if (timedatectl === 'no') inputs.clockSynchronised = false;
  else if (timedatectl !== undefined) throw new Error(`timedatectl NTPSynchronized "${timedatectl}": expected "yes" or "no"`);
  return inputs;
}

export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (m?.[1] === undefined || m[2] === undefined) continue;
    out[m[1]] = m[2].replace(/^(["'])(.*)\1$/, '$2');
  }
  return out;
}

export function runPreflight(inputs: PreflightInputs, facts: PreflightFacts): Finding[] {
  const findings: Finding[] = [];
  const memory = memoryCgroupFinding(inputs);
  if (memory !== undefined) findings.push(memory);
  if (!facts.dockerReachable) {
    findings.push({
      id: 'docker-unreachable',
      severity: 'error',
      message: 'the Docker Engine does not answer, so no container can run on this node',
      fix: 'sudo systemctl enable --now docker; then either run the agent as root, add its user to the docker group '
        + '(sudo usermod -aG docker "$USER", then log in again), or set DOCKER_HOST to the engine\'s address',
    });
  }
  if (facts.hasNvidiaGpu && facts.dockerReachable && !facts.dockerRuntimes.includes('nvidia') && facts.cdiSpecs.length === 0) {
    findings.push({
      id: 'nvidia-runtime-missing',
      severity: 'error',
      message: 'this node has an NVIDIA GPU but Docker has no nvidia runtime and no CDI spec is installed, so GPU pods cannot start',
      fix: 'install the NVIDIA Container Toolkit (package nvidia-container-toolkit), then run: '
        + 'sudo nvidia-ctk runtime configure --runtime=docker && sudo systemctl restart docker',
    });
  }
  if (facts.podNetwork) findings.push(...podNetworkFindings(inputs, facts.podNetwork));
  if (inputs.clockSynchronised === false) {
    findings.push({
      id: 'clock-unsynchronised',
      severity: 'warning',
      message: 'the system clock is not synchronised: certificates, leases and event times go wrong (a Pi has no battery-backed clock)',
      fix: 'sudo timedatectl set-ntp true (and check that an NTP server is reachable: timedatectl timesync-status)',
    });
  } else if (inputs.clockSynchronised === undefined) {
    findings.push({
      id: 'clock-sync-unknown',
      severity: 'info',
      message: 'could not tell whether the system clock is synchronised (no /run/systemd/timesync/synchronized, no timedatectl answer)',
      fix: 'check with: timedatectl show -p NTPSynchronized --value (expect "yes"); if "no": sudo timedatectl set-ntp true',
    });
  }
  return findings;
}

/**
 * What stops pods on other nodes from reaching this node's pods. A FORWARD policy of DROP (Docker sets it) is a
 * blocker only where the agent cannot add its ACCEPT rules; ufw's chains hang off FORWARD after Docker's
 * DOCKER-USER, where the agent's rules are, so ufw is no blocker; firewalld filters in a table of its own that
 * our rules cannot overrule.
 */
function podNetworkFindings(inputs: PreflightInputs, net: NonNullable<PreflightFacts['podNetwork']>): Finding[] {
  const findings: Finding[] = [];
  if (inputs.ipForward === '0') {
    findings.push({
      id: 'ip-forward-disabled', severity: 'error',
      message: 'net.ipv4.ip_forward is 0: this node does not forward packets, so its pods are unreachable from other nodes and cannot reach them',
      fix: "sudo sysctl -w net.ipv4.ip_forward=1 && echo 'net.ipv4.ip_forward=1' | sudo tee /etc/sysctl.d/90-flotilla.conf",
    });
  }
  if (net.forwardPolicy === 'DROP' && !net.iptablesFound) {
    findings.push({
      id: 'forward-policy-drop', severity: 'error',
      message: 'the FORWARD policy is DROP and there is no iptables command for the agent to accept pod traffic with',
      fix: `install iptables (sudo apt-get install iptables), or accept the cluster CIDR yourself: sudo iptables -I FORWARD -s ${net.clusterCidr} -j ACCEPT && sudo iptables -I FORWARD -d ${net.clusterCidr} -j ACCEPT`,
    });
  }
  if (net.firewalld) {
    findings.push({
      id: 'firewalld-forwarding', severity: 'warning',
      message: 'firewalld is running: it drops forwarded pod traffic in its own nftables table, whatever the agent\'s iptables rules say',
      fix: `sudo firewall-cmd --permanent --zone=trusted --add-source=${net.clusterCidr} && sudo firewall-cmd --reload`,
    });
  }
  return findings;
}

function memoryCgroupEnabled(inputs: PreflightInputs): boolean | undefined {
  // On cgroup v2 the controllers file is the truth; /proc/cgroups there may still list memory as enabled.
  if (inputs.cgroupControllers !== undefined) return inputs.cgroupControllers.split(/\s+/).includes('memory');
  if (inputs.procCgroups === undefined) return undefined;
  for (const line of inputs.procCgroups.split('\n')) {
    const [name, , , enabled] = line.trim().split(/\s+/);
    if (name === 'memory') return enabled === '1';
  }
  return false;
}

const MEMORY_CGROUP_ARGS = 'cgroup_enable=memory cgroup_memory=1';

function memoryCgroupFinding(inputs: PreflightInputs): Finding | undefined {
  if (memoryCgroupEnabled(inputs) !== false) return undefined;
  // swapaccount=1 matters only on cgroup v1, where swap limits are otherwise not accounted; v2 always accounts.
  const args = inputs.cgroupControllers === undefined ? `${MEMORY_CGROUP_ARGS} swapaccount=1` : MEMORY_CGROUP_ARGS;
  const message = 'the memory cgroup is disabled: memory limits cannot be enforced and Docker refuses memory-limited containers';
  const boot = bootConfig(inputs);
  const alreadyInFile = boot.currentText !== undefined && MEMORY_CGROUP_ARGS.split(' ').every((a) => boot.currentText?.split(/\s+/).includes(a));
  if (alreadyInFile && !MEMORY_CGROUP_ARGS.split(' ').every((a) => (inputs.procCmdline ?? '').split(/\s+/).includes(a))) {
    return { id: 'memory-cgroup-disabled', severity: 'error', message: `${message}; ${boot.path} already has ${MEMORY_CGROUP_ARGS} but the running kernel was not booted with it`, fix: 'sudo reboot' };
  }
  return { id: 'memory-cgroup-disabled', severity: 'error', message, fix: boot.fix(args) };
}

interface BootConfig {
  path: string;
  currentText?: string;
  fix(args: string): string;
}

/**
 * Where this machine's kernel command line lives. A Raspberry Pi reads cmdline.txt from its firmware
 * partition, mounted at /boot/firmware on Raspberry Pi OS Bookworm (Debian 12) and later and on Ubuntu, and
 * at /boot on older Raspberry Pi OS; the file is one line and the arguments go at its end. A Jetson boots
 * through extlinux. Other machines boot through GRUB.
 */
function bootConfig(inputs: PreflightInputs): BootConfig {
  const model = inputs.deviceTreeModel ?? '';
  const id = inputs.osRelease.ID ?? '';
  if (model.startsWith('Raspberry Pi')) {
    const version = Number.parseInt(inputs.osRelease.VERSION_ID ?? '', 10);
    let path: string;
    if (id === 'ubuntu' || ((id === 'debian' || id === 'raspbian') && version >= 12)) path = '/boot/firmware/cmdline.txt';
    else if (id === 'debian' || id === 'raspbian') path = '/boot/cmdline.txt';
    else path = inputs.bootCmdlines[0]?.path ?? '/boot/firmware/cmdline.txt';
    const config: BootConfig = {
      path,
      fix: (args) => `append " ${args}" to the end of the single line in ${path} (no new line), then reboot: `
        + `sudo sed -i '1 s/$/ ${args}/' ${path} && sudo reboot`,
    };
    const current = inputs.bootCmdlines.find((c) => c.path === path)?.text;
    if (current !== undefined) config.currentText = current;
    return config;
  }
  if (/jetson/i.test(model)) {
    const path = '/boot/extlinux/extlinux.conf';
    return { path, fix: (args) => `add " ${args}" to the end of the APPEND line of the boot entry in ${path}, then sudo reboot` };
  }
  const debianLike = [id, ...(inputs.osRelease.ID_LIKE ?? '').split(/\s+/)].some((x) => x === 'debian' || x === 'ubuntu');
  const regenerate = debianLike ? 'sudo update-grub' : 'sudo grub2-mkconfig -o /boot/grub2/grub.cfg';
  const path = '/etc/default/grub';
  return { path, fix: (args) => `add "${args}" inside GRUB_CMDLINE_LINUX="..." in ${path}, then run ${regenerate} && sudo reboot` };
}

/** Decoded `vcgencmd get_throttled` plus the SoC temperature; throttled and undervoltage feed status.hardware. */
export interface PiHealth {
  raw: number;
  underVoltageNow: boolean;
  freqCappedNow: boolean;
  throttledNow: boolean;
  softTempLimitNow: boolean;
  underVoltageOccurred: boolean;
  freqCappedOccurred: boolean;
  throttledOccurred: boolean;
  softTempLimitOccurred: boolean;
  /** Slowed down right now, for any reason (throttled, frequency capped or soft temperature limit). */
  throttled: boolean;
  /** Under-voltage right now. */
  undervoltage: boolean;
  temperatureC?: number;
}

/**
 * Decodes `vcgencmd get_throttled` output ("throttled=0x50005") and, when given, the text of
 * /sys/class/thermal/thermal_zone0/temp (millidegrees Celsius, e.g. "52582\n"). Bits per the Raspberry Pi
 * documentation: 0 under-voltage, 1 ARM frequency capped, 2 throttled, 3 soft temperature limit, now;
 * 16..19 the same, since boot.
 */
export function readPiHealth(getThrottled: string, thermalZoneTemp?: string): PiHealth {
  const m = /^\s*throttled=0x([0-9a-f]+)\s*$/i.exec(getThrottled);
  if (m?.[1] === undefined) throw new Error(`vcgencmd get_throttled output "${getThrottled.trim()}": expected throttled=0x<hex>`);
  const raw = Number.parseInt(m[1], 16);
  const bit = (n: number): boolean => (raw & (1 << n)) !== 0;
  const health: PiHealth = {
    raw,
    underVoltageNow: bit(0),
    freqCappedNow: bit(1),
    throttledNow: bit(2),
    softTempLimitNow: bit(3),
    underVoltageOccurred: bit(16),
    freqCappedOccurred: bit(17),
    throttledOccurred: bit(18),
    softTempLimitOccurred: bit(19),
    throttled: bit(1) || bit(2) || bit(3),
    undervoltage: bit(0),
  };
  if (thermalZoneTemp !== undefined) {
    const text = thermalZoneTemp.trim();
    if (!/^-?\d+$/.test(text)) throw new Error(`thermal_zone0/temp "${text}": expected whole millidegrees Celsius`);
    health.temperatureC = Number(text) / 1000;
  }
  return health;
}
