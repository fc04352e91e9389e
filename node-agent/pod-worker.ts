// PodWorker: level-triggered sync of one pod onto a ContainerRuntime. Each sync compares what the runtime
// holds (listed by the pod uid label) with the spec and makes one step toward it, then reports a Kubernetes
// PodStatus. Nothing is remembered that the runtime can tell: restart counts live on container labels, so a
// new agent adopts running containers (same ids, no restart) and continues counting.
// Init containers (spec.initContainers) run one at a time, each to a zero exit, before any app container is
// created; a failed one is retried with the crash back-off unless restartPolicy is Never, which fails the pod.
// Initialization counts as done once any app container of the current sandbox exists, so an adopting agent
// never runs init containers again; a new sandbox (the old one was lost) runs them again, as Kubernetes does.
// PodWorkers: the set of workers of one node, keyed by pod uid, woken by runtime events.
import type { PodEvent } from './pod-events.js';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import pino, { type Logger } from 'pino';
import {
  buildContainerConfig,
  ContainerConfigError,
  preparePodVolumes,
} from './container-config.js';
import type {
  ContainerSpec,
  ContainerState,
  ContainerStatusReport,
  PodCondition,
  PodInputs,
  PodSpec,
  PodStatus,
} from './kube-objects.js';
import { ProbeLoop } from './probes.js';
import { ANNOTATION_RUNTIME_HANDLER } from '../api-types/index.js';
import { PAUSE_IMAGE } from './runtime/pause-image.js';
import {
  ImagePullError,
  LABEL_CONTAINER,
  LABEL_NAMESPACE,
  LABEL_POD,
  LABEL_POD_UID,
  LABEL_RESTART_COUNT,
  SANDBOX_CONTAINER_NAME,
  ownerLabels,
  type ContainerRuntime,
  type ContainerStatus,
  type ContainerSummary,
  type PortMapping,
} from './runtime/types.js';

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
  hostIP?: string;
  /** Crash back-off: base, doubled per restart, capped (Kubernetes: 10 s, 300 s). */
  backoffBaseMs?: number;
  backoffMaxMs?: number;
  /** A container that ran this long before exiting restarts its back-off from the base (Kubernetes: 10 min). */
  backoffResetMs?: number;
  /** Sync at least this often even without events (default 10 s). */
  resyncMs?: number;
  /** Called after a sync whose status differs from the last one reported. */
  onStatus?: (inputs: PodInputs, status: WorkerPodStatus) => void;
  /** What happened to a pod's containers (pulls, starts, crash back-off, failed probes), for Events. */
  onEvent?: (inputs: PodInputs, event: PodEvent) => void;
  log?: Logger;
}

/** PodSpec with Kubernetes' initContainers, which kube-objects' PodSpec does not declare. */
export type WorkerPodSpec = PodSpec & { initContainers?: ContainerSpec[] };
/** PodStatus with Kubernetes' initContainerStatuses, reported like containerStatuses. */
export type WorkerPodStatus = PodStatus & { initContainerStatuses?: ContainerStatusReport[] };

function initContainersOf(inputs: PodInputs): ContainerSpec[] {
  return (inputs.pod.spec as WorkerPodSpec).initContainers ?? [];
}

/** Init containers restart only after a failure (Always acts as OnFailure), and never under Never. */
type ContainerRole = 'init' | 'app';

type Resolved = Required<Omit<PodWorkerSettings, 'sandboxCommand' | 'hostIP' | 'onStatus' | 'onEvent'>> & Pick<PodWorkerSettings, 'sandboxCommand' | 'hostIP' | 'onStatus' | 'onEvent'>;

function resolveSettings(s: PodWorkerSettings): Resolved {
  return {
    sandboxImage: PAUSE_IMAGE,
    backoffBaseMs: 10_000,
    backoffMaxMs: 300_000,
    backoffResetMs: 600_000,
    resyncMs: 10_000,
    log: pino({ level: 'silent' }),
    ...s,
  } as Resolved;
}

/** What the worker keeps about one container name between syncs; all of it can be lost safely. */
interface ContainerRecord {
  /** Container id the current back-off was computed for; a new crash of another id doubles it. */
  backoffFor?: string;
  backoffMs: number;
  backoffUntil: number;
  pullBackoffMs: number;
  pullBackoffUntil: number;
  lastState?: ContainerState;
  /** Restart count the next container of this name gets when none exists (after a sandbox was lost). */
  nextRestartCount: number;
  probes?: { containerId: string; loops: ProbeLoop[]; started: boolean; ready: boolean; livenessFailure?: string };
}

export class PodWorker {
  private inputs: PodInputs;
  private readonly settings: Resolved;
  private readonly records = new Map<string, ContainerRecord>();
  private readonly conditionTimes = new Map<string, { status: string; time: string }>();
  private dirty = true;
  private wakeWaiter: (() => void) | undefined;
  private nextWakeAt = Infinity;
  private current: WorkerPodStatus | undefined;
  private reported = '';
  private startTime: string | undefined;
  private terminal = false;
  private readonly stopRun = new AbortController();
  private running: Promise<void> | undefined;

  constructor(inputs: PodInputs, settings: PodWorkerSettings) {
    this.inputs = inputs;
    this.settings = resolveSettings(settings);
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
    const { runtime } = this.settings;
    const all = await runtime.listContainers(this.podLabels());
    const apps = all.filter((c) => c.labels[LABEL_CONTAINER] !== SANDBOX_CONTAINER_NAME);
    await Promise.all(apps.filter((c) => c.state === 'running').map((c) => runtime.stopContainer(c.id, graceSeconds)));
    await Promise.all(all.map((c) => runtime.removeContainer(c.id)));
    await rm(this.podDir(), { recursive: true, force: true });
  }

  /** One level-triggered step: reads the runtime, acts once per container, reports. The loop calls it. */
  async sync(): Promise<WorkerPodStatus> {
    const { runtime } = this.settings;
    const pod = this.inputs.pod;
    const existing = await runtime.listContainers(this.podLabels());
    const sandboxes = existing.filter((c) => c.labels[LABEL_CONTAINER] === SANDBOX_CONTAINER_NAME);
    let sandbox = sandboxes.find((c) => c.state === 'running');
    let sandboxIP: string | undefined;
    let reports: ContainerStatusReport[];
    let initReports: ContainerStatusReport[];
    let initialized = false;
    let sandboxProblem: { reason: string; message: string } | undefined;
    // createSandbox removes every container of the pod, so after it nothing listed before exists.
    let listed = existing;

    if (!sandbox && !this.terminal) {
      try {
        sandbox = await this.createSandbox(existing);
        listed = [sandbox];
      } catch (err) {
        sandboxProblem = err instanceof ImagePullError
          ? { reason: err.reason, message: `sandbox image ${err.image}: ${err.message}` }
          : { reason: 'CreatePodSandboxError', message: (err as Error).message };
        this.wakeAt(Date.now() + this.settings.backoffBaseMs);
      }
    }
    if (sandbox) {
      const info = await runtime.inspectContainer(sandbox.id);
      sandboxIP = info.ip;
      this.startTime ??= info.startedAt ?? new Date().toISOString();
    }
    if ((sandbox && !sandboxProblem) || this.terminal) {
      const volumePaths = await preparePodVolumes(this.inputs, this.podDir()).catch((err: unknown) => err as Error);
      const init = await this.syncInitContainers(listed, sandbox?.id ?? '', sandboxIP, volumePaths);
      initReports = init.reports;
      initialized = init.done;
      reports = [];
      for (const spec of pod.spec.containers) {
        reports.push(initialized
          ? await this.syncContainer(spec, 'app', listed, sandbox?.id ?? '', sandboxIP, volumePaths)
          : this.report(spec, undefined, { waiting: { reason: 'PodInitializing' } }));
      }
    } else {
      const waiting = sandboxProblem ?? { reason: 'ContainerCreating', message: 'waiting for the pod sandbox' };
      reports = pod.spec.containers.map((spec) => this.report(spec, undefined, { waiting }));
      initReports = initContainersOf(this.inputs).map((spec) => this.report(spec, undefined, { waiting }));
    }
    const status = this.podStatus(initReports, initialized, reports, sandboxIP ?? (this.terminal ? this.current?.podIP : undefined));
    if (!this.terminal && (status.phase === 'Succeeded' || status.phase === 'Failed')) {
      this.terminal = true;
      if (sandbox) await runtime.stopContainer(sandbox.id, 1);
    }
    this.current = status;
    const text = JSON.stringify(status);
    if (text !== this.reported) {
      this.reported = text;
      this.settings.onStatus?.(this.inputs, status);
    }
    return status;
  }

  private async createSandbox(existing: ContainerSummary[]): Promise<ContainerSummary> {
    const { runtime, sandboxImage, sandboxCommand } = this.settings;
    const pod = this.inputs.pod;
    // Containers of a lost sandbox have lost their network: remove them, and count their restart.
    for (const c of existing) {
      const name = c.labels[LABEL_CONTAINER];
      if (name && name !== SANDBOX_CONTAINER_NAME) {
        const rec = this.record(name);
        rec.nextRestartCount = Math.max(rec.nextRestartCount, restartCountOf(c) + 1);
        this.stopProbes(name);
      }
      await runtime.removeContainer(c.id);
    }
    await runtime.ensureImage(sandboxImage);
    const ports: PortMapping[] = [];
    for (const c of pod.spec.containers) {
      for (const p of c.ports ?? []) {
        if (p.hostPort) ports.push({ containerPort: p.containerPort, hostPort: p.hostPort, protocol: p.protocol ?? 'TCP', ...(p.hostIP ? { hostIP: p.hostIP } : {}) });
      }
    }
    const labels = { ...this.podLabels(), [LABEL_NAMESPACE]: namespaceOf(this.inputs), [LABEL_POD]: pod.metadata.name, [LABEL_CONTAINER]: SANDBOX_CONTAINER_NAME };
    const id = await runtime.runSandbox({
      name: dockerName(['flotilla', SANDBOX_CONTAINER_NAME, pod.metadata.name, namespaceOf(this.inputs), this.uid, Date.now().toString(36)]),
      image: sandboxImage,
      ...(sandboxCommand ? { command: sandboxCommand } : {}),
      hostname: pod.spec.hostname ?? pod.metadata.name,
      ports,
      labels,
    });
    await mkdir(this.podDir(), { recursive: true });
    return { id, name: '', image: sandboxImage, state: 'running', labels };
  }

  /**
   * Brings the first init container that has not exited 0 one step further. done: every init container
   * succeeded, or an app container already exists (initialization finished before, e.g. under another agent).
   */
  private async syncInitContainers(
    listed: ContainerSummary[],
    sandboxId: string,
    podIP: string | undefined,
    volumePaths: Map<string, string> | Error,
  ): Promise<{ done: boolean; reports: ContainerStatusReport[] }> {
    const specs = initContainersOf(this.inputs);
    const appNames = new Set(this.inputs.pod.spec.containers.map((c) => c.name));
    const appsExist = listed.some((c) => appNames.has(c.labels[LABEL_CONTAINER] ?? ''));
    const reports: ContainerStatusReport[] = [];
    let done = true;
    // An init container is ready once it has succeeded (Kubernetes), whatever its probes say.
    const push = (r: ContainerStatusReport) => reports.push({ ...r, ready: 'terminated' in r.state && r.state.terminated.exitCode === 0 });
    for (const spec of specs) {
      if (!done) {
        push(this.report(spec, undefined, { waiting: { reason: 'PodInitializing' } }));
        continue;
      }
      const latest = listed
        .filter((c) => c.labels[LABEL_CONTAINER] === spec.name)
        .sort((a, b) => restartCountOf(b) - restartCountOf(a))[0];
      const cur = latest ? await this.settings.runtime.inspectContainer(latest.id).catch(() => undefined) : undefined;
      if (cur && cur.state === 'exited' && cur.exitCode === 0) {
        push(this.report(spec, cur, terminatedState(cur)));
        continue;
      }
      if (appsExist) {
        // Removed after it succeeded (or never seen by this agent): report what it must have been.
        const last = this.current?.initContainerStatuses?.find((c) => c.name === spec.name);
        push(last ?? this.report(spec, undefined, { terminated: { exitCode: 0, reason: 'Completed' } }));
        continue;
      }
      const report = await this.syncContainer(spec, 'init', listed, sandboxId, podIP, volumePaths);
      push(report);
      done = 'terminated' in report.state && report.state.terminated.exitCode === 0;
    }
    return { done: done || appsExist, reports };
  }

  private async syncContainer(
    spec: ContainerSpec,
    role: ContainerRole,
    listed: ContainerSummary[],
    sandboxId: string,
    podIP: string | undefined,
    volumePaths: Map<string, string> | Error,
  ): Promise<ContainerStatusReport> {
    const { runtime } = this.settings;
    const rec = this.record(spec.name);
    const mine = listed
      .filter((c) => c.labels[LABEL_CONTAINER] === spec.name)
      .sort((a, b) => restartCountOf(b) - restartCountOf(a));
    const [latest, ...older] = mine;
    for (const old of older) await runtime.removeContainer(old.id);
    let cur = latest ? await runtime.inspectContainer(latest.id).catch(() => undefined) : undefined;
    if (this.terminal && !cur) {
      // A finished pod whose containers were removed behind our back keeps the status it ended with.
      const last = (role === 'init' ? this.current?.initContainerStatuses : this.current?.containerStatuses)?.find((c) => c.name === spec.name);
      if (last) return last;
    }
    if (cur?.state === 'created') {
      await runtime.startContainer(cur.id);
      cur = await runtime.inspectContainer(cur.id);
    }

    if (cur?.state === 'running' && role === 'init') {
      return this.report(spec, cur, { running: { startedAt: cur.startedAt ?? new Date().toISOString() } });
    }
    if (cur?.state === 'running') {
      const probes = this.ensureProbes(spec, cur.id, podIP);
      if (probes.livenessFailure !== undefined) {
        this.settings.log.info({ pod: this.inputs.pod.metadata.name, container: spec.name }, 'liveness probe failed; restarting');
        this.emit('Warning', 'Unhealthy', `Liveness probe failed: ${probes.livenessFailure}`);
        this.emit('Normal', 'Killing', `Container ${spec.name} failed liveness probe, will be restarted`);
        await runtime.stopContainer(cur.id, this.inputs.pod.spec.terminationGracePeriodSeconds ?? 30);
        this.stopProbes(spec.name);
        this.wake();
        cur = await runtime.inspectContainer(cur.id);
      } else {
        return this.report(spec, cur, { running: { startedAt: cur.startedAt ?? new Date().toISOString() } });
      }
    }

    let nextRestartCount = rec.nextRestartCount;
    if (cur) {
      this.stopProbes(spec.name);
      const terminated = terminatedState(cur);
      const podPolicy = this.inputs.pod.spec.restartPolicy ?? 'Always';
      const policy = role === 'init' && podPolicy === 'Always' ? 'OnFailure' : podPolicy;
      const restart = !this.terminal && (policy === 'Always' || (policy === 'OnFailure' && cur.exitCode !== 0));
      if (!restart) return this.report(spec, cur, terminated);
      if (rec.backoffFor !== cur.id) {
        const ranMs = Date.parse(cur.finishedAt ?? '') - Date.parse(cur.startedAt ?? '');
        rec.backoffMs = rec.backoffMs === 0 || ranMs >= this.settings.backoffResetMs
          ? this.settings.backoffBaseMs
          : Math.min(rec.backoffMs * 2, this.settings.backoffMaxMs);
        rec.backoffFor = cur.id;
        rec.backoffUntil = (Date.parse(cur.finishedAt ?? '') || Date.now()) + rec.backoffMs;
      }
      rec.lastState = terminated;
      if (Date.now() < rec.backoffUntil) {
        this.wakeAt(rec.backoffUntil);
        this.emit('Warning', 'BackOff', `Back-off restarting failed container ${spec.name} in pod ${this.inputs.pod.metadata.name}`);
        return this.report(spec, cur, {
          waiting: { reason: 'CrashLoopBackOff', message: `back-off ${formatDuration(rec.backoffMs)} restarting failed container=${spec.name} pod=${this.inputs.pod.metadata.name}` },
        });
      }
      nextRestartCount = cur.restartCount + 1;
    }

    if (Date.now() < rec.pullBackoffUntil) {
      this.wakeAt(rec.pullBackoffUntil);
      this.emit('Normal', 'BackOff', `Back-off pulling image "${spec.image}"`);
      return this.report(spec, cur, { waiting: { reason: 'ImagePullBackOff', message: `Back-off pulling image "${spec.image}"` } }, nextRestartCount);
    }
    let pullStarted = 0;
    try {
      await runtime.ensureImage(spec.image, () => {
        if (pullStarted) return;
        pullStarted = Date.now();
        this.emit('Normal', 'Pulling', `Pulling image "${spec.image}"`);
      });
      if (pullStarted) this.emit('Normal', 'Pulled', `Successfully pulled image "${spec.image}" in ${((Date.now() - pullStarted) / 1000).toFixed(1)}s`);
      rec.pullBackoffMs = 0;
    } catch (err) {
      if (!(err instanceof ImagePullError)) throw err;
      this.emit('Warning', 'Failed', `Failed to pull image "${spec.image}": ${err.message}`);
      rec.pullBackoffMs = rec.pullBackoffMs === 0 ? this.settings.backoffBaseMs : Math.min(rec.pullBackoffMs * 2, this.settings.backoffMaxMs);
      rec.pullBackoffUntil = Date.now() + rec.pullBackoffMs;
      // Sync again at once so that the status moves on to ImagePullBackOff for the length of the back-off.
      this.wake();
      return this.report(spec, cur, { waiting: { reason: err.reason, message: err.message } }, nextRestartCount);
    }

    let id: string;
    try {
      if (volumePaths instanceof Error) throw volumePaths;
      const handlers = this.inputs.pod.metadata.annotations?.[ANNOTATION_RUNTIME_HANDLER] !== undefined ? await runtime.runtimeHandlers() : undefined;
      const config = buildContainerConfig(this.inputs, spec, {
        name: dockerName(['flotilla', spec.name, this.inputs.pod.metadata.name, namespaceOf(this.inputs), this.uid, String(nextRestartCount)]),
        sandboxId,
        labels: {
          ...this.podLabels(),
          [LABEL_NAMESPACE]: namespaceOf(this.inputs),
          [LABEL_POD]: this.inputs.pod.metadata.name,
          [LABEL_CONTAINER]: spec.name,
          [LABEL_RESTART_COUNT]: String(nextRestartCount),
        },
        volumePaths,
        ...(podIP ? { podIP } : {}),
        ...(handlers ? { runtimeHandlers: handlers } : {}),
      });
      id = await runtime.createContainer(config);
    } catch (err) {
      if (!(err instanceof ContainerConfigError)) throw err;
      this.emit('Warning', 'Failed', `Error: ${err.message}`);
      this.wakeAt(Date.now() + this.settings.backoffBaseMs);
      return this.report(spec, cur, { waiting: { reason: err.reason, message: err.message } }, nextRestartCount);
    }
    if (cur) await runtime.removeContainer(cur.id);
    this.emit('Normal', 'Created', `Created container ${spec.name}`);
    await runtime.startContainer(id);
    this.emit('Normal', 'Started', `Started container ${spec.name}`);
    const started = await runtime.inspectContainer(id);
    if (started.state === 'running' && role === 'app') this.ensureProbes(spec, id, podIP);
    else this.wake();
    return this.report(spec, started, started.state === 'running' ? { running: { startedAt: started.startedAt ?? new Date().toISOString() } } : terminatedState(started));
  }

  private emit(type: PodEvent['type'], reason: string, message: string): void {
    this.settings.onEvent?.(this.inputs, { type, reason, message });
  }

  private ensureProbes(spec: ContainerSpec, containerId: string, podIP: string | undefined): NonNullable<ContainerRecord['probes']> {
    const rec = this.record(spec.name);
    if (rec.probes?.containerId === containerId) return rec.probes;
    this.stopProbes(spec.name);
    const probes: NonNullable<ContainerRecord['probes']> = { containerId, loops: [], started: !spec.startupProbe, ready: !spec.readinessProbe };
    rec.probes = probes;
    const target = { runtime: this.settings.runtime, containerId, ...(podIP ? { podIP } : {}) };
    const startMain = () => {
      if (spec.livenessProbe) {
        probes.loops.push(new ProbeLoop(spec.livenessProbe, target, (ok, message) => {
          if (!ok) { probes.livenessFailure = message; this.wake(); }
        }));
      }
      if (spec.readinessProbe) {
        probes.loops.push(new ProbeLoop(spec.readinessProbe, target, (ok) => { probes.ready = ok; this.wake(); }));
      }
      for (const loop of probes.loops) loop.start();
    };
    if (spec.startupProbe) {
      const startup = new ProbeLoop(spec.startupProbe, target, (ok, message) => {
        if (ok) {
          startup.stop();
          probes.started = true;
          startMain();
        } else {
          probes.livenessFailure = `startup probe: ${message}`;
        }
        this.wake();
      });
      probes.loops.push(startup);
      startup.start();
    } else {
      startMain();
    }
    return probes;
  }

  private stopProbes(name?: string): void {
    for (const [n, rec] of this.records) {
      if (name !== undefined && n !== name) continue;
      for (const loop of rec.probes?.loops ?? []) loop.stop();
      delete rec.probes;
    }
  }

  private report(spec: ContainerSpec, cur: ContainerStatus | undefined, state: ContainerState, restartCount?: number): ContainerStatusReport {
    const rec = this.record(spec.name);
    const running = 'running' in state;
    const probes = rec.probes && cur && rec.probes.containerId === cur.id ? rec.probes : undefined;
    const started = running && (probes?.started ?? !spec.startupProbe);
    const report: ContainerStatusReport = {
      name: spec.name,
      state,
      lastState: rec.lastState ?? {},
      ready: started && (probes?.ready ?? !spec.readinessProbe),
      started,
      restartCount: restartCount ?? cur?.restartCount ?? rec.nextRestartCount,
      image: spec.image,
      imageID: cur?.image ?? '',
    };
    if (cur) report.containerID = `${this.settings.runtime.name}://${cur.id}`;
    if ('terminated' in state && cur) state.terminated.containerID = report.containerID;
    return report;
  }

  private podStatus(initReports: ContainerStatusReport[], initialized: boolean, reports: ContainerStatusReport[], podIP: string | undefined): WorkerPodStatus {
    const policy = this.inputs.pod.spec.restartPolicy ?? 'Always';
    // An init container that failed under Never is never retried: the pod has failed.
    const initFailed = !initialized && policy === 'Never'
      && initReports.some((r) => 'terminated' in r.state && r.state.terminated.exitCode !== 0);
    // A terminated container is final only where the policy will not restart it.
    const done = initFailed || (initialized && reports.every((r) => 'terminated' in r.state && (policy === 'Never' || (policy === 'OnFailure' && r.state.terminated.exitCode === 0))));
    const everStarted = initialized && reports.every((r) => !('waiting' in r.state) || r.restartCount > 0 || 'terminated' in r.lastState);
    let phase: PodStatus['phase'] = 'Pending';
    if (done) phase = !initFailed && reports.every((r) => 'terminated' in r.state && r.state.terminated.exitCode === 0) ? 'Succeeded' : 'Failed';
    else if (everStarted) phase = 'Running';
    const ready = !done && initialized && reports.every((r) => r.ready);
    const notReady = reports.filter((r) => !r.ready).map((r) => r.name);
    const why = ready ? {} : { reason: done ? 'PodCompleted' : 'ContainersNotReady', message: `containers with unready status: [${notReady.join(' ')}]` };
    const incomplete = initReports.filter((r) => !('terminated' in r.state && r.state.terminated.exitCode === 0)).map((r) => r.name);
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

  private condition(type: PodCondition['type'], ok: boolean, why: { reason?: string; message?: string } = {}): PodCondition {
    const status = ok ? 'True' : 'False';
    let seen = this.conditionTimes.get(type);
    if (seen?.status !== status) {
      seen = { status, time: new Date().toISOString() };
      this.conditionTimes.set(type, seen);
    }
    return { type, status, lastTransitionTime: seen.time, ...(ok ? {} : why) };
  }

  private record(name: string): ContainerRecord {
    let rec = this.records.get(name);
    if (!rec) {
      rec = { backoffMs: 0, backoffUntil: 0, pullBackoffMs: 0, pullBackoffUntil: 0, nextRestartCount: 0 };
      this.records.set(name, rec);
    }
    return rec;
  }

  private podLabels(): Record<string, string> {
    return { ...ownerLabels(this.settings), [LABEL_POD_UID]: this.uid };
  }

  private podDir(): string {
    return join(this.settings.dataDir, 'pods', this.uid);
  }
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
  if (!uid) throw new Error(`pod ${namespaceOf(inputs)}/${inputs.pod.metadata.name} has no metadata.uid`);
  return uid;
}

function namespaceOf(inputs: PodInputs): string {
  return inputs.pod.metadata.namespace ?? 'default';
}

function restartCountOf(c: ContainerSummary): number {
  return Number(c.labels[LABEL_RESTART_COUNT] ?? 0);
}

function terminatedState(c: ContainerStatus): ContainerState {
  const exitCode = c.exitCode ?? -1;
  const reason = c.oomKilled ? 'OOMKilled' : exitCode === 0 ? 'Completed' : 'Error';
  const terminated: Extract<ContainerState, { terminated: unknown }>['terminated'] = { exitCode, reason };
  if (c.startedAt) terminated.startedAt = c.startedAt;
  if (c.finishedAt) terminated.finishedAt = c.finishedAt;
  if (c.error) terminated.message = c.error;
  return { terminated };
}

/** Docker names allow [a-zA-Z0-9_.-]; Kubernetes names already fit, this guards the rest. */
function dockerName(parts: string[]): string {
  return parts.map((p) => p.replace(/[^a-zA-Z0-9.-]/g, '-')).join('_');
}

function formatDuration(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`;
}

/** The status of a pod status's Ready condition ('True', 'False'), if it has one. */
function readyOf(status: { conditions?: { type: string; status: string }[] } | undefined): string | undefined {
  return status?.conditions?.find((c) => c.type === 'Ready')?.status;
}
