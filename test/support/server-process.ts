import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { StopWaiting, eventually } from './eventually.js';
import { ApiClientError, pinnedFetch } from '../../client/client.js';
import type { ApiClient, ClientTls } from '../../client/client.js';
import { caHash } from '../../client/pki.js';
import { formatClusterToken, SERVER_CREDENTIAL_PREFIX } from '../../client/tokens.js';

/** The repository root, from a compiled file under dist/test/support. */
export const repoRoot = new URL('../../../', import.meta.url).pathname;
export const flotillaBin = join(repoRoot, 'bin', 'flotilla.js');
/** `flotilla server` over the benchmark-only plain HTTP (test/support/plain-http-server.ts). */
const plainHttpServer = new URL('./plain-http-server.js', import.meta.url).pathname;

/**
 * A URL where nothing answers: port 1 is privileged and has no listener on the machines these tests run on, so
 * a connection is refused at once. Unlike a port found free and closed again, nothing can take it meanwhile.
 */
export const deadUrl = 'https://127.0.0.1:1';

/**
 * A TCP port for a test that must name one before anything listens on it (a pod's hostPort). It is chosen
 * below the kernel's ephemeral range (net.ipv4.ip_local_port_range), where no other process's listen on port 0
 * or outgoing connection can take it between this check and its use; it is checked free by listening on it on
 * all addresses, and another is chosen on EADDRINUSE. Anything that can listen on port 0 should do that instead.
 */
export async function fixedPort(): Promise<number> {
  let ephemeralFrom = 32768;
  try { ephemeralFrom = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || ephemeralFrom; } catch { /* not Linux */ }
  const low = Math.min(20_000, ephemeralFrom - 1000);
  for (let tries = 0; ; tries++) {
    const port = low + Math.floor(Math.random() * (ephemeralFrom - low));
    const free = await new Promise<boolean>((resolve, reject) => {
      const srv = createServer();
      srv.once('error', (err: NodeJS.ErrnoException) => (err.code === 'EADDRINUSE' || err.code === 'EACCES' ? resolve(false) : reject(err)));
      srv.listen(port, () => srv.close(() => resolve(true)));
    });
    if (free) return port;
    if (tries > 100) throw new Error(`no free port found in ${low}-${ephemeralFrom - 1}`);
  }
}

/**
 * The API URL in what `flotilla server` or `flotilla up` printed once it listens and has its cluster
 * ("... listening on https://HOST:PORT (data in ..."): with `--listen HOST:0` the only way to learn the port.
 */
export function listeningUrl(output: string): string | undefined {
  return /listening on (https?:\/\/[^\s)]+)/.exec(output)?.[1];
}

const owned = new Set<ChildProcess>();
process.on('exit', () => { for (const c of owned) c.kill('SIGKILL'); });
// A suite stopped by a signal (run-tests' timeout sends SIGTERM) exits through its 'exit' handlers too.
for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) process.on(signal, () => process.exit(code));

/**
 * Ties `child` to the test process: SIGKILLed when it exits however it exits (a failed set-up, an uncaught
 * error, a test that forgot to stop it), so no server outlives its suite. Tests still stop what they start;
 * this is the net under them. Returns the child.
 */
export function ownChild<C extends ChildProcess>(child: C): C {
  owned.add(child);
  child.once('exit', () => owned.delete(child));
  return child;
}

/** Sends the signal and resolves once the process is gone (at once if it is gone already). */
export async function stopChild(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill(signal);
  });
}

/**
 * A real `flotilla server` process on a loopback address, for end-to-end tests. The first start listens on
 * port 0 (the server picks a free port and prints its URL); later starts ask for the same port, so a restarted
 * member keeps the URL the cluster knows it by.
 */
export class ServerProcess {
  child?: ChildProcess;
  output = '';
  /** 0 until the first start has learned the port (unless one was given). */
  port: number;
  /** `transport` 'http-for-benchmarks' runs the plain-HTTP server that only benchmarks use (to measure what TLS costs). */
  constructor(readonly dataDir: string, readonly host: string, port = 0, readonly extraArgs: string[] = [], readonly transport: 'https' | 'http-for-benchmarks' = 'https') {
    this.port = port;
  }

  get url(): string {
    if (this.port === 0) throw new Error(`flotilla server in ${this.dataDir} has no URL before its first start`);
    return `${this.transport === 'https' ? 'https' : 'http'}://${this.host}:${this.port}`;
  }

  /** The cluster CA certificate file (<data>/pki/ca.crt), there from the first start on. */
  get caPath(): string {
    return join(this.dataDir, 'pki', 'ca.crt');
  }

  get ca(): string {
    return readFileSync(this.caPath, 'utf8');
  }

  /** What a client verifies this server with. */
  get tls(): ClientTls {
    return { ca: this.ca };
  }

  /** The full server token (FLT1<CA hash>::server:<secret>) other servers join with. */
  get serverToken(): string {
    return formatClusterToken(caHash(this.ca), `${SERVER_CREDENTIAL_PREFIX}${this.clusterSecret}`);
  }

  /** Where CLI processes find this server, its admin token and its CA (FLOTILLA_SERVER, FLOTILLA_TOKEN, FLOTILLA_CA). */
  get cliEnv(): Record<string, string> {
    return { FLOTILLA_SERVER: this.url, FLOTILLA_TOKEN: this.token, FLOTILLA_CA: this.caPath };
  }

  /** A fetch verifying this server against its CA (read now). */
  fetch(input: string | URL, init?: RequestInit): Promise<Response> {
    this.#fetch ??= pinnedFetch(this.tls);
    return this.#fetch(input, init);
  }

  #fetch?: ReturnType<typeof pinnedFetch>;

  get token(): string {
    return readFileSync(join(this.dataDir, 'admin-token'), 'utf8').trim();
  }

  get clusterSecret(): string {
    return readFileSync(join(this.dataDir, 'cluster-secret'), 'utf8').trim();
  }

  /**
   * Starts the server and resolves once it has said it listens and /readyz answers ok. A restart whose port
   * another process took meanwhile (EADDRINUSE) is tried again until the port is free. On failure the process
   * is killed and the error carries its output.
   */
  async start(limitMs = 60_000): Promise<void> {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) throw new Error(`flotilla server in ${this.dataDir} is already running`);
    const spawned = () => {
      // FLOTILLA_SERVER_NODE_ARGS passes flags to the server's node (e.g. --cpu-prof for profiling a benchmark).
      const nodeArgs = (process.env.FLOTILLA_SERVER_NODE_ARGS ?? '').split(' ').filter(Boolean);
      const child = ownChild(spawn(process.execPath, [...nodeArgs, this.transport === 'https' ? flotillaBin : plainHttpServer, 'server', '--data', this.dataDir, '--listen', `${this.host}:${this.port}`, ...this.extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] }));
      let output = '';
      const keep = (d: Buffer) => { output += d; this.output += d; };
      child.stdout!.on('data', keep);
      child.stderr!.on('data', keep);
      this.child = child;
      return { child, output: () => output };
    };
    let attempt = spawned();
    try {
      await eventually(`flotilla server in ${this.dataDir} ready`, async () => {
        if (attempt.child.exitCode !== null || attempt.child.signalCode !== null) {
          if (this.port === 0 || !/EADDRINUSE/.test(attempt.output())) throw new StopWaiting(`it exited with ${attempt.child.exitCode ?? attempt.child.signalCode}`);
          attempt = spawned();
          return undefined;
        }
        // Until it says it listens, the port may be another process's (the one that made an attempt fail).
        const url = listeningUrl(attempt.output());
        if (!url) return undefined;
        if (this.port === 0) this.port = Number(new URL(url).port);
        const probe = pinnedFetch(this.tls, 1);
        try {
          return (await probe(`${this.url}/readyz`, { signal: AbortSignal.timeout(5_000) })).ok;
        } finally {
          probe.close();
        }
      }, { limitMs, everyMs: 100, detail: () => `server output:\n${this.output}` });
    } catch (err) {
      await stopChild(attempt.child, 'SIGKILL');
      throw err;
    }
  }

  /** Sends the signal and waits for the process to be gone. */
  async kill(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    if (this.child) await stopChild(this.child, signal);
  }
}

/** Runs the CLI as a user would, with the environment given. */
export function runCli(args: string[], env: Record<string, string>, input?: string): { code: number; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [flotillaBin, ...args], { env: { PATH: process.env.PATH ?? '', ...env }, input, encoding: 'utf8', timeout: 60_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

/** The error a server answered `method path` with (its Status as an ApiClientError); throws when it accepted the request. */
export async function refusal(client: ApiClient, method: string, path: string, body: unknown): Promise<ApiClientError> {
  try {
    await client.request(method, path, body);
  } catch (err) {
    if (err instanceof ApiClientError) return err;
    throw err;
  }
  throw new Error(`${method} ${path} was accepted`);
}
