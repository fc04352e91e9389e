// The CronJob controller in a simulated cluster on a fake clock: which Jobs start when (across hours and DST
// changes), each concurrency policy, suspend, startingDeadlineSeconds, history limits, and leader changes,
// including one between a Job's create and the CronJob's status write.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ANNOTATION_CRONJOB_SCHEDULED_TIMESTAMP, LABEL_JOB_NAME } from '../../api-types/index.js';
import type { CronJob, Event, Job, Pod } from '../../api-types/index.js';
import { cronJobController, NEXT_SCHEDULE_DELTA_MS } from '../../server/controllers/cronjob.js';
import { eventually } from '../support/eventually.js';
import { ClusterSim, R } from './cluster-sim.js';

type Json = Record<string, unknown>;
const MINUTE = 60_000;

function cronJobManifest(name: string, spec: Json): Json {
  return {
    metadata: { name },
    spec: {
      timeZone: 'UTC',
      jobTemplate: { metadata: { labels: { app: name } }, spec: { backoffLimit: 0, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'run', image: 'busybox:1.36' }] } } } },
      ...spec,
    },
  };
}

const cronJob = (sim: ClusterSim, name: string) => sim.get('cronjobs', name) as unknown as CronJob;
const jobs = (sim: ClusterSim, owner: string) => (sim.objects.list(R('jobs'), 'default').items as unknown as Job[])
  .filter((j) => j.metadata.ownerReferences?.some((r) => r.kind === 'CronJob' && r.name === owner));
const jobNames = (sim: ClusterSim, owner: string) => jobs(sim, owner).map((j) => j.metadata.name ?? '').sort();
const finished = (j: Job, type: 'Complete' | 'Failed') => j.status?.conditions?.some((c) => c.type === type && c.status === 'True') === true;
/** The Job name for a scheduled time: the CronJob's name and the minutes since the epoch. */
const nameFor = (owner: string, iso: string) => `${owner}-${Date.parse(iso) / MINUTE}`;
const reasons = (sim: ClusterSim, owner: string) => (sim.objects.list(R('events'), 'default').items as unknown as Event[])
  .filter((e) => e.involvedObject?.kind === 'CronJob' && e.involvedObject.name === owner).map((e) => e.reason ?? '');

/** Steps the sim by `stepMs` until the clock reaches `untilIso`, noting each Job of `owner` and the clock when it first appeared. */
async function runUntil(sim: ClusterSim, owner: string, untilIso: string, stepMs: number, seen = new Map<string, number>()): Promise<Map<string, number>> {
  const until = Date.parse(untilIso);
  const note = () => { for (const n of jobNames(sim, owner)) if (!seen.has(n)) seen.set(n, sim.clock.now()); };
  while (sim.clock.now() < until) await sim.step(Math.min(stepMs, until - sim.clock.now()), note);
  return seen;
}

/** Creates a CronJob and lets the controllers see it before the clock moves on. */
async function createCronJob(sim: ClusterSim, name: string, spec: Json): Promise<void> {
  await sim.objects.create(R('cronjobs'), 'default', cronJobManifest(name, spec));
  await sim.manager.settle();
}

test('Jobs start at the scheduled minutes across hours, one per time, named and annotated as Kubernetes names them', async () => {
  const sim = await new ClusterSim({ finish: () => 'Succeeded' }).start();
  try {
    await sim.addNode('n1');
    await createCronJob(sim, 'report', { schedule: '*/20 * * * *' });
    // The CronJob is looked at again just after its next time, not polled.
    const result = await cronJobController(sim.deps).reconcile('default/report');
    assert.equal(result, { requeueAfterMs: 20 * MINUTE + NEXT_SCHEDULE_DELTA_MS });

    const seen = await runUntil(sim, 'report', '2026-01-01T02:10:00Z', MINUTE);
    const times = ['00:20', '00:40', '01:00', '01:20', '01:40', '02:00'].map((t) => `2026-01-01T${t}:00Z`);
    assert.equal([...seen.keys()].sort(), times.map((t) => nameFor('report', t)).sort());
    for (const t of times) {
      const at = seen.get(nameFor('report', t))!;
      // Looked at 100 ms after the scheduled time (Kubernetes' padding for clock skew): at the next step.
      assert.ok(at > Date.parse(t) && at <= Date.parse(t) + MINUTE, `the Job for ${t} appeared at ${new Date(at).toISOString()}`);
    }
    const cj = cronJob(sim, 'report');
    const [newest] = jobs(sim, 'report').filter((j) => j.metadata.name === nameFor('report', times[5]!));
    assert.ok(newest, 'the newest Job is kept');
    assert.is(newest!.metadata.annotations?.[ANNOTATION_CRONJOB_SCHEDULED_TIMESTAMP], '2026-01-01T02:00:00Z');
    assert.equal(newest!.metadata.labels, { app: 'report' });
    assert.equal(newest!.metadata.ownerReferences, [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'report', uid: cj.metadata.uid, controller: true, blockOwnerDeletion: true }]);
    // successfulJobsHistoryLimit defaults to 3: the three newest finished Jobs stay.
    assert.equal(jobNames(sim, 'report'), times.slice(3).map((t) => nameFor('report', t)).sort());
    assert.is(cj.status?.lastScheduleTime, '2026-01-01T02:00:00Z');
    assert.ok(cj.status?.lastSuccessfulTime && Date.parse(cj.status.lastSuccessfulTime) >= Date.parse(times[5]!));
    assert.is(cj.status?.active, undefined);
    const seenReasons = new Set(reasons(sim, 'report'));
    for (const r of ['SuccessfulCreate', 'SawCompletedJob', 'SuccessfulDelete']) assert.ok(seenReasons.has(r), `event ${r}`);
  } finally {
    await sim.stop();
  }
});

test('across the spring DST change in the CronJob\'s zone, the skipped 02:30 does not run that day', async () => {
  const sim = new ClusterSim({ finish: () => 'Succeeded' });
  sim.clock.ms = Date.parse('2026-03-27T22:00:00Z');
  await sim.start();
  try {
    await sim.addNode('n1');
    await createCronJob(sim, 'nightly', { schedule: '30 2 * * *', timeZone: 'Europe/Berlin' });
    const seen = await runUntil(sim, 'nightly', '2026-03-30T03:00:00Z', 30 * MINUTE);
    assert.equal([...seen.keys()], [nameFor('nightly', '2026-03-28T01:30:00Z'), nameFor('nightly', '2026-03-30T00:30:00Z')]);
    const stamps = jobs(sim, 'nightly').map((j) => j.metadata.annotations?.[ANNOTATION_CRONJOB_SCHEDULED_TIMESTAMP]).sort();
    assert.equal(stamps, ['2026-03-28T02:30:00+01:00', '2026-03-30T02:30:00+02:00']);
  } finally {
    await sim.stop();
  }
});

test('across the autumn DST change, the repeated 02:30 runs at both instants, as Kubernetes does', async () => {
  const sim = new ClusterSim({ finish: () => 'Succeeded' });
  sim.clock.ms = Date.parse('2026-10-24T12:00:00Z');
  await sim.start();
  try {
    await sim.addNode('n1');
    await createCronJob(sim, 'nightly', { schedule: '30 2 * * *', timeZone: 'Europe/Berlin' });
    const seen = await runUntil(sim, 'nightly', '2026-10-26T03:00:00Z', 30 * MINUTE);
    assert.equal([...seen.keys()], ['2026-10-25T00:30:00Z', '2026-10-25T01:30:00Z', '2026-10-26T01:30:00Z'].map((t) => nameFor('nightly', t)));
    const stamps = jobs(sim, 'nightly').map((j) => j.metadata.annotations?.[ANNOTATION_CRONJOB_SCHEDULED_TIMESTAMP]).sort();
    assert.equal(stamps, ['2026-10-25T02:30:00+01:00', '2026-10-25T02:30:00+02:00', '2026-10-26T02:30:00+01:00']);
  } finally {
    await sim.stop();
  }
});

test('without a timeZone the schedule runs in the controller\'s zone and the Job\'s scheduled timestamp is in UTC', async () => {
  const sim = await new ClusterSim().start();
  try {
    await sim.addNode('n1');
    // Every minute is the same minute in every zone of whole-minute offsets, the controller's included.
    await createCronJob(sim, 'local', { schedule: '* * * * *', timeZone: undefined });
    await runUntil(sim, 'local', '2026-01-01T00:01:30Z', 30_000);
    assert.equal(jobs(sim, 'local').map((j) => j.metadata.annotations?.[ANNOTATION_CRONJOB_SCHEDULED_TIMESTAMP]), ['2026-01-01T00:01:00Z']);
  } finally {
    await sim.stop();
  }
});

test('Allow runs Jobs side by side', async () => {
  const sim = await new ClusterSim().start();
  try {
    await sim.addNode('n1');
    await createCronJob(sim, 'many', { schedule: '* * * * *' });
    await runUntil(sim, 'many', '2026-01-01T00:03:30Z', 30_000);
    assert.is(jobNames(sim, 'many').length, 3);
    assert.equal((cronJob(sim, 'many').status?.active ?? []).map((r) => r.name).sort(), jobNames(sim, 'many'));
  } finally {
    await sim.stop();
  }
});

test('Forbid skips a run while one is active, and starts the missed run once it finishes', async () => {
  let finish = false;
  const sim = await new ClusterSim({ finish: () => (finish ? 'Succeeded' : undefined) }).start();
  try {
    await sim.addNode('n1');
    await createCronJob(sim, 'single', { schedule: '* * * * *', concurrencyPolicy: 'Forbid' });
    await runUntil(sim, 'single', '2026-01-01T00:03:10Z', 20_000);
    assert.equal(jobNames(sim, 'single'), [nameFor('single', '2026-01-01T00:01:00Z')]);
    assert.ok(reasons(sim, 'single').includes('JobAlreadyActive'));
    finish = true;
    // No startingDeadlineSeconds: the most recent missed time (00:03) runs as soon as the active Job is done.
    await runUntil(sim, 'single', '2026-01-01T00:03:50Z', 10_000);
    assert.equal(jobNames(sim, 'single'), [nameFor('single', '2026-01-01T00:01:00Z'), nameFor('single', '2026-01-01T00:03:00Z')]);
  } finally {
    await sim.stop();
  }
});

test('Replace deletes the active Job (and through it its pods) before starting the next', async () => {
  const sim = await new ClusterSim().start();
  try {
    await sim.addNode('n1');
    await createCronJob(sim, 'fresh', { schedule: '* * * * *', concurrencyPolicy: 'Replace' });
    await runUntil(sim, 'fresh', '2026-01-01T00:01:30Z', 30_000);
    const first = nameFor('fresh', '2026-01-01T00:01:00Z');
    assert.equal(jobNames(sim, 'fresh'), [first]);
    await eventually('the first Job\'s pod runs', () => sim.pods().some((p) => p.metadata.labels?.[LABEL_JOB_NAME] === first && p.status?.phase === 'Running'), 5_000);
    await runUntil(sim, 'fresh', '2026-01-01T00:02:30Z', 30_000);
    const second = nameFor('fresh', '2026-01-01T00:02:00Z');
    assert.equal(jobNames(sim, 'fresh'), [second]);
    assert.equal((cronJob(sim, 'fresh').status?.active ?? []).map((r) => r.name), [second]);
    assert.ok(reasons(sim, 'fresh').includes('SuccessfulDelete'));
    const podsOf = (job: string) => sim.pods().filter((p: Pod) => p.metadata.labels?.[LABEL_JOB_NAME] === job);
    await sim.until(() => podsOf(first).length === 0, 10, 1000);
    assert.is(podsOf(second).length, 1);
  } finally {
    await sim.stop();
  }
});

test('suspend stops new runs; resuming starts the most recent missed one only', async () => {
  const sim = await new ClusterSim({ finish: () => 'Succeeded' }).start();
  try {
    await sim.addNode('n1');
    await createCronJob(sim, 'paused', { schedule: '* * * * *', suspend: true });
    await runUntil(sim, 'paused', '2026-01-01T00:05:30Z', 30_000);
    assert.equal(jobNames(sim, 'paused'), []);
    await sim.objects.patch(R('cronjobs'), 'default', 'paused', { spec: { suspend: false } });
    await sim.manager.settle();
    assert.equal(jobNames(sim, 'paused'), [nameFor('paused', '2026-01-01T00:05:00Z')]);
  } finally {
    await sim.stop();
  }
});

test('history limits keep the newest successful and failed Jobs', async () => {
  const sim = await new ClusterSim({
    // Jobs of even minutes succeed, the others fail.
    finish: (p) => (Number((p.metadata.labels?.[LABEL_JOB_NAME] ?? '').split('-').pop()) % 2 === 0 ? 'Succeeded' : 'Failed'),
  }).start();
  try {
    await sim.addNode('n1');
    await createCronJob(sim, 'kept', { schedule: '* * * * *', successfulJobsHistoryLimit: 2, failedJobsHistoryLimit: 1 });
    const seen = await runUntil(sim, 'kept', '2026-01-01T00:06:50Z', 10_000);
    assert.is(seen.size, 6);
    const all = jobs(sim, 'kept');
    assert.equal(all.filter((j) => finished(j, 'Complete')).map((j) => j.metadata.name).sort(), ['00:04', '00:06'].map((t) => nameFor('kept', `2026-01-01T${t}:00Z`)));
    assert.equal(all.filter((j) => finished(j, 'Failed')).map((j) => j.metadata.name), [nameFor('kept', '2026-01-01T00:05:00Z')]);
  } finally {
    await sim.stop();
  }
});

test('after a leader change only the most recent missed time runs, and only within startingDeadlineSeconds', async () => {
  const sim = await new ClusterSim({ finish: () => 'Succeeded' }).start();
  try {
    await sim.addNode('n1');
    await createCronJob(sim, 'late', { schedule: '*/10 * * * *', startingDeadlineSeconds: 120 });
    await runUntil(sim, 'late', '2026-01-01T00:10:30Z', 30_000);
    assert.equal(jobNames(sim, 'late'), [nameFor('late', '2026-01-01T00:10:00Z')]);

    await sim.loseLeader();
    await runUntil(sim, 'late', '2026-01-01T00:51:00Z', 5 * MINUTE);
    sim.newLeader();
    await sim.manager.settle();
    // 00:20, 00:30 and 00:40 are gone for good; 00:50 is 60 s late, within the 120 s deadline.
    assert.equal(jobNames(sim, 'late'), ['00:10', '00:50'].map((t) => nameFor('late', `2026-01-01T${t}:00Z`)));

    await sim.loseLeader();
    await runUntil(sim, 'late', '2026-01-01T01:13:00Z', MINUTE);
    sim.newLeader();
    await sim.manager.settle();
    // 01:10 is 180 s late: past the deadline, it does not run; 01:20 does.
    assert.equal(jobNames(sim, 'late'), ['00:10', '00:50'].map((t) => nameFor('late', `2026-01-01T${t}:00Z`)));
    await runUntil(sim, 'late', '2026-01-01T01:20:30Z', 30_000);
    assert.equal(jobNames(sim, 'late'), ['00:10', '00:50', '01:20'].map((t) => nameFor('late', `2026-01-01T${t}:00Z`)));
  } finally {
    await sim.stop();
  }
});

test('more than 100 missed times warn TooManyMissedTimes and still start the most recent one', async () => {
  const sim = await new ClusterSim({ finish: () => 'Succeeded' }).start();
  try {
    await sim.addNode('n1');
    await sim.loseLeader();
    await sim.objects.create(R('cronjobs'), 'default', cronJobManifest('asleep', { schedule: '* * * * *' }));
    await runUntil(sim, 'asleep', '2026-01-01T03:00:30Z', 30 * MINUTE);
    sim.newLeader();
    await sim.manager.settle();
    assert.equal(jobNames(sim, 'asleep'), [nameFor('asleep', '2026-01-01T03:00:00Z')]);
    assert.ok(reasons(sim, 'asleep').includes('TooManyMissedTimes'));
  } finally {
    await sim.stop();
  }
});

test('after a long gap an irregular schedule still finds its most recent time', async () => {
  const sim = await new ClusterSim({ finish: () => 'Succeeded' }).start();
  try {
    await sim.addNode('n1');
    await sim.loseLeader();
    // Weekdays at 06:30, 10:30 and 14:30; the gap ends on Tuesday 2026-01-13 at 12:00, after 26 of them.
    await sim.objects.create(R('cronjobs'), 'default', cronJobManifest('shifts', { schedule: '30 6-16/4 * * 1-5' }));
    await runUntil(sim, 'shifts', '2026-01-13T12:00:00Z', 6 * 60 * MINUTE);
    sim.newLeader();
    await sim.manager.settle();
    assert.equal(jobNames(sim, 'shifts'), [nameFor('shifts', '2026-01-13T10:30:00Z')]);
    assert.not.ok(reasons(sim, 'shifts').includes('TooManyMissedTimes'));
  } finally {
    await sim.stop();
  }
});

test('deleting a CronJob deletes its Jobs and their pods', async () => {
  const sim = await new ClusterSim().start();
  try {
    await sim.addNode('n1');
    await createCronJob(sim, 'gone', { schedule: '* * * * *' });
    await runUntil(sim, 'gone', '2026-01-01T00:02:30Z', 30_000);
    assert.is(jobNames(sim, 'gone').length, 2);
    await sim.objects.delete(R('cronjobs'), 'default', 'gone');
    await sim.until(() => jobNames(sim, 'gone').length === 0 && sim.pods().length === 0, 10);
  } finally {
    await sim.stop();
  }
});

test('a leader lost between creating the Job and writing the status: the next leader adopts the Job instead of running it twice', async () => {
  const sim = await new ClusterSim().start();
  const replaceStatus = sim.objects.replaceStatus.bind(sim.objects);
  try {
    await sim.addNode('n1');
    await createCronJob(sim, 'once', { schedule: '*/5 * * * *' });
    let lost: Promise<void> | undefined;
    sim.objects.replaceStatus = (async (r: Parameters<typeof replaceStatus>[0], ...rest: unknown[]) => {
      if (r.kind === 'CronJob' && lost === undefined) {
        // The leader dies right here: the Job exists, the CronJob's status does not say so.
        lost = sim.loseLeader();
        throw new Error('leadership lost');
      }
      return (replaceStatus as (...a: unknown[]) => unknown)(r, ...rest);
    }) as typeof sim.objects.replaceStatus;
    await runUntil(sim, 'once', '2026-01-01T00:05:30Z', 30_000);
    assert.ok(lost, 'the status write was attempted');
    await lost;
    sim.objects.replaceStatus = replaceStatus;
    const scheduled = nameFor('once', '2026-01-01T00:05:00Z');
    assert.equal(jobNames(sim, 'once'), [scheduled]);
    assert.is(cronJob(sim, 'once').status?.lastScheduleTime, undefined);

    sim.newLeader();
    await sim.manager.settle();
    assert.equal(jobNames(sim, 'once'), [scheduled], 'no second Job for 00:05');
    const status = cronJob(sim, 'once').status;
    assert.equal(status?.active?.map((r) => [r.name, r.uid]), [[scheduled, jobs(sim, 'once')[0]!.metadata.uid]]);
    assert.is(status?.lastScheduleTime, '2026-01-01T00:05:00Z');
    assert.ok(reasons(sim, 'once').includes('UnexpectedJob'));

    await runUntil(sim, 'once', '2026-01-01T00:10:30Z', 30_000);
    assert.equal(jobNames(sim, 'once'), [scheduled, nameFor('once', '2026-01-01T00:10:00Z')]);
  } finally {
    sim.objects.replaceStatus = replaceStatus;
    await sim.stop();
  }
});

test.run();
