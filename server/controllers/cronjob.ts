// The CronJob controller, as Kubernetes' cronjob_controllerv2.go: each CronJob starts a Job at the most recent
// scheduled time it has not yet run (one, however many were missed), and sleeps until the next one.
import {
  ANNOTATION_CRONJOB_SCHEDULED_TIMESTAMP, LOCAL_TIME_ZONE, formatRfc1123z, formatRfc3339, loadTimeZone, nextCronTime, parseCronSchedule,
} from '../../api-types/index.js';
import type { CronJob, CronJobStatus, CronSchedule, Job, ObjectReference } from '../../api-types/index.js';
import { StoreError } from '../store/types.js';
import type { Stored } from '../store/types.js';
import { resources, objectKey, splitKey, ownerKey, ownedBy, controllerOf, controllerRefTo, isGoing, sameContent } from './cluster-objects.js';
import { EventRecorder } from './events.js';
import type { Controller, ControllerDeps, ReconcileResult } from './controller.js';

/** Kubernetes' padding after a scheduled time before the CronJob is looked at, for clock skew (nextScheduleDelta). */
export const NEXT_SCHEDULE_DELTA_MS = 100;
/** More missed times than this since the last run warns TooManyMissedTimes (only the most recent runs either way). */
const TOO_MANY_MISSED = 100;

/**
 * The name of the Job for `scheduledMs`: NAME-<minutes since the epoch>. The name is the lock that keeps one
 * scheduled time from running twice: a leader that created the Job and lost leadership before writing the
 * CronJob's status leaves the Job behind, and its successor's create meets AlreadyExists and adopts it.
 */
export function cronJobJobName(cronJobName: string, scheduledMs: number): string {
  return `${cronJobName}-${Math.floor(scheduledMs / 60_000)}`;
}

/**
 * Per CronJob, in Kubernetes' order: finished Jobs beyond successfulJobsHistoryLimit / failedJobsHistoryLimit
 * are deleted oldest first; status.active follows the Jobs (finished ones leave it, SawCompletedJob; vanished
 * ones too, MissingJob; an unfinished Job it does not list is reported, UnexpectedJob); lastSuccessfulTime is the
 * newest completion. Then, unless the CronJob is being deleted or is suspended, the most recent unmet
 * scheduled time since lastScheduleTime (or creation), no older than startingDeadlineSeconds, gets a Job:
 * Forbid skips it while a Job is active, Replace deletes the active Jobs first (background propagation).
 * The key is queued again just after the next scheduled time.
 */
export function cronJobController(deps: ControllerDeps): Controller {
  const events = new EventRecorder(deps.objects, 'cronjob-controller', deps.now);

  /** Deletes a Job and its pods (background propagation) and drops it from status.active; false when the delete failed. */
  const deleteJob = async (cj: Stored<CronJob>, status: CronJobStatus, job: Stored<Job>): Promise<boolean> => {
    try {
      await deps.objects.delete(resources.jobs, job.metadata.namespace, job.metadata.name, { propagationPolicy: 'Background', preconditions: { uid: job.metadata.uid ?? '' } });
    } catch (err) {
      await events.record(cj, 'Warning', 'FailedDelete', `Deleted job: ${message(err)}`);
      return false;
    }
    removeActive(status, job.metadata.uid);
    await events.record(cj, 'Normal', 'SuccessfulDelete', `Deleted job ${job.metadata.name}`);
    return true;
  };

  const cleanupFinishedJobs = async (cj: Stored<CronJob>, status: CronJobStatus, jobs: readonly Stored<Job>[]): Promise<void> => {
    const limits = [['Complete', cj.spec.successfulJobsHistoryLimit], ['Failed', cj.spec.failedJobsHistoryLimit]] as const;
    for (const [condition, limit] of limits) {
      if (limit === undefined) continue;
      const finished = jobs.filter((j) => finishedCondition(j) === condition).sort(byStartTime);
      for (const job of finished.slice(0, Math.max(0, finished.length - limit))) await deleteJob(cj, status, job);
    }
  };

  /** Brings status in line with the Jobs and starts the due one; returns when to look again. */
  const syncCronJob = async (cj: Stored<CronJob>, status: CronJobStatus, jobs: readonly Stored<Job>[], now: number): Promise<number | undefined> => {
    for (const job of jobs) {
      const listed = isActive(status, job.metadata.uid);
      const condition = finishedCondition(job);
      if (!condition && !listed) {
        await events.record(cj, 'Warning', 'UnexpectedJob', `Saw a job that the controller did not create or forgot: ${job.metadata.name}`);
      } else if (condition) {
        if (listed) {
          removeActive(status, job.metadata.uid);
          await events.record(cj, 'Normal', 'SawCompletedJob', `Saw completed job: ${job.metadata.name}, condition: ${condition}`);
        }
        const completed = job.status?.completionTime;
        if (condition === 'Complete' && completed && (!status.lastSuccessfulTime || Date.parse(completed) > Date.parse(status.lastSuccessfulTime))) {
          status.lastSuccessfulTime = completed;
        }
      }
    }
    const uids = new Set(jobs.map((j) => j.metadata.uid));
    for (const ref of [...(status.active ?? [])]) {
      if (uids.has(ref.uid)) continue;
      removeActive(status, ref.uid);
      await events.record(cj, 'Normal', 'MissingJob', `Active job went missing: ${ref.name}`);
    }
    if (isGoing(cj)) return undefined;

    let zone: string;
    try {
      zone = loadTimeZone(cj.spec.timeZone ?? LOCAL_TIME_ZONE);
    } catch (err) {
      await events.record(cj, 'Warning', 'UnknownTimeZone', `invalid timeZone: ${JSON.stringify(cj.spec.timeZone)}: ${message(err)}`);
      return undefined;
    }
    if (cj.spec.suspend) return undefined;
    let schedule: CronSchedule;
    try {
      schedule = parseCronSchedule(cj.spec.schedule);
    } catch (err) {
      await events.record(cj, 'Warning', 'UnparseableSchedule', `unparseable schedule: ${JSON.stringify(cj.spec.schedule)} : ${message(err)}`);
      return undefined;
    }
    const times = { schedule, zone, now };
    const due = mostRecentScheduleTime(cj, status, times, true);
    if (due.error) {
      await events.record(cj, 'Warning', 'InvalidSchedule', `invalid schedule: ${cj.spec.schedule} : ${due.error}`);
      return undefined;
    }
    const scheduled = due.mostRecent;
    const next = () => nextScheduleDelay(cj, status, times);
    if (scheduled === undefined) return next();
    if (due.missed === 'many') {
      await events.record(cj, 'Warning', 'TooManyMissedTimes', 'too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew');
    }
    const deadline = cj.spec.startingDeadlineSeconds;
    if (deadline !== undefined && scheduled + deadline * 1000 < now) {
      await events.record(cj, 'Warning', 'MissSchedule', `Missed scheduled time to start a job: ${formatRfc1123z(scheduled)}`);
      return next();
    }
    const name = cronJobJobName(cj.metadata.name, scheduled);
    if ((status.active ?? []).some((r) => r.name === name) || (status.lastScheduleTime && Date.parse(status.lastScheduleTime) === scheduled)) return next();
    const policy = cj.spec.concurrencyPolicy ?? 'Allow';
    if (policy === 'Forbid' && (status.active ?? []).length > 0) {
      await events.record(cj, 'Normal', 'JobAlreadyActive', 'Not starting job because prior execution is running and concurrency policy is Forbid');
      return next();
    }
    if (policy === 'Replace') {
      for (const ref of [...(status.active ?? [])]) {
        const job = deps.objects.get(resources.jobs, ref.namespace, ref.name ?? '');
        if (!job) {
          await events.record(cj, 'Warning', 'FailedGet', `Get job: jobs.batch "${ref.name}" not found`);
          throw new Error(`job ${ref.namespace}/${ref.name} of cronjob ${objectKey(cj)} not found`);
        }
        if (!await deleteJob(cj, status, job)) throw new Error(`could not replace job ${ref.namespace}/${ref.name}`);
      }
    }

    let job: Stored<Job>;
    try {
      job = await deps.objects.create(resources.jobs, cj.metadata.namespace, jobFromTemplate(cj, name, scheduled));
      await events.record(cj, 'Normal', 'SuccessfulCreate', `Created job ${job.metadata.name}`);
    } catch (err) {
      if (!(err instanceof StoreError && err.failure.reason === 'AlreadyExists')) {
        await events.record(cj, 'Warning', 'FailedCreate', `Error creating job: ${message(err)}`);
        throw err;
      }
      // Created before, by this controller (its status write lost with a leader) or by someone else.
      const existing = deps.objects.get(resources.jobs, cj.metadata.namespace, name);
      if (!existing) throw err;
      if (controllerOf(existing)?.uid !== cj.metadata.uid || isActive(status, existing.metadata.uid)) return undefined;
      job = existing;
    }
    status.active = [...(status.active ?? []), referenceTo(job)];
    status.lastScheduleTime = formatRfc3339(scheduled, 'UTC');
    return next();
  };

  return {
    name: 'cronjob',
    watches: [
      { resource: resources.cronJobs, keys: (e) => [objectKey(e.object)] },
      { resource: resources.jobs, keys: (e) => ownerKey(e.object, 'CronJob') },
    ],
    allKeys: () => deps.objects.list(resources.cronJobs).items.map(objectKey),
    async reconcile(key): Promise<ReconcileResult> {
      const { namespace, name } = splitKey(key);
      const cj = deps.objects.get(resources.cronJobs, namespace, name);
      if (!cj) return {};
      const jobs = ownedBy(deps.objects.list(resources.jobs, namespace).items, cj);
      const status: CronJobStatus = structuredClone(cj.status ?? {});
      await cleanupFinishedJobs(cj, status, jobs);
      let requeueAfterMs: number | undefined;
      let failure: unknown;
      try {
        requeueAfterMs = await syncCronJob(cj, status, jobs, deps.now());
      } catch (err) {
        failure = err;
      }
      if ((status.active ?? []).length === 0) delete status.active;
      if (!sameContent(status, cj.status ?? {})) {
        await deps.objects.replaceStatus(resources.cronJobs, namespace, name, status);
      }
      if (failure !== undefined) throw failure;
      return requeueAfterMs !== undefined ? { requeueAfterMs } : {};
    },
  };
}

interface Times {
  schedule: CronSchedule;
  zone: string;
  now: number;
}

type Missed = 'none' | 'few' | 'many';

/**
 * Kubernetes' mostRecentScheduleTime: from lastScheduleTime (else the creation time), or from now minus
 * startingDeadlineSeconds when that is later and `withDeadline`, the most recent scheduled time not after now
 * (undefined when the next one is still ahead), and how many were missed. The count is estimated from the
 * interval between the first two times, so that a CronJob asleep for years costs a few steps, not millions.
 */
function mostRecentScheduleTime(cj: CronJob, status: CronJobStatus, { schedule, zone, now }: Times, withDeadline: boolean): { earliest: number; mostRecent?: number; missed: Missed; error?: string } {
  let earliest = Date.parse(status.lastScheduleTime ?? cj.metadata.creationTimestamp ?? '');
  if (!Number.isFinite(earliest)) earliest = now;
  const deadline = cj.spec.startingDeadlineSeconds;
  if (withDeadline && deadline !== undefined) earliest = Math.max(earliest, now - deadline * 1000);
  const next = (t: number) => nextCronTime(schedule, t, zone);
  const t1 = next(earliest);
  if (t1 !== undefined && now < t1) return { earliest, missed: 'none' };
  const t2 = t1 === undefined ? undefined : next(t1);
  if (t1 !== undefined && t2 !== undefined && now < t2) return { earliest, mostRecent: t1, missed: 'none' };
  const between = t1 === undefined || t2 === undefined ? 0 : Math.round((t2 - t1) / 1000);
  if (between < 1) return { earliest, missed: 'none', error: 'time difference between two schedules is less than 1 second' };
  const missedCount = Math.trunc((now - t1!) / 1000 / between) + 1;
  let mostRecent: number | undefined;
  for (let t = next(t1! + (missedCount - 2) * between * 1000); t !== undefined && t <= now; t = next(t)) mostRecent = t;
  const missed: Missed = missedCount > TOO_MANY_MISSED ? 'many' : 'few';
  return mostRecent === undefined ? { earliest, missed } : { earliest, mostRecent, missed };
}

/** Kubernetes' nextScheduleTimeDuration: from now until just after the scheduled time following the last one seen. */
function nextScheduleDelay(cj: CronJob, status: CronJobStatus, times: Times): number | undefined {
  const { earliest, mostRecent, missed, error } = mostRecentScheduleTime(cj, status, times, false);
  const from = error !== undefined ? times.now : mostRecent ?? (missed === 'none' ? earliest : times.now);
  const next = nextCronTime(times.schedule, from, times.zone);
  return next === undefined ? undefined : Math.max(0, next + NEXT_SCHEDULE_DELTA_MS - times.now);
}

/**
 * The Job for one scheduled time: the template's labels, annotations and spec, owned by the CronJob. The
 * scheduled-timestamp annotation is in spec.timeZone, or UTC without one (Kubernetes loads the zone "" there,
 * even though the schedule itself then runs in the controller's local zone).
 */
function jobFromTemplate(cj: Stored<CronJob>, name: string, scheduledMs: number): Record<string, unknown> {
  const template = cj.spec.jobTemplate;
  const labels = template.metadata?.labels ?? {};
  return {
    apiVersion: 'batch/v1', kind: 'Job',
    metadata: {
      name,
      ...(Object.keys(labels).length > 0 ? { labels: { ...labels } } : {}),
      annotations: { ...(template.metadata?.annotations ?? {}), [ANNOTATION_CRONJOB_SCHEDULED_TIMESTAMP]: formatRfc3339(scheduledMs, cj.spec.timeZone ?? 'UTC') },
      ownerReferences: [controllerRefTo(cj)],
    },
    spec: structuredClone(template.spec),
  };
}

/** Complete or Failed when the Job has finished (that condition True), else undefined. */
function finishedCondition(job: Job): 'Complete' | 'Failed' | undefined {
  const c = job.status?.conditions?.find((x) => (x.type === 'Complete' || x.type === 'Failed') && x.status === 'True');
  return c?.type as 'Complete' | 'Failed' | undefined;
}

/** Oldest first by status.startTime (Jobs not started last), then by name. */
function byStartTime(a: Job, b: Job): number {
  const [sa, sb] = [a.status?.startTime, b.status?.startTime];
  if (sa === undefined || sb === undefined) return sa === sb ? (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '') : sa === undefined ? 1 : -1;
  const d = Date.parse(sa) - Date.parse(sb);
  return d !== 0 ? d : (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '');
}

function referenceTo(job: Stored<Job>): ObjectReference {
  return {
    kind: 'Job', namespace: job.metadata.namespace, name: job.metadata.name, uid: job.metadata.uid,
    apiVersion: 'batch/v1', resourceVersion: job.metadata.resourceVersion,
  };
}

function isActive(status: CronJobStatus, uid: string | undefined): boolean {
  return (status.active ?? []).some((r) => r.uid === uid);
}

function removeActive(status: CronJobStatus, uid: string | undefined): void {
  status.active = (status.active ?? []).filter((r) => r.uid !== uid);
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
