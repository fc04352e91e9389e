// Events about pods, as `flotilla describe pod` shows them (Pulling, Pulled, Failed, Created, Started, BackOff,
// Unhealthy, Killing), posted by the agent. They are best effort and cheap on the servers' disks: an event
// that repeats (a crash loop, a failing probe) becomes one Event object whose count grows, written at most
// once per `minIntervalMs` per event, never on every occurrence.
import type { Logger } from 'pino';
import type { ApiClient } from '../client/client.js';
import type { Pod } from '../api-types/index.js';

export interface PodEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

interface Aggregate {
  name: string;
  namespace: string;
  pod: Pod;
  event: PodEvent;
  count: number;
  written: number;
  first: string;
  last: string;
  created: boolean;
  lastWriteMs: number;
  timer?: NodeJS.Timeout;
}

/** Forgets aggregates this long after their last occurrence, so the map stays small. */
const FORGET_AFTER_MS = 10 * 60_000;

export class PodEventSink {
  readonly #events = new Map<string, Aggregate>();
  #seq = 0;

  constructor(
    readonly client: ApiClient,
    readonly nodeName: string,
    readonly log: Logger,
    readonly minIntervalMs = 10_000,
  ) {}

  record(pod: Pod, event: PodEvent, now = Date.now()): void {
    const uid = pod.metadata.uid ?? `${pod.metadata.namespace}/${pod.metadata.name}`;
    const key = `${uid}\n${event.type}\n${event.reason}\n${event.message}`;
    const stamp = new Date(now).toISOString();
    let agg = this.#events.get(key);
    if (!agg || now - Date.parse(agg.last) > FORGET_AFTER_MS) {
      agg = {
        name: `${pod.metadata.name}.${now.toString(16)}${(++this.#seq).toString(16)}`, namespace: pod.metadata.namespace ?? 'default',
        pod, event, count: 0, written: 0, first: stamp, last: stamp, created: false, lastWriteMs: 0,
      };
      this.#events.set(key, agg);
    }
    agg.count++;
    agg.last = stamp;
    this.#schedule(agg, now);
    for (const [k, a] of this.#events) if (now - Date.parse(a.last) > FORGET_AFTER_MS && !a.timer) this.#events.delete(k);
  }

  #schedule(agg: Aggregate, now: number): void {
    if (agg.timer) return;
    const wait = Math.max(0, agg.lastWriteMs + this.minIntervalMs - now);
    agg.timer = setTimeout(() => { agg.timer = undefined; void this.#write(agg); }, wait);
    agg.timer.unref();
  }

  async #write(agg: Aggregate): Promise<void> {
    if (agg.written === agg.count) return;
    const count = agg.count;
    agg.lastWriteMs = Date.now();
    const body = {
      apiVersion: 'v1', kind: 'Event',
      metadata: { name: agg.name, namespace: agg.namespace },
      involvedObject: { kind: 'Pod', apiVersion: 'v1', name: agg.pod.metadata.name, namespace: agg.namespace, ...(agg.pod.metadata.uid ? { uid: agg.pod.metadata.uid } : {}) },
      type: agg.event.type, reason: agg.event.reason, message: agg.event.message,
      source: { component: 'flotilla-agent', host: this.nodeName },
      firstTimestamp: agg.first, lastTimestamp: agg.last, count,
    };
    const path = `/api/v1/namespaces/${encodeURIComponent(agg.namespace)}/events`;
    try {
      if (agg.created) await this.client.request('PATCH', `${path}/${encodeURIComponent(agg.name)}`, { count, lastTimestamp: agg.last }, { contentType: 'application/merge-patch+json' });
      else await this.client.request('POST', path, body);
      agg.created = true;
      agg.written = count;
    } catch (err) {
      this.log.debug({ err: err instanceof Error ? err.message : String(err), reason: agg.event.reason }, 'pod event not written');
    }
    if (agg.written !== agg.count) this.#schedule(agg, Date.now());
  }
}
