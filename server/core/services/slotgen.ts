/**
 * Materializes slots from schedules: a resource is open where its own schedule
 * and every ancestor's schedule are open, blocked where a block on it or an
 * ancestor lies. Regeneration never silently drops or shrinks a slot that
 * holds seats: it collects those and throws a 409 listing them.
 */
import type { ScheduleRow, Unit } from '../store';
import type { ErrorCode } from '../../../shared/errors';
import { DomainError } from '../errors';
import { intersectRanges, openRanges, slotsIn, type Range, type ScheduleSpec } from '../schedule';
import { overlaps } from '../rules';
import type { ResourceRow, SlotRow } from '../types';

const DAY = 86_400_000;
/** The most slots one change may regenerate (about what Postgres upserts within a request's statement deadline). */
export const MAX_REGENERATED_SLOTS = 300_000;

/** The end of the slot horizon: `days` whole UTC days after today. */
export function horizonEnd(now: number, days: number): number {
  return Math.floor(now / DAY) * DAY + (days + 1) * DAY;
}

const asSpec = (s: ScheduleRow): ScheduleSpec => s as unknown as ScheduleSpec;

export interface SlotConflict {
  resourceId: string;
  start: string;
  end: string;
  seatsTaken: number;
}

/**
 * Regenerates the slots of `rootId` (and its descendants, unless told not to) over [from, to)
 * (each clipped to its own generated horizon). Throws `conflictCode` when a
 * slot with seats would disappear, change length, close, or drop below them.
 * Returns the number of open slots now in the window.
 */
export async function regenerateSubtree(
  q: Unit,
  tenantId: string,
  rootId: string,
  window: Range,
  conflictCode: ErrorCode,
  withDescendants = true,
): Promise<number> {
  const all = withDescendants ? await q.resources.subtree(tenantId, rootId) : await q.resources.byIds(tenantId, [rootId]);
  const subtree = all.filter((r) => r.archivedAt === null);
  if (subtree.length === 0) return 0;
  // Bounded before any slot is made: past it, the work (and memory) of one request would stall the node.
  const estimate = subtree.reduce((n, r) => n + Math.max(0, window.end - window.start) / (r.slotMinutes * 60_000), 0);
  if (estimate > MAX_REGENERATED_SLOTS) {
    throw new DomainError('limit-exceeded', `this change would regenerate about ${Math.round(estimate)} slots (${subtree.length} resources), more than ${MAX_REGENERATED_SLOTS} at once; `
      + 'set opening hours on smaller subtrees, use a coarser slot grid, or a shorter SLOT_HORIZON_DAYS', { limit: 'schedule.slots', max: MAX_REGENERATED_SLOTS });
  }
  const above = await q.resources.ancestorIds(tenantId, rootId);
  const schedules = await q.schedules.forResources([...above, ...subtree.map((r) => r.id)]);
  const blocks = await q.blocks.overlapping([...above, ...subtree.map((r) => r.id)], window.start - DAY, window.end + DAY);

  // Each resource's ancestors (ids), from the root's chain plus the path inside the subtree.
  const parent = new Map(subtree.map((r) => [r.id, r.parentId]));
  const chain = (id: string): string[] => {
    const out: string[] = [];
    for (let p = parent.get(id); p && parent.has(p); p = parent.get(p)) out.push(p);
    return [...out, ...above];
  };

  const lockWindows = subtree.map((r) => ({ resourceId: r.id, start: window.start, end: window.end + DAY }));
  const existing = await q.slots.lock(tenantId, lockWindows);
  const conflicts: SlotConflict[] = [];
  const upserts: Omit<SlotRow, 'id' | 'seatsTaken'>[] = [];
  const deletes: number[] = [];

  for (const r of subtree) {
    const own = schedules.get(r.id);
    const to = Math.min(window.end, own?.generatedTo ?? window.end);
    const desired = own ? desiredSlots(r, own, chain(r.id), schedules, blocks, { start: window.start, end: to }) : [];
    const byStart = new Map(desired.map((s) => [s.start, s]));
    for (const e of existing) {
      if (e.resourceId !== r.id || e.start < window.start || e.start >= window.end) continue;
      const d = byStart.get(e.start);
      const broken = !d || d.end !== e.end || d.capacity < e.seatsTaken || (d.blocked && !e.blocked);
      if (e.seatsTaken > 0 && broken) {
        conflicts.push({ resourceId: r.id, start: new Date(e.start).toISOString(), end: new Date(e.end).toISOString(), seatsTaken: e.seatsTaken });
        byStart.delete(e.start);
      } else if (!d) deletes.push(e.id);
    }
    upserts.push(...byStart.values());
  }
  if (conflicts.length > 0) {
    throw new DomainError(conflictCode, `${conflicts.length} slot(s) with seats taken would be dropped or overbooked`, { conflicts });
  }
  await q.slots.delete(deletes);
  await q.slots.upsert(tenantId, upserts);
  return upserts.filter((s) => !s.blocked).length;
}

/** The slots a resource should have in the window, given its schedule, its ancestors' and the blocks. */
function desiredSlots(
  r: ResourceRow,
  own: ScheduleRow,
  ancestors: string[],
  schedules: Map<string, ScheduleRow>,
  blocks: { resourceId: string; start: number; end: number }[],
  window: Range,
): Omit<SlotRow, 'id' | 'seatsTaken'>[] {
  if (window.end <= window.start) return [];
  // Generate a day beyond each edge and keep slots that start inside, so a
  // window edge never cuts a slot short.
  const wide = { start: window.start - DAY, end: window.end + DAY };
  let open = openRanges(asSpec(own), wide.start, wide.end);
  for (const a of ancestors) {
    const s = schedules.get(a);
    // An ancestor without a schedule (a plain grouping node) does not narrow its children.
    if (s) open = intersectRanges(open, openRanges(asSpec(s), wide.start, wide.end));
  }
  const closing = blocks.filter((b) => b.resourceId === r.id || ancestors.includes(b.resourceId));
  const inside = slotsIn(open, r.slotMinutes, r.timezone).filter((s) => s.start >= window.start && s.start < window.end);
  return inside.map((s) => ({
    resourceId: r.id,
    start: s.start,
    end: s.end,
    capacity: r.capacity,
    blocked: closing.some((b) => overlaps(b, s)),
  }));
}
