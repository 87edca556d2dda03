/** Pure booking rules: overlap, grid, notice/advance, buffers, coverage, the hold and booking state machines. */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../server/core/errors';
import {
  bookableRanges, bookingDecision, checkTiming, combineOptions, coversExactly, evaluateSeats, extendedExpiry, freeSlots, holdDecision, lockWindow,
  MAX_HOLD_LIFETIME_MS, overlaps,
} from '../../server/core/rules';
import type { SlotRow } from '../../server/core/types';

const H = 3_600_000;
const M = 60_000;
const T0 = Date.parse('2027-01-11T00:00:00Z');
const rules = { minNoticeMinutes: 0, maxAdvanceDays: 365, bufferBeforeMinutes: 0, bufferAfterMinutes: 0 };
const res = (over: Partial<typeof rules> = {}) => ({ id: 'r1', slotMinutes: 60, timezone: 'UTC', rules: { ...rules, ...over } });

/** Hourly slots from `fromHour` to `toHour` on T0's day. */
function slots(fromHour: number, toHour: number, taken: Record<number, number> = {}, capacity = 2): SlotRow[] {
  return Array.from({ length: toHour - fromHour }, (_, i) => {
    const h = fromHour + i;
    return { id: h, resourceId: 'r1', start: T0 + h * H, end: T0 + (h + 1) * H, capacity, seatsTaken: taken[h] ?? 0, blocked: false };
  });
}

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (err) {
    return (err as DomainError).code;
  }
  return null;
};

describe('overlap', () => {
  it('treats ranges as half-open', () => {
    expect(overlaps({ start: 0, end: 10 }, { start: 5, end: 15 })).toBe(true);
    expect(overlaps({ start: 0, end: 10 }, { start: 10, end: 20 })).toBe(false);
    expect(overlaps({ start: 10, end: 20 }, { start: 0, end: 10 })).toBe(false);
    expect(overlaps({ start: 0, end: 30 }, { start: 10, end: 20 })).toBe(true);
  });
});

describe('timing rules', () => {
  const now = T0;
  it('refuses times off the local grid', () => {
    expect(codeOf(() => checkTiming(res(), { start: T0 + 10 * H + 17 * M, end: T0 + 11 * H }, now))).toBe('grid-misaligned');
    expect(codeOf(() => checkTiming(res(), { start: T0 + 10 * H, end: T0 + 11 * H + 30 * M }, now))).toBe('grid-misaligned');
    expect(codeOf(() => checkTiming(res(), { start: T0 + 10 * H, end: T0 + 11 * H }, now))).toBeNull();
  });
  it('aligns the grid to local wall-clock time (Asia/Kolkata is +05:30)', () => {
    const kolkata = { ...res(), timezone: 'Asia/Kolkata' };
    expect(codeOf(() => checkTiming(kolkata, { start: T0 + 3 * H + 30 * M, end: T0 + 4 * H + 30 * M }, now))).toBeNull();
    expect(codeOf(() => checkTiming(kolkata, { start: T0 + 4 * H, end: T0 + 5 * H }, now))).toBe('grid-misaligned');
  });
  it('enforces minimum notice and refuses the past', () => {
    const r = res({ minNoticeMinutes: 120 });
    expect(codeOf(() => checkTiming(r, { start: T0 + 1 * H, end: T0 + 2 * H }, now))).toBe('notice-too-short');
    expect(codeOf(() => checkTiming(r, { start: T0 + 2 * H, end: T0 + 3 * H }, now))).toBeNull();
    expect(codeOf(() => checkTiming(res(), { start: T0 - H, end: T0 }, now))).toBe('notice-too-short');
  });
  it('enforces maximum advance', () => {
    const r = res({ maxAdvanceDays: 2 });
    expect(codeOf(() => checkTiming(r, { start: T0 + 48 * H, end: T0 + 49 * H }, now))).toBeNull();
    expect(codeOf(() => checkTiming(r, { start: T0 + 49 * H, end: T0 + 50 * H }, now))).toBe('too-far-ahead');
  });
});

describe('seat evaluation', () => {
  it('needs slots that tile the range exactly', () => {
    expect(coversExactly(slots(9, 12), { start: T0 + 9 * H, end: T0 + 12 * H })).toBe(true);
    expect(coversExactly(slots(9, 12).filter((s) => s.id !== 10), { start: T0 + 9 * H, end: T0 + 12 * H })).toBe(false);
    expect(codeOf(() => evaluateSeats(res(), slots(9, 12), { start: T0 + 11 * H, end: T0 + 13 * H }, 1))).toBe('outside-hours');
  });
  it('lists full and blocked slots as conflicts', () => {
    const s = slots(9, 12, { 10: 2 });
    s[2]!.blocked = true;
    const { targets, conflicts } = evaluateSeats(res(), s, { start: T0 + 9 * H, end: T0 + 12 * H }, 1);
    expect(targets.map((x) => x.id)).toEqual([9, 10, 11]);
    expect(conflicts.map((c) => [c.reason, c.remaining])).toEqual([['full', 0], ['blocked', 0]]);
  });
  it('counts seats freed in the same transaction', () => {
    const { conflicts } = evaluateSeats(res(), slots(9, 11, { 10: 2 }), { start: T0 + 10 * H, end: T0 + 11 * H }, 1, new Map([[10, 1]]));
    expect(conflicts).toEqual([]);
  });
  it('keeps buffer padding empty on both sides', () => {
    const r = res({ bufferAfterMinutes: 30 });
    const taken = slots(8, 13, { 9: 1 });
    // 10:00 starts right after a 09:00 booking: inside its after-buffer.
    expect(evaluateSeats(r, taken, { start: T0 + 10 * H, end: T0 + 11 * H }, 1).conflicts.map((c) => c.reason)).toEqual(['buffer']);
    // 11:00 is clear of it.
    expect(evaluateSeats(r, taken, { start: T0 + 11 * H, end: T0 + 12 * H }, 1).conflicts).toEqual([]);
    // 08:00 ends right before the booking: its own after-buffer would run into it.
    expect(evaluateSeats(r, taken, { start: T0 + 8 * H, end: T0 + 9 * H }, 1).conflicts.map((c) => c.reason)).toEqual(['buffer']);
  });
  it('locks a window wide enough for the largest buffer', () => {
    const w = lockWindow({ start: 100 * M, end: 200 * M }, [res({ bufferBeforeMinutes: 10 }), res({ bufferAfterMinutes: 25 })]);
    expect(w).toEqual({ start: 75 * M, end: 225 * M });
  });
});

describe('availability rules', () => {
  const q = { from: T0, to: T0 + 24 * H, seats: 1, now: T0 };
  it('lists slots with enough seats only', () => {
    const free = freeSlots(res(), slots(9, 12, { 10: 2 }), q);
    expect(free.map((s) => [(s.start - T0) / H, s.remaining])).toEqual([[9, 2], [11, 2]]);
    expect(freeSlots(res(), slots(9, 12, { 10: 1 }), { ...q, seats: 2 }).map((s) => (s.start - T0) / H)).toEqual([9, 11]);
  });
  it('finds ranges of a duration that fit', () => {
    const ranges = bookableRanges(res(), slots(9, 14, { 11: 2 }), { ...q, durationMs: 2 * H });
    expect(ranges.map((r) => (r.start - T0) / H)).toEqual([9, 12]);
  });
  it('combines options: all needs every resource, any names who is free', () => {
    const per = new Map([
      ['a', [{ start: 1, end: 2 }, { start: 2, end: 3 }]],
      ['b', [{ start: 2, end: 3 }]],
    ]);
    expect(combineOptions(per, 'all')).toEqual([{ start: 2, end: 3, resourceIds: ['a', 'b'] }]);
    expect(combineOptions(per, 'any')).toEqual([
      { start: 1, end: 2, resourceIds: ['a'] },
      { start: 2, end: 3, resourceIds: ['a', 'b'] },
    ]);
  });
});

describe('hold state machine', () => {
  const now = 1_000_000;
  const held = { status: 'held' as const, expiresAt: now + 1 };
  const due = { status: 'held' as const, expiresAt: now };
  it('confirms live holds, replays confirmed ones, refuses the rest', () => {
    expect(holdDecision(held, 'confirm', now)).toBe('proceed');
    expect(holdDecision({ ...held, status: 'confirmed' }, 'confirm', now)).toBe('replay');
    expect(codeOf(() => holdDecision(due, 'confirm', now))).toBe('hold-expired');
    expect(codeOf(() => holdDecision({ ...held, status: 'expired' }, 'confirm', now))).toBe('hold-expired');
    expect(codeOf(() => holdDecision({ ...held, status: 'released' }, 'confirm', now))).toBe('hold-not-active');
  });
  it('releases idempotently but never a confirmed hold', () => {
    expect(holdDecision(held, 'release', now)).toBe('proceed');
    expect(holdDecision({ ...held, status: 'released' }, 'release', now)).toBe('replay');
    expect(holdDecision({ ...held, status: 'expired' }, 'release', now)).toBe('replay');
    expect(codeOf(() => holdDecision({ ...held, status: 'confirmed' }, 'release', now))).toBe('hold-not-active');
  });
  it('extends only live holds, within 30 minutes in total', () => {
    expect(holdDecision(held, 'extend', now)).toBe('proceed');
    expect(codeOf(() => holdDecision(due, 'extend', now))).toBe('hold-expired');
    expect(extendedExpiry(now, now + 60_000, 300)).toBe(now + 360_000);
    expect(codeOf(() => extendedExpiry(now, now + MAX_HOLD_LIFETIME_MS - 60_000, 120))).toBe('extend-limit');
  });
});

describe('booking state machine', () => {
  it('cancels once and replays after', () => {
    expect(bookingDecision({ status: 'confirmed', version: 1 }, 'cancel')).toBe('proceed');
    expect(bookingDecision({ status: 'cancelled', version: 2 }, 'cancel')).toBe('replay');
  });
  it('reschedules only the current version of a live booking', () => {
    expect(bookingDecision({ status: 'confirmed', version: 3 }, 'reschedule', 3)).toBe('proceed');
    expect(codeOf(() => bookingDecision({ status: 'confirmed', version: 3 }, 'reschedule', 2))).toBe('precondition-failed');
    expect(codeOf(() => bookingDecision({ status: 'cancelled', version: 3 }, 'reschedule', 3))).toBe('booking-cancelled');
  });
});
