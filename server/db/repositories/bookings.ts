/** Bookings and their resources (a junction table, never an array column). */
import type { BookingPaymentState, BookingRow } from '../../core/types';
import type pg from 'pg';
import { LazyConnection, lockOrder, type BatchKind, type FastWrite } from '../batch';
import { named, noteChange, type Queryable } from '../pool';
import type { BookingFilter, CalendarWindow, FastResult, MarkedEvent, NewBooking } from '../../core/store';
import { messageParts } from './events';

const SELECT = `SELECT b.*, ARRAY(SELECT br.resource_id FROM booking_resources br WHERE br.booking_id = b.id ORDER BY br.resource_id) AS resource_ids
  FROM bookings b`;

const toBooking = (r: Record<string, any>): BookingRow => ({
  id: r.id,
  tenantId: r.tenant_id,
  holdId: r.hold_id,
  ownerId: r.owner_id,
  resourceIds: r.resource_ids,
  start: r.start_at.getTime(),
  end: r.end_at.getTime(),
  seats: r.seats,
  status: r.status,
  customer: r.customer,
  attendees: r.attendees,
  metadata: r.metadata,
  version: r.version,
  cancelReason: r.cancel_reason,
  payment: r.payment ?? null,
  createdAt: r.created_at.getTime(),
  updatedAt: r.updated_at.getTime(),
});

/** One fast-path direct booking's parameters (attendees as JSON text). */
interface FastBooking extends FastWrite {
  customer: unknown;
  attendees: string;
  metadata: unknown;
}
type FastRow = { o_status: 'ok' | 'conflict' | 'fallback'; o_conflicts: any; o_id: string; o_created_at: Date };

/** create_booking_fast alone, or for several bookings in one statement (as holds.ts fastHolds: one lateral call per row, in order). */
export const fastBookings: BatchKind<FastBooking, FastRow> = {
  async one(q, b) {
    const { rows } = await q.query(named('bookings.createFastAt', 'SELECT * FROM create_booking_fast($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)',
      [b.tenantId, b.ownerId, b.resourceIds, b.versions, b.start, b.end, b.seats, b.customer, b.attendees, b.metadata, b.message]));
    return rows[0];
  },
  async many(q, bs) {
    const col = <T>(f: (b: FastBooking) => T) => bs.map(f);
    const { rows } = await q.query(named('bookings.createFastMany',
      `SELECT u.n, r.* FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::timestamptz[], $6::timestamptz[], $7::int[],
           $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[])
         WITH ORDINALITY AS u(tenant, owner, resources, versions, start_at, end_at, seats, customer, attendees, metadata, m1, m2, m3, m4, m5, n)
       CROSS JOIN LATERAL create_booking_fast(u.tenant, u.owner, u.resources::uuid[], u.versions::int[], u.start_at, u.end_at, u.seats,
         u.customer::jsonb, u.attendees::jsonb, u.metadata::jsonb, ARRAY[u.m1, u.m2, u.m3, u.m4, u.m5]) r
       ORDER BY u.n`,
      [col((b) => b.tenantId), col((b) => b.ownerId), col((b) => `{${b.resourceIds.join(',')}}`), col((b) => `{${b.versions.join(',')}}`),
        col((b) => b.start), col((b) => b.end), col((b) => b.seats),
        col((b) => JSON.stringify(b.customer)), col((b) => b.attendees), col((b) => JSON.stringify(b.metadata)),
        ...[0, 1, 2, 3, 4].map((i) => col((b) => b.message[i]!))],
    ));
    if (rows.length !== bs.length) throw new Error(`create_booking_fast batch: ${rows.length} rows for ${bs.length} bookings`);
    return rows;
  },
  compare: lockOrder,
};

export const bookingRepository = {
  /**
   * The one-statement direct booking (create_booking_fast, migrations 005–007):
   * seats, booking, resources and its booking.confirmed event, or nothing with
   * 'conflict' or 'fallback'. `event` is the event's data; the function fills
   * in the booking's id, createdAt and updatedAt.
   */
  async createFast(q: Queryable, tenantId: string, b: NewBooking & { holdId: null }, event: MarkedEvent, versions: number[]): Promise<FastResult<BookingRow>> {
    const resourceIds = [...b.resourceIds].sort();
    const item: FastBooking = {
      tenantId, ownerId: b.ownerId, resourceIds, versions, start: new Date(b.start), end: new Date(b.end), seats: b.seats,
      customer: b.customer, attendees: JSON.stringify(b.attendees), metadata: b.metadata, message: messageParts(event.build, event.names),
    };
    // From an autocommit unit that has not taken a connection: the group commit, with other requests' bookings.
    const r = q instanceof LazyConnection && !q.connected ? await q.batcher.submit(fastBookings, item) : await fastBookings.one(q as pg.PoolClient, item);
    if (r.o_status !== 'ok') return { status: r.o_status, conflicts: r.o_conflicts };
    noteChange(q, { tenantId, type: 'booking.confirmed', resourceIds });
    const at = r.o_created_at.getTime();
    return {
      status: 'ok',
      row: {
        id: r.o_id, tenantId, holdId: null, ownerId: b.ownerId, resourceIds, start: b.start, end: b.end, seats: b.seats, status: 'confirmed',
        customer: b.customer, attendees: b.attendees, metadata: b.metadata, version: 1, cancelReason: null, createdAt: at, updatedAt: at,
      },
    };
  },

  /** Inserts a confirmed booking with its resources. */
  async insert(q: Queryable, tenantId: string, b: NewBooking): Promise<BookingRow> {
    const { rows } = await q.query(named('bookings.insert',
      `WITH b AS (
         INSERT INTO bookings (tenant_id, hold_id, owner_id, start_at, end_at, seats, status, customer, attendees, metadata, payment)
         VALUES ($1, $2, $3, $4, $5, $6, 'confirmed', $7, $8, $9, $11) RETURNING *
       ), br AS (
         INSERT INTO booking_resources (booking_id, resource_id) SELECT b.id, unnest($10::uuid[]) FROM b
       )
       SELECT b.*, $10::uuid[] AS resource_ids FROM b`,
      [tenantId, b.holdId, b.ownerId, new Date(b.start), new Date(b.end), b.seats, b.customer, JSON.stringify(b.attendees), b.metadata,
        [...b.resourceIds].sort(), b.payment ? JSON.stringify(b.payment) : null],
    ));
    return toBooking(rows[0]);
  },

  /** Reads one booking of a tenant; `lock` takes its row lock. */
  async get(q: Queryable, tenantId: string, id: string, lock = false): Promise<BookingRow | null> {
    const { rows } = await q.query(`${SELECT} WHERE b.tenant_id = $1 AND b.id = $2 ${lock ? 'FOR UPDATE OF b' : ''}`, [tenantId, id]);
    return rows[0] ? toBooking(rows[0]) : null;
  },

  /** The booking made from a hold. */
  async byHold(q: Queryable, holdId: string): Promise<BookingRow | null> {
    const { rows } = await q.query(`${SELECT} WHERE b.hold_id = $1`, [holdId]);
    return rows[0] ? toBooking(rows[0]) : null;
  },

  /** Cancels a locked booking. */
  async cancel(q: Queryable, id: string, reason: string | null): Promise<BookingRow> {
    const { rows } = await q.query(
      `WITH b AS (UPDATE bookings SET status = 'cancelled', cancel_reason = $2, version = version + 1, updated_at = now() WHERE id = $1 RETURNING *)
       SELECT b.*, ARRAY(SELECT br.resource_id FROM booking_resources br WHERE br.booking_id = b.id ORDER BY br.resource_id) AS resource_ids FROM b`,
      [id, reason],
    );
    return toBooking(rows[0]);
  },

  /** Writes a locked booking's new range, resources, seats and metadata; bumps its version. */
  async reschedule(q: Queryable, b: Pick<BookingRow, 'id' | 'resourceIds' | 'start' | 'end' | 'seats' | 'metadata'>): Promise<BookingRow> {
    const ids = [...b.resourceIds].sort();
    const { rows } = await q.query(
      `WITH b AS (
         UPDATE bookings SET start_at = $2, end_at = $3, seats = $4, metadata = $5, version = version + 1, updated_at = now()
         WHERE id = $1 RETURNING *
       ), del AS (
         DELETE FROM booking_resources WHERE booking_id = $1 AND resource_id <> ALL($6::uuid[])
       ), ins AS (
         INSERT INTO booking_resources (booking_id, resource_id) SELECT $1, unnest($6::uuid[]) ON CONFLICT DO NOTHING
       )
       SELECT b.*, $6::uuid[] AS resource_ids FROM b`,
      [b.id, new Date(b.start), new Date(b.end), b.seats, b.metadata, ids],
    );
    return toBooking(rows[0]);
  },

  /** One page of bookings, newest range last, filtered. */
  async page(q: Queryable, tenantId: string, f: BookingFilter, after: { createdAt: number; id: string } | null, limit: number): Promise<BookingRow[]> {
    const { rows } = await q.query(
      `${SELECT} WHERE b.tenant_id = $1
         AND ($2::text IS NULL OR b.owner_id = $2)
         AND ($3::uuid IS NULL OR EXISTS (SELECT 1 FROM booking_resources x WHERE x.booking_id = b.id AND x.resource_id = $3))
         AND ($4::timestamptz IS NULL OR b.end_at > $4)
         AND ($5::timestamptz IS NULL OR b.start_at < $5)
         AND ($6::text IS NULL OR b.status = $6)
         AND ($7::timestamptz IS NULL OR (b.created_at, b.id) > ($7::timestamptz, $8::uuid))
       ORDER BY b.created_at, b.id LIMIT $9`,
      [tenantId, f.ownerId ?? null, f.resourceId ?? null, f.from ? new Date(f.from) : null, f.to ? new Date(f.to) : null, f.status ?? null,
        after ? new Date(after.createdAt) : null, after?.id ?? null, limit],
    );
    return rows.map(toBooking);
  },

  /** Confirmed bookings on a resource ending after `from` (for archive checks). */
  async liveOn(q: Queryable, resourceId: string, from: number): Promise<number> {
    const { rows } = await q.query(
      `SELECT count(*)::int AS n FROM bookings b JOIN booking_resources br ON br.booking_id = b.id
       WHERE br.resource_id = $1 AND b.status = 'confirmed' AND b.end_at > $2`,
      [resourceId, new Date(from)],
    );
    return rows[0].n;
  },

  /** A calendar feed's bookings, by start: one resource's or one owner's, in the window, cancelled ones only if cancelled recently. */
  async forCalendar(q: Queryable, tenantId: string, w: CalendarWindow, limit: number): Promise<BookingRow[]> {
    const { rows } = await q.query(
      `${SELECT} WHERE b.tenant_id = $1
         AND ($2::uuid IS NULL OR EXISTS (SELECT 1 FROM booking_resources x WHERE x.booking_id = b.id AND x.resource_id = $2))
         AND ($3::text IS NULL OR b.owner_id = $3)
         AND b.start_at >= $4 AND b.start_at < $5
         AND (b.status = 'confirmed' OR b.updated_at >= $6)
       ORDER BY b.start_at, b.id LIMIT $7`,
      [tenantId, w.resourceId ?? null, w.ownerId ?? null, new Date(w.from), new Date(w.to), new Date(w.cancelledSince), limit],
    );
    return rows.map(toBooking);
  },

  // ---- payments
  /** Writes a booking's payment state (no version bump: the booking itself did not change). */
  async setPayment(q: Queryable, id: string, payment: BookingPaymentState): Promise<void> {
    await q.query('UPDATE bookings SET payment = $2 WHERE id = $1', [id, JSON.stringify(payment)]);
  },

  /** Bookings (confirmed or cancelled) whose payment is authorized or capture_pending, older than `olderThanMs`, whose next try is due; the longest due first. */
  async pendingCaptures(q: Queryable, olderThanMs: number, limit: number): Promise<BookingRow[]> {
    const { rows } = await q.query(
      `${SELECT} WHERE b.payment->>'status' IN ('authorized', 'capture_pending') AND b.created_at < now() - make_interval(secs => $1)
         AND coalesce((b.payment->>'nextCaptureAt')::bigint, 0) <= (extract(epoch FROM now()) * 1000)::bigint
       ORDER BY coalesce((b.payment->>'nextCaptureAt')::bigint, 0), b.created_at LIMIT $2`,
      [olderThanMs / 1000, limit],
    );
    return rows.map(toBooking);
  },
};
