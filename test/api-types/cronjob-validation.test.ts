import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { applyDefaults, validateObject, type CronJob } from '../../api-types/index.js';

type Json = Record<string, unknown>;

const cronJob = (spec: Json = {}, name = 'report'): Json => ({
  apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name },
  spec: {
    schedule: '*/5 * * * *',
    jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'run', image: 'busybox:1.36' }] } } } },
    ...spec,
  },
});

const issuesOf = (o: Json) => {
  const r = validateObject(o);
  return r.ok ? [] : r.issues;
};

// [what, spec changes, the issues Kubernetes reports, in its words]
const refused: [string, Json, { path: string; message: string }[]][] = [
  ['a minute out of range', { schedule: '61 * * * *' }, [{ path: 'spec.schedule', message: 'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61' }]],
  ['six fields', { schedule: '0 0 * * * *' }, [{ path: 'spec.schedule', message: 'Invalid value: "0 0 * * * *": expected exactly 5 fields, found 6: [0 0 * * * *]' }]],
  ['an empty schedule', { schedule: '' }, [{ path: 'spec.schedule', message: 'Required value' }]],
  ['CRON_TZ in the schedule', { schedule: 'CRON_TZ=UTC * * * * *' }, [{ path: 'spec.schedule', message: 'Invalid value: "CRON_TZ=UTC * * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead' }]],
  ['TZ with an unknown zone in the schedule', { schedule: 'TZ=Mars/Olympus 0 * * * *' }, [
    { path: 'spec.schedule', message: 'Invalid value: "TZ=Mars/Olympus 0 * * * *": provided bad location Mars/Olympus: unknown time zone Mars/Olympus' },
    { path: 'spec.schedule', message: 'Invalid value: "TZ=Mars/Olympus 0 * * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead' },
  ]],
  ['an unknown time zone', { timeZone: 'Europe/Pariss' }, [{ path: 'spec.timeZone', message: 'Invalid value: "Europe/Pariss": unknown time zone Europe/Pariss' }]],
  ['a time zone in the wrong case', { timeZone: 'europe/berlin' }, [{ path: 'spec.timeZone', message: 'Invalid value: "europe/berlin": unknown time zone europe/berlin' }]],
  ['a path for a time zone', { timeZone: '../etc/passwd' }, [{ path: 'spec.timeZone', message: 'Invalid value: "../etc/passwd": unknown time zone ../etc/passwd' }]],
  ['the Local time zone', { timeZone: 'Local' }, [{ path: 'spec.timeZone', message: 'Invalid value: "Local": timeZone must be an explicit time zone as defined in https://www.iana.org/time-zones' }]],
  ['an empty time zone', { timeZone: '' }, [{ path: 'spec.timeZone', message: 'Invalid value: "": timeZone must be nil or non-empty string' }]],
  ['an unknown concurrency policy', { concurrencyPolicy: 'Sometimes' }, [{ path: 'spec.concurrencyPolicy', message: 'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"' }]],
  ['a negative starting deadline', { startingDeadlineSeconds: -1 }, [{ path: 'spec.startingDeadlineSeconds', message: 'must be greater than or equal to 0' }]],
  ['a negative history limit', { failedJobsHistoryLimit: -1 }, [{ path: 'spec.failedJobsHistoryLimit', message: 'must be greater than or equal to 0' }]],
  ['a job template selector', { jobTemplate: { spec: { selector: { matchLabels: { a: 'b' } }, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'run', image: 'busybox:1.36' }] } } } } },
    [{ path: 'spec.jobTemplate.spec.selector', message: 'Invalid value: `selector` will be auto-generated' }]],
  ['a manual selector', { jobTemplate: { spec: { manualSelector: true, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'run', image: 'busybox:1.36' }] } } } } },
    [{ path: 'spec.jobTemplate.spec.manualSelector', message: 'Unsupported value: true: supported values: "nil", "false"' }]],
  ['pods that restart Always', { jobTemplate: { spec: { template: { spec: { containers: [{ name: 'run', image: 'busybox:1.36' }] } } } } },
    [{ path: 'spec.jobTemplate.spec.template.spec.restartPolicy', message: 'must be OnFailure or Never for a Job (got Always)' }]],
  ['an unknown field in the job template', { jobTemplate: { spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'run', image: 'busybox:1.36' }] } }, retries: 3 } } },
    [{ path: 'spec.jobTemplate.spec.retries', message: 'unknown field "retries"' }]],
];

for (const [what, spec, issues] of refused) {
  test(`a CronJob with ${what} is refused`, () => {
    assert.equal(issuesOf(cronJob(spec)), issues);
  });
}

test('a CronJob name is at most 52 characters: its Jobs add an 11-character suffix', () => {
  assert.equal(issuesOf(cronJob({}, 'a'.repeat(52))), []);
  assert.equal(issuesOf(cronJob({}, 'a'.repeat(53))), [{ path: 'metadata.name', message: `Invalid value: "${'a'.repeat(53)}": must be no more than 52 characters` }]);
});

test('macros, @every, names and time zones are accepted', () => {
  for (const schedule of ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly', '@every 5m', '0 9 * JAN-MAR mon-fri', '0 0 ? * *']) {
    assert.equal(issuesOf(cronJob({ schedule })), [], schedule);
  }
  for (const timeZone of ['UTC', 'Etc/UTC', 'Europe/Berlin', 'America/Argentina/Buenos_Aires', 'Asia/Kathmandu']) {
    assert.equal(issuesOf(cronJob({ timeZone })), [], timeZone);
  }
});

test('CronJob defaults are Kubernetes\': Allow, not suspended, 3 successful and 1 failed Job kept; the job spec is left alone', () => {
  const r = validateObject(cronJob());
  if (!r.ok) return assert.unreachable(JSON.stringify(r.issues));
  const spec = (applyDefaults(r.object) as CronJob).spec;
  assert.is(spec.concurrencyPolicy, 'Allow');
  assert.is(spec.suspend, false);
  assert.is(spec.successfulJobsHistoryLimit, 3);
  assert.is(spec.failedJobsHistoryLimit, 1);
  assert.is(spec.startingDeadlineSeconds, undefined);
  assert.is(spec.jobTemplate.spec.backoffLimit, undefined);
  assert.is(spec.jobTemplate.spec.template.spec.terminationGracePeriodSeconds, 30);
  assert.is(spec.jobTemplate.spec.template.spec.restartPolicy, 'Never');
});

test.run();
