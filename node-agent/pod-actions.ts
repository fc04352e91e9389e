// The pod worker's decisions, as a pure function (the kubelet's computePodActions): from the desired pod, what
// the runtime shows of it, what the worker remembers (restart counts, back-off, probe results) and the time, the
// list of actions that bring the pod one step toward its spec, and for every container what its status shows
// unless an action of the plan changes it. node-agent/pod-worker.ts carries the actions out and builds the
// PodStatus; test/agent/testdata/pod-actions/*.txt pin the decisions down.
//
// Rules (as the kubelet's):
// - No running sandbox (and the pod has not finished): remove every container of the pod (they lost their
//   network), create a sandbox, and run the pod from the start; the containers keep counting their restarts.
// - Init containers run one at a time, each to a zero exit, before any app container is created; a failed one is
//   retried with the crash back-off unless restartPolicy is Never, which fails the pod. Initialization counts as
//   done once an app container of the current sandbox exists (an adopting agent never runs them again).
// - An exited container restarts by its restartPolicy (init containers: Always acts as OnFailure), after the
//   crash back-off: base, doubled per crash of a new container, capped, and back to the base after a run of
//   backoffResetMs. An image that failed to pull is not pulled again before its own back-off ends.
// - A running container whose liveness probe failed is killed (with the pod's grace period), then restarts by
//   the same rules. One whose spec changed (its hash label differs) is replaced at once, whatever the policy.
// - Once every container is final (terminated and not restarted by the policy, or a failed init container under
//   Never), the pod has finished: its sandbox stops and nothing of it is started again.
import { createHash } from 'node:crypto';
import { withDefaultTag, type ConfigMap, type Container, type ContainerState, type ContainerStatus as PodContainerStatus, type PersistentVolume, type Pod, type Secret } from '../api-types/index.js';
import { LABEL_CONTAINER, LABEL_SPEC_HASH, SANDBOX_CONTAINER_NAME, type ContainerStatus, type ContainerSummary } from './runtime/types.js';

export type ContainerRole = 'init' | 'app';

/** What a pod worker needs to run a pod: the pod and the ConfigMaps and Secrets it references, by name. */
export interface PodInputs {
  pod: Pod;
  configMaps: Record<string, ConfigMap>;
  secrets: Record<string, Secret>;
  /** The volume each of its PersistentVolumeClaims is bound to, by claim name (a claim not bound yet: absent). */
  persistentVolumes?: Record<string, PersistentVolume>;
}

/** What the runtime shows of one pod. */
export interface ObservedPod {
  /** Containers labelled as the pod's sandbox (normally one). */
  sandboxes: ContainerSummary[];
  /** Every other container of the pod, inspected (one that vanished meanwhile is left out). */
  containers: ContainerStatus[];
}

export interface BackoffSettings {
  /** Crash and image pull back-off: base, doubled per failure, capped (Kubernetes: 10 s, 300 s). */
  baseMs: number;
  maxMs: number;
  /** A container that ran this long before exiting restarts its back-off from the base (Kubernetes: 10 min). */
  resetMs: number;
}

export const DEFAULT_BACKOFF: BackoffSettings = { baseMs: 10_000, maxMs: 300_000, resetMs: 600_000 };

/** What the worker keeps about one container name between syncs; all of it can be lost safely. */
export interface ContainerRecord {
  /** Container id the current back-off was computed for; a new crash of another id doubles it. */
  backoffFor?: string;
  backoffMs: number;
  backoffUntil: number;
  pullBackoffMs: number;
  pullBackoffUntil: number;
  /** What the last failed pull said: ImagePullBackOff repeats it, as the kubelet's does. */
  pullError?: string;
  lastState?: ContainerState;
  /** Restart count the next container of this name gets when none exists (after a sandbox was lost). */
  nextRestartCount: number;
  /** Results of the probes of container `containerId` (node-agent/probes.ts loops write them). */
  probe?: { containerId: string; started: boolean; ready: boolean; livenessFailure?: string };
}

/** A container status as a worker reports it: state, lastState, started and imageID always set. */
export type ContainerStatusReport = PodContainerStatus & Required<Pick<PodContainerStatus, 'state' | 'lastState' | 'started' | 'imageID'>>;

export interface PodRecords {
  containers: Map<string, ContainerRecord>;
  /** The pod has finished (Succeeded or Failed): nothing of it is started again. */
  terminal: boolean;
  /** The status last built: what containers removed behind the worker's back keep showing. */
  previous?: { containerStatuses: ContainerStatusReport[]; initContainerStatuses?: ContainerStatusReport[] };
}

export function newRecord(): ContainerRecord {
  return { backoffMs: 0, backoffUntil: 0, pullBackoffMs: 0, pullBackoffUntil: 0, nextRestartCount: 0 };
}

export type PodAction =
  /** Remove these containers (the lost sandbox's), set the restart counts the next containers start from, create a sandbox. */
  | { type: 'CreateSandbox'; remove: string[]; restartCounts: Record<string, number> }
  /** An older attempt of a container name: removed before anything else is decided. */
  | { type: 'RemoveContainer'; name: string; id: string }
  /** SIGTERM, SIGKILL after the grace period: a failed liveness probe, a changed spec, or the pod stopping. */
  | { type: 'KillContainer'; name: string; id: string; graceSeconds: number; reason: 'Unhealthy' | 'SpecChanged' | 'PodStopping' }
  /** A container created but never started (the agent stopped in between): start it. */
  | { type: 'StartCreated'; name: string; role: ContainerRole; id: string }
  /** Pull the image if needed, create and start a container; the one it replaces is removed once it exists. */
  | { type: 'StartContainer'; name: string; role: ContainerRole; restartCount: number; replaces?: string }
  | { type: 'StartProbes'; name: string; containerId: string }
  | { type: 'StopProbes'; name: string }
  /** Record a crash of container `containerId`: its back-off lasts until `until`. */
  | { type: 'SetBackOff'; name: string; containerId: string; backoffMs: number; until: number; lastState: ContainerState }
  | { type: 'Event'; eventType: 'Normal' | 'Warning'; reason: string; message: string }
  /** Sync again at this time (end of a back-off). */
  | { type: 'WakeAt'; at: number }
  /** Every container is final: the pod has finished; stop its sandbox. */
  | { type: 'FinishPod'; sandboxId?: string };

/** What a container's status shows after the plan. */
export type ContainerVerdict =
  /** This state, of this container (if one exists), with this restart count (default: the container's). */
  | { name: string; show: ContainerState; container?: ContainerStatus; restartCount?: number }
  /** The status last reported for it (a container removed after it finished). */
  | { name: string; keep: ContainerStatusReport }
  /** Whatever its StartContainer or StartCreated action brings. */
  | { name: string; starting: true };

export interface PodPlan {
  actions: PodAction[];
  /**
   * The plan holds only clean-up (older attempts removed, containers killed): carry it out and plan again
   * before deciding on starts, as the runtime has changed.
   */
  replan: boolean;
  initialized: boolean;
  init: ContainerVerdict[];
  apps: ContainerVerdict[];
}

/** The pod as the planner reads it. */
export type PlannedPod = Pick<Pod, 'metadata' | 'spec'>;

const EMPTY_RECORD: ContainerRecord = Object.freeze(newRecord());

export function planPodActions(pod: PlannedPod, observed: ObservedPod, records: PodRecords, now: number, backoff: BackoffSettings = DEFAULT_BACKOFF): PodPlan {
  const rec = (name: string): ContainerRecord => records.containers.get(name) ?? EMPTY_RECORD;
  const podName = pod.metadata.name ?? '';
  const policy = pod.spec.restartPolicy ?? 'Always';
  const initSpecs = pod.spec.initContainers ?? [];
  const actions: PodAction[] = [];
  const sandbox = observed.sandboxes.find((c) => c.state === 'running');
  let containers = observed.containers;
  const restartCounts: Record<string, number> = {};

  if (!sandbox && !records.terminal) {
    // The containers of a lost sandbox have lost their network: remove them, and count their restart.
    for (const c of containers) {
      const name = nameOf(c);
      restartCounts[name] = Math.max(restartCounts[name] ?? rec(name).nextRestartCount, c.restartCount + 1);
    }
    actions.push({ type: 'CreateSandbox', remove: [...observed.sandboxes, ...containers].map((c) => c.id), restartCounts });
    containers = [];
  }

  const attempts = new Map<string, ContainerStatus[]>();
  for (const c of containers) {
    const list = attempts.get(nameOf(c)) ?? [];
    list.push(c);
    attempts.set(nameOf(c), list);
  }
  for (const list of attempts.values()) list.sort((a, b) => b.restartCount - a.restartCount);
  const latest = (name: string): ContainerStatus | undefined => attempts.get(name)?.[0];

  // Clean-up first: older attempts of the containers this pod runs, but for the one before the newest once it
  // has ended (as the kubelet keeps one dead container: `logs --previous` reads it).
  const cleanup: PodAction[] = [];
  for (const spec of [...initSpecs, ...pod.spec.containers]) {
    const [, previous, ...older] = attempts.get(spec.name) ?? [];
    for (const old of [...(previous && previous.state !== 'exited' ? [previous] : []), ...older]) cleanup.push({ type: 'RemoveContainer', name: spec.name, id: old.id });
  }

  const planContainer = (spec: Container, role: ContainerRole, cur: ContainerStatus | undefined): ContainerVerdict => {
    const r = rec(spec.name);
    const previous = (role === 'init' ? records.previous?.initContainerStatuses : records.previous?.containerStatuses)?.find((c) => c.name === spec.name);
    // A finished pod whose containers were removed behind the worker's back keeps the status it ended with.
    if (records.terminal && !cur && previous) return { name: spec.name, keep: previous };
    if (cur?.state === 'created') {
      actions.push({ type: 'StartCreated', name: spec.name, role, id: cur.id });
      return { name: spec.name, starting: true };
    }
    const hash = cur?.labels[LABEL_SPEC_HASH];
    if (cur?.state === 'running' && !records.terminal && hash !== undefined && hash !== containerHash(spec)) {
      // The spec changed (a new image): replace the container at once, whatever the policy, as the kubelet does.
      actions.push({ type: 'Event', eventType: 'Normal', reason: 'Killing', message: `Container ${spec.name} definition changed, will be restarted` });
      actions.push({ type: 'StopProbes', name: spec.name });
      actions.push({ type: 'KillContainer', name: spec.name, id: cur.id, graceSeconds: pod.spec.terminationGracePeriodSeconds ?? 30, reason: 'SpecChanged' });
      return startOrPullBackOff(spec, role, cur, cur.restartCount + 1);
    }
    if (cur?.state === 'running') {
      const running: ContainerVerdict = { name: spec.name, show: { running: { startedAt: cur.startedAt ?? new Date(now).toISOString() } }, container: cur };
      if (role === 'init') return running;
      if (r.probe?.containerId !== cur.id) {
        actions.push({ type: 'StartProbes', name: spec.name, containerId: cur.id });
        return running;
      }
      if (r.probe.livenessFailure === undefined) return running;
      cleanup.push(
        { type: 'Event', eventType: 'Warning', reason: 'Unhealthy', message: `Liveness probe failed: ${r.probe.livenessFailure}` },
        { type: 'Event', eventType: 'Normal', reason: 'Killing', message: `Container ${spec.name} failed liveness probe, will be restarted` },
        { type: 'StopProbes', name: spec.name },
        { type: 'KillContainer', name: spec.name, id: cur.id, graceSeconds: pod.spec.terminationGracePeriodSeconds ?? 30, reason: 'Unhealthy' },
      );
      return running;
    }
    if (!cur) return startOrPullBackOff(spec, role, undefined, restartCounts[spec.name] ?? r.nextRestartCount);

    if (r.probe) actions.push({ type: 'StopProbes', name: spec.name });
    const terminated = terminatedState(cur);
    const effective = role === 'init' && policy === 'Always' ? 'OnFailure' : policy;
    const restart = !records.terminal && (effective === 'Always' || (effective === 'OnFailure' && cur.exitCode !== 0));
    if (!restart) return { name: spec.name, show: terminated, container: cur };
    let { backoffMs, backoffUntil: until } = r;
    if (r.backoffFor !== cur.id) {
      const finished = Date.parse(cur.finishedAt ?? '');
      const ranMs = finished - Date.parse(cur.startedAt ?? '');
      backoffMs = r.backoffMs === 0 || ranMs >= backoff.resetMs ? backoff.baseMs : Math.min(r.backoffMs * 2, backoff.maxMs);
      until = (finished || now) + backoffMs;
      actions.push({ type: 'SetBackOff', name: spec.name, containerId: cur.id, backoffMs, until, lastState: terminated });
    }
    if (now < until) {
      actions.push({ type: 'WakeAt', at: until });
      actions.push({ type: 'Event', eventType: 'Warning', reason: 'BackOff', message: `Back-off restarting failed container ${spec.name} in pod ${podName}` });
      return {
        name: spec.name, container: cur,
        show: { waiting: { reason: 'CrashLoopBackOff', message: `back-off ${formatDuration(backoffMs)} restarting failed container=${spec.name} pod=${podName}` } },
      };
    }
    return startOrPullBackOff(spec, role, cur, cur.restartCount + 1);
  };

  const startOrPullBackOff = (spec: Container, role: ContainerRole, cur: ContainerStatus | undefined, restartCount: number): ContainerVerdict => {
    const until = rec(spec.name).pullBackoffUntil;
    if (now < until) {
      actions.push({ type: 'WakeAt', at: until });
      const backOff = `Back-off pulling image "${imageShown(spec.image)}"`;
      const error = rec(spec.name).pullError;
      actions.push({ type: 'Event', eventType: 'Normal', reason: 'BackOff', message: backOff });
      const message = error === undefined ? backOff : `${backOff}: ErrImagePull: ${error}`;
      return { name: spec.name, show: { waiting: { reason: 'ImagePullBackOff', message } }, ...(cur ? { container: cur } : {}), restartCount };
    }
    actions.push({ type: 'StartContainer', name: spec.name, role, restartCount, ...(cur ? { replaces: cur.id } : {}) });
    return { name: spec.name, starting: true };
  };

  const podInitializing = (spec: Container): ContainerVerdict => ({ name: spec.name, show: { waiting: { reason: 'PodInitializing' } } });
  const appNames = new Set(pod.spec.containers.map((c) => c.name));
  const appsExist = containers.some((c) => appNames.has(nameOf(c)));
  const init: ContainerVerdict[] = [];
  let done = true;
  for (const spec of initSpecs) {
    if (!done) { init.push(podInitializing(spec)); continue; }
    const cur = latest(spec.name);
    if (cur?.state === 'exited' && cur.exitCode === 0) { init.push({ name: spec.name, show: terminatedState(cur), container: cur }); continue; }
    if (appsExist) {
      // Removed after it succeeded (or never seen by this worker): show what it must have been.
      const previous = records.previous?.initContainerStatuses?.find((c) => c.name === spec.name);
      init.push(previous ? { name: spec.name, keep: previous } : { name: spec.name, show: { terminated: { exitCode: 0, reason: 'Completed' } } });
      continue;
    }
    init.push(planContainer(spec, 'init', cur));
    done = false;
  }
  const initialized = done || appsExist;
  const apps = pod.spec.containers.map((spec) => (initialized ? planContainer(spec, 'app', latest(spec.name)) : podInitializing(spec)));

  if (cleanup.length > 0) return { actions: cleanup, replan: true, initialized, init, apps };
  if (!records.terminal && finished(init, apps, initialized, policy)) actions.push({ type: 'FinishPod', ...(sandbox ? { sandboxId: sandbox.id } : {}) });
  return { actions, replan: false, initialized, init, apps };
}

/** An init container failed under Never, or every app container is terminated and stays so under the policy. */
function finished(init: ContainerVerdict[], apps: ContainerVerdict[], initialized: boolean, policy: 'Always' | 'OnFailure' | 'Never'): boolean {
  const terminated = (v: ContainerVerdict) => ('show' in v ? v.show : 'keep' in v ? v.keep.state : undefined)?.terminated;
  if (!initialized) return policy === 'Never' && init.some((v) => (terminated(v)?.exitCode ?? 0) !== 0);
  return apps.every((v) => {
    const t = terminated(v);
    return t !== undefined && (policy === 'Never' || (policy === 'OnFailure' && t.exitCode === 0));
  });
}

/**
 * Stopping a pod (deletion, fencing): SIGTERM to every running container but the sandbox, SIGKILL after the grace
 * period, then every container of the pod removed, the sandbox included.
 */
export function planPodTermination(containers: ContainerSummary[], graceSeconds: number): PodAction[] {
  const apps = containers.filter((c) => c.labels[LABEL_CONTAINER] !== SANDBOX_CONTAINER_NAME);
  return [
    ...apps.filter((c) => c.state === 'running').map((c): PodAction => ({ type: 'KillContainer', name: nameOf(c), id: c.id, graceSeconds, reason: 'PodStopping' })),
    ...containers.map((c): PodAction => ({ type: 'RemoveContainer', name: nameOf(c), id: c.id })),
  ];
}

/** An image name as the kubelet's messages show it: with the default tag (images/pull.ts says the same). */
function imageShown(image: string): string {
  try {
    return withDefaultTag(image);
  } catch {
    return image; // never pulled, so never backed off: InvalidImageName
  }
}

/** The image pull back-off after a pull that failed at `now` saying `error`. */
export function pullBackOff(rec: ContainerRecord, now: number, backoff: BackoffSettings, error: string): Pick<ContainerRecord, 'pullBackoffMs' | 'pullBackoffUntil' | 'pullError'> {
  const pullBackoffMs = rec.pullBackoffMs === 0 ? backoff.baseMs : Math.min(rec.pullBackoffMs * 2, backoff.maxMs);
  return { pullBackoffMs, pullBackoffUntil: now + pullBackoffMs, pullError: error };
}

const hashes = new WeakMap<Container, string>();

/**
 * What LABEL_SPEC_HASH holds: a digest of the container's spec, so that a changed spec shows on the container.
 * Kept per spec object (a new pod spec is a new object), as every sync compares it.
 */
export function containerHash(spec: Container): string {
  let hash = hashes.get(spec);
  if (hash === undefined) hashes.set(spec, hash = createHash('sha256').update(JSON.stringify(spec)).digest('hex').slice(0, 16));
  return hash;
}

export function terminatedState(c: ContainerStatus): ContainerState {
  const exitCode = c.exitCode ?? -1;
  const reason = c.oomKilled ? 'OOMKilled' : exitCode === 0 ? 'Completed' : 'Error';
  return {
    terminated: {
      exitCode, reason,
      ...(c.startedAt ? { startedAt: c.startedAt } : {}), ...(c.finishedAt ? { finishedAt: c.finishedAt } : {}), ...(c.error ? { message: c.error } : {}),
    },
  };
}

function nameOf(c: ContainerSummary): string {
  return c.labels[LABEL_CONTAINER] ?? '';
}

/**
 * A whole number of milliseconds as Go's time.Duration prints it, which is how the kubelet's messages show
 * durations: "350ms", "10s", "1.25s", "5m0s", "1h2m3.5s".
 */
export function formatDuration(ms: number): string {
  const whole = Math.round(ms);
  if (whole === 0) return '0s';
  if (Math.abs(whole) < 1000) return `${whole}ms`;
  const sign = whole < 0 ? '-' : '';
  let rest = Math.abs(whole);
  const hours = Math.floor(rest / 3_600_000);
  rest -= hours * 3_600_000;
  const minutes = Math.floor(rest / 60_000);
  rest -= minutes * 60_000;
  const seconds = `${Math.floor(rest / 1000)}${rest % 1000 ? `.${String(rest % 1000).padStart(3, '0').replace(/0+$/, '')}` : ''}s`;
  if (hours) return `${sign}${hours}h${minutes}m${seconds}`;
  if (minutes) return `${sign}${minutes}m${seconds}`;
  return `${sign}${seconds}`;
}
