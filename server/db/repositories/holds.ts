/** Holds and their resources. */
import type { HoldRow, HoldStatus } from '../../core/types';
import type pg from 'pg';
import { LazyConnection, lockOrder, type BatchKind, type FastWrite } from '../batch';
import { named, noteChange, type Queryable } from '../pool';
import type { FastResult, MarkedEvent } from '../../core/store';
import { messageParts } from './events';

const SELECT = `SELECT h.id, h.tenant_id, h.owner_id, h.start_at, h.end_at, h.seats, h.status, h.expires_at, h.booking_id, h.created_at,
  ARRAY(SELECT hr.resource_id FROM hold_resources hr WHERE hr.hold_id = h.id ORDER BY hr.resource_id) AS resource_ids
  FROM holds h`;

const toHold = (r: Record<string, any>): HoldRow => ({
  id: r.id,
  tenantId: r.tenant_id,
  ownerId: r.owner_id,
  resourceIds: r.resource_ids,
  start: r.start_at.getTime(),
  end: r.end_at.getTime(),
  seats: r.seats,
  status: r.status,
  expiresAt: r.expires_at.getTime(),
  bookingId: r.booking_id,
  createdAt: r.created_at.getTime(),
});

/** One fast-path hold's parameters. */
interface FastHold extends FastWrite {
  ttlSeconds: number;
}
type FastRow = { o_status: 'ok' | 'conflict' | 'fallback'; o_conflicts: any; o_id: string; o_created_at: Date; o_expires_at: Date };

/**
 * create_hold_fast alone, or for several holds in one statement: each row of
 * the arrays is one call, in order (a lateral call runs once per row of the
 * unnest, in its order), all in the statement's one transaction. Batches are
 * sorted by first resource and start, the order every writer locks slots in.
 */
export const fastHolds: BatchKind<FastHold, FastRow> = {
  async one(q, h) {
    const { rows } = await q.query(named('holds.createFastAt', 'SELECT * FROM create_hold_fast($1, $2, $3, $4, $5, $6, $7, $8, $9)',
      [h.tenantId, h.ownerId, h.resourceIds, h.versions, h.start, h.end, h.seats, h.ttlSeconds, h.message]));
    return rows[0];
  },
  async many(q, hs) {
    const col = <T>(f: (h: FastHold) => T) => hs.map(f);
    const { rows } = await q.query(named('holds.createFastMany',
      `SELECT u.n, r.* FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::int[], $8::int[],
           $9::text[], $10::text[], $11::text[], $12::text[], $13::text[])
         WITH ORDINALITY AS u(tenant, owner, resources, versions, start_at, end_at, seats, ttl, m1, m2, m3, m4, m5, n)
       CROSS JOIN LATERAL create_hold_fast(u.tenant, u.owner, u.resources::uuid[], u.versions::int[], u.start_at, u.end_at, u.seats, u.ttl,
         ARRAY[u.m1, u.m2, u.m3, u.m4, u.m5]) r
       ORDER BY u.n`,
      [col((h) => h.tenantId), col((h) => h.ownerId), col((h) => `{${h.resourceIds.join(',')}}`), col((h) => `{${h.versions.join(',')}}`),
        col((h) => h.start), col((h) => h.end), col((h) => h.seats), col((h) => h.ttlSeconds),
        ...[0, 1, 2, 3, 4].map((i) => col((h) => h.message[i]!))],
    ));
    if (rows.length !== hs.length) throw new Error(`create_hold_fast batch: ${rows.length} rows for ${hs.length} holds`);
    return rows;
  },
  compare: lockOrder,
};

export const holdRepository = {
  /** Inserts a hold expiring ttlSeconds from the database's now. */
  async insert(q: Queryable, tenantId: string, ownerId: string | null, req: { resourceIds: string[]; start: number; end: number; seats: number }, ttlSeconds: number): Promise<HoldRow> {
    const { rows } = await q.query(named('holds.insert',
      `WITH h AS (
         INSERT INTO holds (tenant_id, owner_id, start_at, end_at, seats, status, expires_at)
         VALUES ($1, $2, $3, $4, $5, 'held', now() + make_interval(secs => $6)) RETURNING *
       ), hr AS (
         INSERT INTO hold_resources (hold_id, resource_id) SELECT h.id, unnest($7::uuid[]) FROM h
       )
       SELECT h.*, $7::uuid[] AS resource_ids FROM h`,
      [tenantId, ownerId, new Date(req.start), new Date(req.end), req.seats, ttlSeconds, [...req.resourceIds].sort()],
    ));
    return toHold(rows[0]);
  },

  /**
   * The one-statement hold (create_hold_fast, migrations 005–007): seats,
   * hold, resources and its hold.created event, or nothing with 'conflict' or
   * 'fallback'. `event` is the event's data; the function fills in the hold's
   * id, createdAt and expiresAt. From an autocommit unit that has not taken
   * a connection, it goes to the group commit (batch.ts) with the holds of
   * other requests.
   */
  async createFast(q: Queryable, tenantId: string, ownerId: string | null, req: { resourceIds: string[]; start: number; end: number; seats: number },
    ttlSeconds: number, event: MarkedEvent, versions: number[]): Promise<FastResult<HoldRow>> {
    const resourceIds = [...req.resourceIds].sort();
    const item: FastHold = { tenantId, ownerId, resourceIds, versions, start: new Date(req.start), end: new Date(req.end), seats: req.seats, ttlSeconds, message: messageParts(event.build, event.names) };
    const r = q instanceof LazyConnection && !q.connected ? await q.batcher.submit(fastHolds, item) : await fastHolds.one(q as pg.PoolClient, item);
    if (r.o_status !== 'ok') return { status: r.o_status, conflicts: r.o_conflicts };
    noteChange(q, { tenantId, type: 'hold.created', resourceIds });
    return {
      status: 'ok',
      row: {
        id: r.o_id, tenantId, ownerId, resourceIds, start: req.start, end: req.end, seats: req.seats, status: 'held',
        expiresAt: r.o_expires_at.getTime(), bookingId: null, createdAt: r.o_created_at.getTime(),
      },
    };
  },


  /** Reads one hold of a tenant; `lock` takes its row lock. */
  async get(q: Queryable, tenantId: string, id: string, lock = false): Promise<HoldRow | null> {
    const { rows } = await q.query(named(lock ? 'holds.getLocked' : 'holds.get', `${SELECT} WHERE h.tenant_id = $1 AND h.id = $2 ${lock ? 'FOR UPDATE OF h' : ''}`, [tenantId, id]));
    return rows[0] ? toHold(rows[0]) : null;
  },

  /** Sets status (and booking) of a locked hold. */
  async setStatus(q: Queryable, id: string, status: HoldStatus, bookingId: string | null = null): Promise<void> {
    await q.query(named('holds.setStatus', 'UPDATE holds SET status = $2, booking_id = COALESCE($3, booking_id), updated_at = now() WHERE id = $1', [id, status, bookingId]));
  },

  /** Moves a locked hold's expiry. */
  async setExpiry(q: Queryable, id: string, expiresAt: number): Promise<number> {
    const { rows } = await q.query('UPDATE holds SET expires_at = $2, updated_at = now() WHERE id = $1 RETURNING expires_at', [id, new Date(expiresAt)]);
    return rows[0].expires_at.getTime();
  },

  /**
   * Locks live holds whose expiry has passed, skipping rows another
   * transaction holds (another node's sweeper, or a confirm in flight), so no
   * two nodes expire the same hold. Optionally only those touching resources
   * and a range.
   */
  async lockDue(q: Queryable, limit: number, near?: { tenantId: string; resourceIds: string[]; start: number; end: number }): Promise<HoldRow[]> {
    const { rows } = near
      ? await q.query(
          `${SELECT} WHERE h.status = 'held' AND h.expires_at <= now() AND h.tenant_id = $2
             AND h.start_at < $5 AND h.end_at > $4
             AND EXISTS (SELECT 1 FROM hold_resources x WHERE x.hold_id = h.id AND x.resource_id = ANY($3::uuid[]))
           ORDER BY h.expires_at LIMIT $1 FOR UPDATE OF h SKIP LOCKED`,
          [limit, near.tenantId, near.resourceIds, new Date(near.start), new Date(near.end)],
        )
      : await q.query(named('holds.lockDue', `${SELECT} WHERE h.status = 'held' AND h.expires_at <= now() ORDER BY h.expires_at LIMIT $1 FOR UPDATE OF h SKIP LOCKED`, [limit]));
    return rows.map(toHold);
  },

  /** True when some live hold on these resources is past its expiry (a cheap, lock-free probe). */
  async anyDueNear(q: Queryable, resourceIds: string[], start: number, end: number): Promise<boolean> {
    const { rows } = await q.query(named('holds.anyDueNear',
      `SELECT 1 FROM holds h JOIN hold_resources hr ON hr.hold_id = h.id
       WHERE h.status = 'held' AND h.expires_at <= now() AND hr.resource_id = ANY($1::uuid[])
         AND h.start_at < $3 AND h.end_at > $2 LIMIT 1`,
      [resourceIds, new Date(start), new Date(end)],
    ));
    return rows.length > 0;
  },

  /**
   * Takes the transaction's lock on one user's holds, then counts what the
   * quotas read: the user's live holds (and when the first of them expires),
   * and their holds on any of these resources overlapping the range created
   * within the window (and when the oldest of those leaves it). Locked, so
   * concurrent requests of one user are counted one after the other; each
   * count reads only its own index range (holds_owner_live, holds_owner),
   * never the user's whole history.
   */
  async quotaOf(q: Queryable, tenantId: string, ownerId: string, req: { resourceIds: string[]; start: number; end: number }, windowSeconds: number) {
    await q.query(named('holds.lockOwner', 'SELECT pg_advisory_xact_lock(hashtextextended($1, 7261002))', [`${tenantId}:${ownerId}`]));
    const { rows } = await q.query(named('holds.quotaOf',
      `WITH live AS (
         SELECT h.expires_at FROM holds h
         WHERE h.tenant_id = $1 AND h.owner_id = $2 AND h.status = 'held' AND h.expires_at > now()
       ), again AS (
         SELECT h.created_at FROM holds h
         WHERE h.tenant_id = $1 AND h.owner_id = $2 AND h.created_at > now() - make_interval(secs => $6) AND h.start_at < $5 AND h.end_at > $4
           AND EXISTS (SELECT 1 FROM hold_resources hr WHERE hr.hold_id = h.id AND hr.resource_id = ANY($3::uuid[]))
       )
       SELECT (SELECT count(*)::int FROM live) AS live,
              (SELECT min(expires_at) FROM live) AS next_expiry,
              (SELECT count(*)::int FROM again) AS again,
              (SELECT min(created_at) + make_interval(secs => $6) FROM again) AS again_clears,
              now() AS now`,
      [tenantId, ownerId, req.resourceIds, new Date(req.start), new Date(req.end), windowSeconds],
    ));
    const r = rows[0];
    return {
      live: r.live as number,
      nextExpiry: (r.next_expiry as Date | null)?.getTime() ?? null,
      again: r.again as number,
      againClears: (r.again_clears as Date | null)?.getTime() ?? null,
      now: (r.now as Date).getTime(),
    };
  },

  /** Holds with live seats on a resource from `from` on (for archive checks). */
  async liveOn(q: Queryable, resourceId: string, from: number): Promise<number> {
    const { rows } = await q.query(
      `SELECT count(*)::int AS n FROM holds h JOIN hold_resources hr ON hr.hold_id = h.id
       WHERE hr.resource_id = $1 AND h.status = 'held' AND h.end_at > $2`,
      [resourceId, new Date(from)],
    );
    return rows[0].n;
  },
};
