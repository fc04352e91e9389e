import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { LOCAL_TIME_ZONE, formatRfc1123z, formatRfc3339, loadTimeZone, nextCronTime, parseCronSchedule } from '../../api-types/index.js';

/** The next `n` times the schedule fires after `from`, in UTC ISO form. */
function runs(spec: string, zone: string, from: string, n: number): string[] {
  const schedule = parseCronSchedule(spec);
  const out: string[] = [];
  let t = Date.parse(from);
  for (let i = 0; i < n; i++) {
    const next = nextCronTime(schedule, t, zone);
    if (next === undefined) break;
    out.push(new Date(next).toISOString().replace('.000Z', 'Z'));
    t = next;
  }
  return out;
}

// [schedule, zone, after, the next runs (UTC)]; 2026-01-01 is a Thursday.
const cases: [string, string, string, string[]][] = [
  ['*/15 * * * *', 'UTC', '2026-01-01T00:00:00Z', ['2026-01-01T00:15:00Z', '2026-01-01T00:30:00Z', '2026-01-01T00:45:00Z', '2026-01-01T01:00:00Z']],
  ['*/15 * * * *', 'UTC', '2026-01-01T00:14:59.999Z', ['2026-01-01T00:15:00Z']],
  ['0 * * * *', 'UTC', '2026-01-01T10:30:00Z', ['2026-01-01T11:00:00Z', '2026-01-01T12:00:00Z']],
  ['5,10-12 3 * * *', 'UTC', '2026-01-01T00:00:00Z', ['2026-01-01T03:05:00Z', '2026-01-01T03:10:00Z', '2026-01-01T03:11:00Z', '2026-01-01T03:12:00Z', '2026-01-02T03:05:00Z']],
  ['10-40/15 * * * *', 'UTC', '2026-01-01T00:00:00Z', ['2026-01-01T00:10:00Z', '2026-01-01T00:25:00Z', '2026-01-01T00:40:00Z', '2026-01-01T01:10:00Z']],
  ['50/5 * * * *', 'UTC', '2026-01-01T00:00:00Z', ['2026-01-01T00:50:00Z', '2026-01-01T00:55:00Z', '2026-01-01T01:50:00Z']],
  ['30 8 * * MON-FRI', 'UTC', '2026-01-02T09:00:00Z', ['2026-01-05T08:30:00Z', '2026-01-06T08:30:00Z']],
  // Day of month OR day of week when neither is *: Fridays and the 13th.
  ['0 0 13 * FRI', 'UTC', '2026-01-01T00:00:00Z', ['2026-01-02T00:00:00Z', '2026-01-09T00:00:00Z', '2026-01-13T00:00:00Z', '2026-01-16T00:00:00Z']],
  // A step over 1 is not a *: odd days OR Mondays.
  ['0 0 */2 * 1', 'UTC', '2026-01-11T00:00:00Z', ['2026-01-12T00:00:00Z', '2026-01-13T00:00:00Z', '2026-01-15T00:00:00Z']],
  // With * (or ?) in day of month, the day of week alone decides.
  ['0 0 * * 0', 'UTC', '2026-01-01T00:00:00Z', ['2026-01-04T00:00:00Z', '2026-01-11T00:00:00Z']],
  ['0 0 ? * sun', 'UTC', '2026-01-01T00:00:00Z', ['2026-01-04T00:00:00Z', '2026-01-11T00:00:00Z']],
  ['0 0 1-7 * SAT', 'UTC', '2026-01-05T12:00:00Z', ['2026-01-06T00:00:00Z', '2026-01-07T00:00:00Z', '2026-01-10T00:00:00Z', '2026-01-17T00:00:00Z']],
  ['0 12 1 jan,Jul *', 'UTC', '2026-01-01T12:00:00Z', ['2026-07-01T12:00:00Z', '2027-01-01T12:00:00Z']],
  ['0 0 31 * *', 'UTC', '2026-01-31T00:00:00Z', ['2026-03-31T00:00:00Z', '2026-05-31T00:00:00Z']],
  ['0 0 29 2 *', 'UTC', '2026-01-01T00:00:00Z', ['2028-02-29T00:00:00Z', '2032-02-29T00:00:00Z']],
  ['59 23 31 12 *', 'UTC', '2026-06-01T00:00:00Z', ['2026-12-31T23:59:00Z', '2027-12-31T23:59:00Z']],
  ['@yearly', 'UTC', '2026-03-01T00:00:00Z', ['2027-01-01T00:00:00Z']],
  ['@annually', 'UTC', '2026-03-01T00:00:00Z', ['2027-01-01T00:00:00Z']],
  ['@monthly', 'UTC', '2026-01-31T12:00:00Z', ['2026-02-01T00:00:00Z', '2026-03-01T00:00:00Z']],
  ['@weekly', 'UTC', '2026-01-01T00:00:00Z', ['2026-01-04T00:00:00Z', '2026-01-11T00:00:00Z']],
  ['@daily', 'UTC', '2026-01-01T00:00:00Z', ['2026-01-02T00:00:00Z']],
  ['@midnight', 'UTC', '2026-01-01T23:59:59Z', ['2026-01-02T00:00:00Z']],
  ['@hourly', 'UTC', '2026-01-01T10:59:59Z', ['2026-01-01T11:00:00Z', '2026-01-01T12:00:00Z']],
  // A fixed delay from the given time, cut to whole seconds.
  ['@every 90s', 'UTC', '2026-01-01T00:00:00.500Z', ['2026-01-01T00:01:30Z', '2026-01-01T00:03:00Z']],
  ['@every 1h30m', 'UTC', '2026-01-01T00:00:00Z', ['2026-01-01T01:30:00Z']],
  ['@every 100ms', 'UTC', '2026-01-01T00:00:00Z', ['2026-01-01T00:00:01Z']],
  // Time zones: wall clocks in the zone.
  ['0 9 * * *', 'America/New_York', '2026-01-01T00:00:00Z', ['2026-01-01T14:00:00Z', '2026-01-02T14:00:00Z']],
  ['0 9 * * *', 'America/New_York', '2026-03-07T15:00:00Z', ['2026-03-08T13:00:00Z', '2026-03-09T13:00:00Z']],
  ['0 0 * * *', 'Asia/Kathmandu', '2026-01-01T00:00:00Z', ['2026-01-01T18:15:00Z']],
  ['TZ=America/New_York 0 9 * * *', 'UTC', '2026-01-01T00:00:00Z', ['2026-01-01T14:00:00Z']],
  // Clocks forward in Berlin (02:00 CET -> 03:00 CEST on 2026-03-29): 02:30 does not happen that day.
  ['30 2 * * *', 'Europe/Berlin', '2026-03-28T00:00:00Z', ['2026-03-28T01:30:00Z', '2026-03-30T00:30:00Z']],
  ['0 * * * *', 'Europe/Berlin', '2026-03-28T23:30:00Z', ['2026-03-29T00:00:00Z', '2026-03-29T01:00:00Z', '2026-03-29T02:00:00Z']],
  // Clocks back (03:00 CEST -> 02:00 CET on 2026-10-25): 02:30 happens twice, and fires twice.
  ['30 2 * * *', 'Europe/Berlin', '2026-10-24T12:00:00Z', ['2026-10-25T00:30:00Z', '2026-10-25T01:30:00Z', '2026-10-26T01:30:00Z']],
  ['30 1 * * *', 'America/New_York', '2026-10-31T12:00:00Z', ['2026-11-01T05:30:00Z', '2026-11-01T06:30:00Z', '2026-11-02T06:30:00Z']],
  ['30 2 * * *', 'America/New_York', '2026-03-07T12:00:00Z', ['2026-03-09T06:30:00Z']],
];

for (const [spec, zone, from, want] of cases) {
  test(`"${spec}" in ${zone} after ${from}`, () => {
    assert.equal(runs(spec, zone, from, want.length), want);
  });
}

test('a schedule that never fires (February 30th) has no next time', () => {
  assert.is(nextCronTime(parseCronSchedule('0 0 30 2 *'), Date.parse('2026-01-01T00:00:00Z'), 'UTC'), undefined);
});

test('without a zone the schedule runs in the process\'s zone', () => {
  const s = parseCronSchedule('17 5 * * *');
  const t = Date.parse('2026-05-01T00:00:00Z');
  assert.is(nextCronTime(s, t), nextCronTime(s, t, LOCAL_TIME_ZONE));
});

// [schedule, robfig/cron's error]
const refused: [string, string][] = [
  ['', 'empty spec string'],
  ['* * * *', 'expected exactly 5 fields, found 4: [* * * *]'],
  ['0 * * * * *', 'expected exactly 5 fields, found 6: [0 * * * * *]'],
  ['61 * * * *', 'end of range (61) above maximum (59): 61'],
  ['* 24 * * *', 'end of range (24) above maximum (23): 24'],
  ['* * 0 * *', 'beginning of range (0) below minimum (1): 0'],
  ['* * * 13 *', 'end of range (13) above maximum (12): 13'],
  ['* * * * 7', 'end of range (7) above maximum (6): 7'],
  ['5-1 * * * *', 'beginning of range (5) beyond end of range (1): 5-1'],
  ['*/0 * * * *', 'step of range should be a positive number: */0'],
  ['*/-1 * * * *', 'negative number (-1) not allowed: -1'],
  ['a * * * *', 'failed to parse int from a: strconv.Atoi: parsing "a": invalid syntax'],
  ['* * * JANUARY *', 'failed to parse int from JANUARY: strconv.Atoi: parsing "JANUARY": invalid syntax'],
  ['1-2-3 * * * *', 'too many hyphens: 1-2-3'],
  ['1/2/3 * * * *', 'too many slashes: 1/2/3'],
  ['@fortnightly', 'unrecognized descriptor: @fortnightly'],
  ['@every 1d', 'failed to parse duration @every 1d: time: unknown unit "d" in duration "1d"'],
  ['@every 5', 'failed to parse duration @every 5: time: missing unit in duration "5"'],
  ['TZ=Mars/Olympus 0 * * * *', 'provided bad location Mars/Olympus: unknown time zone Mars/Olympus'],
];

for (const [spec, message] of refused) {
  test(`"${spec}" is refused: ${message}`, () => {
    assert.throws(() => parseCronSchedule(spec), (e: Error) => e.message === message);
  });
}

test('time zones load as Go loads them: exact names, UTC and Local', () => {
  assert.is(loadTimeZone('Europe/Berlin'), 'Europe/Berlin');
  assert.is(loadTimeZone('UTC'), 'UTC');
  assert.is(loadTimeZone(''), 'UTC');
  assert.is(loadTimeZone('Local'), LOCAL_TIME_ZONE);
  for (const bad of ['europe/berlin', 'Europe/Pariss', 'utc']) {
    assert.throws(() => loadTimeZone(bad), (e: Error) => e.message === `unknown time zone ${bad}`, bad);
  }
});

test('times print as Go prints RFC 3339 in a zone and RFC 1123Z', () => {
  const t = Date.parse('2026-03-29T01:00:00Z');
  assert.is(formatRfc3339(t, 'Europe/Berlin'), '2026-03-29T03:00:00+02:00');
  assert.is(formatRfc3339(t, 'America/St_Johns'), '2026-03-28T22:30:00-02:30');
  assert.is(formatRfc3339(t, 'UTC'), '2026-03-29T01:00:00Z');
  assert.is(formatRfc1123z(t), 'Sun, 29 Mar 2026 01:00:00 +0000');
});

test.run();
