import { describe, it, expect } from 'vitest';
import {
  intersectRanges,
  isOnGrid,
  isValidSlotMinutes,
  isValidTimeZone,
  openRanges,
  slotsIn,
  subtractRanges,
  type Range,
  type ScheduleSpec,
  type Weekday,
} from '../../server/core/schedule.js';

const ALL_DAYS: Weekday[] = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const ms = (s: string): number => Date.parse(s);
const iso = (t: number): string => new Date(t).toISOString().replace('.000Z', 'Z');
const show = (rs: Range[]): string[][] => rs.map((r) => [iso(r.start), iso(r.end)]);
const starts = (rs: Range[]): string[] => rs.map((r) => iso(r.start));
const r = (start: string, end: string): Range => ({ start: ms(start), end: ms(end) });

function daily(timezone: string, start: string, end: string, days: Weekday[] = ALL_DAYS): ScheduleSpec {
  return { timezone, weekly: [{ days, start, end }], overrides: [] };
}

describe('openRanges', () => {
  it('maps Berlin 09:00-17:00 to 08Z-16Z in January and 07Z-15Z in July', () => {
    const s = daily('Europe/Berlin', '09:00', '17:00');
    expect(show(openRanges(s, ms('2027-01-12T00:00:00Z'), ms('2027-01-13T00:00:00Z')))).toEqual([
      ['2027-01-12T08:00:00Z', '2027-01-12T16:00:00Z'],
    ]);
    expect(show(openRanges(s, ms('2027-07-13T00:00:00Z'), ms('2027-07-14T00:00:00Z')))).toEqual([
      ['2027-07-13T07:00:00Z', '2027-07-13T15:00:00Z'],
    ]);
  });

  it('uses the local weekday', () => {
    // 2027-01-12 is a Tuesday; a Mon-only schedule is closed then but open the day before.
    const s = daily('Europe/Berlin', '09:00', '17:00', ['mon']);
    expect(openRanges(s, ms('2027-01-12T00:00:00Z'), ms('2027-01-13T00:00:00Z'))).toEqual([]);
    expect(show(openRanges(s, ms('2027-01-10T00:00:00Z'), ms('2027-01-13T00:00:00Z')))).toEqual([
      ['2027-01-11T08:00:00Z', '2027-01-11T16:00:00Z'],
    ]);
  });

  it('covers local dates that cross midnight UTC and clips to [from, to)', () => {
    // Tokyo 08:00-17:00 is 23:00Z of the previous UTC day to 08:00Z.
    const s = daily('Asia/Tokyo', '08:00', '17:00');
    expect(show(openRanges(s, ms('2027-01-12T00:00:00Z'), ms('2027-01-12T12:00:00Z')))).toEqual([
      ['2027-01-12T00:00:00Z', '2027-01-12T08:00:00Z'],
    ]);
    expect(show(openRanges(s, ms('2027-01-12T02:30:00Z'), ms('2027-01-12T05:00:00Z')))).toEqual([
      ['2027-01-12T02:30:00Z', '2027-01-12T05:00:00Z'],
    ]);
    expect(openRanges(s, ms('2027-01-12T05:00:00Z'), ms('2027-01-12T05:00:00Z'))).toEqual([]);
  });

  it("treats '24:00' as the next local day's start and merges across midnight", () => {
    const s: ScheduleSpec = {
      timezone: 'Europe/Berlin',
      weekly: [
        { days: ['tue'], start: '22:00', end: '24:00' },
        { days: ['wed'], start: '00:00', end: '02:00' },
      ],
      overrides: [],
    };
    expect(show(openRanges(s, ms('2027-01-11T00:00:00Z'), ms('2027-01-15T00:00:00Z')))).toEqual([
      ['2027-01-12T21:00:00Z', '2027-01-13T01:00:00Z'],
    ]);
    expect(show(openRanges(daily('UTC', '00:00', '24:00'), ms('2027-01-12T06:00:00Z'), ms('2027-01-15T06:00:00Z')))).toEqual([
      ['2027-01-12T06:00:00Z', '2027-01-15T06:00:00Z'],
    ]);
  });

  it('merges overlapping weekly intervals', () => {
    const s: ScheduleSpec = {
      timezone: 'UTC',
      weekly: [
        { days: ['tue'], start: '09:00', end: '12:00' },
        { days: ['tue'], start: '11:00', end: '13:00' },
        { days: ['tue'], start: '14:00', end: '15:00' },
      ],
      overrides: [],
    };
    expect(show(openRanges(s, ms('2027-01-12T00:00:00Z'), ms('2027-01-13T00:00:00Z')))).toEqual([
      ['2027-01-12T09:00:00Z', '2027-01-12T13:00:00Z'],
      ['2027-01-12T14:00:00Z', '2027-01-12T15:00:00Z'],
    ]);
  });

  it('applies overrides: closed day, special hours, opening an otherwise closed day', () => {
    const s: ScheduleSpec = {
      timezone: 'Europe/Berlin',
      weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '09:00', end: '17:00' }],
      overrides: [
        { date: '2027-01-12', intervals: [] },
        { date: '2027-01-13', intervals: [{ start: '10:00', end: '12:00' }, { start: '13:00', end: '15:00' }] },
        { date: '2027-01-16', intervals: [{ start: '10:00', end: '14:00' }] },
      ],
    };
    expect(show(openRanges(s, ms('2027-01-11T00:00:00Z'), ms('2027-01-18T00:00:00Z')))).toEqual([
      ['2027-01-11T08:00:00Z', '2027-01-11T16:00:00Z'],
      // 12th: closed all day
      ['2027-01-13T09:00:00Z', '2027-01-13T11:00:00Z'],
      ['2027-01-13T12:00:00Z', '2027-01-13T14:00:00Z'],
      ['2027-01-14T08:00:00Z', '2027-01-14T16:00:00Z'],
      ['2027-01-15T08:00:00Z', '2027-01-15T16:00:00Z'],
      ['2027-01-16T09:00:00Z', '2027-01-16T13:00:00Z'],
    ]);
  });

  it('rejects malformed wall times', () => {
    const bad = daily('UTC', '9:00', '17:00');
    expect(() => openRanges(bad, 0, 86_400_000)).toThrow(RangeError);
    expect(() => openRanges(daily('UTC', '17:00', '09:00'), 0, 86_400_000)).toThrow(RangeError);
  });
});

describe('DST transitions', () => {
  it('Europe/Berlin spring forward 2026-03-29: 00:00-06:00 gives 5 hourly slots', () => {
    const s = daily('Europe/Berlin', '00:00', '06:00', ['sun']);
    const open = openRanges(s, ms('2026-03-28T00:00:00Z'), ms('2026-03-30T00:00:00Z'));
    expect(show(open)).toEqual([['2026-03-28T23:00:00Z', '2026-03-29T04:00:00Z']]);
    expect(starts(slotsIn(open, 60, 'Europe/Berlin'))).toEqual([
      '2026-03-28T23:00:00Z',
      '2026-03-29T00:00:00Z',
      '2026-03-29T01:00:00Z',
      '2026-03-29T02:00:00Z',
      '2026-03-29T03:00:00Z',
    ]);
  });

  it('Europe/Berlin fall back 2026-10-25: 00:00-06:00 gives 7 hourly slots', () => {
    const s = daily('Europe/Berlin', '00:00', '06:00', ['sun']);
    const open = openRanges(s, ms('2026-10-24T00:00:00Z'), ms('2026-10-26T00:00:00Z'));
    expect(show(open)).toEqual([['2026-10-24T22:00:00Z', '2026-10-25T05:00:00Z']]);
    expect(starts(slotsIn(open, 60, 'Europe/Berlin'))).toEqual([
      '2026-10-24T22:00:00Z',
      '2026-10-24T23:00:00Z',
      '2026-10-25T00:00:00Z',
      '2026-10-25T01:00:00Z',
      '2026-10-25T02:00:00Z',
      '2026-10-25T03:00:00Z',
      '2026-10-25T04:00:00Z',
    ]);
  });

  it('resolves a gap wall time forward and a repeated one to the earlier instant', () => {
    // 02:30 does not exist on 2026-03-29 in Berlin -> 03:30 CEST (01:30Z);
    // 02:30 happens twice on 2026-10-25 -> the first, CEST (00:30Z).
    const spring = daily('Europe/Berlin', '02:30', '04:00', ['sun']);
    expect(show(openRanges(spring, ms('2026-03-28T00:00:00Z'), ms('2026-03-30T00:00:00Z')))).toEqual([
      ['2026-03-29T01:30:00Z', '2026-03-29T02:00:00Z'],
    ]);
    const fall = daily('Europe/Berlin', '02:30', '04:00', ['sun']);
    expect(show(openRanges(fall, ms('2026-10-24T00:00:00Z'), ms('2026-10-26T00:00:00Z')))).toEqual([
      ['2026-10-25T00:30:00Z', '2026-10-25T03:00:00Z'],
    ]);
  });

  it('America/New_York 2026-03-08: 09:00-17:00 keeps 8 slots, 13Z after the change and 14Z before', () => {
    const s = daily('America/New_York', '09:00', '17:00');
    const slots = slotsIn(openRanges(s, ms('2026-03-07T00:00:00Z'), ms('2026-03-10T00:00:00Z')), 60, 'America/New_York');
    const hours = (day: string): string[] => starts(slots).filter((x) => x.startsWith(day));
    expect(hours('2026-03-07')).toEqual([14, 15, 16, 17, 18, 19, 20, 21].map((h) => `2026-03-07T${h}:00:00Z`));
    expect(hours('2026-03-08')).toEqual([13, 14, 15, 16, 17, 18, 19, 20].map((h) => `2026-03-08T${h}:00:00Z`));
    expect(hours('2026-03-09')).toEqual([13, 14, 15, 16, 17, 18, 19, 20].map((h) => `2026-03-09T${h}:00:00Z`));
    expect(slots).toHaveLength(24);
  });

  it('America/New_York 2026-11-01: 09:00-17:00 moves from 13Z to 14Z', () => {
    const s = daily('America/New_York', '09:00', '17:00');
    const slots = slotsIn(openRanges(s, ms('2026-10-31T00:00:00Z'), ms('2026-11-02T00:00:00Z')), 60, 'America/New_York');
    expect(starts(slots)).toEqual([
      ...[13, 14, 15, 16, 17, 18, 19, 20].map((h) => `2026-10-31T${h}:00:00Z`),
      ...[14, 15, 16, 17, 18, 19, 20, 21].map((h) => `2026-11-01T${h}:00:00Z`),
    ]);
  });

  it('America/New_York night hours on both 2026 transition days: 5 and 7 slots', () => {
    const s = daily('America/New_York', '00:00', '06:00', ['sun']);
    const spring = slotsIn(openRanges(s, ms('2026-03-08T00:00:00Z'), ms('2026-03-09T00:00:00Z')), 60, 'America/New_York');
    expect(starts(spring)).toEqual([5, 6, 7, 8, 9].map((h) => `2026-03-08T0${h}:00:00Z`));
    const fall = slotsIn(openRanges(s, ms('2026-11-01T00:00:00Z'), ms('2026-11-02T00:00:00Z')), 60, 'America/New_York');
    expect(starts(fall)).toEqual(['04', '05', '06', '07', '08', '09', '10'].map((h) => `2026-11-01T${h}:00:00Z`));
  });

  it('re-aligns to the local grid when a shift is not a multiple of the slot length', () => {
    // 90-minute slots, Berlin spring forward: 00:00, 01:30 local (CET), then elapsed
    // stepping lands on 04:00 CEST (not a multiple of 90) -> next grid point 04:30.
    const open = [r('2026-03-28T23:00:00Z', '2026-03-29T04:00:00Z')];
    const slots = slotsIn(open, 90, 'Europe/Berlin');
    expect(show(slots)).toEqual([
      ['2026-03-28T23:00:00Z', '2026-03-29T00:30:00Z'],
      ['2026-03-29T00:30:00Z', '2026-03-29T02:00:00Z'],
      ['2026-03-29T02:30:00Z', '2026-03-29T04:00:00Z'],
    ]);
    // Lord Howe shifts by 30 minutes (02:00 -> 02:30 on 2026-10-04): hourly slots skip to 03:00.
    const lh = 'Australia/Lord_Howe';
    const lhOpen = openRanges(daily(lh, '00:00', '06:00', ['sun']), ms('2026-10-03T00:00:00Z'), ms('2026-10-05T00:00:00Z'));
    const lhSlots = slotsIn(lhOpen, 60, lh);
    expect(show(lhOpen)).toEqual([['2026-10-03T13:30:00Z', '2026-10-03T19:00:00Z']]);
    expect(starts(lhSlots)).toEqual([
      '2026-10-03T13:30:00Z', // 00:00 +10:30
      '2026-10-03T14:30:00Z', // 01:00 +10:30
      '2026-10-03T16:00:00Z', // 03:00 +11:00
      '2026-10-03T17:00:00Z', // 04:00
      '2026-10-03T18:00:00Z', // 05:00
    ]);
    expect(slots.every((x) => isOnGrid(x.start, 90, 'Europe/Berlin'))).toBe(true);
    expect(lhSlots.every((x) => isOnGrid(x.start, 60, lh))).toBe(true);
  });
});

describe('range algebra', () => {
  const a = [r('2027-01-12T08:00:00Z', '2027-01-12T12:00:00Z'), r('2027-01-12T13:00:00Z', '2027-01-12T17:00:00Z')];
  const b = [
    r('2027-01-12T07:00:00Z', '2027-01-12T09:00:00Z'),
    r('2027-01-12T10:00:00Z', '2027-01-12T10:30:00Z'),
    r('2027-01-12T11:30:00Z', '2027-01-12T14:00:00Z'),
    r('2027-01-12T18:00:00Z', '2027-01-12T19:00:00Z'),
  ];

  it('intersects', () => {
    expect(show(intersectRanges(a, b))).toEqual([
      ['2027-01-12T08:00:00Z', '2027-01-12T09:00:00Z'],
      ['2027-01-12T10:00:00Z', '2027-01-12T10:30:00Z'],
      ['2027-01-12T11:30:00Z', '2027-01-12T12:00:00Z'],
      ['2027-01-12T13:00:00Z', '2027-01-12T14:00:00Z'],
    ]);
    expect(intersectRanges(a, [])).toEqual([]);
    // Touching ranges share no instant (half-open).
    expect(intersectRanges([r('2027-01-12T08:00:00Z', '2027-01-12T09:00:00Z')], [r('2027-01-12T09:00:00Z', '2027-01-12T10:00:00Z')])).toEqual([]);
  });

  it('subtracts', () => {
    expect(show(subtractRanges(a, b))).toEqual([
      ['2027-01-12T09:00:00Z', '2027-01-12T10:00:00Z'],
      ['2027-01-12T10:30:00Z', '2027-01-12T11:30:00Z'],
      ['2027-01-12T14:00:00Z', '2027-01-12T17:00:00Z'],
    ]);
    expect(subtractRanges(a, [])).toEqual(a);
    expect(subtractRanges([], b)).toEqual([]);
    expect(subtractRanges(a, [r('2027-01-12T00:00:00Z', '2027-01-13T00:00:00Z')])).toEqual([]);
    // One b range spanning two a ranges must cut both.
    expect(show(subtractRanges(a, [r('2027-01-12T11:00:00Z', '2027-01-12T15:00:00Z')]))).toEqual([
      ['2027-01-12T08:00:00Z', '2027-01-12T11:00:00Z'],
      ['2027-01-12T15:00:00Z', '2027-01-12T17:00:00Z'],
    ]);
  });
});

describe('validation', () => {
  it('isValidTimeZone', () => {
    for (const tz of ['Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'UTC']) expect(isValidTimeZone(tz)).toBe(true);
    for (const tz of ['Mars/Base', '', 'UTC+1', '+01:00', '2027-01-12T00:00+01:00[Europe/Berlin]']) expect(isValidTimeZone(tz)).toBe(false);
  });

  it('isValidSlotMinutes', () => {
    expect(isValidSlotMinutes(7)).toBe(false);
    expect(isValidSlotMinutes(15)).toBe(true);
    expect(isValidSlotMinutes(45)).toBe(true);
    expect(isValidSlotMinutes(1440)).toBe(true);
    expect(isValidSlotMinutes(0)).toBe(false);
    expect(isValidSlotMinutes(4)).toBe(false);
    expect(isValidSlotMinutes(15.5)).toBe(false);
    expect(isValidSlotMinutes(2880)).toBe(false);
  });
});

describe('isOnGrid', () => {
  it('uses local wall-clock minutes in a +05:30 zone', () => {
    expect(isOnGrid(ms('2027-01-12T03:30:00Z'), 60, 'Asia/Kolkata')).toBe(true); // 09:00 local
    expect(isOnGrid(ms('2027-01-12T04:00:00Z'), 60, 'Asia/Kolkata')).toBe(false); // 09:30 local
    expect(isOnGrid(ms('2027-01-12T04:00:00Z'), 30, 'Asia/Kolkata')).toBe(true);
    expect(isOnGrid(ms('2027-01-12T03:30:30Z'), 60, 'Asia/Kolkata')).toBe(false);
    expect(isOnGrid(ms('2027-01-12T03:30:00.001Z'), 60, 'Asia/Kolkata')).toBe(false);
  });
});

describe('slotsIn', () => {
  it('starts at the first grid instant when the range starts off-grid', () => {
    // 09:10-11:00 Berlin (CET) with 30-minute slots -> 09:30, 10:00, 10:30.
    const slots = slotsIn([r('2027-01-12T08:10:00Z', '2027-01-12T10:00:00Z')], 30, 'Europe/Berlin');
    expect(show(slots)).toEqual([
      ['2027-01-12T08:30:00Z', '2027-01-12T09:00:00Z'],
      ['2027-01-12T09:00:00Z', '2027-01-12T09:30:00Z'],
      ['2027-01-12T09:30:00Z', '2027-01-12T10:00:00Z'],
    ]);
  });

  it('drops a trailing partial slot', () => {
    // 09:00-10:45 local: the 10:30 slot would end at 11:00, past the range.
    const slots = slotsIn([r('2027-01-12T08:00:00Z', '2027-01-12T09:45:00Z')], 30, 'Europe/Berlin');
    expect(starts(slots)).toEqual(['2027-01-12T08:00:00Z', '2027-01-12T08:30:00Z', '2027-01-12T09:00:00Z']);
    expect(slotsIn([r('2027-01-12T08:10:00Z', '2027-01-12T08:50:00Z')], 30, 'Europe/Berlin')).toEqual([]);
  });

  it('handles several ranges and a half-hour offset zone', () => {
    // Kolkata 09:00-10:00 and 14:00-15:00 local, hourly.
    const open = [r('2027-01-12T03:30:00Z', '2027-01-12T04:30:00Z'), r('2027-01-12T08:30:00Z', '2027-01-12T09:30:00Z')];
    expect(starts(slotsIn(open, 60, 'Asia/Kolkata'))).toEqual(['2027-01-12T03:30:00Z', '2027-01-12T08:30:00Z']);
  });

  it('rejects invalid slot lengths', () => {
    expect(() => slotsIn([r('2027-01-12T08:00:00Z', '2027-01-12T09:00:00Z')], 0, 'UTC')).toThrow(RangeError);
  });

  it('generates 90 days of 15-minute slots across a DST change', () => {
    // Berlin, open around the clock, 2026-03-01 .. 2026-05-29 local (90 days);
    // the spring-forward day is 23 h long, so 4 quarter-hours fewer.
    const s = daily('Europe/Berlin', '00:00', '24:00');
    const open = openRanges(s, ms('2026-02-28T23:00:00Z'), ms('2026-05-29T22:00:00Z'));
    expect(open).toHaveLength(1);
    const slots = slotsIn(open, 15, 'Europe/Berlin');
    expect(slots).toHaveLength(90 * 96 - 4);
    const weekdays = daily('Europe/Berlin', '09:00', '17:00', ['mon', 'tue', 'wed', 'thu', 'fri']);
    // 2026-03-02 (Mon) .. 2026-05-31 (Sun): 13 full weeks = 65 weekdays x 32 slots.
    const wk = slotsIn(openRanges(weekdays, ms('2026-03-01T23:00:00Z'), ms('2026-05-31T22:00:00Z')), 15, 'Europe/Berlin');
    expect(wk).toHaveLength(65 * 32);
    expect(wk.every((x) => isOnGrid(x.start, 15, 'Europe/Berlin'))).toBe(true);
  });
});
