/** The demo calendar's time maths: a resource's wall clock ↔ instants, across DST changes, and slots from a schedule. */
import { describe, expect, it } from 'vitest';
import { addDays, countdown, mondayOf, openSlotMinutes, wallClock, zonedToUtc } from '../../client-demo/src/time';

const iso = (ms: number) => new Date(ms).toISOString();

describe('demo calendar time', () => {
  it('turns Berlin wall-clock times into instants, in winter, in summer and across both changes', () => {
    expect(iso(zonedToUtc({ y: 2027, m: 1, d: 11 }, 9 * 60, 'Europe/Berlin'))).toBe('2027-01-11T08:00:00.000Z');
    expect(iso(zonedToUtc({ y: 2027, m: 7, d: 12 }, 9 * 60, 'Europe/Berlin'))).toBe('2027-07-12T07:00:00.000Z');
    // 28 March 2027: 02:00 → 03:00. 01:00 is still winter time, 04:00 summer time.
    expect(iso(zonedToUtc({ y: 2027, m: 3, d: 28 }, 60, 'Europe/Berlin'))).toBe('2027-03-28T00:00:00.000Z');
    expect(iso(zonedToUtc({ y: 2027, m: 3, d: 28 }, 4 * 60, 'Europe/Berlin'))).toBe('2027-03-28T02:00:00.000Z');
    // 31 October 2027: 03:00 → 02:00; 02:30 happens twice, and means the first.
    expect(iso(zonedToUtc({ y: 2027, m: 10, d: 31 }, 150, 'Europe/Berlin'))).toBe('2027-10-31T00:30:00.000Z');
    expect(wallClock(Date.parse('2027-07-12T07:00:00Z'), 'Europe/Berlin')).toMatchObject({ y: 2027, m: 7, d: 12, h: 9, min: 0 });
    expect(iso(zonedToUtc({ y: 2027, m: 1, d: 11 }, 0, 'America/New_York'))).toBe('2027-01-11T05:00:00.000Z');
  });

  it('finds the Monday of a week in the resource\'s zone', () => {
    // Sunday 23:30 UTC is already Monday in Berlin.
    expect(mondayOf(Date.parse('2027-01-17T23:30:00Z'), 'Europe/Berlin')).toEqual({ y: 2027, m: 1, d: 18 });
    expect(mondayOf(Date.parse('2027-01-17T23:30:00Z'), 'UTC')).toEqual({ y: 2027, m: 1, d: 11 });
    expect(addDays({ y: 2027, m: 12, d: 30 }, 3)).toEqual({ y: 2028, m: 1, d: 2 });
  });

  it('lists the slots a schedule opens on a date, overrides first', () => {
    const schedule = {
      timezone: 'Europe/Berlin',
      weekly: [{ days: ['mon', 'tue'], start: '09:00', end: '10:30' }, { days: ['mon'], start: '13:00', end: '14:00' }],
      overrides: [{ date: '2027-01-12', intervals: [] }],
    };
    expect(openSlotMinutes(schedule, { y: 2027, m: 1, d: 11 }, 30)).toEqual([540, 570, 600, 780, 810]);
    expect(openSlotMinutes(schedule, { y: 2027, m: 1, d: 11 }, 60)).toEqual([540, 780]);
    expect(openSlotMinutes(schedule, { y: 2027, m: 1, d: 12 }, 30)).toEqual([]);
    expect(openSlotMinutes(schedule, { y: 2027, m: 1, d: 13 }, 30)).toEqual([]);
  });

  it('formats a countdown, never below zero', () => {
    expect(countdown(65_000)).toBe('1:05');
    expect(countdown(400)).toBe('0:01');
    expect(countdown(-5_000)).toBe('0:00');
  });
});
