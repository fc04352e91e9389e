// FakeRuntime: a ContainerRuntime held entirely in memory, for hollow nodes (thousands of containers in one
// process) and for tests of the pod worker. What a container "does" is scripted per image with setBehaviour;
// an image without a script runs until stopped. Only timers with unref() are used, so an idle fake never
// keeps the process alive.
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  ContainerNotFoundError,
  ImageNotFoundError,
  ImagePullError,
  type ContainerConfig,
  type ContainerEvent,
  type ContainerRuntime,
  type ContainerStats,
  type ContainerStatus,
  type ContainerSummary,
  type ExecResult,
  type ImageSummary,
  type ImageInfo,
  type LogLine,
  type LogOptions,
  type PullProgress,
  type RegistryAuth,
  type SandboxConfig,
  type VolumeOptions,
  LABEL_RESTART_COUNT,
} from './types.js';

export interface FakeBehaviour {
  /** The main process ends by itself this many ms after start, with exitCode (default 0). */
  exitAfterMs?: number;
  exitCode?: number;
  /** The exit after exitAfterMs is an out-of-memory kill (exit code 137, oomKilled). */
  oom?: boolean;
  /** Written to stdout at start. */
  output?: string[];
  /** Answers exec; without it exec fails with exit code 126. */
  exec?: (command: string[]) => ExecResult;
  /** Ignores SIGTERM, so stop waits the whole grace period before the kill. */
  ignoresTerm?: boolean;
  /** Memory the process reports in stats. */
  memoryBytes?: number;
}

interface FakeContainer {
  id: string;
  name: string;
  image: string;
  labels: Record<string, string>;
  state: ContainerSummary['state'];
  exitCode: number | null;
  oomKilled: boolean;
  startedAt?: string;
  finishedAt?: string;
  startedMs: number;
  ip?: string;
  log: LogLine[];
  timer?: NodeJS.Timeout;
  behaviour: FakeBehaviour;
  /** Woken on every new log line and on exit: followers of logs wait on it. */
  changed: Set<() => void>;
}

const UNPULLABLE = /^127\.0\.0\.1:1\//;
/** How many pulls' credentials a fake remembers (a hollow node pulls for as long as it runs). */
const PULL_AUTHS_KEPT = 100;
/** The size every fake image has. */
export const FAKE_IMAGE_BYTES = 1 << 20;

/** A fake image's content id: a digest of its name. */
export class FakeRuntime implements ContainerRuntime {
  readonly name = 'fake';
  private readonly images = new Set<string>();
  private readonly failingPulls = new Map<string, string>();
  private readonly behaviours = new Map<string, FakeBehaviour>();
  private readonly containers = new Map<string, FakeContainer>();
  private readonly watchers = new Set<{ labels: Record<string, string>; onEvent: (e: ContainerEvent) => void }>();
  /** Named volumes made by ensureVolume, by name. */
  readonly volumes = new Map<string, VolumeOptions>();
  private nextId = 1;
  /** Registry pulls (pullImage, and ensureImage of a missing image): lets tests see back-off and pull policies at work. */
  pullAttempts = 0;
  /** The credentials each registry pull was given (undefined: none), in order; the last PULL_AUTHS_KEPT. */
  readonly pullAuths: (RegistryAuth | undefined)[] = [];
  private readonly protectedPrefixes = new Map<string, { username: string; password: string }>();

  private readonly runtimes: readonly string[];
  private readonly platform: Pick<ImageSummary, 'os' | 'architecture' | 'variant'>;

  /** `runtimes`: what runtimeHandlers() reports (default runc only, an engine without extra runtimes);
   * `platform`: what listImages() says every image is for (default linux/amd64). */
  constructor(options: { images?: string[]; runtimes?: string[]; platform?: { os: string; architecture: string; variant?: string } } = {}) {
    for (const image of options.images ?? []) this.images.add(image);
    this.runtimes = [...options.runtimes ?? ['runc']];
    const p = options.platform ?? { os: 'linux', architecture: 'amd64' };
    this.platform = { os: p.os, architecture: p.architecture, variant: p.variant ?? '' };
  }

  /** Pulls of this image fail with this message. Images on 127.0.0.1:1 always fail. */
  failPull(image: string, message = `pull access denied for ${image}`): void {
    this.failingPulls.set(image, message);
  }

  /** The image is present from now on, as after a load or a fetch from a peer node. */
  addImage(image: string): void {
    this.images.add(image);
  }

  setBehaviour(image: string, behaviour: FakeBehaviour): void {
    this.behaviours.set(image, behaviour);
  }

  /**
   * Images whose name starts with `prefix` pull only with these credentials: anonymous or other pulls fail
   * with the registry's words, as registry:2 with htpasswd answers Docker.
   */
  requireAuth(prefix: string, username: string, password: string): void {
    this.protectedPrefixes.set(prefix, { username, password });
  }

  async ensureImage(image: string, onProgress?: PullProgress, signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted();
    if (!image || /\s/.test(image)) throw new ImagePullError(image, 'InvalidImageName', `invalid image name "${image}"`);
    if (this.images.has(image)) return;
    await this.pullImage(image, { ...(onProgress ? { onProgress } : {}), ...(signal ? { signal } : {}) });
  }

  async inspectImage(image: string): Promise<ImageInfo | undefined> {
    return this.images.has(image) ? { id: fakeImageId(image), sizeBytes: FAKE_IMAGE_BYTES, user: '' } : undefined;
  }

  async pullImage(image: string, options: { auth?: RegistryAuth; onProgress?: PullProgress; signal?: AbortSignal } = {}): Promise<void> {
    options.signal?.throwIfAborted();
    this.pullAttempts++;
    this.pullAuths.push(options.auth);
    if (this.pullAuths.length > PULL_AUTHS_KEPT) this.pullAuths.shift();
    const failure = this.failingPulls.get(image) ?? (UNPULLABLE.test(image) ? 'Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused' : undefined);
    if (failure !== undefined) throw new ImagePullError(image, 'ErrImagePull', failure);
    for (const [prefix, wanted] of this.protectedPrefixes) {
      if (!image.startsWith(prefix)) continue;
      if (!options.auth) throw new ImagePullError(image, 'ErrImagePull', `Head "https://${image.split('/')[0]}/v2/": no basic auth credentials`);
      if (options.auth.username !== wanted.username || options.auth.password !== wanted.password) {
        throw new ImagePullError(image, 'ErrImagePull', 'unauthorized: authentication required');
      }
    }
    options.onProgress?.({ status: 'Pulling fs layer', layer: 'fake' });
    options.onProgress?.({ status: 'Downloading', layer: 'fake', current: FAKE_IMAGE_BYTES / 2, total: FAKE_IMAGE_BYTES });
    options.onProgress?.({ status: 'Download complete', layer: 'fake' });
    this.images.add(image);
  }

  async runSandbox(config: SandboxConfig): Promise<string> {
    const c = this.add(config.name, config.image, config.labels, {});
    c.ip = `10.88.${(this.nextId >> 8) & 255}.${this.nextId & 255}`;
    this.start(c);
    return c.id;
  }

  async createContainer(config: ContainerConfig): Promise<string> {
    if (!this.images.has(config.image)) throw new Error(`no such image: ${config.image}`);
    if (config.runtime !== undefined && !this.runtimes.includes(config.runtime)) throw new Error(`unknown or invalid runtime name: ${config.runtime}`);
    const sandbox = this.containers.get(config.sandboxId);
    if (!sandbox) throw new Error(`sandbox ${config.sandboxId} not found`);
    const c = this.add(config.name, config.image, config.labels, this.behaviours.get(config.image) ?? {});
    c.ip = sandbox.ip;
    return c.id;
  }

  async startContainer(id: string): Promise<void> {
    const c = this.get(id);
    if (c.state === 'running') return;
    this.start(c);
  }

  async stopContainer(id: string, graceSeconds: number): Promise<void> {
    const c = this.get(id);
    if (c.state !== 'running') return;
    if (c.behaviour.ignoresTerm) await new Promise((r) => setTimeout(r, graceSeconds * 1000).unref());
    if (c.state === 'running') this.exit(c, c.behaviour.ignoresTerm ? 137 : 143, false);
  }

  async removeContainer(id: string): Promise<void> {
    const c = this.containers.get(id);
    if (!c) return;
    if (c.state === 'running') this.exit(c, 137, false);
    this.containers.delete(id);
    this.emit(c, 'destroy');
  }

  async listContainers(labels: Record<string, string>): Promise<ContainerSummary[]> {
    const out: ContainerSummary[] = [];
    for (const c of this.containers.values()) {
      if (matches(c.labels, labels)) out.push({ id: c.id, name: c.name, image: c.image, state: c.state, labels: { ...c.labels } });
    }
    return out;
  }

  async inspectContainer(id: string): Promise<ContainerStatus> {
    const c = this.get(id);
    const status: ContainerStatus = {
      id: c.id, name: c.name, image: c.image, state: c.state, labels: { ...c.labels },
      exitCode: c.exitCode, oomKilled: c.oomKilled, restartCount: Number(c.labels[LABEL_RESTART_COUNT] ?? 0),
    };
    if (c.startedAt) status.startedAt = c.startedAt;
    if (c.finishedAt) status.finishedAt = c.finishedAt;
    if (c.ip) status.ip = c.ip;
    return status;
  }

  async *logs(id: string, options: LogOptions = {}): AsyncIterable<LogLine> {
    const c = this.get(id);
    let next = options.tail === undefined ? 0 : Math.max(0, c.log.length - options.tail);
    for (;;) {
      while (next < c.log.length) yield c.log[next++]!;
      if (!options.follow || c.state !== 'running' || options.signal?.aborted) return;
      await new Promise<void>((resolve) => {
        const wake = () => { c.changed.delete(wake); options.signal?.removeEventListener('abort', wake); resolve(); };
        c.changed.add(wake);
        options.signal?.addEventListener('abort', wake, { once: true });
      });
    }
  }

  async exec(id: string, command: string[]): Promise<ExecResult> {
    const c = this.get(id);
    if (c.state !== 'running') throw new Error(`container ${id} is not running`);
    const handler = c.behaviour.exec;
    if (!handler) return { exitCode: 126, stdout: '', stderr: `fake runtime: no exec script for image ${c.image}: ${command.join(' ')}\n` };
    return handler(command);
  }

  async stats(id: string): Promise<ContainerStats> {
    const c = this.get(id);
    const ranMs = c.state === 'running' ? Date.now() - c.startedMs : 0;
    return { cpuNanos: ranMs * 1000, memoryBytes: c.state === 'running' ? c.behaviour.memoryBytes ?? 1 << 20 : 0 };
  }

  async ensureVolume(options: VolumeOptions): Promise<void> {
    if (!this.volumes.has(options.Name)) this.volumes.set(options.Name, structuredClone(options));
  }

  async runtimeHandlers(): Promise<string[]> {
    return [...this.runtimes];
  }

  async watchEvents(labels: Record<string, string>, onEvent: (event: ContainerEvent) => void, signal: AbortSignal): Promise<void> {
    const watcher = { labels, onEvent };
    this.watchers.add(watcher);
    await new Promise<void>((resolve) => {
      if (signal.aborted) resolve();
      else signal.addEventListener('abort', () => resolve(), { once: true });
    });
    this.watchers.delete(watcher);
  }

  /** One image per name present, each of FAKE_IMAGE_BYTES, with an id derived from its name. */
  async listImages(): Promise<ImageSummary[]> {
    return [...this.images].map((name) => ({
      id: fakeImageId(name), names: [name], sizeBytes: FAKE_IMAGE_BYTES, ...this.platform,
    }));
  }

  /** The fake's archive: JSON naming the image (what loadImage reads back). */
  async saveImage(image: string): Promise<Readable> {
    if (!this.images.has(image)) throw new ImageNotFoundError(image);
    return Readable.from([Buffer.from(JSON.stringify({ fakeImages: [image] }))]);
  }

  async loadImage(archive: Readable, signal?: AbortSignal): Promise<string[]> {
    const chunks: Buffer[] = [];
    for await (const c of archive) chunks.push(Buffer.from(c as Buffer));
    signal?.throwIfAborted();
    let names: unknown;
    try {
      names = (JSON.parse(Buffer.concat(chunks).toString('utf8')) as { fakeImages?: unknown }).fakeImages;
    } catch { /* not an archive of the fake's */ }
    if (!Array.isArray(names) || !names.every((n) => typeof n === 'string')) throw new Error('docker load: the archive is no image archive of this runtime');
    for (const n of names) this.images.add(n);
    return names;
  }

  async removeImage(image: string): Promise<void> {
    if (!this.images.delete(image)) throw new ImageNotFoundError(image);
  }

  private add(name: string, image: string, labels: Record<string, string>, behaviour: FakeBehaviour): FakeContainer {
    for (const c of this.containers.values()) {
      if (c.name === name) throw new Error(`container name "${name}" is already in use by ${c.id}`);
    }
    const id = (this.nextId++).toString(16).padStart(12, '0');
    const c: FakeContainer = {
      id, name, image, labels: { ...labels }, state: 'created', exitCode: null, oomKilled: false,
      startedMs: 0, log: [], behaviour, changed: new Set(),
    };
    this.containers.set(id, c);
    return c;
  }

  private start(c: FakeContainer): void {
    c.state = 'running';
    c.startedMs = Date.now();
    c.startedAt = new Date(c.startedMs).toISOString();
    c.exitCode = null;
    c.oomKilled = false;
    delete c.finishedAt;
    for (const line of c.behaviour.output ?? []) c.log.push({ stream: 'stdout', line });
    this.emit(c, 'start');
    const after = c.behaviour.exitAfterMs;
    if (after !== undefined) {
      c.timer = setTimeout(() => {
        if (c.state === 'running') this.exit(c, c.behaviour.oom ? 137 : c.behaviour.exitCode ?? 0, c.behaviour.oom === true);
      }, after).unref();
    }
  }

  private exit(c: FakeContainer, code: number, oom: boolean): void {
    clearTimeout(c.timer);
    c.state = 'exited';
    c.exitCode = code;
    c.oomKilled = oom;
    c.finishedAt = new Date().toISOString();
    if (oom) this.emit(c, 'oom');
    this.emit(c, 'die');
    this.wake(c);
  }

  private wake(c: FakeContainer): void {
    for (const wake of [...c.changed]) wake();
  }

  private emit(c: FakeContainer, type: ContainerEvent['type']): void {
    for (const w of this.watchers) {
      if (matches(c.labels, w.labels)) w.onEvent({ id: c.id, labels: { ...c.labels }, type });
    }
  }

  private get(id: string): FakeContainer {
    const c = this.containers.get(id);
    if (!c) throw new ContainerNotFoundError(id);
    return c;
  }
}

function matches(labels: Record<string, string>, wanted: Record<string, string>): boolean {
  for (const [k, v] of Object.entries(wanted)) if (labels[k] !== v) return false;
  return true;
}

function fakeImageId(name: string): string {
  return `sha256:${createHash('sha256').update(name).digest('hex')}`;
}
