/**
 * Opening hours -> UTC instants.
 *
 * A resource's schedule is written in local wall-clock time of an IANA zone
 * ("09:00-17:00 Mon-Fri in Europe/Berlin"); everything else in Slotwise
 * (holds, bookings, availability) works on UTC epoch milliseconds. These
 * functions do that translation, DST-correct, and nothing else: no I/O and no
 * clock, so callers pass every instant in and results are reproducible.
 */
import { Temporal } from 'temporal-polyfill';

export type Weekday = 'mon' | 'tue' | 'wed' | 'thu' | 'fri' | 'sat' | 'sun';
export interface WeeklyInterval { days: Weekday[]; start: string; end: string } // 'HH:MM', end may be '24:00', end > start
export interface DateOverride { date: string; intervals: { start: string; end: string }[] } // 'YYYY-MM-DD'; empty intervals = closed all day; an override REPLACES the weekly hours of that local date
export interface ScheduleSpec { timezone: string; weekly: WeeklyInterval[]; overrides: DateOverride[] }
export interface Range { start: number; end: number } // epoch milliseconds UTC, half-open [start, end)

const MINUTE_MS = 60_000;
const DAY_MINUTES = 1440;

// Temporal's PlainDate.dayOfWeek is ISO: 1 = Monday ... 7 = Sunday.
const WEEKDAY_NUMBER: Record<Weekday, number> = { mon: 1, tue: 2, wed: 3, thu: 4, fri: 5, sat: 6, sun: 7 };

/** Minutes since local midnight, with start/end already validated as a pair. */
interface WallInterval { startMin: number; endMin: number }

/** True when `tz` is a valid IANA zone name (e.g. 'Europe/Berlin'); false for 'Mars/Base', '', 'UTC+1' etc. */
export function isValidTimeZone(tz: string): boolean {
  // Temporal also accepts fixed offsets ('+01:00') and whole ISO strings with a
  // bracketed zone; neither is a zone *name*, so both are refused. The name
  // match is case-insensitive to agree with shared/schemas.ts isTimeZone (Intl),
  // which is what validates requests at the edge.
  if (typeof tz !== 'string' || tz === '' || /^[+-]/.test(tz)) return false;
  try {
    const id = Temporal.Instant.fromEpochMilliseconds(0).toZonedDateTimeISO(tz).timeZoneId;
    return id.toLowerCase() === tz.toLowerCase();
  } catch {
    return false;
  }
}

/** True when slotMinutes is an integer in [5, 1440] that divides 1440. */
export function isValidSlotMinutes(n: number): boolean {
  // Dividing the day keeps the grid identical on every local date, which is what
  // lets slotsIn align with plain modular arithmetic.
  return Number.isInteger(n) && n >= 5 && n <= DAY_MINUTES && DAY_MINUTES % n === 0;
}

/** Parses 'HH:MM' (or '24:00' when allowed) into minutes since local midnight. */
function parseWallTime(s: string, allow24: boolean): number {
  const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(s);
  if (m) return Number(m[1]) * 60 + Number(m[2]);
  if (allow24 && s === '24:00') return DAY_MINUTES;
  throw new RangeError(`invalid wall time ${JSON.stringify(s)}: expected HH:MM${allow24 ? ' or 24:00' : ''}`);
}

function parseInterval(i: { start: string; end: string }): WallInterval {
  const startMin = parseWallTime(i.start, false);
  const endMin = parseWallTime(i.end, true);
  // Throwing (rather than skipping) surfaces bad stored data instead of silently closing a resource.
  if (endMin <= startMin) throw new RangeError(`interval end ${i.end} must be after start ${i.start}`);
  return { startMin, endMin };
}

/** Instant (epoch ms) of a wall-clock minute on a local date; 1440 means the next day's start. */
function wallToInstant(date: Temporal.PlainDate, minutes: number, timeZone: string): number {
  if (minutes === DAY_MINUTES) {
    // startOfDay semantics: in zones whose DST jump happens at midnight the next
    // day may begin at 01:00, and that is when "24:00" must end.
    return date.add({ days: 1 }).toZonedDateTime({ timeZone }).epochMilliseconds;
  }
  const time = new Temporal.PlainTime(Math.floor(minutes / 60), minutes % 60);
  // 'compatible': a time in a spring-forward gap moves forward by the gap length;
  // a repeated fall-back time resolves to its earlier occurrence.
  return date.toPlainDateTime(time).toZonedDateTime(timeZone, { disambiguation: 'compatible' }).epochMilliseconds;
}

/** Sorts by start and merges overlapping or touching ranges; drops empty ones. */
function normalize(ranges: Range[]): Range[] {
  const sorted = ranges.filter((r) => r.end > r.start).sort((a, b) => a.start - b.start);
  const out: Range[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r.start <= last.end) {
      if (r.end > last.end) last.end = r.end;
    } else {
      out.push({ start: r.start, end: r.end });
    }
  }
  return out;
}

/** Open intervals of a schedule as UTC ranges, for every local date that overlaps [from, to), clipped to [from, to), sorted and merged (adjacent/overlapping ranges merged). */
export function openRanges(schedule: ScheduleSpec, from: number, to: number): Range[] {
  if (!(to > from)) return [];
  const tz = schedule.timezone;

  // Parse and validate once up front rather than once per local date.
  const byWeekday = new Map<number, WallInterval[]>();
  for (const w of schedule.weekly) {
    const parsed = parseInterval(w);
    for (const d of w.days) {
      const n = WEEKDAY_NUMBER[d];
      if (n === undefined) throw new RangeError(`invalid weekday ${JSON.stringify(d)}`);
      const list = byWeekday.get(n) ?? [];
      list.push(parsed);
      byWeekday.set(n, list);
    }
  }
  // Keyed by the canonical ISO date so lookups by PlainDate.toString() match.
  // Several overrides for one date are unioned rather than last-wins, so no
  // entry is silently ignored.
  const overrides = new Map<string, WallInterval[]>();
  for (const o of schedule.overrides) {
    const key = Temporal.PlainDate.from(o.date).toString();
    const list = overrides.get(key) ?? [];
    for (const i of o.intervals) list.push(parseInterval(i));
    overrides.set(key, list);
  }

  // Start one local day early so an interval of the previous local date that
  // still reaches into [from, to) is produced; clipping removes the rest.
  let date = Temporal.Instant.fromEpochMilliseconds(from).toZonedDateTimeISO(tz).toPlainDate().subtract({ days: 1 });
  const last = Temporal.Instant.fromEpochMilliseconds(to).toZonedDateTimeISO(tz).toPlainDate();

  const raw: Range[] = [];
  while (Temporal.PlainDate.compare(date, last) <= 0) {
    const intervals = overrides.get(date.toString()) ?? byWeekday.get(date.dayOfWeek) ?? [];
    for (const i of intervals) {
      const start = Math.max(wallToInstant(date, i.startMin, tz), from);
      const end = Math.min(wallToInstant(date, i.endMin, tz), to);
      // A wall interval can collapse, e.g. 02:30-03:00 on a Berlin spring-forward
      // day maps 02:30 past 03:00; such intervals simply do not exist that day.
      if (end > start) raw.push({ start, end });
    }
    date = date.add({ days: 1 });
  }
  return normalize(raw);
}

/** Intersection of two sorted, merged range lists. */
export function intersectRanges(a: Range[], b: Range[]): Range[] {
  const out: Range[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length && j < b.length) {
    const x = a[i]!;
    const y = b[j]!;
    const start = Math.max(x.start, y.start);
    const end = Math.min(x.end, y.end);
    if (end > start) out.push({ start, end });
    // Advance whichever ends first: it cannot overlap anything further in the other list.
    if (x.end <= y.end) i++;
    else j++;
  }
  return out;
}

/** a minus b (both sorted, merged). */
export function subtractRanges(a: Range[], b: Range[]): Range[] {
  const out: Range[] = [];
  let j = 0;
  for (const x of a) {
    let cursor = x.start;
    // b ranges wholly before this a range can never matter again (a is sorted).
    while (j < b.length && b[j]!.end <= cursor) j++;
    let k = j;
    while (k < b.length && b[k]!.start < x.end) {
      const y = b[k]!;
      if (y.start > cursor) out.push({ start: cursor, end: y.start });
      cursor = Math.max(cursor, y.end);
      if (cursor >= x.end) break;
      k++;
    }
    if (cursor < x.end) out.push({ start: cursor, end: x.end });
  }
  return out;
}

function assertSlotMinutes(slotMinutes: number): void {
  // Guards slotsIn against 0/NaN (an endless loop) and keeps the grid well-defined.
  if (!isValidSlotMinutes(slotMinutes)) throw new RangeError(`invalid slotMinutes ${slotMinutes}`);
}

/** Non-negative remainder, because JS % keeps the dividend's sign (pre-1970 instants). */
function mod(x: number, m: number): number {
  return ((x % m) + m) % m;
}

/** True when the instant falls on the slot grid of the zone: its local wall-clock minutes since local midnight are a multiple of slotMinutes (and seconds/ms are 0). */
export function isOnGrid(instant: number, slotMinutes: number, timezone: string): boolean {
  assertSlotMinutes(slotMinutes);
  // As in slotsIn: inside a period of constant offset, local wall time is instant + offset, and because
  // slotMinutes divides a day, "on the grid with seconds and milliseconds 0" is plain arithmetic. The
  // periods are remembered per zone (a ZonedDateTime per check was a twentieth of a hold's CPU).
  return mod(instant + offsetAt(instant, timezone), slotMinutes * MINUTE_MS) === 0;
}

/** Offset periods seen lately, per zone (a few each: requests move around a year, not across centuries). */
const knownPeriods = new Map<string, OffsetPeriod[]>();
const PERIODS_PER_ZONE = 4;
const MAX_ZONES = 1_000;

/** The zone's UTC offset at the instant, in milliseconds. */
function offsetAt(instant: number, timeZone: string): number {
  let periods = knownPeriods.get(timeZone);
  if (periods) {
    for (const p of periods) if (instant >= p.from && instant < p.until) return p.offsetMs;
  } else {
    if (knownPeriods.size >= MAX_ZONES) knownPeriods.clear();
    periods = [];
    knownPeriods.set(timeZone, periods);
  }
  const p = wholeOffsetPeriodAt(instant, timeZone);
  periods.unshift(p);
  if (periods.length > PERIODS_PER_ZONE) periods.pop();
  return p.offsetMs;
}

/** The whole period of constant offset around the instant: from the zone's previous transition to its next. */
function wholeOffsetPeriodAt(instant: number, timeZone: string): OffsetPeriod {
  const zdt = Temporal.Instant.fromEpochMilliseconds(instant).toZonedDateTimeISO(timeZone);
  const offsetMs = zdt.offsetNanoseconds / 1e6;
  const next = zdt.getTimeZoneTransition('next');
  const until = next ? next.epochMilliseconds : Number.POSITIVE_INFINITY;
  const previous = zdt.getTimeZoneTransition('previous');
  let from = previous ? previous.epochMilliseconds : Number.NEGATIVE_INFINITY;
  // An instant that is itself a transition starts its period (the one before it had another offset).
  if (Number.isFinite(from) && Temporal.Instant.fromEpochMilliseconds(from).toZonedDateTimeISO(timeZone).offsetNanoseconds / 1e6 !== offsetMs) from = instant;
  if (!(until > instant) || !(from <= instant)) return { from: instant, until: instant + 1, offsetMs };
  return { from, until, offsetMs };
}

/** A stretch of time [from, until) during which the zone's UTC offset is constant. */
interface OffsetPeriod { from: number; until: number; offsetMs: number }

function offsetPeriodAt(instant: number, timeZone: string): OffsetPeriod {
  const zdt = Temporal.Instant.fromEpochMilliseconds(instant).toZonedDateTimeISO(timeZone);
  const next = zdt.getTimeZoneTransition('next');
  const until = next ? next.epochMilliseconds : Number.POSITIVE_INFINITY;
  if (!(until > instant)) throw new Error(`time zone ${timeZone} reported a non-advancing transition`);
  return { from: instant, until, offsetMs: zdt.offsetNanoseconds / 1e6 };
}

/** Slots of slotMinutes inside each open range: the first slot starts at the first grid instant (isOnGrid) at or after range.start; then slots step by slotMinutes of elapsed (absolute) time; a slot is emitted only when it ends at or before range.end. */
export function slotsIn(open: Range[], slotMinutes: number, timezone: string): Range[] {
  assertSlotMinutes(slotMinutes);
  const slotMs = slotMinutes * MINUTE_MS;

  // Performance: creating Temporal objects per slot is what makes naive
  // generation slow. Instead we ask Temporal only for the offset at a point and
  // the instant of the zone's next transition, and cache that period; inside it
  // local wall time is just instant + offset, so "on grid" is plain arithmetic.
  // Because slotMinutes divides a day, (instant + offset) % slotMs === 0 is
  // exactly isOnGrid's wall-clock test. Temporal is hit again only when a slot
  // start crosses a transition, i.e. a couple of times a year.
  let period: OffsetPeriod | undefined;
  const periodAt = (t: number): OffsetPeriod => {
    if (!period || t < period.from || t >= period.until) period = offsetPeriodAt(t, timezone);
    return period;
  };
  // First instant >= t whose local wall time is on the grid. If the aligned
  // candidate lies beyond the next transition, its offset differs, so retry from
  // the transition with the new offset.
  const nextGridInstant = (t: number): number => {
    for (;;) {
      const p = periodAt(t);
      const r = mod(t + p.offsetMs, slotMs);
      const candidate = r === 0 ? t : t + (slotMs - r);
      if (candidate < p.until) return candidate;
      t = p.until;
    }
  };

  const out: Range[] = [];
  for (const range of open) {
    let t = nextGridInstant(range.start);
    while (t + slotMs <= range.end) {
      out.push({ start: t, end: t + slotMs });
      // Step by elapsed time (so a spring-forward morning has fewer slots and a
      // fall-back one more), then re-align using the offset at the new start:
      // after a transition whose shift is not a multiple of slotMinutes (e.g. a
      // 1 h shift with 90-minute slots, or Lord Howe's 30 min) the next slot
      // moves up to the local grid instead of drifting off it. For the common
      // case the re-align is a no-op.
      t = nextGridInstant(t + slotMs);
    }
  }
  return out;
}
