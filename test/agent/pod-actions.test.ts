// Scenario files (test/agent/testdata/pod-actions/*.txt) for the pod worker's planner (node-agent/pod-actions.ts):
// each block sets the pod, what the runtime shows or the time, or asks for the plan (test/support/datadriven.ts;
// FLOTILLA_REWRITE=1 rewrites the expectations). `plan` also applies what the plan records (back-off, probes,
// restart counts, a finished pod), as the worker does, so that a file follows one pod through its syncs.
//
// Commands:
//   pod [restartPolicy=P] [init=A,B] [containers=C,D] [grace=S]    a new pod (default: containers=app), records empty, now 0s
//   image NAME IMAGE                                               changes a container's image (a spec change)
//   observe [sandbox=running|exited|none] [NAME=running|created|exited:CODE|oom ...] [NAME.restarts=N] [NAME.ran=DUR] [NAME.hash=none]
//                                                                  what the runtime shows now (replaces the last observation):
//                                                                  containers of the current spec (hash=none: made before
//                                                                  the hash label), an exited one finished now
//   now DUR                                                        the clock (12s, 5m)
//   probe NAME [liveness=MESSAGE] [ready=false]                    probe results of NAME's running container
//   pull-failed NAME                                               a pull of NAME's image failed now ("manifest unknown")
//   plan                                                           the actions and what each container shows
//   delete grace=S                                                 the termination of the pod as observed
import { test } from 'uvu';
import type { Container, PodSpec } from '../../api-types/index.js';
import {
  containerHash,
  DEFAULT_BACKOFF,
  formatDuration,
  newRecord,
  planPodActions,
  planPodTermination,
  pullBackOff,
  type ContainerRecord,
  type ContainerVerdict,
  type ObservedPod,
  type PlannedPod,
  type PodAction,
  type PodRecords,
} from '../../node-agent/pod-actions.js';
import { LABEL_CONTAINER, LABEL_SPEC_HASH, SANDBOX_CONTAINER_NAME, type ContainerStatus } from '../../node-agent/runtime/types.js';
import { scenarioTests } from '../support/datadriven.js';

const T0 = Date.parse('2026-01-01T00:00:00Z');

function duration(text: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(text);
  if (!m) throw new Error(`"${text}" is not a duration (500ms, 12s, 5m)`);
  return Number(m[1]) * (m[2] === 'ms' ? 1 : m[2] === 's' ? 1000 : 60_000);
}

/** An instant as the scenario files write it: its offset from T0, in the units the `now` command reads. */
const at = (t: number) => ((t - T0) % 1000 === 0 ? `${(t - T0) / 1000}s` : `${t - T0}ms`);

function options(args: string[]): Map<string, string> {
  return new Map(args.map((a) => {
    const i = a.indexOf('=');
    if (i < 0) throw new Error(`"${a}" is not KEY=VALUE`);
    return [a.slice(0, i), a.slice(i + 1)];
  }));
}

class PodActionsRunner {
  private pod: PlannedPod | undefined;
  private observed: ObservedPod = { sandboxes: [], containers: [] };
  private records: PodRecords = { containers: new Map(), terminal: false };
  private now = T0;

  run(command: string): string {
    const [verb, ...args] = command.trim().split(/\s+/);
    try {
      return this.execute(verb ?? '', args).join('\n');
    } catch (err) {
      return `error: ${(err as Error).message}`;
    }
  }

  private get spec(): PodSpec {
    if (!this.pod) throw new Error('no pod: start with "pod ..."');
    return this.pod.spec;
  }

  private container(name: string): Container {
    const c = [...(this.spec.initContainers ?? []), ...this.spec.containers].find((x) => x.name === name);
    if (!c) throw new Error(`the pod has no container ${name}`);
    return c;
  }

  private record(name: string): ContainerRecord {
    let rec = this.records.containers.get(name);
    if (!rec) this.records.containers.set(name, rec = newRecord());
    return rec;
  }

  private execute(verb: string, args: string[]): string[] {
    switch (verb) {
      case 'pod': {
        const o = options(args);
        const containers = (names: string | undefined) => (names ? names.split(',') : []).map((name): Container => ({ name, image: `img/${name}:1` }));
        const policy = o.get('restartPolicy') ?? 'Always';
        if (policy !== 'Always' && policy !== 'OnFailure' && policy !== 'Never') throw new Error(`restartPolicy ${policy}`);
        this.pod = {
          metadata: { name: 'p', namespace: 'default', uid: 'uid-p' },
          spec: {
            restartPolicy: policy,
            containers: containers(o.get('containers') ?? 'app'),
            ...(o.has('init') ? { initContainers: containers(o.get('init')) } : {}),
            ...(o.has('grace') ? { terminationGracePeriodSeconds: Number(o.get('grace')) } : {}),
          },
        };
        this.observed = { sandboxes: [], containers: [] };
        this.records = { containers: new Map(), terminal: false };
        this.now = T0;
        return [];
      }
      case 'image': {
        const [name, image] = args;
        if (!name || !image) throw new Error('image NAME IMAGE');
        // A new spec is a new object, as from the API (containerHash keeps one digest per object).
        const replace = (list: Container[] | undefined) => list?.map((c) => (c.name === name ? { ...c, image } : c));
        this.container(name);
        this.spec.containers = replace(this.spec.containers)!;
        if (this.spec.initContainers) this.spec.initContainers = replace(this.spec.initContainers)!;
        return [];
      }
      case 'now':
        this.now = T0 + duration(args[0] ?? '');
        return [];
      case 'observe':
        this.observed = this.observation(options(args));
        return [];
      case 'probe': {
        const [name, ...rest] = args;
        const o = options(rest);
        const cur = this.observed.containers.find((c) => c.labels[LABEL_CONTAINER] === name && c.state === 'running');
        if (!name || !cur) throw new Error(`no running container ${name} observed`);
        const rec = this.record(name);
        rec.probe = { containerId: cur.id, started: true, ready: o.get('ready') !== 'false', ...(o.has('liveness') ? { livenessFailure: o.get('liveness')! } : {}) };
        return [];
      }
      case 'pull-failed': {
        const rec = this.record(args[0] ?? '');
        Object.assign(rec, pullBackOff(rec, this.now, DEFAULT_BACKOFF, 'manifest unknown'));
        return [`pull back-off ${formatDuration(rec.pullBackoffMs)} until ${at(rec.pullBackoffUntil)}`];
      }
      case 'plan': {
        if (!this.pod) throw new Error('no pod: start with "pod ..."');
        const plan = planPodActions(this.pod, this.observed, this.records, this.now, DEFAULT_BACKOFF);
        for (const a of plan.actions) this.apply(a);
        return [
          ...plan.actions.map(formatAction),
          ...(plan.replan ? ['replan'] : []),
          ...plan.init.map((v) => `init ${formatVerdict(v)}`),
          ...plan.apps.map((v) => `app ${formatVerdict(v)}`),
          `initialized=${plan.initialized}`,
        ];
      }
      case 'delete': {
        const grace = Number(options(args).get('grace') ?? 30);
        return planPodTermination([...this.observed.sandboxes, ...this.observed.containers], grace).map(formatAction);
      }
      default:
        throw new Error(`unknown command ${verb}`);
    }
  }

  /** What the worker records of an action (pod-worker.ts execute), so that the next plan sees it. */
  private apply(a: PodAction): void {
    switch (a.type) {
      case 'SetBackOff': Object.assign(this.record(a.name), { backoffFor: a.containerId, backoffMs: a.backoffMs, backoffUntil: a.until, lastState: a.lastState }); break;
      case 'StartProbes': this.record(a.name).probe = { containerId: a.containerId, started: true, ready: true }; break;
      case 'StopProbes': delete this.record(a.name).probe; break;
      case 'CreateSandbox': for (const [name, n] of Object.entries(a.restartCounts)) this.record(name).nextRestartCount = n; break;
      case 'FinishPod': this.records.terminal = true; break;
      default: break;
    }
  }

  private observation(o: Map<string, string>): ObservedPod {
    const sandbox = o.get('sandbox') ?? 'running';
    const observed: ObservedPod = { sandboxes: [], containers: [] };
    if (sandbox !== 'none') {
      if (sandbox !== 'running' && sandbox !== 'exited') throw new Error(`sandbox=${sandbox}`);
      observed.sandboxes.push({ id: 'sandbox', name: 'sandbox', image: 'pause', state: sandbox, labels: { [LABEL_CONTAINER]: SANDBOX_CONTAINER_NAME } });
    }
    for (const [key, value] of o) {
      if (key === 'sandbox' || key.includes('.')) continue;
      const spec = this.container(key);
      const restartCount = Number(o.get(`${key}.restarts`) ?? 0);
      const ranMs = duration(o.get(`${key}.ran`) ?? '1s');
      const exited = /^exited:(\d+)$/.exec(value);
      if (!exited && value !== 'running' && value !== 'created' && value !== 'oom') throw new Error(`${key}=${value}: running, created, exited:CODE or oom`);
      const c: ContainerStatus = {
        id: `${key}-r${restartCount}`, name: key, image: spec.image,
        state: exited || value === 'oom' ? 'exited' : value === 'running' ? 'running' : 'created',
        labels: { [LABEL_CONTAINER]: key, ...(o.get(`${key}.hash`) === 'none' ? {} : { [LABEL_SPEC_HASH]: containerHash(spec) }) },
        exitCode: exited ? Number(exited[1]) : value === 'oom' ? 137 : null,
        oomKilled: value === 'oom',
        restartCount,
      };
      if (c.state !== 'created') c.startedAt = new Date((c.state === 'running' ? this.now : this.now - ranMs)).toISOString();
      if (c.state === 'exited') c.finishedAt = new Date(this.now).toISOString();
      observed.containers.push(c);
    }
    return observed;
  }
}

function formatAction(a: PodAction): string {
  switch (a.type) {
    case 'CreateSandbox': {
      const counts = Object.entries(a.restartCounts).map(([n, c]) => `${n}:${c}`);
      return `create-sandbox${a.remove.length ? ` remove=[${a.remove.join(' ')}]` : ''}${counts.length ? ` restarts=[${counts.join(' ')}]` : ''}`;
    }
    case 'RemoveContainer': return `remove ${a.name} ${a.id}`;
    case 'KillContainer': return `kill ${a.name} ${a.id} grace=${a.graceSeconds}s reason=${a.reason}`;
    case 'StartCreated': return `start-created ${a.role} ${a.name} ${a.id}`;
    case 'StartContainer': return `start ${a.role} ${a.name} restarts=${a.restartCount}${a.replaces ? ` replaces=${a.replaces}` : ''}`;
    case 'StartProbes': return `start-probes ${a.name} ${a.containerId}`;
    case 'StopProbes': return `stop-probes ${a.name}`;
    case 'SetBackOff': return `back-off ${a.name} ${a.containerId} ${formatDuration(a.backoffMs)} until ${at(a.until)}`;
    case 'Event': return `event ${a.eventType} ${a.reason}: ${a.message}`;
    case 'WakeAt': return `wake-at ${at(a.at)}`;
    case 'FinishPod': return `finish-pod${a.sandboxId ? ` stop=${a.sandboxId}` : ''}`;
  }
}

function formatVerdict(v: ContainerVerdict): string {
  if ('starting' in v) return `${v.name}: starting`;
  if ('keep' in v) return `${v.name}: as last reported`;
  const s = v.show;
  const state = s.running ? 'running'
    : s.terminated ? `terminated ${s.terminated.exitCode} ${s.terminated.reason}`
      : `waiting ${s.waiting?.reason}${s.waiting?.message ? ` (${s.waiting.message})` : ''}`;
  return `${v.name}: ${state}${v.container ? ` [${v.container.id}]` : ''}${v.restartCount !== undefined ? ` restarts=${v.restartCount}` : ''}`;
}

scenarioTests(test, 'test/agent/testdata/pod-actions', () => new PodActionsRunner());

test.run();
