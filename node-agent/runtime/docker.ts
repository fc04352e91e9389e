// DockerRuntime: ContainerRuntime on the Docker Engine API through dockerode.
// A pod is a sandbox container (network namespace, published hostPorts) plus one container per Kubernetes
// container joined to it with NetworkMode container:<sandbox>.
import Docker from 'dockerode';
import { Readable } from 'node:stream';
import {
  ContainerNotFoundError,
  ImageNotFoundError,
  ImagePullError,
  LABEL_RESTART_COUNT,
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
} from './types.js';
import { PAUSE_COMMAND, PAUSE_IMAGE, pauseArchOf, pauseElf, singleFileTar } from './pause-image.js';

/** Docker reports "never" as the zero time. */
const ZERO_TIME = '0001-01-01T00:00:00Z';

export interface DockerRuntimeOptions {
  docker?: Docker;
  /** Architecture of the engine's machine, for the pause program; defaults to this process's. */
  arch?: string;
}

export class DockerRuntime implements ContainerRuntime {
  readonly name = 'docker';
  readonly docker: Docker;
  private readonly arch: string;
  /** Platforms by image id: an id names immutable content, so each image is inspected once. */
  private readonly platforms = new Map<string, Pick<ImageSummary, 'os' | 'architecture' | 'variant'>>();

  constructor(options: DockerRuntimeOptions = {}) {
    this.docker = options.docker ?? new Docker();
    this.arch = options.arch ?? process.arch;
  }

  async ensureImage(image: string, onProgress?: PullProgress, signal?: AbortSignal): Promise<void> {
    if (!image || /\s/.test(image)) throw new ImagePullError(image, 'InvalidImageName', `invalid image name "${image}"`);
    if (await this.inspectImage(image)) return;
    if (image === PAUSE_IMAGE) return this.importPauseImage();
    await this.pullImage(image, { ...(onProgress ? { onProgress } : {}), ...(signal ? { signal } : {}) });
  }

  async inspectImage(image: string): Promise<ImageInfo | undefined> {
    try {
      const info = await this.docker.getImage(image).inspect();
      return { id: info.Id, sizeBytes: info.Size, user: info.Config?.User ?? '' };
    } catch (err) {
      if (statusCode(err) === 404) return undefined;
      throw err;
    }
  }

  async pullImage(image: string, options: { auth?: RegistryAuth; onProgress?: PullProgress; signal?: AbortSignal } = {}): Promise<void> {
    const { auth, onProgress, signal } = options;
    let stream: NodeJS.ReadableStream;
    try {
      stream = await this.docker.pull(image, { ...(auth ? { authconfig: auth } : {}), ...(signal ? { abortSignal: signal } : {}) });
    } catch (err) {
      throw new ImagePullError(image, 'ErrImagePull', messageOf(err));
    }
    await new Promise<void>((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (err: unknown, events: Array<{ error?: string; errorDetail?: { message?: string } }>) => {
          const failed = events?.find((e) => e.error || e.errorDetail);
          if (err || failed) reject(new ImagePullError(image, 'ErrImagePull', err ? messageOf(err) : failed?.errorDetail?.message ?? failed?.error ?? 'pull failed'));
          else resolve();
        },
        (e: { status?: string; id?: string; progressDetail?: { current?: number; total?: number } }) => {
          if (!onProgress || !e.status) return;
          const event: Parameters<PullProgress>[0] = { status: e.status };
          if (e.id) event.layer = e.id;
          if (e.progressDetail?.current !== undefined) event.current = e.progressDetail.current;
          if (e.progressDetail?.total !== undefined) event.total = e.progressDetail.total;
          onProgress(event);
        },
      );
    });
  }

  private async importPauseImage(): Promise<void> {
    const arch = pauseArchOf(this.arch);
    if (!arch) throw new ImagePullError(PAUSE_IMAGE, 'ErrImagePull', `no pause program for architecture ${this.arch}; set the sandbox image to one that runs here`);
    const [repo, tag] = PAUSE_IMAGE.split(':') as [string, string];
    const tar = singleFileTar('pause', pauseElf(arch));
    const out = await this.docker.importImage(Readable.from([Buffer.from(tar)]), { repo, tag });
    const text = await readAll(out);
    if (/"error/.test(text)) throw new ImagePullError(PAUSE_IMAGE, 'ErrImagePull', `docker import of the pause image failed: ${text}`);
  }

  async runSandbox(config: SandboxConfig): Promise<string> {
    const exposed: Record<string, object> = {};
    const bindings: Record<string, Array<{ HostPort: string; HostIp?: string }>> = {};
    for (const p of config.ports) {
      const key = `${p.containerPort}/${p.protocol.toLowerCase()}`;
      exposed[key] = {};
      (bindings[key] ??= []).push(p.hostIP ? { HostPort: String(p.hostPort), HostIp: p.hostIP } : { HostPort: String(p.hostPort) });
    }
    const container = await this.docker.createContainer({
      name: config.name,
      Image: config.image,
      Cmd: config.command ?? (config.image === PAUSE_IMAGE ? PAUSE_COMMAND : undefined),
      // The host's network namespace comes with the host's name.
      ...(config.hostNetwork ? {} : { Hostname: config.hostname }),
      Labels: config.labels,
      ExposedPorts: exposed,
      HostConfig: {
        IpcMode: config.hostIPC ? 'host' : 'shareable',
        ...sandboxDns(config),
        ...(config.hostNetwork ? { NetworkMode: 'host' } : { PortBindings: bindings, ...(config.network ? { NetworkMode: config.network } : {}) }),
        ...(config.sysctls && Object.keys(config.sysctls).length > 0 ? { Sysctls: config.sysctls } : {}),
      },
    });
    try {
      await container.start();
    } catch (err) {
      await this.removeContainer(container.id);
      throw err;
    }
    return container.id;
  }

  async createContainer(config: ContainerConfig): Promise<string> {
    const container = await this.docker.createContainer(containerCreateOptions(config));
    return container.id;
  }

  async startContainer(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).start();
    } catch (err) {
      if (statusCode(err) === 304) return;
      throw translate(err, id);
    }
  }

  async stopContainer(id: string, graceSeconds: number): Promise<void> {
    try {
      await this.docker.getContainer(id).stop({ t: Math.max(0, Math.ceil(graceSeconds)) });
    } catch (err) {
      if (statusCode(err) === 304) return;
      throw translate(err, id);
    }
  }

  async removeContainer(id: string): Promise<void> {
    try {
      await this.docker.getContainer(id).remove({ force: true, v: true });
    } catch (err) {
      // 404: already gone; 409: removal already in progress.
      if (statusCode(err) === 404 || statusCode(err) === 409) return;
      throw err;
    }
  }

  async listContainers(labels: Record<string, string>): Promise<ContainerSummary[]> {
    const list = await this.docker.listContainers({ all: true, filters: { label: labelFilter(labels) } });
    return list.map((c) => ({
      id: c.Id,
      name: (c.Names[0] ?? '').replace(/^\//, ''),
      image: c.Image,
      state: stateName(c.State),
      labels: c.Labels ?? {},
    }));
  }

  async inspectContainer(id: string): Promise<ContainerStatus> {
    let info = await this.#inspect(id);
    // Docker learns of an OOM kill from a separate event that can arrive after the exit itself (seen when the
    // process is killed within milliseconds of its start): a SIGKILL exit under a memory limit is asked again.
    for (let attempt = 0; attempt < OOM_RECHECKS && looksLikeUnflaggedOom(info); attempt++) {
      await new Promise((r) => setTimeout(r, 100));
      info = await this.#inspect(id);
    }
    const labels = info.Config.Labels ?? {};
    const status: ContainerStatus = {
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      image: info.Config.Image,
      state: stateName(info.State.Status),
      labels,
      exitCode: info.State.Status === 'exited' || info.State.Status === 'dead' ? info.State.ExitCode : null,
      oomKilled: info.State.OOMKilled,
      restartCount: Number(labels[LABEL_RESTART_COUNT] ?? 0),
    };
    if (info.State.StartedAt && info.State.StartedAt !== ZERO_TIME) status.startedAt = info.State.StartedAt;
    if (info.State.FinishedAt && info.State.FinishedAt !== ZERO_TIME) status.finishedAt = info.State.FinishedAt;
    const ip = Object.values(info.NetworkSettings?.Networks ?? {}).find((n) => n.IPAddress)?.IPAddress;
    if (ip) status.ip = ip;
    if (info.State.Error) status.error = info.State.Error;
    return status;
  }

  async #inspect(id: string): Promise<Docker.ContainerInspectInfo> {
    try {
      return await this.docker.getContainer(id).inspect();
    } catch (err) {
      throw translate(err, id);
    }
  }

  async *logs(id: string, options: LogOptions = {}): AsyncIterable<LogLine> {
    const container = this.docker.getContainer(id);
    const query = {
      stdout: true,
      stderr: true,
      follow: options.follow === true,
      tail: options.tail ?? 'all',
      since: options.since ?? 0,
    };
    let source: Readable;
    try {
      // dockerode returns a Buffer without follow and a stream with it (its typings know one per overload, hence
      // the cast); both carry the 8-byte frame headers.
      const raw = (await container.logs(query as Docker.ContainerLogsOptions & { follow: true })) as unknown as NodeJS.ReadableStream | Buffer;
      source = Buffer.isBuffer(raw) ? Readable.from([raw]) : (raw as Readable);
    } catch (err) {
      throw translate(err, id);
    }
    const abort = () => source.destroy();
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      const lines = new LineSplitter();
      const frames = new FrameReader();
      try {
        for await (const chunk of source) {
          for (const frame of frames.push(chunk as Buffer)) yield* lines.push(frame.stream, frame.data);
        }
      } catch (err) {
        if (!options.signal?.aborted) throw err;
      }
      yield* lines.flush();
    } finally {
      options.signal?.removeEventListener('abort', abort);
      source.destroy();
    }
  }

  async exec(id: string, command: string[], options: { signal?: AbortSignal } = {}): Promise<ExecResult> {
    const container = this.docker.getContainer(id);
    let exec: Docker.Exec;
    try {
      exec = await container.exec({ Cmd: command, AttachStdout: true, AttachStderr: true });
    } catch (err) {
      throw translate(err, id);
    }
    const stream = (await exec.start({ hijack: true, stdin: false })) as Readable;
    const abort = () => stream.destroy();
    options.signal?.addEventListener('abort', abort, { once: true });
    const out = { stdout: [] as Buffer[], stderr: [] as Buffer[] };
    const frames = new FrameReader();
    try {
      await new Promise<void>((resolve, reject) => {
        stream.on('data', (chunk: Buffer) => {
          for (const f of frames.push(chunk)) out[f.stream].push(f.data);
        });
        stream.on('end', resolve);
        stream.on('close', resolve);
        stream.on('error', reject);
      });
    } finally {
      options.signal?.removeEventListener('abort', abort);
    }
    options.signal?.throwIfAborted();
    const info = await exec.inspect();
    return {
      exitCode: info.ExitCode ?? -1,
      stdout: Buffer.concat(out.stdout).toString('utf8'),
      stderr: Buffer.concat(out.stderr).toString('utf8'),
    };
  }

  async stats(id: string): Promise<ContainerStats> {
    let s: Docker.ContainerStats;
    try {
      s = await this.docker.getContainer(id).stats({ stream: false });
    } catch (err) {
      throw translate(err, id);
    }
    return { cpuNanos: s.cpu_stats?.cpu_usage?.total_usage ?? 0, memoryBytes: s.memory_stats?.usage ?? 0 };
  }

  async ensureVolume(options: VolumeOptions): Promise<void> {
    try {
      await this.docker.getVolume(options.Name).inspect();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) throw err;
      await this.docker.createVolume(options);
    }
  }

  async runtimeHandlers(): Promise<string[]> {
    const info = await this.docker.info() as { Runtimes?: Record<string, unknown> };
    return Object.keys(info.Runtimes ?? {});
  }

  async watchEvents(labels: Record<string, string>, onEvent: (event: ContainerEvent) => void, signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    const stream = (await this.docker.getEvents({
      filters: { type: ['container'], event: ['start', 'die', 'oom', 'destroy'], label: labelFilter(labels) },
      abortSignal: signal,
    } as Docker.GetEventsOptions)) as Readable;
    const abort = () => stream.destroy();
    signal.addEventListener('abort', abort, { once: true });
    let pending = '';
    try {
      for await (const chunk of stream) {
        pending += (chunk as Buffer).toString('utf8');
        let nl: number;
        while ((nl = pending.indexOf('\n')) >= 0) {
          const line = pending.slice(0, nl).trim();
          pending = pending.slice(nl + 1);
          if (!line) continue;
          const e = JSON.parse(line) as { Action?: string; id?: string; Actor?: { ID?: string; Attributes?: Record<string, string> } };
          const type = e.Action as ContainerEvent['type'];
          const eventId = e.Actor?.ID ?? e.id;
          if (eventId && (type === 'start' || type === 'die' || type === 'oom' || type === 'destroy')) {
            onEvent({ id: eventId, labels: e.Actor?.Attributes ?? {}, type });
          }
        }
      }
    } catch (err) {
      if (!signal.aborted) throw err;
    } finally {
      signal.removeEventListener('abort', abort);
    }
  }

  async listImages(): Promise<ImageSummary[]> {
    const listed = await this.docker.listImages();
    const live = new Set(listed.map((i) => i.Id));
    for (const id of this.platforms.keys()) if (!live.has(id)) this.platforms.delete(id);
    const out: ImageSummary[] = [];
    for (const image of listed) {
      let platform = this.platforms.get(image.Id);
      if (!platform) {
        let info: { Os?: string; Architecture?: string; Variant?: string };
        try { info = await this.docker.getImage(image.Id).inspect(); } catch (err) {
          if (statusCode(err) === 404) continue; // removed since the listing
          throw err;
        }
        platform = { os: info.Os ?? '', architecture: info.Architecture ?? '', variant: info.Variant ?? '' };
        this.platforms.set(image.Id, platform);
      }
      // Docker lists a dangling image's names as "<none>:<none>" and "<none>@<none>".
      const names = [...image.RepoDigests ?? [], ...image.RepoTags ?? []].filter((n) => !n.startsWith('<none>'));
      out.push({ id: image.Id, names, sizeBytes: image.Size, ...platform });
    }
    return out;
  }


  async saveImage(image: string): Promise<Readable> {
    if (await this.inspectImage(image) === undefined) throw new ImageNotFoundError(image);
    return (await this.docker.getImage(image).get()) as Readable;
  }

  async loadImage(archive: Readable, signal?: AbortSignal): Promise<string[]> {
    const answer = await this.docker.loadImage(archive, { quiet: true, ...(signal ? { abortSignal: signal } : {}) } as object);
    // One JSON object per line: {"stream":"Loaded image: NAME\n"} (or "Loaded image ID: sha256:..."), or an error.
    const loaded: string[] = [];
    for (const line of (await readAll(answer)).split('\n')) {
      if (!line.trim()) continue;
      const e = JSON.parse(line) as { stream?: string; error?: string; errorDetail?: { message?: string } };
      if (e.error || e.errorDetail) throw new Error(`docker load: ${e.errorDetail?.message ?? e.error}`);
      const m = /^Loaded image(?: ID)?: (\S+)/.exec(e.stream ?? '');
      if (m) loaded.push(m[1]!);
    }
    return loaded;
  }

  async removeImage(image: string): Promise<void> {
    try {
      await this.docker.getImage(image).remove();
    } catch (err) {
      if (statusCode(err) === 404) throw new ImageNotFoundError(image);
      throw new Error(messageOf(err));
    }
  }
}

/**
 * The sandbox's resolv.conf through Docker (the pod's containers share it with the network namespace). Without
 * nameservers the engine writes its own (the host's, less loopback resolvers).
 */
export function sandboxDns(config: Pick<SandboxConfig, 'dns'>): Pick<Docker.HostConfig, 'Dns' | 'DnsSearch' | 'DnsOptions'> {
  if (!config.dns?.nameservers.length) return {};
  return { Dns: config.dns.nameservers, DnsSearch: config.dns.searches, DnsOptions: config.dns.options };
}

/** What createContainer sends to Docker: pure, so GPU device requests and limits are testable without the parts. */
export function containerCreateOptions(config: ContainerConfig): Docker.ContainerCreateOptions {
  const hostConfig: Docker.HostConfig = {
    NetworkMode: `container:${config.sandboxId}`,
    IpcMode: `container:${config.sandboxId}`,
    Binds: config.mounts.map((m) => `${m.hostPath}:${m.containerPath}${m.readOnly ? ':ro' : ''}`),
  };
  if (config.nanoCpus !== undefined) hostConfig.NanoCpus = config.nanoCpus;
  if (config.memoryBytes !== undefined) {
    hostConfig.Memory = config.memoryBytes;
    hostConfig.MemorySwap = config.memoryBytes;
  }
  if (config.runtime) hostConfig.Runtime = config.runtime;
  if (config.gpuDeviceIds?.length) {
    hostConfig.DeviceRequests = [{ Driver: 'nvidia', DeviceIDs: config.gpuDeviceIds, Capabilities: [['gpu']] }];
  }
  const sec = config.security;
  if (sec) {
    if (sec.groups?.length) hostConfig.GroupAdd = sec.groups.map(String);
    if (sec.privileged) hostConfig.Privileged = true;
    if (sec.readOnlyRootFilesystem) hostConfig.ReadonlyRootfs = true;
    if (sec.capAdd?.length) hostConfig.CapAdd = sec.capAdd;
    if (sec.capDrop?.length) hostConfig.CapDrop = sec.capDrop;
    const opts = [
      ...(sec.noNewPrivileges ? ['no-new-privileges'] : []),
      ...(sec.seccompUnconfined ? ['seccomp=unconfined'] : []),
      ...(sec.appArmorUnconfined ? ['apparmor=unconfined'] : []),
    ];
    if (opts.length > 0) hostConfig.SecurityOpt = opts;
    if (sec.hostPID) hostConfig.PidMode = 'host';
    if (sec.hostIPC) hostConfig.IpcMode = 'host';
  }
  const options: Docker.ContainerCreateOptions = {
    name: config.name,
    Image: config.image,
    Env: Object.entries(config.env).map(([k, v]) => `${k}=${v}`),
    Labels: config.labels,
    HostConfig: hostConfig,
  };
  if (config.entrypoint) options.Entrypoint = config.entrypoint;
  if (config.cmd) options.Cmd = config.cmd;
  if (config.workingDir) options.WorkingDir = config.workingDir;
  if (sec?.user !== undefined) options.User = sec.user;
  return options;
}

/** Splits Docker's multiplexed stream (8-byte header: stream type, 3 zero bytes, big-endian length) into frames. */
class FrameReader {
  private pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Array<{ stream: LogLine['stream']; data: Buffer }> {
    this.pending = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    const frames: Array<{ stream: LogLine['stream']; data: Buffer }> = [];
    while (this.pending.length >= 8) {
      const size = this.pending.readUInt32BE(4);
      if (this.pending.length < 8 + size) break;
      frames.push({ stream: this.pending[0] === 2 ? 'stderr' : 'stdout', data: this.pending.subarray(8, 8 + size) });
      this.pending = this.pending.subarray(8 + size);
    }
    return frames;
  }
}

/** Cuts each stream's bytes into lines; a frame may end mid-line. */
class LineSplitter {
  private readonly partial: Record<LogLine['stream'], string> = { stdout: '', stderr: '' };

  *push(stream: LogLine['stream'], data: Buffer): Generator<LogLine> {
    const parts = (this.partial[stream] + data.toString('utf8')).split('\n');
    this.partial[stream] = parts.pop() ?? '';
    for (const line of parts) yield { stream, line };
  }

  *flush(): Generator<LogLine> {
    for (const stream of ['stdout', 'stderr'] as const) {
      if (this.partial[stream]) yield { stream, line: this.partial[stream] };
      this.partial[stream] = '';
    }
  }
}

function labelFilter(labels: Record<string, string>): string[] {
  return Object.entries(labels).map(([k, v]) => `${k}=${v}`);
}

function stateName(docker: string): ContainerSummary['state'] {
  if (docker === 'running' || docker === 'paused' || docker === 'restarting') return 'running';
  if (docker === 'created') return 'created';
  return 'exited';
}

function statusCode(err: unknown): number | undefined {
  return (err as { statusCode?: number } | null)?.statusCode;
}

/** The engine's own words: docker-modem wraps a refused streaming call as "(HTTP code 500) server error - WORDS ". */
function messageOf(err: unknown): string {
  const e = err as { json?: { message?: string }; message?: string };
  return e?.json?.message ?? (e?.message ?? String(err)).replace(/^\(HTTP code \d+\) .*? - /, '').trim();
}

function translate(err: unknown, id: string): unknown {
  return statusCode(err) === 404 ? new ContainerNotFoundError(id) : err;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) chunks.push(Buffer.from(c));
  return Buffer.concat(chunks).toString('utf8');
}

const OOM_RECHECKS = 5;

function looksLikeUnflaggedOom(info: Docker.ContainerInspectInfo): boolean {
  return info.State.Status === 'exited' && info.State.ExitCode === 137 && !info.State.OOMKilled && (info.HostConfig?.Memory ?? 0) > 0;
}
