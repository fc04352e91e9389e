// `flotilla agent install`: set a machine up to run the agent at boot under systemd.
//
// Two files are rendered: the unit /etc/systemd/system/flotilla-agent.service and the agent's configuration
// /etc/flotilla/agent.env (mode 0600: it holds the join token), an environment file that systemd loads. The
// agent reads its settings from these variables (flags > FLOTILLA_* environment > defaults):
//   FLOTILLA_TOKEN      join token (flt1.<id>.<secret>)
//   FLOTILLA_SERVER     comma-separated server URLs; absent: find servers by mDNS
//   FLOTILLA_DATA       the agent's data dir (node key, pod cache)
//   FLOTILLA_NODE_NAME  node name; absent: the hostname
//   FLOTILLA_INTERFACE  interface for mDNS
// `--root DIR` renders under DIR instead of / (tests, image builders preparing an SD card) and changes nothing
// else; without it the files go to /etc and the user is told which systemctl commands to run.
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { boolFlag, listFlag, stringFlag, UsageError } from './args.js';
import type { ParsedArgs } from './args.js';
import type { CliCommand, Io } from './command.js';

export const UNIT_PATH = '/etc/systemd/system/flotilla-agent.service';
export const ENV_PATH = '/etc/flotilla/agent.env';

export interface AgentInstallConfig {
  servers: string[];
  token: string;
  dataDir: string;
  nodeName?: string;
  interface?: string;
  /** Absolute path of the flotilla executable the unit starts. */
  binary: string;
  /** Seconds systemd waits before restarting a failed agent. */
  restartSec: number;
}

/** The systemd unit. The network must be up (DHCP done) before the agent looks for servers. */
export function renderUnit(cfg: AgentInstallConfig): string {
  return [
    '[Unit]',
    'Description=Flotilla node agent',
    'Documentation=https://github.com/flotilla/flotilla/blob/main/docs/raspberry-pi.md',
    'After=network-online.target docker.service',
    'Wants=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `EnvironmentFile=${ENV_PATH}`,
    `ExecStart=${cfg.binary} agent`,
    'Restart=on-failure',
    `RestartSec=${cfg.restartSec}`,
    // Containers belong to Docker, not to this unit: stopping the agent must not kill the workloads.
    'KillMode=process',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** Values in an environment file are single-line; systemd strips matching double quotes. */
function envLine(name: string, value: string): string {
  if (/[\n\r"\\]/.test(value)) throw new UsageError(`${name}: the value must not contain quotes, backslashes or line breaks`);
  return `${name}="${value}"`;
}

export function renderEnvironment(cfg: AgentInstallConfig): string {
  return [
    '# Settings of the Flotilla agent, read by flotilla-agent.service. Holds the join token: keep it 0600.',
    envLine('FLOTILLA_TOKEN', cfg.token),
    ...(cfg.servers.length > 0 ? [envLine('FLOTILLA_SERVER', cfg.servers.join(','))] : []),
    envLine('FLOTILLA_DATA', cfg.dataDir),
    ...(cfg.nodeName ? [envLine('FLOTILLA_NODE_NAME', cfg.nodeName)] : []),
    ...(cfg.interface ? [envLine('FLOTILLA_INTERFACE', cfg.interface)] : []),
    '',
  ].join('\n');
}

function parseConfig(a: ParsedArgs, io: Io): AgentInstallConfig {
  const token = stringFlag(a, 'token') ?? io.env.FLOTILLA_TOKEN;
  if (!token) throw new UsageError('--token is required: a join token from "flotilla token create"');
  const servers = listFlag(a, 'server').flatMap((s) => s.split(',')).filter(Boolean);
  for (const s of servers) {
    let url: URL;
    try { url = new URL(s); } catch { throw new UsageError(`--server: "${s}" is not a URL`); }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new UsageError(`--server: "${s}" must use http or https`);
  }
  const dataDir = stringFlag(a, 'data') ?? '/var/lib/flotilla/agent';
  if (!isAbsolute(dataDir)) throw new UsageError(`--data: "${dataDir}" must be an absolute path (systemd starts the agent in /)`);
  const binary = stringFlag(a, 'binary') ?? '/usr/local/bin/flotilla';
  if (!isAbsolute(binary)) throw new UsageError(`--binary: "${binary}" must be an absolute path`);
  const restartText = stringFlag(a, 'restart-sec') ?? '5';
  if (!/^\d+$/.test(restartText) || Number(restartText) < 1 || Number(restartText) > 3600) throw new UsageError(`--restart-sec: "${restartText}" must be whole seconds in 1..3600`);
  const nodeName = stringFlag(a, 'name');
  if (nodeName !== undefined && !/^[a-z0-9]([a-z0-9.-]{0,251}[a-z0-9])?$/.test(nodeName)) throw new UsageError(`--name: "${nodeName}" is not a valid node name (lowercase letters, digits, '.', '-')`);
  const iface = stringFlag(a, 'interface');
  return { token, servers, dataDir, binary, restartSec: Number(restartText), ...(nodeName ? { nodeName } : {}), ...(iface ? { interface: iface } : {}) };
}

export const agentInstallCommand: CliCommand = {
  summary: 'install the agent as a systemd service (unit and configuration)',
  usage: 'flotilla agent install --token JOIN_TOKEN [--server URL ...] [--name NODE] [--interface IF] [--data DIR] [--binary PATH] [--restart-sec N] [--root DIR] [--force]',
  flags: [
    { name: 'token', kind: 'string' }, { name: 'server', kind: 'list' }, { name: 'name', kind: 'string' }, { name: 'interface', kind: 'string' },
    { name: 'data', kind: 'string' }, { name: 'binary', kind: 'string' }, { name: 'restart-sec', kind: 'string' }, { name: 'root', kind: 'string' },
    { name: 'force', kind: 'boolean' },
  ],
  async run(a, io) {
    const [verb, ...extra] = a.positionals;
    if (verb !== 'install') throw new UsageError(`expected "install"${verb ? `, got "${verb}"` : ''}`);
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const cfg = parseConfig(a, io);
    const rootFlag = stringFlag(a, 'root');
    const root = rootFlag === undefined ? '/' : resolve(rootFlag);
    const unitPath = join(root, UNIT_PATH);
    const envPath = join(root, ENV_PATH);
    if (!boolFlag(a, 'force')) {
      for (const p of [unitPath, envPath]) if (existsSync(p)) throw new UsageError(`${p} exists; pass --force to overwrite it`);
    }
    mkdirSync(dirname(unitPath), { recursive: true });
    writeFileSync(unitPath, renderUnit(cfg), { mode: 0o644 });
    mkdirSync(dirname(envPath), { recursive: true, mode: 0o700 });
    writeFileSync(envPath, renderEnvironment(cfg), { mode: 0o600 });
    chmodSync(envPath, 0o600);
    io.out(`wrote ${unitPath}\nwrote ${envPath} (mode 0600)\n`);
    if (rootFlag === undefined) io.out('Start the agent now and at every boot:\n  sudo systemctl daemon-reload\n  sudo systemctl enable --now flotilla-agent\nFollow it with:\n  journalctl -u flotilla-agent -f\n');
    return 0;
  },
};
