// Resource usage reported by the agents. Kept in memory on the server (not durable: usage is stale within
// seconds anyway, and an SD card must not pay a write per sample).

export interface Usage {
  /** CPU in millicores. */
  cpuMillis: number;
  memoryBytes: number;
  /** When the agent measured it (clock ms). */
  timestampMs: number;
}

/** What the autoscaler reads: the latest usage of one pod, summed over its containers. */
export interface PodMetricsSource {
  podUsage(namespace: string, name: string): Usage | undefined;
}

/**
 * The in-memory metrics store the server keeps from agent reports; also what the metrics API serves:
 *   GET /apis/metrics.k8s.io/v1beta1/nodes                      -> NodeMetricsList
 *   GET /apis/metrics.k8s.io/v1beta1/namespaces/NS/pods         -> PodMetricsList (and /pods across namespaces)
 * shaped as Kubernetes' metrics-server answers (items[].usage.cpu "250m", usage.memory "64Mi"; pods list
 * containers[] with one entry "total" when agents report per pod). `flotilla top` reads those paths.
 * Samples older than `maxAgeMs` are treated as absent.
 */
export class InMemoryMetrics implements PodMetricsSource {
  readonly #pods = new Map<string, Usage>();
  readonly #nodes = new Map<string, Usage>();

  constructor(readonly now: () => number = Date.now, readonly maxAgeMs = 60_000) {}

  reportPod(namespace: string, name: string, usage: Usage): void {
    this.#pods.set(`${namespace}/${name}`, usage);
  }

  reportNode(name: string, usage: Usage): void {
    this.#nodes.set(name, usage);
  }

  forgetPod(namespace: string, name: string): void {
    this.#pods.delete(`${namespace}/${name}`);
  }

  podUsage(namespace: string, name: string): Usage | undefined {
    return this.#fresh(this.#pods.get(`${namespace}/${name}`));
  }

  nodeUsage(name: string): Usage | undefined {
    return this.#fresh(this.#nodes.get(name));
  }

  /** Fresh pod samples, in one namespace or all. */
  pods(namespace?: string): { namespace: string; name: string; usage: Usage }[] {
    const out: { namespace: string; name: string; usage: Usage }[] = [];
    for (const [key, usage] of this.#pods) {
      const slash = key.indexOf('/');
      const ns = key.slice(0, slash);
      if ((namespace === undefined || ns === namespace) && this.#fresh(usage)) out.push({ namespace: ns, name: key.slice(slash + 1), usage });
    }
    return out;
  }

  /** Fresh node samples. */
  nodes(): { name: string; usage: Usage }[] {
    return [...this.#nodes].filter(([, u]) => this.#fresh(u)).map(([name, usage]) => ({ name, usage }));
  }

  #fresh(u: Usage | undefined): Usage | undefined {
    return u && this.now() - u.timestampMs <= this.maxAgeMs ? u : undefined;
  }
}
