/** Slot rows: the only place seats are counted. */
import type { SlotRow } from '../../core/types';
import { named, type Queryable } from '../pool';

const toSlot = (r: Record<string, any>): SlotRow => ({
  id: r.id,
  resourceId: r.resource_id,
  start: r.start_at.getTime(),
  end: r.end_at.getTime(),
  capacity: r.capacity,
  seatsTaken: r.seats_taken,
  blocked: r.blocked,
});

/**
 * No slot is longer than a day: slots are generated only by schedule.ts's
 * slotsIn, exactly slotMinutes long, and slotMinutes divides 1440. So a slot
 * overlapping [from, to) starts after from - 1 day. Saying so lets
 * the (resource_id, start_at) index stop there instead of reading every
 * earlier slot of the resource (EXPLAIN: 20,000 rows filtered per hold on a
 * 5-minute grid 70 days out, 5.8 ms → 0.5 ms).
 */
const LONGEST_SLOT = "interval '1 day'";

export interface SlotWindow {
  resourceId: string;
  start: number;
  end: number;
}

export const slotRepository = {
  /**
   * Locks every slot overlapping any of the windows, in one global order
   * (resource, start). Every writer locks slots this way and only this way,
   * which is why concurrent multi-resource requests cannot deadlock.
   */
  async lock(q: Queryable, tenantId: string, windows: SlotWindow[]): Promise<SlotRow[]> {
    if (windows.length === 0) return [];
    const { rows } = await q.query(
      named('slots.lock', `SELECT s.id, s.resource_id, s.start_at, s.end_at, s.capacity, s.seats_taken, s.blocked
       FROM slots s JOIN unnest($2::uuid[], $3::timestamptz[], $4::timestamptz[]) AS w(resource_id, from_at, to_at)
         ON s.resource_id = w.resource_id AND s.start_at < w.to_at AND s.end_at > w.from_at AND s.start_at > w.from_at - ${LONGEST_SLOT}
       WHERE s.tenant_id = $1
       ORDER BY s.resource_id, s.start_at
       FOR UPDATE OF s`,
      [tenantId, windows.map((w) => w.resourceId), windows.map((w) => new Date(w.start)), windows.map((w) => new Date(w.end))],
    ));
    // Two windows of one resource may overlap: keep each slot once.
    const seen = new Set<number>();
    return rows.map(toSlot).filter((s) => !seen.has(s.id) && (seen.add(s.id), true));
  },

  /** Adds a seat delta to each slot; the table's CHECK refuses any oversell. */
  async addSeats(q: Queryable, deltas: Map<number, number>): Promise<void> {
    const entries = [...deltas].filter(([, d]) => d !== 0);
    if (entries.length === 0) return;
    await q.query(named('slots.addSeats',
      `UPDATE slots s SET seats_taken = s.seats_taken + d.delta
       FROM unnest($1::bigint[], $2::int[]) AS d(id, delta) WHERE s.id = d.id`,
      [entries.map(([id]) => id), entries.map(([, d]) => d)],
    ));
  },

  /**
   * Unlocked read of slots for availability: at most `limit` rows in all.
   * Each resource is its own index scan that stops at `limit`, and the outer
   * LIMIT stops the loop, so an oversized query costs the database `limit`
   * rows, not every slot it names (an `ORDER BY resource_id, start_at` over
   * `resource_id = ANY(...)` sorted every matching row first). Without that
   * outer ORDER BY, SQL promises no order: callers sort. Getting `limit` rows
   * means there may be more: ask for one more than you accept.
   */
  async read(q: Queryable, tenantId: string, resourceIds: string[], from: number, to: number, limit: number): Promise<SlotRow[]> {
    const { rows } = await q.query(named('slots.read',
      `SELECT s.id, s.resource_id, s.start_at, s.end_at, s.capacity, s.seats_taken, s.blocked
       FROM unnest($2::uuid[]) AS r(id)
       CROSS JOIN LATERAL (
         SELECT * FROM slots
         WHERE tenant_id = $1 AND resource_id = r.id AND start_at < $4 AND end_at > $3 AND start_at > $3::timestamptz - ${LONGEST_SLOT}
         ORDER BY start_at LIMIT $5
       ) s
       LIMIT $5`,
      [tenantId, resourceIds, new Date(from), new Date(to), limit],
    ));
    return rows.map(toSlot);
  },

  /** How many slot rows `read` would find, counting no further than `limit`: the database counts, nothing is sent or parsed. */
  async count(q: Queryable, tenantId: string, resourceIds: string[], from: number, to: number, limit: number): Promise<number> {
    const { rows } = await q.query(named('slots.count',
      `SELECT count(*)::int AS n FROM (
         SELECT 1 FROM unnest($2::uuid[]) AS r(id)
         CROSS JOIN LATERAL (
           SELECT 1 FROM slots
           WHERE tenant_id = $1 AND resource_id = r.id AND start_at < $4 AND end_at > $3 AND start_at > $3::timestamptz - ${LONGEST_SLOT}
           LIMIT $5
         ) s
         LIMIT $5
       ) x`,
      [tenantId, resourceIds, new Date(from), new Date(to), limit],
    ));
    return rows[0].n;
  },

  /** Unlocked read of the slots overlapping each window, sorted by resource and start. */
  async readWindows(q: Queryable, windows: SlotWindow[]): Promise<SlotRow[]> {
    if (windows.length === 0) return [];
    const { rows } = await q.query(named('slots.readWindows',
      `SELECT DISTINCT s.id, s.resource_id, s.start_at, s.end_at, s.capacity, s.seats_taken, s.blocked
       FROM slots s JOIN unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS w(resource_id, from_at, to_at)
         ON s.resource_id = w.resource_id AND s.start_at < w.to_at AND s.end_at > w.from_at AND s.start_at > w.from_at - ${LONGEST_SLOT}
       ORDER BY s.resource_id, s.start_at`,
      [windows.map((w) => w.resourceId), windows.map((w) => new Date(w.start)), windows.map((w) => new Date(w.end))],
    ));
    return rows.map(toSlot);
  },

  /** Inserts new slots and updates changed ones (end, capacity, blocked). */
  async upsert(q: Queryable, tenantId: string, slots: Omit<SlotRow, 'id' | 'seatsTaken'>[]): Promise<void> {
    for (let i = 0; i < slots.length; i += 5000) {
      const chunk = slots.slice(i, i + 5000);
      await q.query(
        `INSERT INTO slots (tenant_id, resource_id, start_at, end_at, capacity, blocked)
         SELECT $1, * FROM unnest($2::uuid[], $3::timestamptz[], $4::timestamptz[], $5::int[], $6::bool[])
         ON CONFLICT (resource_id, start_at) DO UPDATE
           SET end_at = EXCLUDED.end_at, capacity = EXCLUDED.capacity, blocked = EXCLUDED.blocked
           WHERE (slots.end_at, slots.capacity, slots.blocked) IS DISTINCT FROM (EXCLUDED.end_at, EXCLUDED.capacity, EXCLUDED.blocked)`,
        [tenantId, chunk.map((s) => s.resourceId), chunk.map((s) => new Date(s.start)), chunk.map((s) => new Date(s.end)),
          chunk.map((s) => s.capacity), chunk.map((s) => s.blocked)],
      );
    }
  },

  /** Deletes slots by id (callers have checked they hold no seats). */
  async delete(q: Queryable, ids: number[]): Promise<void> {
    if (ids.length) await q.query('DELETE FROM slots WHERE id = ANY($1::bigint[]) AND seats_taken = 0', [ids]);
  },

  /** Count of open slots of the resources from `from` on. */
  async countOpen(q: Queryable, resourceIds: string[], from: number): Promise<number> {
    const { rows } = await q.query('SELECT count(*)::int AS n FROM slots WHERE resource_id = ANY($1::uuid[]) AND start_at >= $2 AND NOT blocked', [
      resourceIds,
      new Date(from),
    ]);
    return rows[0].n;
  },
};
