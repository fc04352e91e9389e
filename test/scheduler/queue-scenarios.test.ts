// Scenario files for the SchedulingQueue (test/scheduler/testdata/queue/*.txt), replayed by the datadriven
// runner (test/support/datadriven.ts; FLOTILLA_REWRITE=1 rewrites them). The clock starts at 0 and moves only
// by `tick`; a pod's key is its name.
//
// Commands:
//   options [initial=1s] [max=10s] [unschedulable=5m]   (a fresh queue; the defaults are kube-scheduler's)
//   add pod=NAME [priority=N] [created=SECONDS]          (a new pending pod, created SECONDS after the epoch)
//   update NAME [priority=N] [status-only]               (a newer version: a new label, or only a new status)
//   redeliver NAME       (the latest version again, as a watch may replay it)
//   delete NAME | tick DURATION | next | state
//   pop [N]              (up to N pods, default 1: "name vVERSION" each, or "none")
//   fail NAME [reasons=R,...] [error=TEXT]                (the version last popped failed: no reasons = no nodes)
//   bind-error NAME      (binding the version last popped failed)
//   event node-add | node-update CHANGE,... | assigned-pod-add | assigned-pod-update | assigned-pod-delete
import { test } from 'uvu';
import * as L from '../../server/scheduler/layout.js';
import { SchedulingQueue, type NodeChange, type QueueEvent, type QueueOptions, type QueuedPod } from '../../server/scheduler/queue.js';
import type { Pod } from '../../api-types/index.js';
import { scenarioTests } from '../support/datadriven.js';

/** Reason names for the scenarios, after kube-scheduler's messages. */
const REASONS: Record<string, number> = {
  'not-ready': L.R_NOT_READY, 'node-unschedulable': L.R_UNSCHEDULABLE, arch: L.R_ARCH, 'node-selector': L.R_NODE_SELECTOR,
  'node-affinity': L.R_NODE_AFFINITY, taint: L.R_TAINT, 'too-many-pods': L.R_PODS, 'insufficient-cpu': L.R_CPU,
  'insufficient-memory': L.R_MEMORY, 'host-port': L.R_HOST_PORT, 'pod-affinity': L.R_POD_AFFINITY,
  'pod-anti-affinity': L.R_POD_ANTI_AFFINITY, 'insufficient-gpu': L.R_GPU_COUNT, 'gpu-model': L.R_GPU_MODEL, 'gpu-memory': L.R_GPU_MEMORY,
};
const REASON_NAMES = new Map(Object.entries(REASONS).map(([name, code]) => [code, name]));

const EPOCH = Date.UTC(2026, 0, 1);

/** "1.5s", "5m", "300ms" -> milliseconds. */
function duration(s: string | undefined): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)$/.exec(s ?? '');
  if (!m) throw new Error(`duration "${s}": want a number with ms, s or m`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000 }[m[2] as 'ms' | 's' | 'm'];
}
const seconds = (ms: number): string => `${ms / 1000}s`;

class QueueRunner {
  private queue = new SchedulingQueue();
  private now = 0;
  private version = 0;
  /** The latest version of each pod, and the version each pod was last popped at. */
  private readonly pods = new Map<string, Pod>();
  private readonly popped = new Map<string, Pod>();

  run(command: string): string {
    const [verb, ...rest] = command.trim().split(/\s+/);
    try {
      return this.execute(verb ?? '', rest);
    } catch (err) {
      return `error: ${(err as Error).message}`;
    }
  }

  private execute(verb: string, rest: string[]): string {
    const flags = new Set(rest.filter((a) => !a.includes('=')));
    const args = Object.fromEntries(rest.filter((a) => a.includes('=')).map((a) => [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]));
    switch (verb) {
      case 'options': {
        const o: QueueOptions = {};
        if (args.initial) o.initialBackoffMs = duration(args.initial);
        if (args.max) o.maxBackoffMs = duration(args.max);
        if (args.unschedulable) o.maxInUnschedulableMs = duration(args.unschedulable);
        this.queue = new SchedulingQueue(o);
        return '';
      }
      case 'add': {
        const name = args.pod;
        if (!name) throw new Error('add: pod=NAME is required');
        const pod: Pod = {
          apiVersion: 'v1', kind: 'Pod',
          metadata: {
            name, namespace: 'default', resourceVersion: String(++this.version),
            ...(args.created !== undefined ? { creationTimestamp: new Date(EPOCH + duration(`${args.created}s`)).toISOString() } : {}),
          },
          spec: { ...(args.priority !== undefined ? { priority: Number(args.priority) } : {}), containers: [] },
        };
        this.put(pod);
        return '';
      }
      case 'update': {
        const old = this.pod(rest[0]);
        const metadata = { ...old.metadata, resourceVersion: String(++this.version) };
        const spec = { ...old.spec, ...(args.priority !== undefined ? { priority: Number(args.priority) } : {}) };
        this.put(flags.has('status-only')
          ? { ...old, metadata, status: { phase: 'Pending', message: `status write ${this.version}` } }
          : { ...old, metadata: { ...metadata, labels: { revision: String(this.version) } }, spec });
        return '';
      }
      case 'redeliver': this.put(this.pod(rest[0])); return '';
      case 'delete': this.pod(rest[0]); this.pods.delete(rest[0]!); this.queue.delete(rest[0]!); return '';
      case 'tick': this.now += duration(rest[0]); return '';
      case 'next': {
        const due = this.queue.nextDue();
        return due === undefined ? 'none' : `at ${seconds(due)} (in ${seconds(due - this.now)})`;
      }
      case 'pop': {
        const out: string[] = [];
        for (let n = rest[0] ? Number(rest[0]) : 1; n > 0; n--) {
          const pod = this.queue.pop(this.now);
          if (!pod) break;
          this.popped.set(pod.metadata.name ?? '', pod);
          out.push(`${pod.metadata.name} v${pod.metadata.resourceVersion}`);
        }
        return out.length ? out.join('\n') : 'none';
      }
      case 'fail': {
        const pod = this.lastPopped(rest[0]);
        const reasons = (args.reasons ?? '').split(',').filter(Boolean).map((r) => {
          const code = REASONS[r];
          if (code === undefined) throw new Error(`fail: unknown reason "${r}" (known: ${Object.keys(REASONS).join(', ')})`);
          return code;
        });
        this.queue.failed(pod, pod.metadata.name ?? '', args.error !== undefined ? { error: args.error } : { reasons }, this.now);
        return '';
      }
      case 'bind-error': {
        const pod = this.lastPopped(rest[0]);
        this.queue.backOff(pod, pod.metadata.name ?? '', this.now);
        return '';
      }
      case 'event': return `moved ${this.queue.onEvent(this.event(rest), this.now)}`;
      case 'state': {
        const s = this.queue.snapshot(this.now);
        const line = (name: string, pods: QueuedPod[]) => `${name}:${pods.map((p) => ` ${this.describe(p)}`).join('')}`;
        return [line('active', s.active), line('backoff', s.backoff), line('unschedulable', s.unschedulable), line('in-flight', s['in-flight'])].join('\n');
      }
      default: throw new Error(`unknown command "${verb}"`);
    }
  }

  private event(rest: string[]): QueueEvent {
    const [type, changed] = rest;
    switch (type) {
      case 'node-add': case 'assigned-pod-add': case 'assigned-pod-update': case 'assigned-pod-delete': return { type };
      case 'node-update': return { type, changed: (changed ?? '').split(',').filter(Boolean) as NodeChange[] };
      default: throw new Error(`event: unknown type "${type}"`);
    }
  }

  private describe(p: QueuedPod): string {
    const parts = [`attempts=${p.attempts}`];
    if (p.due !== undefined) parts.push(`due=${seconds(p.due)}`);
    if (p.failure) parts.push('error' in p.failure ? `error=${p.failure.error}` : `reasons=${p.failure.reasons.map((r) => REASON_NAMES.get(r)).join(',') || 'none'}`);
    return `${p.key}(${parts.join(' ')})`;
  }

  private put(pod: Pod): void {
    const name = pod.metadata.name ?? '';
    this.pods.set(name, pod);
    this.queue.add(pod, name, this.now);
  }

  private pod(name: string | undefined): Pod {
    const pod = this.pods.get(name ?? '');
    if (!pod) throw new Error(`no pod "${name}"`);
    return pod;
  }

  private lastPopped(name: string | undefined): Pod {
    const pod = this.popped.get(name ?? '');
    if (!pod) throw new Error(`pod "${name}" was never popped`);
    return pod;
  }
}

scenarioTests(test, 'test/scheduler/testdata/queue', () => new QueueRunner());

test.run();
