/**
 * Events: written by the changing transaction as a logical message (no table
 * write), stored with their seq by the feed decoder (server/db/feed.ts), read
 * back by the REST feed and live resync.
 */
import { randomUUID } from 'node:crypto';
import { changedRanges, type DomainEvent, type EventData, type EventType, type FeedEvent } from '../../core/events';
import { named, noteChange, type Queryable } from '../pool';
import type { EventRow } from '../../core/store';

const toEvent = (r: Record<string, any>): EventRow => ({
  seq: r.seq,
  tenantId: r.tenant_id,
  type: r.type,
  resourceIds: r.resource_ids,
  data: r.data,
  slots: r.slots,
  prevSeqs: r.prev_seqs.map(Number),
  at: r.created_at.getTime(),
});

/** The logical-message prefix of Slotwise events. */
export const MESSAGE_PREFIX = 'slotwise';
/** The prefix of a feed reader's mark (see `mark`). */
export const MARK_PREFIX = 'slotwise-mark';

/**
 * The message's JSON text, cut where the database fills in values only it
 * knows (the row's id and times) and the slots it changed: a fast-path
 * function joins the parts with them, so no JSON is built or edited in SQL.
 * `build` makes the event with `mark(name)` in those places; the cuts come in
 * the order of `names`, then the slots. The marks carry a random token no
 * request can contain.
 */
export function messageParts(build: (mark: (name: string) => string) => DomainEvent, names: string[]): string[] {
  const token = `\u0001${randomUUID()}:`;
  const mark = (name: string) => token + name;
  const text = JSON.stringify({ ...build(mark), slots: mark('slots') });
  const parts: string[] = [];
  let from = 0;
  for (const name of [...names, 'slots']) {
    const cut = JSON.stringify(mark(name));
    const at = text.indexOf(cut, from);
    if (at < 0) throw new Error(`event message has no place for ${name}`);
    parts.push(text.slice(from, at));
    from = at + cut.length;
  }
  parts.push(text.slice(from));
  return parts;
}

export const eventRepository = {
  /**
   * Writes an event in the caller's transaction, as a transactional logical
   * message: the feed decoder sees it once the transaction commits, never if
   * it rolls back. The message carries the seats the change left on the
   * ranges it touched, read in this transaction (which holds their row locks).
   */
  async append<T extends EventType>(q: Queryable, tenantId: string, type: T, resourceIds: string[], data: EventData[T]): Promise<void> {
    const event = { tenantId, type, resourceIds, data } as DomainEvent;
    const ranges = changedRanges(event);
    const text = JSON.stringify(event);
    const prefix = `${text.slice(0, -1)},"slots":[`;
    await q.query(named(ranges.length ? 'events.emitWithSlots' : 'events.emit', ranges.length
      ? `SELECT pg_logical_emit_message(true, '${MESSAGE_PREFIX}', $1::text || coalesce((
           SELECT string_agg(feed_slot(s.resource_id, s.start_at, s.end_at, s.capacity, s.seats_taken, s.blocked), ',' ORDER BY s.resource_id, s.start_at)
           FROM slots s WHERE s.id IN (
             SELECT s2.id FROM slots s2 JOIN unnest($2::uuid[], $3::timestamptz[], $4::timestamptz[]) AS w(r, a, b)
               ON s2.resource_id = w.r AND s2.start_at < w.b AND s2.end_at > w.a AND s2.start_at > w.a - interval '1 day')), '') || ']}')`
      : `SELECT pg_logical_emit_message(true, '${MESSAGE_PREFIX}', $1::text || ']}')`,
      ranges.length
        ? [prefix, ranges.map((r) => r.resourceId), ranges.map((r) => new Date(r.start)), ranges.map((r) => new Date(r.end))]
        : [prefix]));
    // The node that committed it learns at once (before the decoder stores it).
    noteChange(q, { tenantId, type, resourceIds });
  },

  /**
   * A tenant's numbered events after `after`, oldest first (only those naming
   * one of `resourceIds` when given): at most `limit`, and within `maxBytes`
   * of `data` (as JSON text) in all, except that the first comes whatever its
   * size, so a reader always moves on. The sizes are summed in SQL over the
   * page's positions and only the events within the budget are sent, so an
   * oversized page is never materialized here. `cut`: events within `limit`
   * were left out for the budget.
   */
  async page(q: Queryable, tenantId: string, after: number, limit: number, maxBytes: number, resourceIds?: string[]): Promise<{ rows: EventRow[]; cut: boolean }> {
    const { rows } = await q.query(named(resourceIds ? 'events.pageForResources' : 'events.page',
      `WITH page AS (
         SELECT seq, row_number() OVER w AS n, sum(octet_length(data::text)) OVER w AS upto, count(*) OVER () AS total
         FROM (SELECT seq, data FROM events WHERE tenant_id = $1 AND seq > $2${resourceIds ? ' AND resource_ids && $5::uuid[]' : ''}
               ORDER BY seq LIMIT $3) e
         WINDOW w AS (ORDER BY seq)
       )
       SELECT ev.*, p.total FROM page p JOIN events ev ON ev.seq = p.seq
       WHERE p.upto <= $4 OR p.n = 1
       ORDER BY ev.seq`,
      resourceIds ? [tenantId, after, limit, maxBytes, resourceIds] : [tenantId, after, limit, maxBytes],
    ));
    return { rows: rows.map(toEvent), cut: rows.length > 0 && rows.length < Number(rows[0].total) };
  },

  /**
   * Writes a mark into the WAL (a non-transactional logical message): once
   * the feed decoder has passed it, every transaction that committed before
   * this call is stored. Returns its LSN (see `storedUpTo`).
   */
  async mark(q: Queryable): Promise<string> {
    const { rows } = await q.query(named('events.mark', `SELECT pg_logical_emit_message(false, '${MARK_PREFIX}', '')::text AS lsn`, []));
    return rows[0].lsn;
  },

  /** True once the decoder has stored everything before `lsn` (a mark's). */
  async storedUpTo(q: Queryable, lsn: string): Promise<boolean> {
    const { rows } = await q.query(named('events.storedUpTo', 'SELECT lsn >= $1::pg_lsn AS done FROM feed_cursor WHERE id', [lsn]));
    return rows[0].done;
  },

  /** The highest seq stored so far (a subscriber's starting point). */
  async lastSeq(q: Queryable): Promise<number> {
    const { rows } = await q.query(named('events.lastSeq', 'SELECT last_seq FROM feed_cursor WHERE id', []));
    return rows[0].last_seq;
  },

  /** Stored events of every tenant after `after`, oldest first (the fan-out catching up). */
  async after(q: Queryable, after: number, limit: number): Promise<EventRow[]> {
    const { rows } = await q.query(named('events.after', 'SELECT * FROM events WHERE seq > $1 ORDER BY seq LIMIT $2', [after, limit]));
    return rows.map(toEvent);
  },
};
