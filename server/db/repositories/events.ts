/** The outbox: events written in the changing transaction, numbered after commit. */
import { named, noteChange, type Queryable } from '../pool';

export interface EventRow {
  seq: number;
  tenantId: string;
  type: string;
  resourceIds: string[];
  data: Record<string, unknown>;
  at: number;
}

const toEvent = (r: Record<string, any>): EventRow => ({
  seq: r.seq,
  tenantId: r.tenant_id,
  type: r.type,
  resourceIds: r.resource_ids,
  data: r.data,
  at: r.created_at.getTime(),
});

export const eventRepository = {
  /** Writes an event in the caller's transaction; it gets its seq once committed and sequenced. */
  async append(q: Queryable, tenantId: string, type: string, resourceIds: string[], data: Record<string, unknown>): Promise<void> {
    await q.query(named('events.append', 'INSERT INTO events (tenant_id, type, resource_ids, data) VALUES ($1, $2, $3, $4)', [tenantId, type, resourceIds, data]));
    // The node that committed it learns at once (whichever node's relay numbers it later).
    noteChange(q, { tenantId, type, resourceIds });
  },

  /** Numbers committed events in commit order (one sequencer at a time cluster-wide); returns them. */
  async sequence(q: Queryable, maxRows: number): Promise<EventRow[]> {
    const { rows } = await q.query(named('events.sequence', 'SELECT * FROM sequence_events($1)', [maxRows]));
    return rows.map(toEvent);
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

  /** The highest seq handed out so far. */
  async lastSeq(q: Queryable): Promise<number> {
    const { rows } = await q.query('SELECT last_seq FROM event_counter WHERE id');
    return rows[0].last_seq;
  },

  /**
   * Locks numbered events nobody published (their sequencer died between
   * numbering and publishing), older than `olderThanMs`. Call inside a
   * transaction and mark them published before committing: SKIP LOCKED hands
   * each to one node, and a node dying mid-way leaves them for the next.
   */
  async lockStranded(q: Queryable, olderThanMs: number, limit: number): Promise<EventRow[]> {
    const { rows } = await q.query(
      `SELECT * FROM events WHERE seq IS NOT NULL AND published_at IS NULL AND created_at < now() - make_interval(secs => $1)
       ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [olderThanMs / 1000, limit],
    );
    return rows.map(toEvent);
  },

  /** Marks events as handed to the bus. */
  async markPublished(q: Queryable, seqs: number[]): Promise<void> {
    if (seqs.length) await q.query(named('events.markPublished', 'UPDATE events SET published_at = now() WHERE seq = ANY($1::bigint[])', [seqs]));
  },

  /** True when committed events still wait for a number. */
  async hasUnsequenced(q: Queryable): Promise<boolean> {
    const { rows } = await q.query('SELECT 1 FROM events WHERE seq IS NULL LIMIT 1');
    return rows.length > 0;
  },
};
