// `flotilla top nodes|pods`: current CPU and memory use, as the agents last reported it.
//
// API (served from the server's in-memory metrics, see server/controllers/pod-metrics.ts InMemoryMetrics), with
// metrics-server's shapes so that existing tools read them too:
//   GET /apis/metrics.k8s.io/v1beta1/nodes
//     -> { kind: "NodeMetricsList", items: [{ metadata: { name }, timestamp, window, usage: { cpu: "250m", memory: "512Mi" } }] }
//   GET /apis/metrics.k8s.io/v1beta1/namespaces/NS/pods   (and /apis/metrics.k8s.io/v1beta1/pods for all namespaces)
//     -> { kind: "PodMetricsList", items: [{ metadata: { name, namespace }, timestamp, window, containers: [{ name, usage: { cpu, memory } }] }] }
import { apiPath, resourceByCliName, bytes, cpuMillis, formatCpu } from '../api-types/index.js';
import type { Node } from '../api-types/index.js';

import { stringFlag, boolFlag, UsageError } from './args.js';
import { renderTable } from './printers.js';
import { clientFor, connectionFlags } from './command.js';
import type { CliCommand } from './command.js';

export const METRICS_API = '/apis/metrics.k8s.io/v1beta1';

interface UsageList { cpu?: string | number; memory?: string | number }
export interface NodeMetrics { metadata: { name: string }; usage: UsageList }
export interface PodMetrics { metadata: { name: string; namespace: string }; containers: { name: string; usage: UsageList }[] }

/** Memory as top prints it: whole MiB. */
function mebibytes(n: number): string {
  return `${Math.round(n / 2 ** 20)}Mi`;
}

/** NAME, CPU(cores), CPU%, MEMORY(bytes), MEMORY% against each node's allocatable (capacity when absent). */
export function formatNodeTop(metrics: readonly NodeMetrics[], nodes: readonly Node[]): string {
  const byName = new Map(nodes.map((n) => [n.metadata.name, n]));
  const rows: string[][] = [];
  for (const m of [...metrics].sort((a, b) => a.metadata.name.localeCompare(b.metadata.name))) {
    const cpu = cpuMillis(m.usage.cpu ?? 0);
    const mem = bytes(m.usage.memory ?? 0);
    const alloc = byName.get(m.metadata.name)?.status?.allocatable ?? byName.get(m.metadata.name)?.status?.capacity ?? {};
    const pct = (used: number, total: string | number | undefined, parse: (q: string | number) => number) =>
      total === undefined || parse(total) === 0 ? '<unknown>' : `${Math.round((100 * used) / parse(total))}%`;
    rows.push([m.metadata.name, formatCpu(cpu), pct(cpu, alloc.cpu, cpuMillis), mebibytes(mem), pct(mem, alloc.memory, bytes)]);
  }
  return renderTable(['NAME', 'CPU(cores)', 'CPU%', 'MEMORY(bytes)', 'MEMORY%'], rows);
}

/** [NAMESPACE,] NAME, CPU(cores), MEMORY(bytes), summed over containers. */
export function formatPodTop(metrics: readonly PodMetrics[], withNamespace: boolean): string {
  const rows: string[][] = [];
  const sorted = [...metrics].sort((a, b) => a.metadata.namespace.localeCompare(b.metadata.namespace) || a.metadata.name.localeCompare(b.metadata.name));
  for (const m of sorted) {
    const cpu = m.containers.reduce((n, c) => n + cpuMillis(c.usage.cpu ?? 0), 0);
    const mem = m.containers.reduce((n, c) => n + bytes(c.usage.memory ?? 0), 0);
    rows.push([...(withNamespace ? [m.metadata.namespace] : []), m.metadata.name, formatCpu(cpu), mebibytes(mem)]);
  }
  return renderTable([...(withNamespace ? ['NAMESPACE'] : []), 'NAME', 'CPU(cores)', 'MEMORY(bytes)'], rows);
}

export const topCommand: CliCommand = {
  summary: 'show CPU and memory use of nodes or pods',
  usage: 'flotilla top (nodes | pods [-n NS | -A])',
  flags: [
    ...connectionFlags,
    { name: 'namespace', short: 'n', kind: 'string' }, { name: 'all-namespaces', short: 'A', kind: 'boolean' },
  ],
  async run(a, io) {
    const [what, ...extra] = a.positionals;
    const kind = what === undefined ? undefined : resourceByCliName(what)?.plural;
    if (kind !== 'nodes' && kind !== 'pods') throw new UsageError(`top shows nodes or pods${what ? `, not "${what}"` : ''}`);
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const client = clientFor(a, io);
    try {
      if (kind === 'nodes') {
        const metrics = (await client.request<{ items: NodeMetrics[] }>('GET', `${METRICS_API}/nodes`)).items;
        const nodes = (await client.request<{ items: Node[] }>('GET', apiPath(resourceByCliName('nodes')!))).items;
        if (metrics.length === 0) io.err('No node metrics yet: agents report usage every few seconds\n');
        else io.out(formatNodeTop(metrics, nodes));
        return 0;
      }
      const all = boolFlag(a, 'all-namespaces');
      const ns = stringFlag(a, 'namespace') ?? 'default';
      const metrics = (await client.request<{ items: PodMetrics[] }>('GET', all ? `${METRICS_API}/pods` : `${METRICS_API}/namespaces/${encodeURIComponent(ns)}/pods`)).items;
      if (metrics.length === 0) io.err(all ? 'No pod metrics found\n' : `No pod metrics found in ${ns} namespace.\n`);
      else io.out(formatPodTop(metrics, all));
      return 0;
    } finally {
      client.close();
    }
  },
};
