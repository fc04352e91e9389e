// A real Docker registry for tests: Debian's docker-registry (distribution 2.x) on 127.0.0.1 at a free port,
// with its own config file and storage folder, optionally with basic auth (an htpasswd file made with
// apache2-utils' htpasswd -B). Docker talks plain HTTP to registries on 127.0.0.0/8 without being told.
// Its access log counts the manifest requests it answered, which is what a pull costs the registry.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Docker from 'dockerode';
import { eventually } from './eventually.js';
import { fixedPort, ownChild, stopChild } from './server-process.js';

export interface RegistryOptions {
  /** Users and passwords the registry demands (htpasswd); anonymous access when absent. */
  users?: Record<string, string>;
}

export class LocalRegistry {
  /** host:port, the registry part of image names. */
  readonly address: string;
  private readonly child: ChildProcess;
  private readonly dir: string;
  private output = '';

  private constructor(address: string, child: ChildProcess, dir: string) {
    this.address = address;
    this.child = child;
    this.dir = dir;
    const keep = (d: Buffer) => { this.output += d.toString('utf8'); };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
  }

  /** Starts a registry and resolves once it answers; stop() it in an after hook. */
  static async start(options: RegistryOptions = {}): Promise<LocalRegistry> {
    const dir = mkdtempSync(join(tmpdir(), 'flotilla-registry-'));
    const address = `127.0.0.1:${await fixedPort()}`;
    let auth = '';
    if (options.users) {
      const lines = Object.entries(options.users).map(([user, password]) => {
        const made = spawnSync('htpasswd', ['-Bbn', user, password], { encoding: 'utf8' });
        if (made.status !== 0) throw new Error(`htpasswd failed (is apache2-utils installed?): ${made.stderr || made.error?.message}`);
        return made.stdout.trim();
      });
      writeFileSync(join(dir, 'htpasswd'), `${lines.join('\n')}\n`);
      auth = `auth:\n  htpasswd:\n    realm: flotilla-test\n    path: ${join(dir, 'htpasswd')}\n`;
    }
    writeFileSync(join(dir, 'config.yml'), [
      'version: 0.1',
      'log:\n  level: info\n  accesslog:\n    disabled: false',
      `storage:\n  filesystem:\n    rootdirectory: ${join(dir, 'data')}\n  delete:\n    enabled: true`,
      `http:\n  addr: ${address}`,
      auth,
    ].join('\n'));
    const child = ownChild(spawn('docker-registry', ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] }));
    const registry = new LocalRegistry(address, child, dir);
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('error', (err) => reject(new Error(`docker-registry did not start (is the docker-registry package installed?): ${err.message}`)));
      child.once('spawn', () => resolve());
    });
    try {
      await spawned;
      await eventually(`registry on ${address} answers`, async () => {
        if (child.exitCode !== null) throw new Error(`docker-registry exited ${child.exitCode}: ${registry.output.slice(-1000)}`);
        const res = await fetch(`http://${address}/v2/`).catch(() => undefined);
        return res !== undefined && (res.status === 200 || res.status === 401);
      }, { limitMs: 20_000, detail: () => registry.output.slice(-1000) });
    } catch (err) {
      await registry.stop();
      throw err;
    }
    return registry;
  }

  /**
   * Pushes an image of the local engine as ADDRESS/repository:tag (with these credentials when the registry
   * wants them), then drops that local tag again so that a node has to pull it. Resolves with the image name.
   */
  async push(localImage: string, repository: string, tag: string, auth?: { username: string; password: string }): Promise<string> {
    const docker = new Docker();
    const name = `${this.address}/${repository}:${tag}`;
    await docker.getImage(localImage).tag({ repo: `${this.address}/${repository}`, tag });
    try {
      // The engine wants an X-Registry-Auth header on a push even when it is anonymous.
      const stream = await docker.getImage(name).push({ authconfig: auth ? { ...auth, serveraddress: this.address } : {} });
      await new Promise<void>((resolve, reject) => {
        docker.modem.followProgress(stream, (err: unknown, events: Array<{ error?: string }>) => {
          const failed = events?.find((e) => e.error);
          if (err || failed) reject(new Error(`push of ${name} failed: ${err instanceof Error ? err.message : failed?.error}`));
          else resolve();
        });
      });
    } finally {
      await docker.getImage(name).remove();
    }
    return name;
  }

  /**
   * How many requests for the manifest of repository:tag (GET or HEAD) the registry answered with 200: one per
   * pull by that tag, whether the image changed or not (Docker then fetches what changed by digest).
   */
  manifestRequests(repository: string, tag: string): number {
    const escaped = `${repository}/manifests/${tag}`.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    return (this.output.match(new RegExp(`"(?:GET|HEAD) /v2/${escaped} HTTP/[0-9.]+" 200 `, 'g')) ?? []).length;
  }

  async stop(): Promise<void> {
    await stopChild(this.child);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
