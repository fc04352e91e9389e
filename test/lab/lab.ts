// The multi-host lab: several "hosts" on one private Ethernet segment, built from Linux network namespaces.
// Needs root and iproute2 (`ip netns`); suites that use it are named *.netns.test.ts.
//
// Contract
// - createLab({ hosts: N, prefix }) makes a "switch" namespace `${prefix}-sw` holding bridge br0 (multicast
//   snooping off, so mDNS and any other group traffic floods to every port), and hosts 1..N, namespaces
//   `${prefix}-h1`.. `${prefix}-hN`. Host i has loopback up and one interface `eth0` (a veth whose other end,
//   `h<i>`, is a port of br0) with address `${subnet}.<i>/24` and a route for 224.0.0.0/4 through eth0.
//   Nothing is created in, or routed to, the machine's own (root) namespace.
// - Namespaces whose names start with `${prefix}-` are leftovers of an earlier run: createLab kills the processes
//   in them and deletes them before creating anything. Use a prefix per suite so suites do not collide.
// - A host is named by its number (1..N) or by its name ("h1"). spawn/exec run a command inside the host
//   (`ip netns exec`); spawned processes lead their own process group and the lab kills the whole group.
// - cut(host) takes the host's cable out (the switch-side port goes down: the host sees no carrier and its eth0
//   stops being "running"), heal(host) plugs it back. The host's own configuration is untouched by either.
// - destroy() kills every spawned process and deletes every namespace; it is idempotent. It also runs by itself
//   when the test process exits, on SIGINT/SIGTERM (then the process exits 130/143) and on an uncaught
//   exception, so a failing suite leaves nothing behind. A SIGKILLed run leaves namespaces that the next
//   createLab with the same prefix removes.
// - Spawned processes and their pipes do not keep the test process alive: a suite that forgets destroy() still
//   exits, and the exit hook cleans up.
// - docker: true gives every host its own Docker engine: a dockerd started inside the host's namespace with
//   `nsenter --net=` (`ip netns exec` remounts /sys, and dockerd then fails with "Devices cgroup isn't mounted"),
//   with its own --data-root, --exec-root, --pidfile, containerd namespaces and socket under
//   `${tmpdir}/${prefix}-docker/h<i>`, answering at `host.dockerHost` (unix://...; give it to clients as
//   DOCKER_HOST), with the machine's `images` loaded (default flotilla/testbox:latest). destroy() removes every
//   container of those engines, stops each dockerd with SIGTERM, waits for it, and removes its folder; a leftover
//   folder of a SIGKILLed run is unmounted and removed by the next createLab with the same prefix.
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from '../support/eventually.js';

export interface LabOptions {
  hosts: number;
  /** Namespace name prefix, 1-20 characters of [a-z0-9-] (default "flotilla-lab"). */
  prefix?: string;
  /** First three octets of the lab's /24 (default "10.77.0"); host i gets `${subnet}.i`. */
  subnet?: string;
  /** One Docker engine per host (see the contract). */
  docker?: boolean;
  /** Images of the machine's engine loaded into every host's engine (default flotilla/testbox:latest). */
  images?: readonly string[];
}

export type HostRef = number | string;

export interface LabHost {
  /** "h1", "h2", ... */
  name: string;
  index: number;
  /** The namespace, for `ip netns exec` by hand. */
  netns: string;
  /** IPv4 address of eth0. */
  address: string;
  /** The interface name inside the host. */
  iface: 'eth0';
  /** The host's own Docker engine (unix://...), with docker: true. */
  dockerHost?: string;
}

export interface LabProcess extends ChildProcess {
  readonly host: LabHost;
  /** Everything written to stdout and stderr so far, interleaved in arrival order. */
  output(): string;
  /** Resolves with the output once `pattern` matches it; rejects after timeoutMs or when the process exits first. */
  waitFor(pattern: RegExp, timeoutMs: number): Promise<string>;
  /** Resolves once the process has ended, with its exit code or the signal that ended it (keeps the suite alive until then). */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export interface Lab {
  readonly prefix: string;
  readonly hosts: readonly LabHost[];
  host(ref: HostRef): LabHost;
  spawn(host: HostRef, cmd: string, args?: readonly string[], opts?: Omit<SpawnOptions, 'detached' | 'stdio'>): LabProcess;
  /** Runs a command to completion inside the host; rejects only if it cannot start or outlives timeoutMs (default 10 s). */
  exec(host: HostRef, cmd: string, args?: readonly string[], opts?: { timeoutMs?: number; env?: NodeJS.ProcessEnv }): Promise<ExecResult>;
  /** Runs the docker CLI against the host's own engine (docker: true); rejects as exec does. */
  docker(host: HostRef, args: readonly string[], opts?: { timeoutMs?: number }): Promise<ExecResult>;
  cut(host: HostRef): void;
  heal(host: HostRef): void;
  destroy(): Promise<void>;
}

const DEFAULT_PREFIX = 'flotilla-lab';
const live = new Set<() => void>();
let hooksInstalled = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  const cleanAll = () => { for (const clean of [...live]) clean(); };
  process.on('exit', cleanAll);
  process.on('uncaughtExceptionMonitor', cleanAll);
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.on(signal, () => { cleanAll(); process.exit(code); });
  }
}

/** Runs `ip ARGS` to completion; throws with ip's own message when it fails. */
function ip(args: string[]): string {
  const r = spawnSync('ip', args, { encoding: 'utf8' });
  if (r.error) throw new Error(`ip ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`ip ${args.join(' ')}: ${r.stderr.trim() || `exit ${r.status}`}`);
  return r.stdout;
}

/** Kills every process inside a namespace and deletes it; tolerant of a namespace that is already gone. */
function removeNamespace(netns: string): void {
  const pids = spawnSync('ip', ['netns', 'pids', netns], { encoding: 'utf8' }).stdout ?? '';
  for (const pid of pids.split(/\s+/).filter(Boolean)) {
    try { process.kill(Number(pid), 'SIGKILL'); } catch { /* already gone */ }
  }
  spawnSync('ip', ['netns', 'del', netns]);
}

function namespacesWithPrefix(prefix: string): string[] {
  return ip(['netns', 'list']).split('\n').map((line) => line.split(' ')[0] ?? '').filter((name) => name.startsWith(`${prefix}-`));
}

export async function createLab(options: LabOptions): Promise<Lab> {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  if (!/^[a-z0-9][a-z0-9-]{0,19}$/.test(prefix)) throw new Error(`createLab: prefix ${JSON.stringify(prefix)} must be 1-20 characters of [a-z0-9-]`);
  if (!Number.isInteger(options.hosts) || options.hosts < 1 || options.hosts > 250) throw new Error(`createLab: hosts ${options.hosts} must be an integer in 1..250`);
  const subnet = options.subnet ?? '10.77.0';
  if (!/^(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(subnet) || subnet.split('.').some((o) => Number(o) > 255)) {
    throw new Error(`createLab: subnet ${JSON.stringify(subnet)} must be three octets such as "10.77.0"`);
  }
  if (process.getuid?.() !== 0) throw new Error('createLab: network namespaces need root');
  installExitHooks();

  for (const leftover of namespacesWithPrefix(prefix)) removeNamespace(leftover);
  const dockerRoot = join(tmpdir(), `${prefix}-docker`);
  removeDockerRoot(dockerRoot);

  const switchNs = `${prefix}-sw`;
  const hosts: LabHost[] = Array.from({ length: options.hosts }, (_, i) => ({
    name: `h${i + 1}`, index: i + 1, netns: `${prefix}-h${i + 1}`, address: `${subnet}.${i + 1}`, iface: 'eth0',
  }));
  const processes = new Set<LabProcess>();
  let destroyed = false;

  const engines: { host: LabHost; daemon: ChildProcess; socket: string }[] = [];
  const cleanUp = () => {
    if (destroyed) return;
    destroyed = true;
    live.delete(cleanUp);
    for (const e of engines) stopEngine(e.daemon, e.socket);
    removeDockerRoot(dockerRoot);
    for (const p of processes) {
      if (p.exitCode === null && p.signalCode === null && p.pid !== undefined) {
        try { process.kill(-p.pid, 'SIGKILL'); } catch { /* already gone */ }
      }
    }
    for (const h of hosts) removeNamespace(h.netns);
    removeNamespace(switchNs);
  };
  live.add(cleanUp);

  try {
    ip(['netns', 'add', switchNs]);
    ip(['-n', switchNs, 'link', 'set', 'lo', 'up']);
    ip(['-n', switchNs, 'link', 'add', 'br0', 'type', 'bridge', 'mcast_snooping', '0']);
    ip(['-n', switchNs, 'link', 'set', 'br0', 'up']);
    for (const h of hosts) {
      ip(['netns', 'add', h.netns]);
      ip(['-n', switchNs, 'link', 'add', h.name, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h.netns]);
      ip(['-n', switchNs, 'link', 'set', h.name, 'master', 'br0']);
      ip(['-n', switchNs, 'link', 'set', h.name, 'up']);
      ip(['-n', h.netns, 'link', 'set', 'lo', 'up']);
      ip(['-n', h.netns, 'addr', 'add', `${h.address}/24`, 'dev', 'eth0']);
      ip(['-n', h.netns, 'link', 'set', 'eth0', 'up']);
      ip(['-n', h.netns, 'route', 'add', '224.0.0.0/4', 'dev', 'eth0']);
    }
    if (options.docker) {
      mkdirSync(dockerRoot, { recursive: true });
      const images = join(dockerRoot, 'images.tar');
      const saved = spawnSync('docker', ['save', '-o', images, ...(options.images ?? ['flotilla/testbox:latest'])], { encoding: 'utf8' });
      if (saved.status !== 0) throw new Error(`lab: docker save: ${saved.stderr.trim()}`);
      for (const h of hosts) engines.push(startEngine(h, join(dockerRoot, h.name)));
      await Promise.all(engines.map(async (e) => {
        await eventually(`the Docker engine of ${e.host.name}`, () => {
          if (e.daemon.exitCode !== null) throw new Error(`dockerd of ${e.host.name} exited (${e.daemon.exitCode}): ${readFileSync(join(dockerRoot, e.host.name, 'dockerd.log'), 'utf8').slice(-1500)}`);
          return spawnSync('docker', ['-H', e.socket, 'version'], { stdio: 'ignore' }).status === 0;
        }, { limitMs: 60_000, everyMs: 100 });
        const loaded = spawnSync('docker', ['-H', e.socket, 'load', '-i', images], { encoding: 'utf8' });
        if (loaded.status !== 0) throw new Error(`lab: docker load into ${e.host.name}: ${loaded.stderr.trim()}`);
        e.host.dockerHost = e.socket;
      }));
    }
  } catch (e) {
    cleanUp();
    throw e;
  }

  const host = (ref: HostRef): LabHost => {
    const found = typeof ref === 'number' ? hosts[ref - 1] : hosts.find((h) => h.name === ref);
    if (!found) throw new Error(`lab: no host ${JSON.stringify(ref)} (hosts are 1..${hosts.length} or h1..h${hosts.length})`);
    return found;
  };
  const alive = () => { if (destroyed) throw new Error('lab: already destroyed'); };

  const lab: Lab = {
    prefix,
    hosts,
    host,
    spawn(ref, cmd, args = [], opts = {}) {
      alive();
      const h = host(ref);
      const child = spawn('ip', ['netns', 'exec', h.netns, cmd, ...args], { ...opts, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
      let output = '';
      const listeners = new Set<() => void>();
      const onData = (d: Buffer) => { output += d.toString('utf8'); for (const l of listeners) l(); };
      child.stdout?.on('data', onData);
      child.stderr?.on('data', onData);
      const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.on('close', (code, signal) => { for (const l of listeners) l(); resolve({ code, signal }); });
      });
      // Unreferenced so that a forgotten process never keeps the suite alive; exited() references them again
      // because a caller awaiting the end must not see the event loop run dry first.
      const pipes = [child.stdout, child.stderr] as unknown as ({ ref(): void; unref(): void } | null)[];
      child.unref();
      for (const p of pipes) p?.unref();
      const proc = Object.assign(child, {
        host: h,
        output: () => output,
        exited: () => {
          child.ref();
          for (const p of pipes) p?.ref();
          return ended;
        },
        waitFor(pattern: RegExp, timeoutMs: number): Promise<string> {
          return new Promise<string>((resolve, reject) => {
            const check = () => {
              if (pattern.test(output)) { finish(); resolve(output); }
              else if (child.exitCode !== null || child.signalCode !== null) {
                finish();
                reject(new Error(`lab: ${h.name} ${cmd} exited (${child.exitCode ?? child.signalCode}) before printing ${pattern}; output:\n${output}`));
              }
            };
            const timer = setTimeout(() => {
              finish();
              reject(new Error(`lab: ${h.name} ${cmd} did not print ${pattern} within ${timeoutMs} ms; output:\n${output}`));
            }, timeoutMs);
            const finish = () => { clearTimeout(timer); listeners.delete(check); };
            listeners.add(check);
            check();
          });
        },
      }) as LabProcess;
      processes.add(proc);
      return proc;
    },
    async exec(ref, cmd, args = [], opts = {}) {
      alive();
      const h = host(ref);
      return run('ip', ['netns', 'exec', h.netns, cmd, ...args], opts.timeoutMs ?? 10_000, opts.env);
    },
    docker(ref, args, opts = {}) {
      alive();
      const h = host(ref);
      if (!h.dockerHost) throw new Error(`lab: ${h.name} has no Docker engine (createLab with docker: true)`);
      return run('docker', ['-H', h.dockerHost, ...args], opts.timeoutMs ?? 30_000);
    },
    cut(ref) {
      alive();
      ip(['-n', switchNs, 'link', 'set', host(ref).name, 'down']);
    },
    heal(ref) {
      alive();
      ip(['-n', switchNs, 'link', 'set', host(ref).name, 'up']);
    },
    async destroy() {
      const pending = [...processes].filter((p) => p.exitCode === null && p.signalCode === null).map((p) => p.exited());
      cleanUp();
      await Promise.all(pending);
    },
  };
  return lab;
}

/** Runs a command of the machine to completion; rejects only if it cannot start or outlives timeoutMs. */
function run(cmd: string, args: readonly string[], timeoutMs: number, env: NodeJS.ProcessEnv = process.env): Promise<ExecResult> {
  return new Promise<ExecResult>((resolve, reject) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => { stdout += d.toString('utf8'); });
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`lab: ${cmd} ${args.join(' ')} ran longer than ${timeoutMs} ms`));
    }, timeoutMs);
    child.on('error', (e) => { clearTimeout(timer); reject(e); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ code, stdout, stderr }); });
  });
}

/** Starts a dockerd inside the host's namespace with everything of its own under dir. */
function startEngine(h: LabHost, dir: string): { host: LabHost; daemon: ChildProcess; socket: string } {
  mkdirSync(dir, { recursive: true });
  const socket = `unix://${join(dir, 'docker.sock')}`;
  const log = spawnSync('sh', ['-c', `: > ${join(dir, 'dockerd.log')}`]);
  if (log.status !== 0) throw new Error(`lab: cannot write ${dir}`);
  const daemon = spawn('sh', ['-c', `exec nsenter --net=/var/run/netns/${h.netns} dockerd --data-root ${join(dir, 'data')} --exec-root ${join(dir, 'exec')} `
    + `-H ${socket} --pidfile ${join(dir, 'dockerd.pid')} --containerd-namespace ${h.netns} --containerd-plugins-namespace ${h.netns}-plugins >> ${join(dir, 'dockerd.log')} 2>&1`], { stdio: 'ignore' });
  daemon.unref();
  return { host: h, daemon, socket };
}

/**
 * Removes every container of the engine, then stops dockerd with SIGTERM and waits for it (its containerd and
 * shims go with it; SIGKILL after 30 s). Synchronous, because the exit hook runs it too.
 */
function stopEngine(daemon: ChildProcess, socket: string): void {
  if (daemon.exitCode !== null || daemon.signalCode !== null || daemon.pid === undefined) return;
  const ids = spawnSync('docker', ['-H', socket, 'ps', '-aq'], { encoding: 'utf8', timeout: 10_000 }).stdout?.split(/\s+/).filter(Boolean) ?? [];
  if (ids.length > 0) spawnSync('docker', ['-H', socket, 'rm', '-f', ...ids], { stdio: 'ignore', timeout: 30_000 });
  try { process.kill(daemon.pid, 'SIGTERM'); } catch { return; }
  // Our own child: once it exits it stays a zombie until this (blocked) process reaps it, so "gone" is state Z.
  const waited = spawnSync('sh', ['-c', `i=0; while s=$(cut -d' ' -f3 /proc/${daemon.pid}/stat 2>/dev/null) && [ -n "$s" ] && [ "$s" != Z ]; do i=$((i+1)); [ $i -gt 300 ] && exit 1; sleep 0.1; done`]);
  if (waited.status !== 0) {
    try { process.kill(daemon.pid, 'SIGKILL'); } catch { /* gone meanwhile */ }
  }
}

/** Unmounts whatever a dockerd left mounted under root (a SIGKILLed run) and removes it. */
function removeDockerRoot(root: string): void {
  if (!existsSync(root)) return;
  const mounts = readFileSync('/proc/mounts', 'utf8').split('\n').map((l) => l.split(' ')[1] ?? '').filter((m) => m.startsWith(`${root}/`));
  for (const m of mounts.reverse()) spawnSync('umount', ['-l', m]);
  rmSync(root, { recursive: true, force: true });
}

/** Set (to the host's name) in the environment of a suite that reRunInLabHost started inside a lab host. */
export const LAB_HOST_ENV = 'FLOTILLA_LAB_HOST';

/**
 * For suites whose code must itself run inside a namespace (a socket cannot change namespace): called from the
 * suite's top level with import.meta.url, it builds a lab, runs the same compiled file again inside host 1,
 * forwards that run's output (so the test runner reads its uvu totals) and exit code, destroys the lab and
 * returns true: the outer process must then skip its tests. Inside the host it returns false at once.
 */
export async function reRunInLabHost(fileUrl: string, options: LabOptions): Promise<boolean> {
  if (process.env[LAB_HOST_ENV] !== undefined) return false;
  const lab = await createLab(options);
  try {
    const inner = lab.spawn(1, process.execPath, ['--enable-source-maps', new URL(fileUrl).pathname], {
      env: { ...process.env, [LAB_HOST_ENV]: lab.host(1).name },
    });
    inner.stdout?.on('data', (d: Buffer) => process.stdout.write(d));
    inner.stderr?.on('data', (d: Buffer) => process.stderr.write(d));
    const { code, signal } = await inner.exited();
    process.exitCode = code ?? 1;
    if (signal) process.stderr.write(`lab: the suite inside ${lab.host(1).name} was killed by ${signal}\n`);
  } finally {
    await lab.destroy();
  }
  return true;
}
