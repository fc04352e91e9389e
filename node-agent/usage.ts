// Usage reporting: every few seconds (default 10) the agent tells the server what its node and each of its pods
// use, for `flotilla top` and the HorizontalPodAutoscaler. The server keeps the latest report in memory on the
// leader (server/api/routes/metrics.ts): nothing here is durable, a lost report is simply replaced by the next one.
//
// Pod usage comes from runtime.stats() of the pod's running app containers (sandboxes excluded): memory is the
// sum of their current bytes, CPU the rate of their cumulative cpuNanos between two samples, in millicores. A
// container seen for the first time has no rate yet, so a pod is reported from its second sample on.
//
// Node usage, real agents: the whole machine (os.cpus() busy time between samples, total minus free memory),
// because pods are not all a node runs. Hollow nodes (simulated: true) report the sum of their pods instead:
// a hundred of them share one machine, whose figures would mean nothing.
//
// Hollow only: a pod annotated flotilla.io/simulated-cpu (a CPU quantity, e.g. "800m") and/or
// flotilla.io/simulated-memory (e.g. "256Mi") reports exactly that as its usage, from the first sample on, so
// that tests can drive the autoscaler. Real agents ignore both annotations.
import { cpus, freemem, totalmem } from 'node:os';
import { bytes, cpuMillis, ANNOTATION_SIMULATED_CPU, ANNOTATION_SIMULATED_MEMORY } from '../api-types/index.js';
import type { Pod } from '../api-types/index.js';
import { LABEL_CONTAINER, LABEL_NAMESPACE, LABEL_POD, LABEL_POD_UID, SANDBOX_CONTAINER_NAME, ownerLabels, type ContainerRuntime } from './runtime/types.js';


/** Stats calls in flight at once: Docker answers a one-shot stats call in about a second. */
const STATS_CONCURRENCY = 4;

export interface PodUsage {
  namespace: string;
  name: string;
  cpuMillis: number;
  memoryBytes: number;
}

/** The body of PUT /apis/metrics.flotilla.io/v1/nodes/NODE/usage. */
export interface UsageReport {
  node: { cpuMillis: number; memoryBytes: number };
  pods: PodUsage[];
}

export interface UsageSamplerOptions {
  runtime: ContainerRuntime;
  /** Only containers of this cluster and node are counted (runtime/types.ts ownerLabels). */
  clusterId: string;
  nodeName: string;
  /** The pods the agent currently runs (for the hollow annotations). */
  pods: () => Iterable<Pod>;
  /** Hollow node: node usage is the sum of its pods and the simulated-usage annotations apply. */
  simulated?: boolean;
  /** Clock in ms (tests inject one). */
  now?: () => number;
}

interface CpuSample { cpuNanos: number; atMs: number }

/** Turns runtime stats into usage figures; keeps the previous CPU sample of each container (and of the machine). */
export class UsageSampler {
  readonly #previous = new Map<string, CpuSample>();
  #machine = machineCpuTimes();
  readonly #now: () => number;

  constructor(private readonly options: UsageSamplerOptions) {
    this.#now = options.now ?? Date.now;
  }

  async sample(): Promise<UsageReport> {
    const { runtime } = this.options;
    const podsByUid = new Map<string, Pod>();
    for (const p of this.options.pods()) if (p.metadata.uid) podsByUid.set(p.metadata.uid, p);
    const containers = (await runtime.listContainers(ownerLabels(this.options)))
      .filter((c) => c.state === 'running' && c.labels[LABEL_CONTAINER] !== SANDBOX_CONTAINER_NAME);
    const seen = new Set<string>();
    const totals = new Map<string, PodUsage & { rated: boolean; uid: string }>();
    await forEachLimited(containers, STATS_CONCURRENCY, async (c) => {
      const stats = await runtime.stats(c.id).catch(() => undefined);
      if (!stats) return; // gone between list and stats
      seen.add(c.id);
      const at = this.#now();
      const before = this.#previous.get(c.id);
      this.#previous.set(c.id, { cpuNanos: stats.cpuNanos, atMs: at });
      const key = `${c.labels[LABEL_NAMESPACE] ?? ''}/${c.labels[LABEL_POD] ?? ''}`;
      const total = totals.get(key) ?? { namespace: c.labels[LABEL_NAMESPACE] ?? '', name: c.labels[LABEL_POD] ?? '', uid: c.labels[LABEL_POD_UID] ?? '', cpuMillis: 0, memoryBytes: 0, rated: true };
      totals.set(key, total);
      total.memoryBytes += stats.memoryBytes;
      if (before && at > before.atMs && stats.cpuNanos >= before.cpuNanos) total.cpuMillis += (stats.cpuNanos - before.cpuNanos) / ((at - before.atMs) * 1000);
      else total.rated = false;
    });
    for (const id of [...this.#previous.keys()]) if (!seen.has(id)) this.#previous.delete(id);

    const pods: PodUsage[] = [];
    for (const t of totals.values()) {
      const simulated = this.options.simulated ? simulatedUsage(podsByUid.get(t.uid)) : {};
      const cpu = simulated.cpuMillis ?? (t.rated ? t.cpuMillis : undefined);
      if (cpu === undefined) continue;
      pods.push({ namespace: t.namespace, name: t.name, cpuMillis: Math.round(cpu), memoryBytes: simulated.memoryBytes ?? t.memoryBytes });
    }
    return { node: this.options.simulated ? sumOf(pods) : this.#machineUsage(), pods };
  }

  #machineUsage(): UsageReport['node'] {
    const current = machineCpuTimes();
    const busy = current.busy - this.#machine.busy;
    const all = current.total - this.#machine.total;
    this.#machine = current;
    return { cpuMillis: all > 0 ? Math.round((busy / all) * current.cores * 1000) : 0, memoryBytes: totalmem() - freemem() };
  }
}

/**
 * The usage a hollow pod's annotations declare; a malformed quantity is an error naming the annotation and pod,
 * so that a test with a typo fails loudly instead of reporting nothing.
 */
export function simulatedUsage(pod: Pod | undefined): { cpuMillis?: number; memoryBytes?: number } {
  const a = pod?.metadata.annotations ?? {};
  const out: { cpuMillis?: number; memoryBytes?: number } = {};
  const parse = (name: string, value: string, parser: (q: string) => number): number => {
    try {
      const n = parser(value);
      if (n >= 0) return n;
    } catch { /* the error below names the annotation */ }
    throw new Error(`annotation ${name} of pod ${pod?.metadata.namespace ?? 'default'}/${pod?.metadata.name ?? ''}: "${value}" is not a non-negative quantity`);
  };
  const cpu = a[ANNOTATION_SIMULATED_CPU];
  const memory = a[ANNOTATION_SIMULATED_MEMORY];
  if (cpu !== undefined) out.cpuMillis = parse(ANNOTATION_SIMULATED_CPU, cpu, cpuMillis);
  if (memory !== undefined) out.memoryBytes = parse(ANNOTATION_SIMULATED_MEMORY, memory, bytes);
  return out;
}

/** Where an agent PUTs its UsageReport (server/api/routes/metrics.ts). */
export function usageReportPath(nodeName: string): string {
  return `/apis/metrics.flotilla.io/v1/nodes/${encodeURIComponent(nodeName)}/usage`;
}

function sumOf(pods: readonly PodUsage[]): UsageReport['node'] {
  return { cpuMillis: pods.reduce((s, p) => s + p.cpuMillis, 0), memoryBytes: pods.reduce((s, p) => s + p.memoryBytes, 0) };
}

function machineCpuTimes(): { busy: number; total: number; cores: number } {
  let busy = 0;
  let total = 0;
  const list = cpus();
  for (const c of list) {
    busy += c.times.user + c.times.nice + c.times.sys + c.times.irq;
    total += c.times.user + c.times.nice + c.times.sys + c.times.irq + c.times.idle;
  }
  return { busy, total, cores: list.length };
}

async function forEachLimited<T>(items: readonly T[], limit: number, each: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await each(items[next++]!);
  }));
}
