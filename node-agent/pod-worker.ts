// PodWorker: level-triggered sync of one pod onto a ContainerRuntime. Each sync lists what the runtime holds
// (by the pod uid label), asks the planner (node-agent/pod-actions.ts planPodActions) for the step toward the
// spec, carries its actions out, and reports a Kubernetes PodStatus built from the plan and the outcomes.
// Nothing is remembered that the runtime can tell: restart counts live on container labels, so a new agent
// adopts running containers (same ids, no restart) and continues counting.
// PodWorkers: the set of workers of one node, keyed by pod uid, woken by runtime events.
import type { PodEvent } from './pod-events.js';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import { ANNOTATION_RUNTIME_HANDLER, defaultPullPolicy, platformName, safeSysctls, type Condition, type Container, type ContainerState, type Pod, type PodStatus, type Service } from '../api-types/index.js';
import type { ResolvConf } from './network/pod-dns.js';
import {
  buildContainerConfig,
  ContainerConfigError,
  preparePodVolumes,
  resolveSubPaths,
  secretVolumesDir,
} from './container-config.js';
import {
  containerHash,
  newRecord,
  planPodActions,
  planPodTermination,
  pullBackOff,
  terminatedState,
  type BackoffSettings,
  type ContainerRecord,
  type ContainerRole,
  type ContainerStatusReport,
  type ContainerVerdict,
  type ObservedPod,
  type PodAction,
  type PodInputs,
  type PodPlan,
  type PodRecords,
} from './pod-actions.js';
import { ensureContainerImage, type PeerImageSource } from './images/pull.js';
import { podPullCredentials } from './images/registry-auth.js';
import { ProbeLoop } from './probes.js';
import { PAUSE_IMAGE } from './runtime/pause-image.js';
import {
  ImagePullError,
  LABEL_CONTAINER,
  LABEL_NAMESPACE,
  LABEL_POD,
  LABEL_POD_UID,
  LABEL_RESTART_COUNT,
  LABEL_SPEC_HASH,
  SANDBOX_CONTAINER_NAME,
  ownerLabels,
  type ContainerRuntime,
  type ContainerStatus,
  type ContainerSummary,
  type PortMapping,
} from './runtime/types.js';

/** The sysctls a pod may set on this node: the kubelet's safe set. */
const SAFE = safeSysctls(Number.POSITIVE_INFINITY);
export interface PodWorkerSettings {
  runtime: ContainerRuntime;
  /** The cluster (its id) and node whose containers these workers own (runtime/types.ts ownerLabels). */
  clusterId: string;
  nodeName: string;
  /** Per-pod directories (emptyDir, ConfigMap and Secret files) live under DATA/pods/UID. */
  dataDir: string;
  /** Image of the sandbox holding each pod's network namespace (default: the self-made pause image). */
  sandboxImage?: string;
  /** Command of the sandbox when its image is not the pause image (e.g. ['sleep', '2147483647']). */
  sandboxCommand?: string[];
  /**
   * The network a new sandbox joins (the pod network, node-agent/network/pod-network.ts); throwing means none can
   * be created yet, and the pod waits (CreatePodSandboxError with the message) until a later sync. Unset: the
   * runtime's default network.
   */
  sandboxNetwork?: () => string;
  hostIP?: string;
  /** Crash back-off: base, doubled per restart, capped (Kubernetes: 10 s, 300 s). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** A container that ran this long before exiting restarts its back-off from the base (Kubernetes: 10 min). */
  backoffResetMs?: number;
  /** Sync at least this often even without events (default 10 s). */
  resyncMs?: number;
  /** The resolv.conf of a pod's sandbox (network/pod-dns.ts podResolvConf); the engine's default when absent. */
  resolvConf?: (pod: Pod) => ResolvConf | undefined;
  /** The Services that exist now: the Service environment variables of each container as it starts. */
  services?: () => readonly Service[];
  /** Called after a sync whose status differs from the last one reported. */
  onStatus?: (inputs: PodInputs, status: WorkerPodStatus) => void;
  /** What happened to a pod's containers (pulls, starts, crash back-off, failed probes), for Events. */
  onEvent?: (inputs: PodInputs, event: PodEvent) => void;
  /** This node's os/architecture ("linux/arm64"), named when a container's program is for another machine. */
  nodePlatform?: () => string;
  /** Another node's copy of a missing image, tried before the registry (node-agent/images/pull.ts says when). */
  peerImages?: PeerImageSource;
  /** At most one pull progress Event and log line per this many ms of a pull (default 10 s). */
  pullProgressMs?: number;
  log?: Logger;
}

/** Waiting and terminated reason of a container whose program is for another architecture than the node's. */
export const EXEC_FORMAT_ERROR = 'ExecFormatError';
const EXEC_FORMAT = /exec format error/;
const EXEC_FORMAT_LOG_SETTLE_MS = 2000;

/** The PodStatus a worker reports: phase, conditions and container statuses always set. */
export type WorkerPodStatus = Omit<PodStatus, 'containerStatuses' | 'initContainerStatuses'> & Required<Pick<PodStatus, 'phase' | 'conditions'>> & {
  containerStatuses: ContainerStatusReport[];
  initContainerStatuses?: ContainerStatusReport[];
};

type Optional = 'sandboxCommand' | 'sandboxNetwork' | 'hostIP' | 'resolvConf' | 'services' | 'onStatus' | 'onEvent' | 'peerImages';
type Resolved = Required<Omit<PodWorkerSettings, Optional>> & Pick<PodWorkerSettings, Optional>;

function resolveSettings(s: PodWorkerSettings): Resolved {
  return {
    sandboxImage: PAUSE_IMAGE,
    backoffBaseMs: 10_000,
    backoffMaxMs: 300_000,
    backoffResetMs: 600_000,
    resyncMs: 10_000,
    pullProgressMs: 10_000,
    log: pino({ level: 'silent' }),
    ...s,
  } as Resolved;
}

/** Plans whose clean-up (older attempts, kills) is carried out before planning again, at most, per sync. */
const CLEANUP_ROUNDS = 3;

export class PodWorker {
  private inputs: PodInputs;
  private readonly settings: Resolved;
  private readonly backoff: BackoffSettings;
  private readonly records: PodRecords = { containers: new Map(), terminal: false };
  /** The probe loops of each container name, for the container their results in records are about. */
  private readonly probeLoops = new Map<string, ProbeLoop[]>();
  /** execFormatError's answer by container id (undefined: not an exec format error). */
  private readonly execFormat = new Map<string, string | undefined>();
  private readonly conditionTimes = new Map<string, { status: Condition['status']; time: string }>();
  private dirty = true;
  private wakeWaiter: (() => void) | undefined;
  private nextWakeAt = Infinity;
  private current: WorkerPodStatus | undefined;
  private reported = '';
  private startTime: string | undefined;
  private readonly stopRun = new AbortController();
  private running: Promise<void> | undefined;

  constructor(inputs: PodInputs, settings: PodWorkerSettings) {
    this.inputs = inputs;
    this.settings = resolveSettings(settings);
    this.backoff = { baseMs: this.settings.backoffBaseMs, maxMs: this.settings.backoffMaxMs, resetMs: this.settings.backoffResetMs };
  }

  get uid(): string {
    return podUid(this.inputs);
  }

  get status(): WorkerPodStatus | undefined {
    return this.current;
  }

  /** Replaces the desired state (new spec, ConfigMaps, Secrets) and syncs soon. */
  update(inputs: PodInputs): void {
    this.inputs = inputs;
    // The server's copy says otherwise about readiness (the node lifecycle controller marks the pods of an
    // unreachable node not Ready): report again, even if nothing changed here.
    if (readyOf(inputs.pod.status) !== undefined && this.current && readyOf(inputs.pod.status) !== readyOf(this.current)) this.reported = '';
    this.wake();
  }

  wake(): void {
    this.dirty = true;
    this.wakeWaiter?.();
  }

  /** Syncs until the signal aborts or terminate() is called; resolves then (never rejects). */
  run(signal: AbortSignal): Promise<void> {
    this.running ??= this.loop(AbortSignal.any([signal, this.stopRun.signal]));
    return this.running;
  }

  private async loop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      if (this.dirty || Date.now() >= this.nextWakeAt) {
        this.dirty = false;
        this.nextWakeAt = Infinity;
        try {
          await this.sync();
        } catch (err) {
          this.settings.log.warn({ pod: this.inputs.pod.metadata.name, err }, 'pod sync failed');
          this.wakeAt(Date.now() + 1000);
        }
        continue;
      }
      const until = Math.min(this.nextWakeAt, Date.now() + this.settings.resyncMs);
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', done);
          this.wakeWaiter = undefined;
          resolve();
        };
        const timer = setTimeout(() => { this.dirty = true; done(); }, Math.max(0, until - Date.now()));
        signal.addEventListener('abort', done, { once: true });
        this.wakeWaiter = done;
      });
    }
    this.stopProbes();
  }

  private wakeAt(at: number): void {
    this.nextWakeAt = Math.min(this.nextWakeAt, at);
  }

  /**
   * Stops the sync loop, then the pod: SIGTERM to every container, SIGKILL after the grace period (the pod's
   * terminationGracePeriodSeconds, default 30), sandbox last; removes the containers and the pod directory.
   */
  async terminate(graceSeconds = this.inputs.pod.spec.terminationGracePeriodSeconds ?? 30): Promise<void> {
    this.stopRun.abort();
    await this.running;
    this.stopProbes();
    await terminatePod(this.settings.runtime, await this.settings.runtime.listContainers(this.podLabels()), graceSeconds);
    await rm(this.podDir(), { recursive: true, force: true });
    await rm(secretVolumesDir(this.podDir()), { recursive: true, force: true });
  }

  /** One level-triggered step: observes the runtime, plans, carries the plan out, reports. The loop calls it. */
  async sync(): Promise<WorkerPodStatus> {
    for (let round = 1; ; round++) {
      const observed = await this.observe();
      const plan = planPodActions(this.inputs.pod, observed, this.records, Date.now(), this.backoff);
      if (plan.replan && round < CLEANUP_ROUNDS) {
        for (const action of plan.actions) await this.cleanUp(action);
        continue;
      }
      return this.carryOut(plan, observed);
    }
  }

  private async observe(): Promise<ObservedPod> {
    const { runtime } = this.settings;
    const listed = await runtime.listContainers(this.podLabels());
    const sandboxes = listed.filter((c) => c.labels[LABEL_CONTAINER] === SANDBOX_CONTAINER_NAME);
    const inspected = await Promise.all(listed.filter((c) => c.labels[LABEL_CONTAINER] !== SANDBOX_CONTAINER_NAME)
      .map((c) => runtime.inspectContainer(c.id).catch(() => undefined)));
    const containers = inspected.filter((c): c is ContainerStatus => c !== undefined);
    for (const id of this.execFormat.keys()) if (!containers.some((c) => c.id === id)) this.execFormat.delete(id);
    for (const c of containers) {
      const execFormat = await this.execFormatError(c);
      if (execFormat) c.error = execFormat;
    }
    return { sandboxes, containers };
  }

  /**
   * Whether a failed container's program could not be executed because it is for another machine: Docker says
   * "exec format error" in the start error or, with exit code 1, as the container's last log line. The message
   * names the image's platform and the node's. Found once per container (the answer is kept by id while the
   * container exists).
   */
  private async execFormatError(c: ContainerStatus): Promise<string | undefined> {
    if (c.state !== 'exited' || c.exitCode === 0) return undefined;
    if (this.execFormat.has(c.id)) return this.execFormat.get(c.id);
    const { runtime } = this.settings;
    let line = c.error && EXEC_FORMAT.test(c.error) ? c.error : undefined;
    if (!line && c.exitCode === 1) {
      for await (const l of runtime.logs(c.id, { tail: 3 })) if (EXEC_FORMAT.test(l.line)) line = l.line.trim();
    }
    let message: string | undefined;
    if (line) {
      // Docker lists an image pulled as "web" under the name "web:latest".
      const names = [c.image, /@|:[^/]*$/.test(c.image) ? c.image : `${c.image}:latest`];
      const image = (await runtime.listImages()).find((i) => i.id === c.image || names.some((n) => i.names.includes(n)));
      const platform = image ? platformName(image) : 'of an unknown platform';
      const node = this.settings.nodePlatform?.() || 'of another architecture';
      message = `${line}: image "${c.image}" is ${platform}, node ${this.settings.nodeName} is ${node}`;
    }
    // The engine may still be copying the last output of a container that has just exited: a "no" is kept only
    // once its output has surely settled.
    if (message || Date.now() - Date.parse(c.finishedAt ?? '') > EXEC_FORMAT_LOG_SETTLE_MS) this.execFormat.set(c.id, message);
    return message;
  }

  /** The clean-up actions of a plan (planPodActions gives them alone, before any start). */
  private async cleanUp(action: PodAction): Promise<void> {
    const { runtime } = this.settings;
    switch (action.type) {
      case 'RemoveContainer': await runtime.removeContainer(action.id); break;
      case 'KillContainer':
        if (action.reason === 'Unhealthy') this.settings.log.info({ pod: this.inputs.pod.metadata.name, container: action.name }, 'liveness probe failed; restarting');
        await runtime.stopContainer(action.id, action.graceSeconds);
        break;
      case 'StopProbes': this.stopProbes(action.name); break;
      case 'Event': this.emit(action.eventType, action.reason, action.message); break;
      default: throw new Error(`${action.type} is not a clean-up action`);
    }
  }

  private async carryOut(plan: PodPlan, observed: ObservedPod): Promise<WorkerPodStatus> {
    const { runtime } = this.settings;
    let sandbox = observed.sandboxes.find((c) => c.state === 'running');
    let sandboxProblem: { reason: string; message: string } | undefined;
    let actions = plan.actions;
    const create = actions[0]?.type === 'CreateSandbox' ? actions[0] : undefined;
    if (create) {
      actions = actions.slice(1);
      try {
        sandbox = await this.createSandbox(create.remove, create.restartCounts);
      } catch (err) {
        sandboxProblem = err instanceof ImagePullError
          ? { reason: err.reason, message: `sandbox image ${err.image}: ${err.message}` }
          : { reason: 'CreatePodSandboxError', message: (err as Error).message };
        this.wakeAt(Date.now() + this.settings.backoffBaseMs);
      }
    }
    let sandboxIP: string | undefined;
    if (sandbox) {
      const info = await runtime.inspectContainer(sandbox.id);
      // A pod on the host's network has the node's address, as in Kubernetes (status.podIP = status.hostIP).
      sandboxIP = this.inputs.pod.spec.hostNetwork ? this.settings.hostIP : info.ip;
      this.startTime ??= info.startedAt ?? new Date().toISOString();
    }
    let reports: ContainerStatusReport[];
    let initReports: ContainerStatusReport[];
    let initialized = false;
    if ((sandbox && !sandboxProblem) || this.records.terminal) {
      const volumePaths = await preparePodVolumes(this.inputs, this.podDir(), runtime).catch((err: unknown) => err as Error);
      const outcomes = new Map<string, ContainerStatusReport>();
      let finish: Extract<PodAction, { type: 'FinishPod' }> | undefined;
      for (const action of actions) {
        if (action.type === 'FinishPod') finish = action;
        else await this.execute(action, observed, sandbox?.id ?? '', sandboxIP, volumePaths, outcomes);
      }
      const byName = new Map([...this.initSpecs(), ...this.inputs.pod.spec.containers].map((c) => [c.name, c]));
      const reportOf = (v: ContainerVerdict): ContainerStatusReport => {
        const spec = byName.get(v.name)!;
        if ('keep' in v) return v.keep;
        if ('show' in v) return this.report(spec, v.container, v.show, v.restartCount);
        return outcomes.get(v.name) ?? this.report(spec, undefined, { waiting: { reason: 'ContainerCreating' } });
      };
      // An init container is ready once it has succeeded (Kubernetes), whatever its probes say.
      initReports = plan.init.map((v) => { const r = reportOf(v); return { ...r, ready: r.state.terminated?.exitCode === 0 }; });
      reports = plan.apps.map(reportOf);
      initialized = plan.initialized;
      if (finish) {
        this.records.terminal = true;
        if (finish.sandboxId) await runtime.stopContainer(finish.sandboxId, 1);
      }
    } else {
      const waiting = sandboxProblem ?? { reason: 'ContainerCreating', message: 'waiting for the pod sandbox' };
      reports = this.inputs.pod.spec.containers.map((spec) => this.report(spec, undefined, { waiting }));
      initReports = this.initSpecs().map((spec) => this.report(spec, undefined, { waiting }));
    }
    const status = this.podStatus(initReports, initialized, reports, sandboxIP ?? (this.records.terminal ? this.current?.podIP : undefined));
    this.current = status;
    this.records.previous = status;
    const text = JSON.stringify(status);
    if (text !== this.reported) {
      this.reported = text;
      this.settings.onStatus?.(this.inputs, status);
    }
    return status;
  }

  /** Carries out one action of a plan (after its sandbox exists); a started container's report goes to `outcomes`. */
  private async execute(action: PodAction, observed: ObservedPod, sandboxId: string, podIP: string | undefined, volumePaths: Map<string, string> | Error, outcomes: Map<string, ContainerStatusReport>): Promise<void> {
    const { runtime } = this.settings;
    switch (action.type) {
      case 'StartContainer': {
        const spec = this.specOf(action.name);
        const replaced = observed.containers.find((c) => c.id === action.replaces);
        outcomes.set(action.name, await this.startContainer(spec, action.role, action.restartCount, replaced, sandboxId, podIP, volumePaths));
        return;
      }
      case 'StartCreated': {
        await runtime.startContainer(action.id);
        outcomes.set(action.name, await this.started(this.specOf(action.name), action.role, action.id, podIP));
        return;
      }
      case 'StartProbes': this.ensureProbes(this.specOf(action.name), action.containerId, podIP); return;
      case 'SetBackOff': {
        const rec = this.record(action.name);
        rec.backoffFor = action.containerId;
        rec.backoffMs = action.backoffMs;
        rec.backoffUntil = action.until;
        rec.lastState = action.lastState;
        return;
      }
      case 'WakeAt': this.wakeAt(action.at); return;
      case 'CreateSandbox': throw new Error('CreateSandbox comes first in a plan');
      case 'FinishPod': return;
      default: return this.cleanUp(action);
    }
  }

  private async createSandbox(remove: string[], restartCounts: Record<string, number>): Promise<ContainerSummary> {
    const { runtime, sandboxImage, sandboxCommand, sandboxNetwork, resolvConf } = this.settings;
    const network = sandboxNetwork?.();
    const pod = this.inputs.pod;
    const dns = resolvConf?.(pod);
    for (const [name, count] of Object.entries(restartCounts)) {
      this.record(name).nextRestartCount = count;
      this.stopProbes(name);
    }
    for (const id of remove) await runtime.removeContainer(id);
    const sysctls = Object.fromEntries((pod.spec.securityContext?.sysctls ?? []).map((s) => [s.name, s.value]));
    // The kubelet sets only its safe sysctls (without --allowed-unsafe-sysctls, which this agent does not offer).
    const unsafe = Object.keys(sysctls).filter((n) => !SAFE.has(n));
    if (unsafe.length > 0) throw new Error(`forbidden sysctl: ${unsafe.map((n) => JSON.stringify(n)).join(', ')} not allowlisted`);
    await runtime.ensureImage(sandboxImage);
    const ports: PortMapping[] = [];
    for (const c of pod.spec.containers) {
      for (const p of c.ports ?? []) {
        if (p.hostPort) ports.push({ containerPort: p.containerPort, hostPort: p.hostPort, protocol: p.protocol === 'UDP' ? 'UDP' : 'TCP', ...(p.hostIP ? { hostIP: p.hostIP } : {}) });
      }
    }
    const labels = { ...this.podLabels(), [LABEL_NAMESPACE]: namespaceOf(this.inputs), [LABEL_POD]: podName(this.inputs), [LABEL_CONTAINER]: SANDBOX_CONTAINER_NAME };
    const id = await runtime.runSandbox({
      name: dockerName(['flotilla', SANDBOX_CONTAINER_NAME, podName(this.inputs), namespaceOf(this.inputs), this.uid, Date.now().toString(36)]),
      image: sandboxImage,
      ...(sandboxCommand ? { command: sandboxCommand } : {}),
      hostname: pod.spec.hostname ?? podName(this.inputs),
      ports,
      ...(network && !pod.spec.hostNetwork ? { network } : {}),
      labels,
      ...(dns ? { dns } : {}),
      ...(pod.spec.hostNetwork ? { hostNetwork: true } : {}),
      ...(pod.spec.hostIPC ? { hostIPC: true } : {}),
      ...(Object.keys(sysctls).length > 0 ? { sysctls } : {}),
    });
    await mkdir(this.podDir(), { recursive: true });
    return { id, name: '', image: sandboxImage, state: 'running', labels };
  }

  /** Pulls the image if needed, creates and starts the container; the report of what came of it. */
  private async startContainer(
    spec: Container,
    role: ContainerRole,
    restartCount: number,
    cur: ContainerStatus | undefined,
    sandboxId: string,
    podIP: string | undefined,
    volumePaths: Map<string, string> | Error,
  ): Promise<ContainerStatusReport> {
    const { runtime, log } = this.settings;
    const rec = this.record(spec.name);
    try {
      await ensureContainerImage({
        runtime,
        ...(this.settings.peerImages ? { peerImages: this.settings.peerImages } : {}),
        emit: (type, reason, message) => this.emit(type, reason, message),
        log: log.child({ pod: `${namespaceOf(this.inputs)}/${podName(this.inputs)}`, container: spec.name }),
        progressIntervalMs: this.settings.pullProgressMs,
        signal: this.stopRun.signal,
      }, spec.image, spec.imagePullPolicy ?? defaultPullPolicy(spec.image), podPullCredentials(this.inputs));
      rec.pullBackoffMs = 0;
      delete rec.pullError;
    } catch (err) {
      if (!(err instanceof ImagePullError)) throw err;
      this.emit('Warning', 'Failed', `Error: ${err.reason}`);
      if (err.reason === 'ErrImagePull') {
        Object.assign(rec, pullBackOff(rec, Date.now(), this.backoff, err.message));
        // Sync again at once so that the status moves on to ImagePullBackOff for the length of the back-off.
        this.wake();
      } else {
        // Not a pull that failed: nothing to back off from; a later sync finds the image (image load) or a new spec.
        this.wakeAt(Date.now() + this.settings.backoffBaseMs);
      }
      return this.report(spec, cur, { waiting: { reason: err.reason, message: err.message } }, restartCount);
    }

    let id: string;
    try {
      if (volumePaths instanceof Error) throw volumePaths;
      const subPaths = await resolveSubPaths(spec, volumePaths);
      const imageUser = (await runtime.inspectImage(spec.image))?.user;
      const handlers = this.inputs.pod.metadata.annotations?.[ANNOTATION_RUNTIME_HANDLER] !== undefined ? await runtime.runtimeHandlers() : undefined;
      const config = buildContainerConfig(this.inputs, spec, {
        name: dockerName(['flotilla', spec.name, podName(this.inputs), namespaceOf(this.inputs), this.uid, String(restartCount)]),
        sandboxId,
        labels: {
          ...this.podLabels(),
          [LABEL_NAMESPACE]: namespaceOf(this.inputs),
          [LABEL_POD]: podName(this.inputs),
          [LABEL_CONTAINER]: spec.name,
          [LABEL_RESTART_COUNT]: String(restartCount),
          [LABEL_SPEC_HASH]: containerHash(spec),
        },
        volumePaths,
        subPaths,
        ...(imageUser !== undefined ? { imageUser } : {}),
        ...(podIP ? { podIP } : {}),
        ...(handlers ? { runtimeHandlers: handlers } : {}),
        ...(this.settings.services ? { services: this.settings.services() } : {}),
      });
      id = await runtime.createContainer(config);
    } catch (err) {
      if (!(err instanceof ContainerConfigError)) throw err;
      this.emit('Warning', 'Failed', `Error: ${err.message}`);
      this.wakeAt(Date.now() + this.settings.backoffBaseMs);
      return this.report(spec, cur, { waiting: { reason: err.reason, message: err.message } }, restartCount);
    }
    if (cur) await runtime.removeContainer(cur.id);
    this.emit('Normal', 'Created', `Created container ${spec.name}`);
    try {
      await runtime.startContainer(id);
    } catch (err) {
      // A start error is Docker's way with some runtimes of saying the program is for another machine.
      if (!EXEC_FORMAT.test((err as Error).message)) throw err;
      const failed = { ...await runtime.inspectContainer(id), state: 'exited' as const, exitCode: 128, error: (err as Error).message };
      const message = await this.execFormatError(failed) ?? failed.error;
      await runtime.removeContainer(id);
      this.emit('Warning', 'Failed', `Error: ${message}`);
      this.wakeAt(Date.now() + this.settings.backoffBaseMs);
      return this.report(spec, cur, { waiting: { reason: EXEC_FORMAT_ERROR, message } }, restartCount);
    }
    this.emit('Normal', 'Started', `Started container ${spec.name}`);
    return this.started(spec, role, id, podIP);
  }

  /** The report of a container just started: running (probes start), or what it exited with (sync again). */
  private async started(spec: Container, role: ContainerRole, id: string, podIP: string | undefined): Promise<ContainerStatusReport> {
    const started = await this.settings.runtime.inspectContainer(id);
    const execFormat = await this.execFormatError(started);
    if (execFormat) started.error = execFormat;
    if (started.state === 'running' && role === 'app') this.ensureProbes(spec, id, podIP);
    else this.wake();
    return this.report(spec, started, started.state === 'running' ? { running: { startedAt: started.startedAt ?? new Date().toISOString() } } : terminatedState(started));
  }

  private emit(type: PodEvent['type'], reason: string, message: string): void {
    this.settings.onEvent?.(this.inputs, { type, reason, message });
  }

  private ensureProbes(spec: Container, containerId: string, podIP: string | undefined): void {
    const rec = this.record(spec.name);
    if (rec.probe?.containerId === containerId) return;
    this.stopProbes(spec.name);
    const probe: NonNullable<ContainerRecord['probe']> = { containerId, started: !spec.startupProbe, ready: !spec.readinessProbe };
    rec.probe = probe;
    const loops: ProbeLoop[] = [];
    this.probeLoops.set(spec.name, loops);
    const target = { runtime: this.settings.runtime, containerId, ...(podIP ? { podIP } : {}), ...(spec.ports ? { ports: spec.ports } : {}) };
    const startMain = () => {
      if (spec.livenessProbe) {
        loops.push(new ProbeLoop(spec.livenessProbe, target, (ok, message) => {
          if (!ok) { probe.livenessFailure = message; this.wake(); }
        }));
      }
      if (spec.readinessProbe) {
        loops.push(new ProbeLoop(spec.readinessProbe, target, (ok) => { probe.ready = ok; this.wake(); }));
      }
      for (const loop of loops) loop.start();
    };
    if (spec.startupProbe) {
      const startup = new ProbeLoop(spec.startupProbe, target, (ok, message) => {
        if (ok) {
          startup.stop();
          probe.started = true;
          startMain();
        } else {
          probe.livenessFailure = `startup probe: ${message}`;
        }
        this.wake();
      });
      loops.push(startup);
      startup.start();
    } else {
      startMain();
    }
  }

  private stopProbes(name?: string): void {
    for (const [n, loops] of this.probeLoops) {
      if (name !== undefined && n !== name) continue;
      for (const loop of loops) loop.stop();
      this.probeLoops.delete(n);
    }
    for (const [n, rec] of this.records.containers) if (name === undefined || n === name) delete rec.probe;
  }

  private report(spec: Container, cur: ContainerStatus | undefined, shown: ContainerState, restartCount?: number): ContainerStatusReport {
    const rec = this.record(spec.name);
    const state = namedExecFormatError(shown, cur);
    if (rec.lastState) rec.lastState = namedExecFormatError(rec.lastState, undefined);
    const running = state.running !== undefined;
    const probe = rec.probe && cur && rec.probe.containerId === cur.id ? rec.probe : undefined;
    const started = running && (probe?.started ?? !spec.startupProbe);
    const report: ContainerStatusReport = {
      name: spec.name,
      state,
      lastState: rec.lastState ?? {},
      ready: started && (probe?.ready ?? !spec.readinessProbe),
      started,
      restartCount: restartCount ?? cur?.restartCount ?? rec.nextRestartCount,
      image: spec.image,
      imageID: cur?.image ?? '',
    };
    if (cur) report.containerID = `${this.settings.runtime.name}://${cur.id}`;
    if (state.terminated && cur) state.terminated.containerID = report.containerID;
    return report;
  }

  private podStatus(initReports: ContainerStatusReport[], initialized: boolean, reports: ContainerStatusReport[], podIP: string | undefined): WorkerPodStatus {
    const policy = this.inputs.pod.spec.restartPolicy ?? 'Always';
    // An init container that failed under Never is never retried: the pod has failed.
    const initFailed = !initialized && policy === 'Never'
      && initReports.some((r) => r.state.terminated !== undefined && r.state.terminated.exitCode !== 0);
    // A terminated container is final only where the policy will not restart it.
    const done = initFailed || (initialized && reports.every((r) => r.state.terminated !== undefined && (policy === 'Never' || (policy === 'OnFailure' && r.state.terminated.exitCode === 0))));
    const everStarted = initialized && reports.every((r) => r.state.waiting === undefined || r.restartCount > 0 || r.lastState.terminated !== undefined);
    let phase: WorkerPodStatus['phase'] = 'Pending';
    if (done) phase = !initFailed && reports.every((r) => r.state.terminated?.exitCode === 0) ? 'Succeeded' : 'Failed';
    else if (everStarted) phase = 'Running';
    const ready = !done && initialized && reports.every((r) => r.ready);
    const notReady = reports.filter((r) => !r.ready).map((r) => r.name);
    const why = ready ? {} : { reason: done ? 'PodCompleted' : 'ContainersNotReady', message: `containers with unready status: [${notReady.join(' ')}]` };
    const incomplete = initReports.filter((r) => r.state.terminated?.exitCode !== 0).map((r) => r.name);
    const initWhy = initialized ? {} : { reason: 'ContainersNotInitialized', message: `containers with incomplete status: [${incomplete.join(' ')}]` };
    const status: WorkerPodStatus = {
      phase,
      conditions: [
        this.condition('PodScheduled', true),
        this.condition('Initialized', initialized, initWhy),
        this.condition('ContainersReady', ready, why),
        this.condition('Ready', ready, why),
      ],
      containerStatuses: reports,
    };
    if (initReports.length > 0) status.initContainerStatuses = initReports;
    if (this.settings.hostIP) status.hostIP = this.settings.hostIP;
    if (podIP) {
      status.podIP = podIP;
      status.podIPs = [{ ip: podIP }];
    }
    if (this.startTime) status.startTime = this.startTime;
    return status;
  }

  private condition(type: string, ok: boolean, why: { reason?: string; message?: string } = {}): Condition {
    const status = ok ? 'True' : 'False';
    let seen = this.conditionTimes.get(type);
    if (seen?.status !== status) {
      seen = { status, time: new Date().toISOString() };
      this.conditionTimes.set(type, seen);
    }
    return { type, status, lastTransitionTime: seen.time, ...(ok ? {} : why) };
  }

  private record(name: string): ContainerRecord {
    let rec = this.records.containers.get(name);
    if (!rec) {
      rec = newRecord();
      this.records.containers.set(name, rec);
    }
    return rec;
  }

  private initSpecs(): Container[] {
    return this.inputs.pod.spec.initContainers ?? [];
  }

  private specOf(name: string): Container {
    const spec = [...this.initSpecs(), ...this.inputs.pod.spec.containers].find((c) => c.name === name);
    if (!spec) throw new Error(`pod ${podName(this.inputs)} has no container ${name}`);
    return spec;
  }

  private podLabels(): Record<string, string> {
    return { ...ownerLabels(this.settings), [LABEL_POD_UID]: this.uid };
  }

  private podDir(): string {
    return join(this.settings.dataDir, 'pods', this.uid);
  }
}

/** Stops a pod's containers and removes them (planPodTermination): with or without a worker (a fenced pod has none). */
export async function terminatePod(runtime: ContainerRuntime, containers: ContainerSummary[], graceSeconds: number): Promise<void> {
  const actions = planPodTermination(containers, graceSeconds);
  await Promise.all(actions.map((a) => (a.type === 'KillContainer' ? runtime.stopContainer(a.id, a.graceSeconds) : undefined)));
  await Promise.all(actions.map((a) => (a.type === 'RemoveContainer' ? runtime.removeContainer(a.id) : undefined)));
}

/** The workers of one node, keyed by pod uid, each woken by runtime events about its containers. */
export class PodWorkers {
  private readonly workers = new Map<string, PodWorker>();
  private readonly settings: PodWorkerSettings;
  private signal: AbortSignal | undefined;

  constructor(settings: PodWorkerSettings) {
    this.settings = settings;
  }

  /** Watches runtime events until the signal aborts; workers added before or after run under the same signal. */
  async run(signal: AbortSignal): Promise<void> {
    this.signal = signal;
    for (const w of this.workers.values()) void w.run(signal);
    const { runtime } = this.settings;
    while (!signal.aborted) {
      try {
        await runtime.watchEvents(ownerLabels(this.settings), (e) => {
          const uid = e.labels[LABEL_POD_UID];
          if (uid && (e.type === 'die' || e.type === 'oom')) this.workers.get(uid)?.wake();
        }, signal);
      } catch (err) {
        // The event stream broke (engine restart): the periodic resync covers the gap; reopen shortly.
        this.settings.log?.warn({ err }, 'runtime event stream ended');
        await new Promise((r) => setTimeout(r, 1000).unref());
      }
    }
    await Promise.all([...this.workers.values()].map((w) => w.run(signal)));
  }

  /** Starts a worker for a new pod uid, or hands the new desired state to the existing one. */
  update(inputs: PodInputs): PodWorker {
    const uid = podUid(inputs);
    let worker = this.workers.get(uid);
    if (worker) {
      worker.update(inputs);
      return worker;
    }
    worker = new PodWorker(inputs, this.settings);
    this.workers.set(uid, worker);
    if (this.signal) void worker.run(this.signal);
    return worker;
  }

  get(uid: string): PodWorker | undefined {
    return this.workers.get(uid);
  }

  uids(): string[] {
    return [...this.workers.keys()];
  }

  /** Stops and removes the pod's containers (graceful), then forgets the worker. */
  async delete(uid: string, graceSeconds?: number): Promise<void> {
    const worker = this.workers.get(uid);
    if (!worker) return;
    await worker.terminate(graceSeconds);
    this.workers.delete(uid);
  }

  /**
   * Removes this node's containers that belong to no known pod (pods deleted while the agent was away). Only
   * containers of this cluster and node: another cluster's agent with the same node name keeps its own.
   */
  async removeOrphans(graceSeconds = 30): Promise<string[]> {
    const { runtime } = this.settings;
    const orphans = (await runtime.listContainers(ownerLabels(this.settings)))
      .filter((c) => !this.workers.has(c.labels[LABEL_POD_UID] ?? ''));
    await Promise.all(orphans.filter((c) => c.state === 'running').map((c) => runtime.stopContainer(c.id, graceSeconds)));
    await Promise.all(orphans.map((c) => runtime.removeContainer(c.id)));
    return orphans.map((c) => c.id);
  }
}

function podUid(inputs: PodInputs): string {
  const uid = inputs.pod.metadata.uid;
  if (!uid) throw new Error(`pod ${namespaceOf(inputs)}/${podName(inputs)} has no metadata.uid`);
  return uid;
}

function namespaceOf(inputs: PodInputs): string {
  return inputs.pod.metadata.namespace ?? 'default';
}

function podName(inputs: PodInputs): string {
  return inputs.pod.metadata.name ?? '';
}

/** Docker names allow [a-zA-Z0-9_.-]; Kubernetes names already fit, this guards the rest. */
function dockerName(parts: string[]): string {
  return parts.map((p) => p.replace(/[^a-zA-Z0-9.-]/g, '-')).join('_');
}

/** The status of a pod status's Ready condition ('True', 'False'), if it has one. */
function readyOf(status: { conditions?: { type: string; status: string }[] } | undefined): string | undefined {
  return status?.conditions?.find((c) => c.type === 'Ready')?.status;
}

/** A container state whose program failed with an exec format error (its message says so: execFormatError),
 * under EXEC_FORMAT_ERROR instead of the generic Error and CrashLoopBackOff reasons. */
function namedExecFormatError(state: ContainerState, cur: ContainerStatus | undefined): ContainerState {
  const t = state.terminated;
  if (t && t.message && EXEC_FORMAT.test(t.message)) return { terminated: { ...t, reason: EXEC_FORMAT_ERROR } };
  const w = state.waiting;
  if (w?.reason === 'CrashLoopBackOff' && cur?.error && EXEC_FORMAT.test(cur.error)) {
    return { waiting: { reason: EXEC_FORMAT_ERROR, message: `${cur.error}; ${w.message ?? ''}` } };
  }
  return state;
}
