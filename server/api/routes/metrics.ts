import { Hono } from 'hono';
import { formatBytes, formatCpu } from '../../../api-types/index.js';
import type { InMemoryMetrics } from '../../controllers/pod-metrics.js';
import { StoreError } from '../../store/types.js';

/** Where agents report usage (in memory on the leader, never durable). */
export const USAGE_REPORT_PATH = '/apis/metrics.flotilla.io/v1/nodes/:node/usage';

interface UsageReport {
  node?: { cpuMillis?: unknown; memoryBytes?: unknown };
  pods?: { namespace?: unknown; name?: unknown; cpuMillis?: unknown; memoryBytes?: unknown }[];
}

const isAmount = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v) && v >= 0;

/**
 * PUT USAGE_REPORT_PATH {node: {cpuMillis, memoryBytes}, pods: [{namespace, name, cpuMillis, memoryBytes}]} from
 * agents, and the metrics-server-shaped reads `flotilla top` and the autoscaler use:
 *   GET /apis/metrics.k8s.io/v1beta1/nodes, /namespaces/NS/pods, /pods
 * `forward` passes a report on to the leader when this member is not it.
 */
export function metricsRoutes(metrics: InMemoryMetrics, forward: (node: string, report: unknown) => void): Hono {
  const app = new Hono();
  app.put(USAGE_REPORT_PATH, async (c) => {
    const node = c.req.param('node');
    const body = (await c.req.json().catch(() => undefined)) as UsageReport | undefined;
    if (!body || typeof body !== 'object') throw new StoreError({ code: 400, reason: 'BadRequest', message: 'a usage report must be a JSON object {node, pods}' });
    const at = metrics.now();
    if (body.node) {
      if (!isAmount(body.node.cpuMillis) || !isAmount(body.node.memoryBytes)) throw new StoreError({ code: 400, reason: 'BadRequest', message: 'node.cpuMillis and node.memoryBytes must be non-negative numbers' });
      metrics.reportNode(node, { cpuMillis: body.node.cpuMillis, memoryBytes: body.node.memoryBytes, timestampMs: at });
    }
    for (const [i, p] of (body.pods ?? []).entries()) {
      if (typeof p.namespace !== 'string' || typeof p.name !== 'string' || !isAmount(p.cpuMillis) || !isAmount(p.memoryBytes)) {
        throw new StoreError({ code: 400, reason: 'BadRequest', message: `pods[${i}] needs namespace, name, cpuMillis and memoryBytes` });
      }
      metrics.reportPod(p.namespace, p.name, { cpuMillis: p.cpuMillis, memoryBytes: p.memoryBytes, timestampMs: at });
    }
    forward(node, body);
    return c.body(null, 204);
  });
  const usage = (u: { cpuMillis: number; memoryBytes: number }) => ({ cpu: formatCpu(Math.round(u.cpuMillis)), memory: formatBytes(Math.round(u.memoryBytes)) });
  const stamp = (ms: number) => new Date(ms).toISOString();
  app.get('/apis/metrics.k8s.io/v1beta1/nodes', (c) => c.json({
    kind: 'NodeMetricsList', apiVersion: 'metrics.k8s.io/v1beta1', metadata: {},
    items: metrics.nodes().map((n) => ({ metadata: { name: n.name }, timestamp: stamp(n.usage.timestampMs), window: '10s', usage: usage(n.usage) })),
  }));
  const pods = (namespace?: string) => ({
    kind: 'PodMetricsList', apiVersion: 'metrics.k8s.io/v1beta1', metadata: {},
    items: metrics.pods(namespace).map((p) => ({ metadata: { name: p.name, namespace: p.namespace }, timestamp: stamp(p.usage.timestampMs), window: '10s', containers: [{ name: 'total', usage: usage(p.usage) }] })),
  });
  app.get('/apis/metrics.k8s.io/v1beta1/pods', (c) => c.json(pods()));
  app.get('/apis/metrics.k8s.io/v1beta1/namespaces/:ns/pods', (c) => c.json(pods(c.req.param('ns'))));
  return app;
}
