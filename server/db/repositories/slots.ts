/** Slot rows: the only place seats are counted. */
import type { ResourceRow, SlotRow } from '../../core/types';
import { named, type Queryable } from '../pool';
import type { AvailabilityRead, AvailabilityResource, SlotWindow } from '../../core/store';

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

const COMMA = 44;
const MINUS = 45;

/**
 * One resource's slots from the statement's string: six integers a slot
 * (id, start in epoch ms, length in ms, capacity, seats taken, blocked as
 * 0/1), all comma-separated. Read digit by digit: no substring or Date per
 * field (a few microseconds for a thousand slots).
 */
function parseSlots(resourceId: string, text: string): SlotRow[] {
  const out: SlotRow[] = [];
  const f = [0, 0, 0, 0, 0, 0];
  let field = 0;
  let x = 0;
  let sign = 1;
  for (let i = 0, n = text.length; i <= n; i++) {
    const c = i < n ? text.charCodeAt(i) : COMMA;
    if (c === COMMA) {
      f[field++] = sign * x;
      x = 0;
      sign = 1;
      if (field === 6) {
        out.push({ id: f[0]!, resourceId, start: f[1]!, end: f[1]! + f[2]!, capacity: f[3]!, seatsTaken: f[4]!, blocked: f[5] === 1 });
        field = 0;
      }
    } else if (c === MINUS) sign = -1;
    else x = x * 10 + (c - 48);
  }
  return out;
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
   * Everything an availability answer reads, in one statement: the named
   * resources (archived ones too, so the caller can say which is missing)
   * and their slots overlapping [from - pad, to + pad), where pad is the
   * largest buffer padding (before + after) of those resources. Unlocked;
   * it reads at most `limit + 1` slot rows in all (each resource is its own index
   * scan that stops there, and the outer LIMIT stops the loop); past `limit` it sends only
   * the count (`slots` null), so an oversized query costs the database
   * `limit + 1` index entries and this node nothing. Each resource's slots
   * come as one string of numbers (see `parseSlots`) that Postgres builds in
   * start order: one row per resource instead of one per slot, and no
   * timestamps for pg to parse (their parsing was the top of the profile).
   */
  async availability(q: Queryable, tenantId: string, resourceIds: string[], from: number, to: number, limit: number): Promise<AvailabilityRead> {
    const { rows } = await q.query(named('slots.availability',
      `WITH res AS (
         SELECT id, slot_minutes, min_notice_minutes, max_advance_days, buffer_before_minutes, buffer_after_minutes, archived_at IS NOT NULL AS archived
         FROM resources WHERE tenant_id = $1 AND id = ANY($2::uuid[])
       ), win AS (
         SELECT $3::timestamptz - pad AS from_at, $4::timestamptz + pad AS to_at
         FROM (SELECT make_interval(mins => coalesce(max(buffer_before_minutes + buffer_after_minutes), 0)) AS pad FROM res) p
       ), s AS (
         SELECT s.id, s.resource_id, s.start_at, s.end_at, s.capacity, s.seats_taken, s.blocked
         FROM win CROSS JOIN unnest($2::uuid[]) AS r(id)
         CROSS JOIN LATERAL (
           SELECT * FROM slots
           WHERE tenant_id = $1 AND resource_id = r.id AND start_at < win.to_at AND end_at > win.from_at AND start_at > win.from_at - ${LONGEST_SLOT}
           ORDER BY start_at LIMIT $5 + 1
         ) s
         LIMIT $5 + 1
       ), n AS (SELECT count(*)::int AS n FROM s)
       SELECT id, slot_minutes, min_notice_minutes, max_advance_days, buffer_before_minutes, buffer_after_minutes, archived,
         (SELECT n FROM n) AS total, NULL AS slots
       FROM res
       UNION ALL
       SELECT resource_id, NULL, NULL, NULL, NULL, NULL, NULL, NULL, string_agg(
         id || ',' || (date_part('epoch', start_at) * 1000)::int8 || ',' || (date_part('epoch', end_at - start_at) * 1000)::int8
           || ',' || capacity || ',' || seats_taken || ',' || blocked::int,
         ',' ORDER BY start_at)
       FROM s WHERE (SELECT n FROM n) <= $5 GROUP BY resource_id`,
      [tenantId, resourceIds, new Date(from), new Date(to), limit],
    ));
    // A row per resource (with the count), and a row of slots per resource that has any: a union, not a
    // join, so no estimate can make the plan aggregate the slots once per resource.
    const resources: AvailabilityResource[] = [];
    let total = 0;
    const slots: Map<string, SlotRow[]> = new Map();
    for (const r of rows) {
      if (r.slots !== null) {
        slots.set(r.id, parseSlots(r.id, r.slots));
        continue;
      }
      total = r.total;
      if (!slots.has(r.id)) slots.set(r.id, []);
      resources.push({
        id: r.id,
        slotMinutes: r.slot_minutes,
        archived: r.archived,
        rules: {
          minNoticeMinutes: r.min_notice_minutes,
          maxAdvanceDays: r.max_advance_days,
          bufferBeforeMinutes: r.buffer_before_minutes,
          bufferAfterMinutes: r.buffer_after_minutes,
        },
      });
    }
    return { resources, total, slots: total > limit ? null : slots };
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
