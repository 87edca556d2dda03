/** Dates in a resource's time zone: weeks, wall-clock slots from a schedule, formatting. */

/** A calendar date (no time zone). */
export interface LocalDate {
  y: number;
  m: number; // 1-12
  d: number;
}

const partsCache = new Map<string, Intl.DateTimeFormat>();
function partsFormat(tz: string): Intl.DateTimeFormat {
  let f = partsCache.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    partsCache.set(tz, f);
  }
  return f;
}

/** The wall clock of `tz` at instant `ms`. */
export function wallClock(ms: number, tz: string): LocalDate & { h: number; min: number } {
  const p = Object.fromEntries(partsFormat(tz).formatToParts(new Date(ms)).map((x) => [x.type, x.value]));
  return { y: +p.year!, m: +p.month!, d: +p.day!, h: +p.hour! % 24, min: +p.minute! };
}

/** The instant at which `tz` shows date `date` at `minutes` past midnight (the first one, across a DST change). */
export function zonedToUtc(date: LocalDate, minutes: number, tz: string): number {
  const naive = Date.UTC(date.y, date.m - 1, date.d) + minutes * 60_000;
  let t = naive;
  for (let i = 0; i < 3; i++) {
    const w = wallClock(t, tz);
    const shown = Date.UTC(w.y, w.m - 1, w.d) + (w.h * 60 + w.min) * 60_000;
    const diff = shown - naive;
    if (diff === 0) break;
    t -= diff;
  }
  // A fall-back repeats an hour: the same wall time an hour (or half an hour) earlier is the first occurrence.
  const same = (ms: number) => {
    const w = wallClock(ms, tz);
    return Date.UTC(w.y, w.m - 1, w.d) + (w.h * 60 + w.min) * 60_000 === naive;
  };
  for (const back of [3_600_000, 1_800_000]) if (same(t - back)) return t - back;
  return t;
}

export const addDays = (date: LocalDate, n: number): LocalDate => {
  const t = new Date(Date.UTC(date.y, date.m - 1, date.d + n));
  return { y: t.getUTCFullYear(), m: t.getUTCMonth() + 1, d: t.getUTCDate() };
};
export const dayOfWeek = (date: LocalDate): number => (new Date(Date.UTC(date.y, date.m - 1, date.d)).getUTCDay() + 6) % 7; // 0 = Monday
export const isoDate = (date: LocalDate) => `${date.y}-${String(date.m).padStart(2, '0')}-${String(date.d).padStart(2, '0')}`;
export const WEEKDAY_KEYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;

/** The Monday of the week holding instant `ms` in `tz`. */
export function mondayOf(ms: number, tz: string): LocalDate {
  const w = wallClock(ms, tz);
  const date = { y: w.y, m: w.m, d: w.d };
  return addDays(date, -dayOfWeek(date));
}

const toMinutes = (hhmm: string) => {
  const [h, m] = hhmm.split(':').map(Number);
  return h! * 60 + m!;
};

export interface Schedule {
  timezone: string;
  weekly: { days: string[]; start: string; end: string }[];
  overrides: { date: string; intervals: { start: string; end: string }[] }[];
}

/** The open intervals (minutes past local midnight) of one date by a schedule. */
export function openIntervals(schedule: Schedule, date: LocalDate): [number, number][] {
  const override = schedule.overrides.find((o) => o.date === isoDate(date));
  const list = override ? override.intervals : schedule.weekly.filter((w) => w.days.includes(WEEKDAY_KEYS[dayOfWeek(date)]!));
  return list.map((i) => [toMinutes(i.start), toMinutes(i.end)] as [number, number]);
}

/** Slot starts (minutes past midnight) that a schedule opens on a date, on a grid of `slotMinutes`. */
export function openSlotMinutes(schedule: Schedule, date: LocalDate, slotMinutes: number): number[] {
  const out = new Set<number>();
  for (const [start, end] of openIntervals(schedule, date)) {
    for (let m = Math.ceil(start / slotMinutes) * slotMinutes; m + slotMinutes <= end; m += slotMinutes) out.add(m);
  }
  return [...out].sort((a, b) => a - b);
}

export const hhmm = (minutes: number) => `${String(Math.floor(minutes / 60)).padStart(2, '0')}:${String(minutes % 60).padStart(2, '0')}`;

/** "Tue 8 Dec, 10:00–10:30" in the resource's zone. */
export function formatRange(startIso: string, endIso: string, tz: string): string {
  const day = new Intl.DateTimeFormat('en-GB', { timeZone: tz, weekday: 'short', day: 'numeric', month: 'short' }).format(new Date(startIso));
  const t = new Intl.DateTimeFormat('en-GB', { timeZone: tz, hour: '2-digit', minute: '2-digit' });
  return `${day}, ${t.format(new Date(startIso))}–${t.format(new Date(endIso))}`;
}

export function formatDay(date: LocalDate): { weekday: string; label: string } {
  const t = new Date(Date.UTC(date.y, date.m - 1, date.d));
  return {
    weekday: new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', weekday: 'short' }).format(t),
    label: new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', day: 'numeric', month: 'short' }).format(t),
  };
}

export function formatWeek(monday: LocalDate): string {
  const sunday = addDays(monday, 6);
  const f = new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', day: 'numeric', month: 'short' });
  const y = new Intl.DateTimeFormat('en-GB', { timeZone: 'UTC', year: 'numeric' });
  const a = new Date(Date.UTC(monday.y, monday.m - 1, monday.d));
  const b = new Date(Date.UTC(sunday.y, sunday.m - 1, sunday.d));
  return `${f.format(a)} – ${f.format(b)} ${y.format(b)}`;
}

/** "4:07" from milliseconds (never negative). */
export function countdown(ms: number): string {
  const s = Math.max(0, Math.ceil(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}
