import type { Condition, Deployment, DeploymentStatus, PodTemplateSpec, ReplicaSet } from '../../api-types/index.js';
import type { Stored } from '../store/types.js';
import {
  resources, objectKey, splitKey, ownerKey, ownedBy, controllerRefTo, templateHash, sameContent, scaledValue, withCondition,
  isGoing, controllerOf, isPodUnfinished,
} from './cluster-objects.js';
import { EventRecorder } from './events.js';
import type { Controller, ControllerDeps } from './controller.js';
import { ANNOTATION_DEPLOYMENT_REVISION, ANNOTATION_DESIRED_REPLICAS, ANNOTATION_MAX_REPLICAS, LABEL_POD_TEMPLATE_HASH } from '../../api-types/index.js';

/**
 * Rolls Deployments out through ReplicaSets, one per pod template (labelled pod-template-hash, annotated with
 * its revision). RollingUpdate keeps at most replicas+maxSurge pods and at least replicas-maxUnavailable
 * available ones, counting only pods whose Ready condition holds; Recreate scales every old ReplicaSet to zero
 * and waits for its pods to be gone before starting the new one. A paused Deployment only follows scale
 * changes. A scale change in the middle of a rollout is spread over the ReplicaSets in proportion to their
 * sizes (Kubernetes' proportional scaling), so that neither template gains or loses more than its share;
 * the rollout then goes on from there. Rollback is a template change back to an old ReplicaSet's template: that ReplicaSet becomes the new
 * one again and gets the next revision number.
 */
export function deploymentController(deps: ControllerDeps): Controller {
  const events = new EventRecorder(deps.objects, 'deployment-controller', deps.now);

  /** Sets the ReplicaSet's size and its desired/max-replicas annotations; writes only what differs. */
  async function scale(d: Stored<Deployment>, rs: Stored<ReplicaSet>, replicas: number): Promise<Stored<ReplicaSet>> {
    const from = rs.spec.replicas ?? 0;
    const annotations = sizeAnnotations(d);
    if (from === replicas && Object.entries(annotations).every(([k, v]) => rs.metadata.annotations?.[k] === v)) return rs;
    const updated = await deps.objects.patch(resources.replicaSets, rs.metadata.namespace, rs.metadata.name ?? '', { spec: { replicas }, metadata: { annotations } });
    if (from === replicas) return updated;
    await events.record(d, 'Normal', 'ScalingReplicaSet', `Scaled ${replicas > from ? 'up' : 'down'} replica set ${rs.metadata.name} from ${from} to ${replicas}`);
    return updated;
  }

  async function newReplicaSet(d: Stored<Deployment>, hash: string, revision: number): Promise<Stored<ReplicaSet>> {
    const template = d.spec.template;
    const labels = { ...(template.metadata?.labels ?? {}), [LABEL_POD_TEMPLATE_HASH]: hash };
    const rs = await deps.objects.create(resources.replicaSets, d.metadata.namespace, {
      apiVersion: 'apps/v1', kind: 'ReplicaSet',
      metadata: {
        name: `${d.metadata.name}-${hash}`, labels,
        annotations: { [ANNOTATION_DEPLOYMENT_REVISION]: String(revision), ...sizeAnnotations(d) },
        ownerReferences: [controllerRefTo(d)],
      },
      spec: {
        replicas: 0,
        selector: { ...d.spec.selector, matchLabels: { ...(d.spec.selector.matchLabels ?? {}), [LABEL_POD_TEMPLATE_HASH]: hash } },
        template: { ...template, metadata: { ...(template.metadata ?? {}), labels } },
        ...(d.spec.minReadySeconds !== undefined ? { minReadySeconds: d.spec.minReadySeconds } : {}),
      },
    });
    await events.record(d, 'Normal', 'ScalingReplicaSet', `Created replica set ${rs.metadata.name} (revision ${revision})`);
    return rs;
  }

  return {
    name: 'deployment',
    watches: [
      { resource: resources.deployments, keys: (e) => [objectKey(e.object)] },
      { resource: resources.replicaSets, keys: (e) => ownerKey(e.object, 'Deployment') },
      {
        // Recreate waits until the old pods are gone, Terminating ones included: their removal wakes the Deployment.
        resource: resources.pods,
        keys: (e) => {
          const ref = e.type === 'DELETED' ? controllerOf(e.object) : undefined;
          const rs = ref?.kind === 'ReplicaSet' ? deps.objects.get(resources.replicaSets, e.object.metadata.namespace, ref.name) : undefined;
          return rs ? ownerKey(rs, 'Deployment') : [];
        },
      },
    ],
    allKeys: () => deps.objects.list(resources.deployments).items.map(objectKey),
    async reconcile(key) {
      const { namespace, name } = splitKey(key);
      const d = deps.objects.get(resources.deployments, namespace, name);
      if (!d || isGoing(d)) return;
      let all = ownedBy(deps.objects.list(resources.replicaSets, namespace).items, d);
      const replicas = d.spec.replicas ?? 1;
      const hash = templateHash(d.spec.template);
      let current = all.find((rs) => rs.metadata.labels?.[LABEL_POD_TEMPLATE_HASH] === hash)
        ?? all.find((rs) => sameContent(templateOf(rs), d.spec.template));
      const maxRevision = Math.max(0, ...all.map(revisionOf));

      if (d.spec.paused || isScalingEvent(all, replicas)) {
        all = await scaleToDeployment(d, current, all, replicas);
        return writeStatus(d, all, current && all.find((rs) => rs.metadata.uid === current!.metadata.uid), replicas);
      }
      if (!current) {
        current = await newReplicaSet(d, hash, maxRevision + 1);
        all = [...all, current];
      } else if (revisionOf(current) < maxRevision) {
        // A rollback (or a return to an older template): that ReplicaSet is the newest revision again.
        current = await deps.objects.patch(resources.replicaSets, namespace, current.metadata.name ?? '', {
          metadata: { annotations: { [ANNOTATION_DEPLOYMENT_REVISION]: String(maxRevision + 1) } },
        });
        await events.record(d, 'Normal', 'DeploymentRollback', `Rolled back to replica set ${current.metadata.name} (now revision ${maxRevision + 1})`);
      }
      const newRS = current;
      const old = all.filter((rs) => rs !== newRS && rs.metadata.uid !== newRS.metadata.uid).sort((a, b) => revisionOf(a) - revisionOf(b));
      const replace = (rs: Stored<ReplicaSet>) => { all = all.map((x) => (x.metadata.uid === rs.metadata.uid ? rs : x)); return rs; };

      if (d.spec.strategy?.type === 'Recreate') {
        if (old.some((rs) => (rs.spec.replicas ?? 0) > 0)) {
          for (const rs of old) replace(await scale(d, rs, 0));
        } else if (old.every((rs) => (rs.status?.replicas ?? 0) === 0 && !deps.pods.ownedBy(rs).some(isPodUnfinished))) {
          current = replace(await scale(d, newRS, replicas));
        }
      } else {
        const ru = d.spec.strategy?.rollingUpdate;
        const maxSurge = maxSurgeOf(d);
        let maxUnavailable = scaledValue(ru?.maxUnavailable, replicas, '25%', false);
        if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
        // Scale the new ReplicaSet up within the surge budget (or down to the declared count).
        const total = sum(all, (rs) => rs.spec.replicas ?? 0);
        let want = newRS.spec.replicas ?? 0;
        if (want < replicas) want = Math.min(replicas, want + Math.max(0, replicas + maxSurge - total));
        else if (want > replicas) want = replicas;
        current = replace(await scale(d, newRS, want));
        // Scale old ReplicaSets down within the availability budget: unhealthy pods first, then oldest first.
        const minAvailable = replicas - maxUnavailable;
        const newUnavailable = (current.spec.replicas ?? 0) - available(current);
        let budget = sum(all, (rs) => rs.spec.replicas ?? 0) - minAvailable - newUnavailable;
        for (const rs of old) {
          if (budget <= 0) break;
          const unhealthy = (rs.spec.replicas ?? 0) - available(rs);
          if (unhealthy <= 0) continue;
          const by = Math.min(budget, unhealthy);
          replace(await scale(d, rs, (rs.spec.replicas ?? 0) - by));
          budget -= by;
        }
        let excess = sum(all, available) - minAvailable;
        for (const rs of old.map((o) => all.find((x) => x.metadata.uid === o.metadata.uid)!)) {
          if (excess <= 0) break;
          const by = Math.min(excess, rs.spec.replicas ?? 0);
          if (by === 0) continue;
          replace(await scale(d, rs, (rs.spec.replicas ?? 0) - by));
          excess -= by;
        }
      }
      await pruneHistory(d, all, current);
      return writeStatus(d, all, current, replicas);
    },
  };

  /**
   * Brings the ReplicaSets' sizes to the Deployment's after a scale change, as Kubernetes' deployment
   * controller does: a lone active ReplicaSet (or, with none, the newest) takes the whole count; with a new
   * ReplicaSet fully available, the old ones go to zero; mid-rollout (RollingUpdate), the difference between
   * replicas+maxSurge and the current total is shared in proportion to each ReplicaSet's size against the
   * max-replicas it was last scaled for, the rounding leftover going to the largest. Returns `all` updated.
   */
  async function scaleToDeployment(d: Stored<Deployment>, newRS: Stored<ReplicaSet> | undefined, all: Stored<ReplicaSet>[], replicas: number): Promise<Stored<ReplicaSet>[]> {
    const replace = (rs: Stored<ReplicaSet>) => { all = all.map((x) => (x.metadata.uid === rs.metadata.uid ? rs : x)); };
    const active = all.filter((rs) => (rs.spec.replicas ?? 0) > 0);
    if (active.length <= 1) {
      const target = active[0] ?? newRS ?? [...all].sort((a, b) => revisionOf(b) - revisionOf(a))[0];
      if (target) replace(await scale(d, target, replicas));
      return all;
    }
    if (newRS && (newRS.spec.replicas ?? 0) === replicas && desiredReplicasOf(newRS) === replicas && (newRS.status?.availableReplicas ?? 0) === replicas) {
      for (const rs of active) if (rs.metadata.uid !== newRS.metadata.uid) replace(await scale(d, rs, 0));
      return all;
    }
    if (d.spec.strategy?.type === 'Recreate') return all;
    const allowed = replicas > 0 ? replicas + maxSurgeOf(d) : 0;
    const toAdd = allowed - sum(active, (rs) => rs.spec.replicas ?? 0);
    // Equal sizes: scaling up favours the newer ReplicaSet, scaling down the older one.
    const order = [...active].sort((a, b) => (b.spec.replicas ?? 0) - (a.spec.replicas ?? 0) || (toAdd > 0 ? revisionOf(b) - revisionOf(a) : revisionOf(a) - revisionOf(b)));
    const fallbackMax = (d.status?.replicas ?? 0) > 0 ? d.status!.replicas! : sum(active, (rs) => rs.spec.replicas ?? 0);
    let added = 0;
    const sizes = order.map((rs) => {
      const size = rs.spec.replicas ?? 0;
      if (toAdd === 0 || added === toAdd) return size;
      const fraction = replicas === 0 ? -size : Math.round(size * allowed / (maxReplicasOf(rs) ?? fallbackMax)) - size;
      const share = toAdd > 0 ? Math.min(fraction, toAdd - added) : Math.max(fraction, toAdd - added);
      added += share;
      return size + share;
    });
    if (sizes.length > 0) sizes[0] = Math.max(0, sizes[0]! + toAdd - added);
    for (const [i, rs] of order.entries()) replace(await scale(d, rs, sizes[i]!));
    return all;
  }

  /** Deletes the oldest ReplicaSets without pods beyond revisionHistoryLimit (default 10). */
  async function pruneHistory(d: Stored<Deployment>, all: Stored<ReplicaSet>[], current: Stored<ReplicaSet>): Promise<void> {
    const limit = d.spec.revisionHistoryLimit ?? 10;
    const idle = all.filter((rs) => rs.metadata.uid !== current.metadata.uid && (rs.spec.replicas ?? 0) === 0 && (rs.status?.replicas ?? 0) === 0)
      .sort((a, b) => revisionOf(a) - revisionOf(b));
    for (const rs of idle.slice(0, Math.max(0, idle.length - limit))) {
      await deps.objects.delete(resources.replicaSets, rs.metadata.namespace, rs.metadata.name ?? '', { preconditions: { uid: rs.metadata.uid ?? '' } });
    }
  }

  async function writeStatus(d: Stored<Deployment>, all: Stored<ReplicaSet>[], current: Stored<ReplicaSet> | undefined, replicas: number): Promise<{ requeueAfterMs?: number }> {
    const nowIso = new Date(deps.now()).toISOString();
    const ru = d.spec.strategy?.rollingUpdate;
    const maxUnavailable = d.spec.strategy?.type === 'Recreate' ? replicas : scaledValue(ru?.maxUnavailable, replicas, '25%', false);
    const availableCount = sum(all, (rs) => rs.status?.availableReplicas ?? 0);
    const updated = current?.status?.replicas ?? 0;
    const oldPods = sum(all.filter((rs) => rs.metadata.uid !== current?.metadata.uid), (rs) => rs.status?.replicas ?? 0);
    const complete = updated === replicas && (current?.status?.availableReplicas ?? 0) === replicas && oldPods === 0;
    let conditions: Condition[] = withCondition(d.status?.conditions, availableCount >= replicas - maxUnavailable
      ? { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable', message: 'Deployment has minimum availability.' }
      : { type: 'Available', status: 'False', reason: 'MinimumReplicasUnavailable', message: 'Deployment does not have minimum availability.' }, nowIso);
    const counts = {
      replicas: sum(all, (rs) => rs.status?.replicas ?? 0),
      updatedReplicas: updated,
      readyReplicas: sum(all, (rs) => rs.status?.readyReplicas ?? 0),
      availableReplicas: availableCount,
    };
    // Progress is any change of these counts or of the new ReplicaSet; without progress for
    // progressDeadlineSeconds (default 600) an unfinished rollout is reported as ProgressDeadlineExceeded.
    const before = d.status?.conditions?.find((c) => c.type === 'Progressing');
    const progressed = !sameContent(counts, { replicas: d.status?.replicas ?? 0, updatedReplicas: d.status?.updatedReplicas ?? 0, readyReplicas: d.status?.readyReplicas ?? 0, availableReplicas: d.status?.availableReplicas ?? 0 })
      || !before?.message?.includes(`"${current?.metadata.name ?? ''}"`);
    const waitingSince = before?.lastUpdateTime !== undefined && !progressed && before.reason === 'ReplicaSetUpdated' ? before.lastUpdateTime : nowIso;
    const deadlineMs = Date.parse(waitingSince) + (d.spec.progressDeadlineSeconds ?? 600) * 1000;
    let requeueAfterMs: number | undefined;
    let progressing: Condition;
    if (d.spec.paused) {
      progressing = { type: 'Progressing', status: 'Unknown', reason: 'DeploymentPaused', message: 'Deployment is paused' };
    } else if (complete) {
      progressing = { type: 'Progressing', status: 'True', reason: 'NewReplicaSetAvailable', message: `ReplicaSet "${current?.metadata.name}" has successfully progressed.` };
    } else if ((before?.reason === 'ProgressDeadlineExceeded' && !progressed) || deps.now() >= deadlineMs) {
      progressing = { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded', message: `ReplicaSet "${current?.metadata.name ?? ''}" has timed out progressing.` };
    } else {
      progressing = { type: 'Progressing', status: 'True', reason: 'ReplicaSetUpdated', message: `ReplicaSet "${current?.metadata.name ?? ''}" is progressing.` };
      requeueAfterMs = deadlineMs - deps.now();
    }
    // lastUpdateTime moves only with progress or a new reason, so that a settled Deployment is not rewritten.
    const lastUpdate = before?.lastUpdateTime !== undefined && !progressed && before.reason === progressing.reason ? before.lastUpdateTime : nowIso;
    if (progressing.reason === 'ProgressDeadlineExceeded' && before?.reason !== 'ProgressDeadlineExceeded') {
      await events.record(d, 'Warning', 'ProgressDeadlineExceeded', progressing.message ?? '');
    }
    conditions = withCondition(conditions, { ...progressing, lastUpdateTime: lastUpdate }, nowIso);
    const status: DeploymentStatus = {
      observedGeneration: d.metadata.generation ?? 1,
      ...counts,
      unavailableReplicas: Math.max(0, replicas - availableCount),
      conditions,
    };
    if (!sameContent(status, d.status ?? {})) {
      await deps.objects.replaceStatus(resources.deployments, d.metadata.namespace, d.metadata.name ?? '', status);
    }
    return requeueAfterMs !== undefined ? { requeueAfterMs } : {};
  }
}

/** The Deployment's size as its ReplicaSets are annotated with it (see ANNOTATION_DESIRED_REPLICAS). */
function sizeAnnotations(d: Deployment): Record<string, string> {
  const replicas = d.spec.replicas ?? 1;
  return { [ANNOTATION_DESIRED_REPLICAS]: String(replicas), [ANNOTATION_MAX_REPLICAS]: String(replicas + maxSurgeOf(d)) };
}

function maxSurgeOf(d: Deployment): number {
  if (d.spec.strategy?.type === 'Recreate') return 0;
  return scaledValue(d.spec.strategy?.rollingUpdate?.maxSurge, d.spec.replicas ?? 1, '25%', true);
}

/** A scale change not yet applied: an active ReplicaSet was last scaled for another Deployment size. */
function isScalingEvent(all: readonly ReplicaSet[], replicas: number): boolean {
  return all.some((rs) => (rs.spec.replicas ?? 0) > 0 && desiredReplicasOf(rs) !== undefined && desiredReplicasOf(rs) !== replicas);
}

function desiredReplicasOf(rs: ReplicaSet): number | undefined {
  return annotatedCount(rs, ANNOTATION_DESIRED_REPLICAS);
}

function maxReplicasOf(rs: ReplicaSet): number | undefined {
  const n = annotatedCount(rs, ANNOTATION_MAX_REPLICAS);
  return n !== undefined && n > 0 ? n : undefined;
}

function annotatedCount(rs: ReplicaSet, annotation: string): number | undefined {
  const text = rs.metadata.annotations?.[annotation];
  const n = text === undefined ? NaN : Number(text);
  return Number.isInteger(n) && n >= 0 ? n : undefined;
}

function revisionOf(rs: ReplicaSet): number {
  const n = Number(rs.metadata.annotations?.[ANNOTATION_DEPLOYMENT_REVISION] ?? 0);
  return Number.isFinite(n) ? n : 0;
}

/** The ReplicaSet's template as the Deployment wrote it: without the pod-template-hash label. */
function templateOf(rs: ReplicaSet): PodTemplateSpec | undefined {
  if (!rs.spec.template) return undefined;
  const { [LABEL_POD_TEMPLATE_HASH]: _hash, ...labels } = rs.spec.template.metadata?.labels ?? {};
  const metadata = { ...(rs.spec.template.metadata ?? {}), labels };
  return { ...rs.spec.template, metadata };
}

/** Available pods a ReplicaSet can be counted on for: its status, never more than it is asked to keep. */
function available(rs: ReplicaSet): number {
  return Math.min(rs.spec.replicas ?? 0, rs.status?.availableReplicas ?? 0);
}

function sum<T>(items: readonly T[], f: (t: T) => number): number {
  return items.reduce((n, t) => n + f(t), 0);
}
