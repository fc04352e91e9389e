// ContainerRuntime: the slim, pod-sandbox oriented container interface the agent drives (a small CRI).
// DockerRuntime implements it on the Docker Engine, FakeRuntime in memory for hollow nodes and tests.
// Both are held to the same behaviour by test/agent/runtime-contract.ts.
import type { Readable } from 'node:stream';
import type { ResolvConf } from '../network/pod-dns.js';

/**
 * Labels the agent puts on everything it creates. An agent owns only containers carrying both its cluster's id
 * and its node name (ownerLabels): agents of two clusters on one engine may have the same node name.
 */
export const LABEL_CLUSTER = 'io.flotilla.cluster';
export const LABEL_NODE = 'io.flotilla.node';
export const LABEL_NAMESPACE = 'io.flotilla.namespace';
export const LABEL_POD = 'io.flotilla.pod';
export const LABEL_POD_UID = 'io.flotilla.pod-uid';
export const LABEL_CONTAINER = 'io.flotilla.container';
/** How many times the agent restarted this container name in this pod before creating this one. */
export const LABEL_RESTART_COUNT = 'io.flotilla.restart-count';
/** Digest of the container's spec when it was created (node-agent/pod-actions.ts containerHash): a changed spec replaces it. */
export const LABEL_SPEC_HASH = 'io.flotilla.container-hash';
/** Who owns a container: the filter for every listing, adoption and clean-up an agent does, and labels it creates with. */
export function ownerLabels(owner: { clusterId: string; nodeName: string }): Record<string, string> {
  return { [LABEL_CLUSTER]: owner.clusterId, [LABEL_NODE]: owner.nodeName };
}

/** Value of LABEL_CONTAINER on a pod's sandbox (the holder of its network namespace). */
export const SANDBOX_CONTAINER_NAME = 'POD';

export type PullProgress = (event: { status: string; layer?: string; current?: number; total?: number }) => void;

/**
 * Credentials for one registry, as Docker's X-Registry-Auth header carries them to the engine (dockerode
 * `authconfig`); node-agent/images/registry-auth.ts finds them in a pod's pull secrets.
 */
export interface RegistryAuth {
  username: string;
  password: string;
  /** The registry host[:port] the credentials are for. */
  serveraddress: string;
  email?: string;
}

/** An image in the runtime's local store, as inspectImage tells it. */
export interface ImageInfo extends Pick<ImageSummary, 'id' | 'sizeBytes'> {
  /** The user its process runs as (the image config's User: "name", "uid", "uid:gid"...); "" for root by default. */
  user: string;
}

/** An image could not be made present. `reason` is what a Kubernetes user sees in the waiting state. */
export class ImagePullError extends Error {
  constructor(
    readonly image: string,
    readonly reason: 'ErrImagePull' | 'InvalidImageName' | 'ErrImageNeverPull',
    message: string,
  ) {
    super(message);
    this.name = 'ImagePullError';
  }
}

/** The container id names nothing this runtime knows (never created, or removed). */
export class ContainerNotFoundError extends Error {
  constructor(readonly id: string) {
    super(`container ${id} not found`);
    this.name = 'ContainerNotFoundError';
  }
}

export interface PortMapping {
  containerPort: number;
  hostPort: number;
  protocol: 'TCP' | 'UDP';
  hostIP?: string;
}

export interface SandboxConfig {
  /** Docker-safe unique name; the runtime does not invent names so that a retry after a crash collides. */
  name: string;
  image: string;
  /** The sandbox's process; the pause image's own command when omitted. */
  command?: string[];
  hostname: string;
  /** hostPort mappings are published on the sandbox, because it owns the network namespace. */
  ports: PortMapping[];
  /** The network the sandbox joins (Docker: a network name, node-agent/network/pod-network.ts); the engine's default when unset. */
  network?: string;
  labels: Record<string, string>;
  /** The pod's resolv.conf (node-agent/network/pod-dns.ts); the engine's default when absent or without nameservers. */
  dns?: ResolvConf;
  /** The host's namespaces instead of the pod's own (spec.hostNetwork, hostIPC): `network` and `ports` do not apply with hostNetwork. */
  hostNetwork?: boolean;
  hostIPC?: boolean;
  /** Namespaced kernel parameters of the pod (spec.securityContext.sysctls), set in the sandbox's namespaces. */
  sysctls?: Record<string, string>;
}

export interface Mount {
  hostPath: string;
  containerPath: string;
  readOnly: boolean;
}

export interface ContainerConfig {
  name: string;
  image: string;
  /** Replaces the image entrypoint when set (Kubernetes `command`). */
  entrypoint?: string[];
  /** Replaces the image cmd when set (Kubernetes `args`). */
  cmd?: string[];
  env: Record<string, string>;
  workingDir?: string;
  mounts: Mount[];
  /** CPU limit in billionths of a core (Docker NanoCpus). */
  nanoCpus?: number;
  /** Memory limit in bytes; swap is limited to the same figure so the limit is real. */
  memoryBytes?: number;
  /** GPUs by UUID, passed to the runtime exactly (no counting, no choosing). */
  gpuDeviceIds?: string[];
  /** OCI runtime the container runs with (one of runtimeHandlers(); Docker HostConfig.Runtime); the engine's default when unset. */
  runtime?: string;
  /** Sandbox whose network namespace this container joins. */
  sandboxId: string;
  labels: Record<string, string>;
  /** What the container's securityContext asks of the runtime (node-agent/container-config.ts); the runtime's defaults when absent. */
  security?: ContainerSecurity;
}

/**
 * A container's isolation, as the kubelet hands it to a runtime. Capabilities are named without "CAP_" ("ALL"
 * for all); the seccomp and AppArmor profiles are the runtime's default unless `unconfined`.
 */
export interface ContainerSecurity {
  /** "uid", "uid:gid" or "name:gid" (Docker's User). */
  user?: string;
  /** Supplementary group ids (Docker's GroupAdd). */
  groups?: number[];
  privileged?: boolean;
  readOnlyRootFilesystem?: boolean;
  capAdd?: string[];
  capDrop?: string[];
  /** no_new_privs (allowPrivilegeEscalation: false). */
  noNewPrivileges?: boolean;
  seccompUnconfined?: boolean;
  appArmorUnconfined?: boolean;
  /** The host's PID and IPC namespaces (spec.hostPID, spec.hostIPC). */
  hostPID?: boolean;
  hostIPC?: boolean;
}

export type ContainerStateName = 'created' | 'running' | 'exited';

export interface ContainerSummary {
  id: string;
  name: string;
  image: string;
  state: ContainerStateName;
  labels: Record<string, string>;
}

export interface ContainerStatus extends ContainerSummary {
  exitCode: number | null;
  oomKilled: boolean;
  /** ISO 8601; absent while never started. */
  startedAt?: string;
  finishedAt?: string;
  /** From LABEL_RESTART_COUNT: the count survives agent restarts because it is stored on the container. */
  restartCount: number;
  /** IP address in the container's network namespace (sandboxes only; members share it). */
  ip?: string;
  error?: string;
}

export interface LogOptions {
  follow?: boolean;
  /** Last N lines only. */
  tail?: number;
  /** Only lines written at or after this time (unix seconds). */
  since?: number;
  signal?: AbortSignal;
}

export interface LogLine {
  stream: 'stdout' | 'stderr';
  line: string;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ContainerStats {
  /** Cumulative CPU time in nanoseconds. */
  cpuNanos: number;
  memoryBytes: number;
}

export interface ContainerEvent {
  id: string;
  labels: Record<string, string>;
  /** 'die' covers every exit (including OOM kills and stops); 'start' every start. */
  type: 'start' | 'die' | 'oom' | 'destroy';
}

/** One image in the engine's store, as `docker image ls` and `docker image inspect` describe it. */
export interface ImageSummary {
  /** Content id ("sha256:..."). */
  id: string;
  /** Its names as the kubelet lists them: repo@digest (RepoDigests) then repo:tag (RepoTags); none for a dangling image. */
  names: string[];
  sizeBytes: number;
  /** The platform the image is for (Go names, as in image manifests): "linux", "arm64", "v8" (variant: "" when none). */
  os: string;
  architecture: string;
  variant: string;
}

export interface ContainerRuntime {
  /** Scheme of container ids in Kubernetes statuses ("docker" gives docker://ID). */
  readonly name: string;
  /** Makes the image present locally, pulling it when missing. Throws ImagePullError. */
  ensureImage(image: string, onProgress?: PullProgress, signal?: AbortSignal): Promise<void>;
  /** The image as the local store has it; undefined when it is not there. */
  inspectImage(image: string): Promise<ImageInfo | undefined>;
  /**
   * Pulls the image from its registry, present or not (a pull of an unchanged image fetches only the manifest),
   * with these credentials when given. Throws ImagePullError with the registry's words.
   */
  pullImage(image: string, options?: { auth?: RegistryAuth; onProgress?: PullProgress; signal?: AbortSignal }): Promise<void>;
  /** Creates and starts the holder of a pod's network namespace; resolves with its id. */
  runSandbox(config: SandboxConfig): Promise<string>;
  /** Creates (does not start) a container joined to config.sandboxId; resolves with its id. */
  createContainer(config: ContainerConfig): Promise<string>;
  startContainer(id: string): Promise<void>;
  /** SIGTERM, then SIGKILL after graceSeconds. Stopping a stopped container is not an error. */
  stopContainer(id: string, graceSeconds: number): Promise<void>;
  /** Removes the container, killing it first if it runs. Removing a missing one is not an error. */
  removeContainer(id: string): Promise<void>;
  /** Containers (sandboxes included) whose labels contain every given pair. */
  listContainers(labels: Record<string, string>): Promise<ContainerSummary[]>;
  /** Throws ContainerNotFoundError. */
  inspectContainer(id: string): Promise<ContainerStatus>;
  /** Ends when the container's output ends (no follow), the container stops (follow), or the signal aborts. */
  logs(id: string, options?: LogOptions): AsyncIterable<LogLine>;
  exec(id: string, command: string[], options?: { signal?: AbortSignal }): Promise<ExecResult>;
  stats(id: string): Promise<ContainerStats>;
  /** The OCI runtimes the engine can run containers with (Docker's `Runtimes`: runc, and e.g. nvidia). */
  runtimeHandlers(): Promise<string[]>;
  /** Calls onEvent for containers whose labels contain every given pair, until the signal aborts. */
  watchEvents(labels: Record<string, string>, onEvent: (event: ContainerEvent) => void, signal: AbortSignal): Promise<void>;
  /** Every image in the engine's store. */
  listImages(): Promise<ImageSummary[]>;
  /** The image as a `docker save` archive (a tar stream the caller reads to the end or destroys). Throws ImageNotFoundError. */
  saveImage(image: string): Promise<Readable>;
  /** Loads a `docker save` archive (`docker load`); resolves with the names it loaded (ids for images without one). Throws when the engine refuses it. */
  loadImage(archive: Readable, signal?: AbortSignal): Promise<string[]>;
  /** Removes the name `image` (the image itself with its last name; `docker rmi` without force). Throws ImageNotFoundError, or the engine's refusal (in use by a container). */
  removeImage(image: string): Promise<void>;
  /**
   * Makes named volume `options.Name` (Docker's VolumeCreateOptions) unless it exists: a container mount whose
   * hostPath is that name (not a path) mounts it. An existing volume is used as it is.
   */
  ensureVolume(options: VolumeOptions): Promise<void>;
}

/** No local image has that name or id. */
export class ImageNotFoundError extends Error {
  constructor(readonly image: string) {
    super(`no such image: ${image}`);
    this.name = 'ImageNotFoundError';
  }
}

/** A named volume and how its driver mounts it (Docker's VolumeCreateOptions). */
export interface VolumeOptions {
  Name: string;
  Driver: string;
  DriverOpts: Record<string, string>;
}
