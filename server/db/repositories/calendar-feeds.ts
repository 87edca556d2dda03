/** Calendar feeds (migration 009): who may read which bookings through a token's hash. */
import type { CalendarFeedRow } from '../../core/store';
import { named, type Queryable } from '../pool';

const COLUMNS = 'id, tenant_id, resource_id, user_id, timezone, created_by, created_at';

const toFeed = (r: Record<string, any>): CalendarFeedRow => ({
  id: r.id,
  tenantId: r.tenant_id,
  resourceId: r.resource_id,
  userId: r.user_id,
  timezone: r.timezone,
  createdBy: r.created_by,
  createdAt: r.created_at.getTime(),
});

export const calendarFeedRepository = {
  async insert(q: Queryable, tenantId: string, f: { resourceId: string | null; userId: string | null; timezone: string; tokenHash: Buffer; createdBy: string }): Promise<CalendarFeedRow> {
    const { rows } = await q.query(
      `INSERT INTO calendar_feeds (tenant_id, resource_id, user_id, timezone, token_hash, created_by) VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
      [tenantId, f.resourceId, f.userId, f.timezone, f.tokenHash, f.createdBy],
    );
    return toFeed(rows[0]);
  },

  async count(q: Queryable, tenantId: string): Promise<number> {
    // Concurrent creates of one tenant wait for each other here (until their transactions end), so a limit checked
    // against this count cannot be overshot.
    await q.query("SELECT pg_advisory_xact_lock(hashtextextended('calendar_feeds:' || $1, 0))", [tenantId]);
    const { rows } = await q.query('SELECT count(*)::int AS n FROM calendar_feeds WHERE tenant_id = $1', [tenantId]);
    return rows[0].n;
  },

  async byTokenHash(q: Queryable, tokenHash: Buffer): Promise<CalendarFeedRow | null> {
    const { rows } = await q.query(named('calendarFeeds.byTokenHash', `SELECT ${COLUMNS} FROM calendar_feeds WHERE token_hash = $1`, [tokenHash]));
    return rows[0] ? toFeed(rows[0]) : null;
  },

  async get(q: Queryable, tenantId: string, id: string): Promise<CalendarFeedRow | null> {
    const { rows } = await q.query(`SELECT ${COLUMNS} FROM calendar_feeds WHERE tenant_id = $1 AND id = $2`, [tenantId, id]);
    return rows[0] ? toFeed(rows[0]) : null;
  },

  async page(q: Queryable, tenantId: string, userId: string | null, after: { createdAt: number; id: string } | null, limit: number): Promise<CalendarFeedRow[]> {
    const { rows } = await q.query(
      `SELECT ${COLUMNS} FROM calendar_feeds WHERE tenant_id = $1 AND ($2::text IS NULL OR user_id = $2)
         AND ($3::timestamptz IS NULL OR (created_at, id) > ($3, $4::uuid))
       ORDER BY created_at, id LIMIT $5`,
      [tenantId, userId, after ? new Date(after.createdAt) : null, after?.id ?? null, limit],
    );
    return rows.map(toFeed);
  },

  async delete(q: Queryable, id: string): Promise<void> {
    await q.query('DELETE FROM calendar_feeds WHERE id = $1', [id]);
  },
};
