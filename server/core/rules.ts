/**
 * Pure booking rules: timing, coverage, capacity, buffers and the hold and
 * booking state machines. No I/O; services load data, ask these, persist.
 */
import type { Rules } from '../../shared/schemas';
import { DomainError } from './errors';
import { isOnGrid } from './schedule';
import type { BookingRow, HoldRow, ResourceRow, SlotRow } from './types';

const MINUTE = 60_000;
const DAY = 86_400_000;
/** A hold lives at most this long in total, extensions included. */
export const MAX_HOLD_LIFETIME_MS = 30 * MINUTE;

export interface Range {
  start: number;
  end: number;
}

export interface Conflict {
  resourceId: string;
  start: string;
  end: string;
  remaining: number;
  reason: 'full' | 'blocked' | 'buffer';
}

/** True when two half-open ranges share an instant. */
export function overlaps(a: Range, b: Range): boolean {
  return a.start < b.end && b.start < a.end;
}

/** Minutes on each side of a booking that must stay empty: a neighbour's after-buffer plus our before-buffer, and vice versa. */
export function bufferPadMs(rules: Rules): number {
  return (rules.bufferBeforeMinutes + rules.bufferAfterMinutes) * MINUTE;
}

/** The range of slots a request must lock: its own plus the buffer padding of every resource. */
export function lockWindow(range: Range, resources: Pick<ResourceRow, 'rules'>[]): Range {
  const pad = Math.max(0, ...resources.map((r) => bufferPadMs(r.rules)));
  return { start: range.start - pad, end: range.end + pad };
}

/** Grid, notice and advance rules for a range on one resource; throws the 422 that applies. */
export function checkTiming(resource: Pick<ResourceRow, 'id' | 'slotMinutes' | 'timezone' | 'rules'>, range: Range, now: number): void {
  if (!isOnGrid(range.start, resource.slotMinutes, resource.timezone) || !isOnGrid(range.end, resource.slotMinutes, resource.timezone)) {
    throw new DomainError(
      'grid-misaligned',
      `start and end must fall on the ${resource.slotMinutes}-minute grid of resource ${resource.id} (${resource.timezone})`,
    );
  }
  const timing = timingProblem(resource.rules, range.start, now);
  if (timing) throw new DomainError(timing.code, timing.detail);
}

/** The notice/advance rule a start breaks, if any. */
export function timingProblem(rules: Rules, start: number, now: number): { code: 'notice-too-short' | 'too-far-ahead'; detail: string } | null {
  if (start < now + rules.minNoticeMinutes * MINUTE) {
    return { code: 'notice-too-short', detail: `bookings must start at least ${rules.minNoticeMinutes} minutes from now and not in the past` };
  }
  if (start > now + rules.maxAdvanceDays * DAY) {
    return { code: 'too-far-ahead', detail: `bookings may start at most ${rules.maxAdvanceDays} days ahead` };
  }
  return null;
}

/**
 * Decides whether `seats` fit on one resource over `range`, given the locked
 * slots of that resource around the range (sorted by start) and seats about
 * to be freed in the same transaction. Throws outside-hours when the slots do
 * not cover the range exactly; returns the target slots and any conflicts.
 */
export function evaluateSeats(
  resource: Pick<ResourceRow, 'id' | 'rules'>,
  slots: SlotRow[],
  range: Range,
  seats: number,
  freed: ReadonlyMap<number, number> = new Map(),
): { targets: SlotRow[]; conflicts: Conflict[] } {
  const targets = slots.filter((s) => s.start >= range.start && s.start < range.end);
  if (!coversExactly(targets, range)) {
    throw new DomainError('outside-hours', `resource ${resource.id} is not open for the whole range`, {
      resourceId: resource.id,
    });
  }
  const taken = (s: SlotRow) => s.seatsTaken - (freed.get(s.id) ?? 0);
  const conflicts: Conflict[] = [];
  const conflict = (s: SlotRow, reason: Conflict['reason']) =>
    conflicts.push({
      resourceId: resource.id,
      start: new Date(s.start).toISOString(),
      end: new Date(s.end).toISOString(),
      remaining: s.blocked ? 0 : s.capacity - taken(s),
      reason,
    });
  for (const s of targets) {
    if (s.blocked) conflict(s, 'blocked');
    else if (s.capacity - taken(s) < seats) conflict(s, 'full');
  }
  const pad = bufferPadMs(resource.rules);
  if (pad > 0) {
    const before = { start: range.start - pad, end: range.start };
    const after = { start: range.end, end: range.end + pad };
    for (const s of slots) {
      if (taken(s) > 0 && (overlaps(s, before) || overlaps(s, after))) conflict(s, 'buffer');
    }
  }
  return { targets, conflicts };
}

/** True when sorted slots tile the range with no gap. */
export function coversExactly(sorted: Range[], range: Range): boolean {
  if (sorted.length === 0 || sorted[0]!.start !== range.start || sorted[sorted.length - 1]!.end !== range.end) return false;
  for (let i = 1; i < sorted.length; i++) if (sorted[i]!.start !== sorted[i - 1]!.end) return false;
  return true;
}

export type Decision = 'proceed' | 'replay';

/** The hold state machine: what an action does to a hold in its current state. */
export function holdDecision(hold: Pick<HoldRow, 'status' | 'expiresAt'>, action: 'confirm' | 'release' | 'extend', now: number): Decision {
  const due = hold.status === 'held' && hold.expiresAt <= now;
  switch (action) {
    case 'confirm':
      if (hold.status === 'confirmed') return 'replay';
      if (hold.status === 'expired' || due) throw new DomainError('hold-expired', 'the hold expired before it was confirmed');
      if (hold.status === 'released') throw new DomainError('hold-not-active', 'the hold was released');
      return 'proceed';
    case 'release':
      if (hold.status === 'released' || hold.status === 'expired') return 'replay';
      if (hold.status === 'confirmed') throw new DomainError('hold-not-active', 'the hold is confirmed; cancel the booking instead');
      return 'proceed';
    case 'extend':
      if (hold.status === 'expired' || due) throw new DomainError('hold-expired', 'the hold has expired');
      if (hold.status !== 'held') throw new DomainError('hold-not-active', `the hold is ${hold.status}`);
      return 'proceed';
  }
}

/** The new expiry of an extended hold, within the 30-minute lifetime. */
export function extendedExpiry(createdAt: number, now: number, ttlSeconds: number): number {
  const next = now + ttlSeconds * 1000;
  if (next > createdAt + MAX_HOLD_LIFETIME_MS) {
    throw new DomainError('extend-limit', `a hold lives at most 30 minutes; it can be extended until ${new Date(createdAt + MAX_HOLD_LIFETIME_MS).toISOString()}`);
  }
  return next;
}

/** The booking state machine for cancel and reschedule, with optimistic concurrency. */
export function bookingDecision(booking: Pick<BookingRow, 'status' | 'version'>, action: 'cancel' | 'reschedule', ifMatch?: number): Decision {
  if (action === 'cancel') return booking.status === 'cancelled' ? 'replay' : 'proceed';
  if (ifMatch !== undefined && ifMatch !== booking.version) {
    throw new DomainError('precondition-failed', `the booking is at version ${booking.version}, not ${ifMatch}`, { version: booking.version });
  }
  if (booking.status === 'cancelled') throw new DomainError('booking-cancelled', 'a cancelled booking cannot be changed');
  return 'proceed';
}

/**
 * Slots a client may book on one resource (its slots sorted by start): open,
 * enough seats, notice/advance and buffers respected. O(n log n).
 */
export function freeSlots(
  resource: Pick<ResourceRow, 'id' | 'rules'>,
  slots: SlotRow[],
  query: { from: number; to: number; seats: number; now: number },
): { start: number; end: number; capacity: number; remaining: number }[] {
  const clear = bufferCheck(resource.rules, slots);
  const out = [];
  for (const s of slots) {
    if (s.start < query.from || s.start >= query.to || s.blocked) continue;
    const remaining = s.capacity - s.seatsTaken;
    if (remaining < query.seats || timingProblem(resource.rules, s.start, query.now)) continue;
    if (!clear(s)) continue;
    out.push({ start: s.start, end: s.end, capacity: s.capacity, remaining });
  }
  return out;
}

/**
 * Ranges of `durationMs` starting on a slot of this resource (its slots
 * sorted by start, each ending after it starts) where `seats` fit under every
 * rule: the slots from the start on must fit, follow each other without a gap
 * and end exactly at start + duration. O(n log n) whatever the duration.
 */
export function bookableRanges(
  resource: Pick<ResourceRow, 'id' | 'rules'>,
  slots: SlotRow[],
  query: { from: number; to: number; seats: number; now: number; durationMs: number },
): Range[] {
  const n = slots.length;
  const fits = (s: SlotRow) => !s.blocked && s.capacity - s.seatsTaken >= query.seats;
  // runEnd[i]: the last index of the gapless run of fitting slots that begins at i (-1 when slots[i] does not fit).
  // Along a run each slot starts where the previous ends, so ends grow strictly: a binary search finds where a range ends.
  const runEnd = new Int32Array(n);
  for (let i = n - 1; i >= 0; i--) {
    const s = slots[i]!;
    if (!fits(s)) runEnd[i] = -1;
    else runEnd[i] = i + 1 < n && runEnd[i + 1]! >= 0 && slots[i + 1]!.start === s.end ? runEnd[i + 1]! : i;
  }
  const clear = bufferCheck(resource.rules, slots);
  const out: Range[] = [];
  for (let i = 0; i < n; i++) {
    const first = slots[i]!;
    if (first.start < query.from || first.start >= query.to) continue;
    if (timingProblem(resource.rules, first.start, query.now)) continue;
    const range = { start: first.start, end: first.start + query.durationMs };
    if (query.durationMs > 0) {
      const last = runEnd[i]!;
      if (last < 0) continue;
      // The first slot of the run that reaches the range's end must end exactly there.
      let lo = i;
      let hi = last + 1;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (slots[mid]!.end < range.end) lo = mid + 1;
        else hi = mid;
      }
      if (lo > last || slots[lo]!.end !== range.end) continue;
    } else if (query.durationMs < 0) continue;
    if (clear(range)) out.push(range);
  }
  return out;
}

/** The index of the first of `slots` (sorted by start) that starts at or after `t` (`slots.length` when none does). */
export function firstStartingFrom(slots: readonly { start: number }[], t: number): number {
  let lo = 0;
  let hi = slots.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (slots[mid]!.start < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * A test for many ranges over one resource's slots (sorted by start): true
 * when no seats are taken inside the buffer padding around the range. Some
 * taken slot overlaps the padding [a, b) iff, among the slots starting before
 * b, the latest end of a taken one is after a; that latest end is a prefix
 * maximum, and "starting before b" a binary search. O(n) to build, O(log n)
 * per range (scanning every slot per range was quadratic).
 */
function bufferCheck(rules: Rules, slots: SlotRow[]): (range: Range) => boolean {
  const pad = bufferPadMs(rules);
  if (pad === 0) return () => true;
  // latestTakenEnd[k]: the latest end among taken slots in slots[0..k).
  const latestTakenEnd = new Float64Array(slots.length + 1);
  latestTakenEnd[0] = -Infinity;
  for (let i = 0; i < slots.length; i++) {
    const s = slots[i]!;
    latestTakenEnd[i + 1] = s.seatsTaken > 0 ? Math.max(latestTakenEnd[i]!, s.end) : latestTakenEnd[i]!;
  }
  const takenIn = (a: number, b: number) => latestTakenEnd[firstStartingFrom(slots, b)]! > a;
  return (range) => !takenIn(range.start - pad, range.start) && !takenIn(range.end, range.end + pad);
}

/** Combines per-resource ranges: `all` keeps ranges every resource offers, `any` lists who offers each range. */
export function combineOptions(perResource: Map<string, Range[]>, mode: 'all' | 'any'): { start: number; end: number; resourceIds: string[] }[] {
  const byRange = new Map<string, { start: number; end: number; resourceIds: string[] }>();
  for (const [resourceId, ranges] of perResource) {
    for (const r of ranges) {
      const key = `${r.start}-${r.end}`;
      const entry = byRange.get(key) ?? { start: r.start, end: r.end, resourceIds: [] };
      entry.resourceIds.push(resourceId);
      byRange.set(key, entry);
    }
  }
  const all = [...byRange.values()].sort((a, b) => a.start - b.start || a.end - b.end);
  return mode === 'all' ? all.filter((o) => o.resourceIds.length === perResource.size) : all;
}
