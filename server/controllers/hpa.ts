import { isScalable, resourceForKind, labelSelectorFromSpec, matchesLabels, cpuMillis, bytes } from '../../api-types/index.js';
import type { Condition, HorizontalPodAutoscalerStatus, LabelSelectorSpec, MetricSpec } from '../../api-types/index.js';
import { resources, objectKey, splitKey, isPodActive, sameContent, withCondition } from './cluster-objects.js';
import { EventRecorder } from './events.js';
import { settingsOf } from './controller.js';
import type { Controller, ControllerDeps } from './controller.js';
import type { Usage } from './pod-metrics.js';

/** Within this fraction of the target utilisation the autoscaler leaves the replica count alone (Kubernetes: 0.1). */
const TOLERANCE = 0.1;
/** Without spec.metrics an autoscaler targets 80% CPU utilisation, as autoscaling/v2 does. */
const DEFAULT_METRIC: MetricSpec = { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } };

/**
 * autoscaling/v2 HorizontalPodAutoscaler for Resource metrics (cpu or memory) with Utilization targets, measured
 * against the pods' requests from the in-memory metrics the agents report. desired = ceil(current pods *
 * utilisation / target), unchanged within 10%, clamped to [minReplicas (default 1), maxReplicas], scale-up at
 * most max(2x, +4) per evaluation. Scale-down takes the highest recommendation of the stabilisation window
 * (behavior.scaleDown.stabilizationWindowSeconds, default the hpaScaleDownStabilizationMs setting, 300 s), so a
 * short dip does not remove pods. The target is scaled through its spec.replicas, as the scale subresource does.
 */
export function horizontalPodAutoscaler(deps: ControllerDeps): Controller {
  const events = new EventRecorder(deps.objects, 'horizontal-pod-autoscaler', deps.now);
  /** HPA uid -> recent recommendations (clock ms, replicas), newest last. In memory: a new leader starts afresh. */
  const recommendations = new Map<string, { at: number; replicas: number }[]>();
  return {
    name: 'horizontal-pod-autoscaler',
    watches: [{ resource: resources.hpas, keys: (e) => (e.type === 'DELETED' ? (recommendations.delete(e.object.metadata.uid ?? ''), []) : [objectKey(e.object)]) }],
    allKeys: () => deps.objects.list(resources.hpas).items.map(objectKey),
    async reconcile(key) {
      const { namespace, name } = splitKey(key);
      const hpa = deps.objects.get(resources.hpas, namespace, name);
      if (!hpa) return;
      const settings = settingsOf(deps);
      const now = deps.now();
      const nowIso = new Date(now).toISOString();
      const status: HorizontalPodAutoscalerStatus = { ...(hpa.status ?? { desiredReplicas: 0 }), observedGeneration: hpa.metadata.generation ?? 1 };
      const condition = (c: Condition) => { status.conditions = withCondition(status.conditions, c, nowIso); };
      const finish = async () => {
        if (!sameContent(status, hpa.status ?? {})) await deps.objects.replaceStatus(resources.hpas, namespace, name, status);
        return { requeueAfterMs: settings.hpaSyncPeriodMs };
      };

      const ref = hpa.spec.scaleTargetRef;
      const r = resourceForKind(ref.apiVersion ?? 'apps/v1', ref.kind);
      const target = r?.subresources.includes('scale') ? deps.objects.get(r, namespace, ref.name) : undefined;
      if (!r || !target || !isScalable(target)) {
        condition({ type: 'AbleToScale', status: 'False', reason: 'FailedGetScale', message: `the HPA controller was unable to get the target's current scale: ${ref.kind} ${ref.name} ${r ? 'not found' : 'is not a scalable kind'}` });
        return finish();
      }
      condition({ type: 'AbleToScale', status: 'True', reason: 'SucceededGetScale', message: 'the HPA controller was able to get the target\'s current scale' });
      const spec = target.spec;
      const current = spec.replicas ?? 1;
      status.currentReplicas = current;
      if (current === 0) {
        condition({ type: 'ScalingActive', status: 'False', reason: 'ScalingDisabled', message: 'scaling is disabled since the replica count of the target is zero' });
        status.desiredReplicas = 0;
        return finish();
      }
      const metric = (hpa.spec.metrics ?? [DEFAULT_METRIC])[0]!;
      const resourceName = metric.resource?.name;
      const targetUtilization = metric.resource?.target.averageUtilization;
      if (metric.type !== 'Resource' || (resourceName !== 'cpu' && resourceName !== 'memory') || metric.resource?.target.type !== 'Utilization' || targetUtilization === undefined || targetUtilization <= 0) {
        condition({ type: 'ScalingActive', status: 'False', reason: 'InvalidMetricSourceType', message: 'only Resource metrics (cpu, memory) with a Utilization target are supported' });
        return finish();
      }
      const measured = measure(deps, namespace ?? '', spec.selector, resourceName);
      if (typeof measured === 'string') {
        condition({ type: 'ScalingActive', status: 'False', reason: 'FailedGetResourceMetric', message: `the HPA was unable to compute the replica count: ${measured}` });
        return finish();
      }
      condition({ type: 'ScalingActive', status: 'True', reason: 'ValidMetricFound', message: `the HPA was able to successfully calculate a replica count from ${resourceName} resource utilization (percentage of request)` });
      const ratio = measured.utilization / targetUtilization;
      let desired = Math.abs(ratio - 1) <= TOLERANCE ? current : Math.ceil(ratio * measured.pods);
      desired = Math.min(desired, Math.max(2 * current, current + 4));
      const min = hpa.spec.minReplicas ?? 1;
      const clamped = Math.max(min, Math.min(hpa.spec.maxReplicas, desired));
      condition(clamped !== desired
        ? { type: 'ScalingLimited', status: 'True', reason: clamped > desired ? 'TooFewReplicas' : 'TooManyReplicas', message: `the desired replica count is ${clamped > desired ? 'less' : 'more'} than the ${clamped > desired ? 'minimum' : 'maximum'} replica count` }
        : { type: 'ScalingLimited', status: 'False', reason: 'DesiredWithinRange', message: 'the desired count is within the acceptable range' });
      desired = clamped;

      const downWindow = hpa.spec.behavior?.scaleDown?.stabilizationWindowSeconds !== undefined ? hpa.spec.behavior.scaleDown.stabilizationWindowSeconds * 1000 : settings.hpaScaleDownStabilizationMs;
      const upWindow = (hpa.spec.behavior?.scaleUp?.stabilizationWindowSeconds ?? 0) * 1000;
      const uid = hpa.metadata.uid ?? key;
      const recent = (recommendations.get(uid) ?? []).filter((rec) => rec.at > now - Math.max(downWindow, upWindow));
      recent.push({ at: now, replicas: desired });
      recommendations.set(uid, recent);
      if (desired < current) desired = Math.min(current, Math.max(...recent.filter((rec) => rec.at >= now - downWindow).map((rec) => rec.replicas)));
      else if (desired > current && upWindow > 0) desired = Math.max(current, Math.min(...recent.filter((rec) => rec.at >= now - upWindow).map((rec) => rec.replicas)));

      status.desiredReplicas = desired;
      status.currentMetrics = [{ type: 'Resource', resource: { name: resourceName, current: { averageUtilization: measured.utilization, averageValue: measured.averageValue } } }];
      if (desired !== current) {
        await deps.objects.patch(r, namespace, ref.name, { spec: { replicas: desired } });
        status.lastScaleTime = nowIso;
        await events.record(hpa, 'Normal', 'SuccessfulRescale',
          `New size: ${desired}; reason: ${resourceName} resource utilization (percentage of request) ${desired > current ? 'above' : 'below'} target`);
      }
      return finish();
    },
  };
}

/**
 * Utilisation (percent of requests, rounded) over the target's active, bound pods that have fresh samples;
 * or a message saying why it cannot be computed.
 */
function measure(deps: ControllerDeps, namespace: string, selectorSpec: LabelSelectorSpec | undefined, resource: 'cpu' | 'memory'): { utilization: number; averageValue: string; pods: number } | string {
  if (!deps.metrics) return 'no metrics source: agents report pod usage to the server';
  if (!selectorSpec) return 'the target has no selector';
  const selector = labelSelectorFromSpec(selectorSpec);
  const pods = (deps.objects.list(resources.pods, namespace).items)
    .filter((p) => isPodActive(p) && p.spec.nodeName && matchesLabels(selector, p.metadata.labels));
  let requested = 0;
  let used = 0;
  let counted = 0;
  for (const p of pods) {
    let request = 0;
    for (const c of p.spec.containers) {
      const q = c.resources?.requests?.[resource];
      if (q === undefined) return `missing request for ${resource} in container ${c.name} of Pod ${p.metadata.name}`;
      request += resource === 'cpu' ? cpuMillis(q) : bytes(q);
    }
    const usage: Usage | undefined = deps.metrics.podUsage(namespace, p.metadata.name ?? '');
    if (!usage) continue;
    requested += request;
    used += resource === 'cpu' ? usage.cpuMillis : usage.memoryBytes;
    counted++;
  }
  if (counted === 0) return `no recent ${resource} metrics for any pod of the target`;
  if (requested === 0) return `the pods request no ${resource}`;
  const average = Math.round(used / counted);
  return { utilization: Math.round((100 * used) / requested), averageValue: resource === 'cpu' ? `${average}m` : String(average), pods: counted };
}
