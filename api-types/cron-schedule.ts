// CronJob schedules, read and stepped exactly as Kubernetes does it (robfig/cron v3's ParseStandard and
// SpecSchedule.Next, which the CronJob controller and the API's validation call): five fields (minute, hour,
// day of month, month, day of week) of lists, ranges, steps, `*`/`?` and JAN..DEC / SUN..SAT names, the
// @yearly/@annually/@monthly/@weekly/@daily/@midnight/@hourly macros and `@every DURATION`. Error messages are
// robfig's words, so a refused schedule reads as it would from kube-apiserver.
//
// Time zones come from Intl (the IANA database Node ships), with Go's time.Date arithmetic on wall clocks, so DST
// changes behave as they do in Kubernetes: a wall time the clocks skip does not fire that day (02:30 in Berlin
// on the night the clocks go forward), and a wall time they repeat fires at both instants (02:30 CEST and
// 02:30 CET on the night they go back; the two Jobs differ in name, the minute since the epoch).

/** Why a schedule does not parse: robfig/cron's message. */
export class CronScheduleError extends Error {}

/** The values a field allows, indexed by value; `star`: written as `*` or `?` (without a step over 1), which decides day matching. */
export interface CronField {
  readonly allowed: readonly boolean[];
  readonly star: boolean;
}

export type CronSchedule =
  | {
    readonly kind: 'spec';
    readonly minute: CronField;
    readonly hour: CronField;
    readonly dayOfMonth: CronField;
    readonly month: CronField;
    readonly dayOfWeek: CronField;
    /** Zone from a TZ=/CRON_TZ= prefix; undefined: the zone the caller runs the schedule in. */
    readonly timeZone?: string;
  }
  /** `@every DURATION`: a fixed delay from the previous time, whole seconds, at least one. */
  | { readonly kind: 'every'; readonly delayMs: number };

interface Bounds { min: number; max: number; names?: Readonly<Record<string, number>> }

const MINUTES: Bounds = { min: 0, max: 59 };
const HOURS: Bounds = { min: 0, max: 23 };
const DAYS_OF_MONTH: Bounds = { min: 1, max: 31 };
const MONTHS: Bounds = { min: 1, max: 12, names: { jan: 1, feb: 2, mar: 3, apr: 4, may: 5, jun: 6, jul: 7, aug: 8, sep: 9, oct: 10, nov: 11, dec: 12 } };
const DAYS_OF_WEEK: Bounds = { min: 0, max: 6, names: { sun: 0, mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6 } };

function field(b: Bounds, values: readonly number[], star: boolean): CronField {
  const allowed = Array.from({ length: b.max + 1 }, () => false);
  for (const v of values) allowed[v] = true;
  return { allowed, star };
}
const only = (b: Bounds, v: number): CronField => field(b, [v], false);
const every = (b: Bounds): CronField => field(b, Array.from({ length: b.max - b.min + 1 }, (_, i) => b.min + i), true);

/** The macros, as robfig spells them out. */
const MACROS: Readonly<Record<string, () => CronSchedule>> = {
  '@yearly': () => ({ kind: 'spec', minute: only(MINUTES, 0), hour: only(HOURS, 0), dayOfMonth: only(DAYS_OF_MONTH, 1), month: only(MONTHS, 1), dayOfWeek: every(DAYS_OF_WEEK) }),
  '@monthly': () => ({ kind: 'spec', minute: only(MINUTES, 0), hour: only(HOURS, 0), dayOfMonth: only(DAYS_OF_MONTH, 1), month: every(MONTHS), dayOfWeek: every(DAYS_OF_WEEK) }),
  '@weekly': () => ({ kind: 'spec', minute: only(MINUTES, 0), hour: only(HOURS, 0), dayOfMonth: every(DAYS_OF_MONTH), month: every(MONTHS), dayOfWeek: only(DAYS_OF_WEEK, 0) }),
  '@daily': () => ({ kind: 'spec', minute: only(MINUTES, 0), hour: only(HOURS, 0), dayOfMonth: every(DAYS_OF_MONTH), month: every(MONTHS), dayOfWeek: every(DAYS_OF_WEEK) }),
  '@hourly': () => ({ kind: 'spec', minute: only(MINUTES, 0), hour: every(HOURS), dayOfMonth: every(DAYS_OF_MONTH), month: every(MONTHS), dayOfWeek: every(DAYS_OF_WEEK) }),
};
const MACRO_ALIASES: Readonly<Record<string, string>> = { '@annually': '@yearly', '@midnight': '@daily' };

/**
 * Parses a schedule as robfig/cron v3's ParseStandard; throws CronScheduleError with robfig's message. A
 * TZ=ZONE or CRON_TZ=ZONE prefix is read as robfig reads it (Kubernetes' validation refuses it separately).
 */
export function parseCronSchedule(spec: string): CronSchedule {
  if (spec.length === 0) throw new CronScheduleError('empty spec string');
  let timeZone: string | undefined;
  if (spec.startsWith('TZ=') || spec.startsWith('CRON_TZ=')) {
    const space = spec.indexOf(' ');
    if (space < 0) throw new CronScheduleError(`invalid timezone specification: ${spec}`);
    const name = spec.slice(spec.indexOf('=') + 1, space);
    try {
      timeZone = loadTimeZone(name);
    } catch (e) {
      throw new CronScheduleError(`provided bad location ${name}: ${(e as Error).message}`);
    }
    spec = spec.slice(space).trim();
  }
  if (spec.startsWith('@')) {
    const macro = MACROS[MACRO_ALIASES[spec] ?? spec];
    if (macro) return { ...macro(), ...(timeZone !== undefined ? { timeZone } : {}) } as CronSchedule;
    if (spec.startsWith('@every ')) return { kind: 'every', delayMs: everyDelayMs(spec) };
    throw new CronScheduleError(`unrecognized descriptor: ${spec}`);
  }
  const fields = spec.trim() === '' ? [] : spec.trim().split(/\s+/);
  if (fields.length !== 5) throw new CronScheduleError(`expected exactly 5 fields, found ${fields.length}: [${fields.join(' ')}]`);
  const [minute, hour, dayOfMonth, month, dayOfWeek] = fields as [string, string, string, string, string];
  return {
    kind: 'spec',
    minute: parseField(minute, MINUTES),
    hour: parseField(hour, HOURS),
    dayOfMonth: parseField(dayOfMonth, DAYS_OF_MONTH),
    month: parseField(month, MONTHS),
    dayOfWeek: parseField(dayOfWeek, DAYS_OF_WEEK),
    ...(timeZone !== undefined ? { timeZone } : {}),
  };
}

/** A comma-separated list of ranges (empty items are skipped, as Go's FieldsFunc does). */
function parseField(text: string, b: Bounds): CronField {
  const allowed = Array.from({ length: b.max + 1 }, () => false);
  let star = false;
  for (const expr of text.split(',').filter((e) => e !== '')) {
    const r = parseRange(expr, b);
    for (let v = r.start; v <= r.end; v += r.step) allowed[v] = true;
    star ||= r.star;
  }
  return { allowed, star };
}

/** number | name | `*` | `?`, optionally `-END`, optionally `/STEP` ("N/STEP" runs from N to the maximum). */
function parseRange(expr: string, b: Bounds): { start: number; end: number; step: number; star: boolean } {
  const rangeAndStep = expr.split('/');
  const lowAndHigh = rangeAndStep[0]!.split('-');
  let start: number;
  let end: number;
  let star = false;
  if (lowAndHigh[0] === '*' || lowAndHigh[0] === '?') {
    start = b.min;
    end = b.max;
    star = true;
  } else {
    start = parseIntOrName(lowAndHigh[0]!, b.names);
    if (lowAndHigh.length === 1) end = start;
    else if (lowAndHigh.length === 2) end = parseIntOrName(lowAndHigh[1]!, b.names);
    else throw new CronScheduleError(`too many hyphens: ${expr}`);
  }
  let step = 1;
  if (rangeAndStep.length === 2) {
    step = parseNonNegativeInt(rangeAndStep[1]!);
    if (lowAndHigh.length === 1) end = b.max;
    if (step > 1) star = false;
  } else if (rangeAndStep.length > 2) {
    throw new CronScheduleError(`too many slashes: ${expr}`);
  }
  if (start < b.min) throw new CronScheduleError(`beginning of range (${start}) below minimum (${b.min}): ${expr}`);
  if (end > b.max) throw new CronScheduleError(`end of range (${end}) above maximum (${b.max}): ${expr}`);
  if (start > end) throw new CronScheduleError(`beginning of range (${start}) beyond end of range (${end}): ${expr}`);
  if (step === 0) throw new CronScheduleError(`step of range should be a positive number: ${expr}`);
  return { start, end, step, star };
}

function parseIntOrName(expr: string, names: Bounds['names']): number {
  const named = names?.[expr.toLowerCase()];
  return named ?? parseNonNegativeInt(expr);
}

/** Go's strconv.Atoi, refusing negative numbers, with robfig's messages. */
function parseNonNegativeInt(expr: string): number {
  if (!/^[+-]?\d+$/.test(expr)) throw new CronScheduleError(`failed to parse int from ${expr}: strconv.Atoi: parsing ${JSON.stringify(expr)}: invalid syntax`);
  const n = BigInt(expr);
  if (n > 2n ** 63n - 1n || n < -(2n ** 63n)) throw new CronScheduleError(`failed to parse int from ${expr}: strconv.Atoi: parsing ${JSON.stringify(expr)}: value out of range`);
  if (n < 0n) throw new CronScheduleError(`negative number (${n}) not allowed: ${expr}`);
  return Number(n);
}

const DURATION_UNITS_MS: Readonly<Record<string, number>> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, 'μs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * A Go duration (time.ParseDuration: "90s", "1h30m", "1.5h", "-2m", "0") in milliseconds, fractions of a
 * millisecond kept; throws an Error worded as Go's ("time: invalid duration \"x\"").
 */
export function parseGoDuration(text: string): number {
  const fail = (why: string): never => { throw new Error(`time: ${why}`); };
  let rest = text.replace(/^[-+]/, '');
  const negative = text.startsWith('-');
  if (rest === '0') return 0;
  if (rest === '') fail(`invalid duration ${JSON.stringify(text)}`);
  let ms = 0;
  while (rest !== '') {
    const m = /^(\d*)(?:\.(\d*))?/.exec(rest)!;
    if (m[0] === '' || m[0] === '.') fail(`invalid duration ${JSON.stringify(text)}`);
    rest = rest.slice(m[0].length);
    const unit = /^[^\d.]*/.exec(rest)![0];
    if (unit === '') fail(`missing unit in duration ${JSON.stringify(text)}`);
    const scale = DURATION_UNITS_MS[unit];
    if (scale === undefined) fail(`unknown unit ${JSON.stringify(unit)} in duration ${JSON.stringify(text)}`);
    rest = rest.slice(unit.length);
    ms += Number(`${m[1] || '0'}.${m[2] ?? ''}0`) * scale!;
  }
  return negative ? -ms : ms;
}

/** `@every D` with D a Go duration: the delay, cut to whole seconds and at least one (robfig's Every). */
function everyDelayMs(spec: string): number {
  let ms: number;
  try {
    ms = parseGoDuration(spec.slice('@every '.length));
  } catch (err) {
    throw new CronScheduleError(`failed to parse duration ${spec}: ${(err as Error).message}`);
  }
  return Math.max(1000, Math.floor(ms / 1000) * 1000);
}

// ---- time zones ------------------------------------------------------------------------------------------

/** The zone this process runs in (Kubernetes reads schedules without a timeZone in the controller manager's zone). */
export const LOCAL_TIME_ZONE: string = Intl.DateTimeFormat().resolvedOptions().timeZone;

/**
 * Go's time.LoadLocation over the zones Intl knows: "" and "UTC" are UTC, "Local" is this process's zone, any
 * other name must be a zone Intl knows, spelled exactly (Go looks zones up as case-sensitive file names).
 * Returns the zone's name; throws Error("unknown time zone NAME") as Go does.
 */
export function loadTimeZone(name: string): string {
  if (name === '' || name === 'UTC') return 'UTC';
  if (name === 'Local') return LOCAL_TIME_ZONE;
  let resolved: string;
  try {
    resolved = formatterOf(name).resolvedOptions().timeZone;
  } catch {
    throw new Error(`unknown time zone ${name}`);
  }
  if (resolved !== name && resolved.toLowerCase() === name.toLowerCase()) throw new Error(`unknown time zone ${name}`);
  return name;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterOf(zone: string): Intl.DateTimeFormat {
  let f = formatters.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
    formatters.set(zone, f);
  }
  return f;
}

/**
 * Offsets are looked up per UTC day and kept (a bounded number of days per zone) when the day starts and ends
 * on the same offset, which holds for every day but those with a DST change (no zone changes twice in a day).
 */
const OFFSET_BUCKET_MS = 86_400_000;
const OFFSET_CACHE_SIZE = 4096;
const offsetCaches = new Map<string, Map<number, number>>();

/** The zone's offset from UTC at instant `ms`, in milliseconds (east positive). */
function zoneOffsetMs(zone: string, ms: number): number {
  if (zone === 'UTC') return 0;
  let cache = offsetCaches.get(zone);
  if (!cache) offsetCaches.set(zone, cache = new Map());
  const bucket = Math.floor(ms / OFFSET_BUCKET_MS);
  const known = cache.get(bucket);
  if (known !== undefined) return known;
  const first = intlOffsetMs(zone, bucket * OFFSET_BUCKET_MS);
  // A day with a transition is not kept: its instants are looked up one by one.
  if (first !== intlOffsetMs(zone, (bucket + 1) * OFFSET_BUCKET_MS - 1000)) return intlOffsetMs(zone, ms);
  if (cache.size >= OFFSET_CACHE_SIZE) cache.clear();
  cache.set(bucket, first);
  return first;
}

function intlOffsetMs(zone: string, ms: number): number {
  const parts: Record<string, number> = {};
  for (const p of formatterOf(zone).formatToParts(new Date(ms))) if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const local = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
  return local - Math.floor(ms / 1000) * 1000;
}

/** `ms` as RFC 3339 in `zone` (Go's Format(time.RFC3339)): 2026-03-29T03:00:00+02:00, or ...Z at offset zero. */
export function formatRfc3339(ms: number, zone: string): string {
  const offset = zoneOffsetMs(zone, ms);
  const local = new Date(Math.floor(ms / 1000) * 1000 + offset).toISOString().slice(0, 19);
  if (offset === 0) return `${local}Z`;
  const minutes = Math.abs(offset) / 60_000;
  return `${local}${offset < 0 ? '-' : '+'}${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;
}

/** `ms` as Go's time.RFC1123Z in UTC, as Kubernetes prints scheduled times in events and describe: Mon, 02 Jan 2006 15:04:05 +0000. */
export function formatRfc1123z(ms: number): string {
  return new Date(ms).toUTCString().replace(/GMT$/, '+0000');
}

/** A moment and its wall-clock reading in one zone, with the arithmetic of Go's time.Time that robfig's Next uses. */
class ZonedTime {
  readonly year: number;
  readonly month: number;
  readonly day: number;
  readonly hour: number;
  readonly minute: number;
  readonly second: number;
  readonly weekday: number;

  constructor(readonly zone: string, readonly ms: number) {
    const d = new Date(ms + zoneOffsetMs(zone, ms));
    this.year = d.getUTCFullYear();
    this.month = d.getUTCMonth() + 1;
    this.day = d.getUTCDate();
    this.hour = d.getUTCHours();
    this.minute = d.getUTCMinutes();
    this.second = d.getUTCSeconds();
    this.weekday = d.getUTCDay();
  }

  /**
   * Go's time.Date: out-of-range fields carry over; a wall time the zone skips or repeats takes the offset
   * Go's lookup finds (the offset in force at the wall time read as UTC, corrected once).
   */
  static of(zone: string, year: number, month: number, day: number, hour: number, minute: number, second: number): ZonedTime {
    const wall = Date.UTC(year, month - 1, day, hour, minute, second);
    return new ZonedTime(zone, wall - zoneOffsetMs(zone, wall - zoneOffsetMs(zone, wall)));
  }

  /** Go's AddDate: the same wall clock so many days/months on, normalised by `of`. */
  addDate(months: number, days: number): ZonedTime {
    return ZonedTime.of(this.zone, this.year, this.month + months, this.day + days, this.hour, this.minute, this.second);
  }

  add(ms: number): ZonedTime {
    return new ZonedTime(this.zone, this.ms + ms);
  }

  /** Go's Truncate: down to a multiple of `ms` of absolute time. */
  truncate(ms: number): ZonedTime {
    return new ZonedTime(this.zone, Math.floor(this.ms / ms) * ms);
  }
}

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

/**
 * The first time the schedule fires strictly after `afterMs` (whole seconds, ms since the epoch), reading wall
 * clocks in `zone` (a TZ= prefix of the schedule wins); undefined when none comes within five years (Feb 30th).
 * Step for step robfig's SpecSchedule.Next: find the month, then the day (dom and dow ORed unless either is
 * `*`), hour, minute, second; any field moved resets the smaller ones, and a wrap starts over.
 */
export function nextCronTime(schedule: CronSchedule, afterMs: number, zone: string = LOCAL_TIME_ZONE): number | undefined {
  if (schedule.kind === 'every') return Math.floor(afterMs / SECOND) * SECOND + schedule.delayMs;
  const s = schedule;
  const z = s.timeZone ?? zone;
  let t = new ZonedTime(z, Math.floor(afterMs / SECOND) * SECOND + SECOND);
  let added = false;
  const yearLimit = t.year + 5;
  const dayMatches = (x: ZonedTime): boolean => {
    const dom = s.dayOfMonth.allowed[x.day] === true;
    const dow = s.dayOfWeek.allowed[x.weekday] === true;
    return s.dayOfMonth.star || s.dayOfWeek.star ? dom && dow : dom || dow;
  };
  wrap: for (;;) {
    if (t.year > yearLimit) return undefined;
    while (!s.month.allowed[t.month]) {
      if (!added) { added = true; t = ZonedTime.of(z, t.year, t.month, 1, 0, 0, 0); }
      t = t.addDate(1, 0);
      if (t.month === 1) continue wrap;
    }
    while (!dayMatches(t)) {
      if (!added) { added = true; t = ZonedTime.of(z, t.year, t.month, t.day, 0, 0, 0); }
      t = t.addDate(0, 1);
      // Midnight a DST change skips lands on 01:00 (or 23:00 the day before): back onto the day's start.
      if (t.hour !== 0) t = t.add(t.hour > 12 ? (24 - t.hour) * HOUR : -t.hour * HOUR);
      if (t.day === 1) continue wrap;
    }
    while (!s.hour.allowed[t.hour]) {
      if (!added) { added = true; t = ZonedTime.of(z, t.year, t.month, t.day, t.hour, 0, 0); }
      t = t.add(HOUR);
      if (t.hour === 0) continue wrap;
    }
    while (!s.minute.allowed[t.minute]) {
      if (!added) { added = true; t = t.truncate(MINUTE); }
      t = t.add(MINUTE);
      if (t.minute === 0) continue wrap;
    }
    // Standard schedules fire at second 0 only: robfig steps second by second to the next minute, then wraps.
    if (t.second !== 0) {
      added = true;
      t = t.add((60 - t.second) * SECOND);
      continue wrap;
    }
    return t.ms;
  }
}
