import type { Condition, JobStatus, Pod } from '../../api-types/index.js';
import {
  resources, objectKey, splitKey, ownerKey, isPodActive, isPodReady, podFromTemplate, sameContent, withCondition, isGoing,
} from './cluster-objects.js';
import { EventRecorder } from './events.js';
import { deletePod } from './replicaset.js';
import type { Controller, ControllerDeps } from './controller.js';
import { LABEL_CONTROLLER_UID, LABEL_JOB_NAME, LABEL_JOB_NAME_LEGACY } from '../../api-types/index.js';

/** Back-off before re-creating pods after failures: 10 s, doubled per failure, at most 6 minutes (as Kubernetes). */
export const JOB_BACKOFF_BASE_MS = 10_000;
export const JOB_BACKOFF_MAX_MS = 360_000;


/**
 * Runs a Job's pods to `completions` successes (default 1) with at most `parallelism` (default 1) running at
 * once. Finished pods are kept as the record of what ran; status counts never decrease. After the f-th failure no
 * pod is created for min(10 s * 2^(f-1), 6 min) after the latest failure. The Job fails (condition Failed) when
 * failures exceed backoffLimit (default 6), reason BackoffLimitExceeded, or when it has run longer than
 * activeDeadlineSeconds, reason DeadlineExceeded; either way its running pods are deleted.
 */
export function jobController(deps: ControllerDeps): Controller {
  const events = new EventRecorder(deps.objects, 'job-controller', deps.now);
  /** Pod uid -> when this controller first saw it failed, for pods that carry no finish time. */
  const failureSeen = new Map<string, number>();
  return {
    name: 'job',
    watches: [
      { resource: resources.jobs, keys: (e) => [objectKey(e.object)] },
      { resource: resources.pods, keys: (e) => ownerKey(e.object, 'Job') },
    ],
    allKeys: () => deps.objects.list(resources.jobs).items.map(objectKey),
    async reconcile(key) {
      const { namespace, name } = splitKey(key);
      const job = deps.objects.get(resources.jobs, namespace, name);
      if (!job || isGoing(job)) return;
      const now = deps.now();
      const nowIso = new Date(now).toISOString();
      const pods = deps.pods.ownedBy(job);
      let active = pods.filter(isPodActive);
      // Counts never go down: finished pods deleted by someone still count, as Kubernetes' tracking does.
      const succeeded = Math.max(job.status?.succeeded ?? 0, pods.filter((p) => p.status?.phase === 'Succeeded').length);
      const failedPods = pods.filter((p) => p.status?.phase === 'Failed');
      const failed = Math.max(job.status?.failed ?? 0, failedPods.length);
      const status: JobStatus = { ...(job.status ?? {}) };
      const finished = status.conditions?.some((c) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');

      let verdict: Condition | undefined;
      let requeueAfterMs: number | undefined;
      const startMs = status.startTime ? Date.parse(status.startTime) : now;
      const completions = job.spec.completions ?? (job.spec.parallelism === undefined ? 1 : undefined);
      const backoffLimit = job.spec.backoffLimit ?? 6;
      if (!finished) {
        if (!status.startTime) status.startTime = nowIso;
        const deadline = job.spec.activeDeadlineSeconds !== undefined ? startMs + job.spec.activeDeadlineSeconds * 1000 : undefined;
        const done = completions !== undefined ? succeeded >= completions : succeeded > 0 && active.length === 0;
        if (done) {
          verdict = { type: 'Complete', status: 'True', reason: 'Completed', message: `Job completed: ${succeeded} succeeded` };
        } else if (failed > backoffLimit) {
          verdict = { type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' };
        } else if (deadline !== undefined && now >= deadline) {
          verdict = { type: 'Failed', status: 'True', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' };
        } else if (!job.spec.suspend) {
          const parallelism = job.spec.parallelism ?? 1;
          const wanted = Math.max(0, Math.min(parallelism, completions !== undefined ? completions - succeeded : parallelism) - active.length);
          const lastFailure = Math.max(0, ...failedPods.map((p) => failureTime(p, failureSeen, now)));
          const backoffUntil = failed > 0 ? lastFailure + Math.min(JOB_BACKOFF_MAX_MS, JOB_BACKOFF_BASE_MS * 2 ** (failed - 1)) : 0;
          if (wanted > 0 && now < backoffUntil) {
            requeueAfterMs = backoffUntil - now;
          } else if (wanted > 0) {
            const created = await Promise.all(Array.from({ length: wanted }, () => deps.objects.create(resources.pods, namespace, podFromTemplate(job.spec.template, job, {
              labels: { [LABEL_JOB_NAME]: name, [LABEL_CONTROLLER_UID]: job.metadata.uid ?? '', [LABEL_JOB_NAME_LEGACY]: name },
            }))));
            active = [...active, ...(created)];
            await events.record(job, 'Normal', 'SuccessfulCreate', `Created ${wanted} pod(s)`);
          }
          if (deadline !== undefined) requeueAfterMs = Math.min(requeueAfterMs ?? Infinity, deadline - now);
        }
      }
      if (verdict) {
        for (const p of active) await deletePod(deps.objects, p);
        active = [];
        status.conditions = withCondition(status.conditions, { ...verdict, lastProbeTime: nowIso }, nowIso);
        if (verdict.type === 'Complete') status.completionTime = nowIso;
        await events.record(job, verdict.type === 'Complete' ? 'Normal' : 'Warning', verdict.reason ?? verdict.type, verdict.message ?? '');
      }
      status.active = active.length;
      status.ready = active.filter(isPodReady).length;
      status.succeeded = succeeded;
      status.failed = failed;
      if (!sameContent(status, job.status ?? {})) {
        await deps.objects.replaceStatus(resources.jobs, namespace, name, status);
      }
      return requeueAfterMs !== undefined ? { requeueAfterMs: Math.max(0, requeueAfterMs) } : {};
    },
  };
}

/** When a failed pod finished: the latest finish time of its containers, else when this controller first saw it failed. */
function failureTime(pod: Pod, seen: Map<string, number>, now: number): number {
  const finishes = (pod.status?.containerStatuses ?? [])
    .map((c) => Date.parse(c.state?.terminated?.finishedAt ?? ''))
    .filter((t) => Number.isFinite(t));
  if (finishes.length > 0) return Math.max(...finishes);
  const uid = pod.metadata.uid ?? pod.metadata.name ?? '';
  if (!seen.has(uid)) seen.set(uid, now);
  return seen.get(uid)!;
}
