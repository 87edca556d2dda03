/** E-mail messages (migration 011): made from the stored feed and by the reminder pass, sent under a lease per message. */
import { named, type Queryable } from '../pool';
import type { MailMessageRow } from '../../core/store';

const COLUMNS = 'id, tenant_id, booking_id, kind, seq, booking, starts_at, status, attempts, last_error, next_attempt_at, created_at';

const toMessage = (r: Record<string, any>): MailMessageRow => ({
  id: r.id,
  tenantId: r.tenant_id,
  bookingId: r.booking_id,
  kind: r.kind,
  seq: r.seq === null ? null : Number(r.seq),
  booking: r.booking,
  startsAt: r.starts_at ? (r.starts_at as Date).getTime() : null,
  status: r.status,
  attempts: r.attempts,
  lastError: r.last_error,
  nextAttemptAt: (r.next_attempt_at as Date).getTime(),
  createdAt: (r.created_at as Date).getTime(),
});

// A booking (as an event's jsonb or a row's columns) that has someone to write to.
const HAS_ADDRESS = (customer: string, attendees: string) =>
  `(${customer}->>'email' IS NOT NULL OR EXISTS (SELECT 1 FROM jsonb_array_elements(coalesce(${attendees}, '[]'::jsonb)) a WHERE a->>'email' IS NOT NULL))`;

export const mailRepository = {
  async dispatch(q: Queryable, limit: number): Promise<{ events: number; bookings: string[] } | null> {
    // One statement, as the webhook dispatcher: the cursor locked (or skipped: another node is at it), the stored
    // events after it, a message per booking event with an address, the cursor moved past every event read.
    const { rows } = await q.query(named('mail.dispatch', `
      WITH c AS (SELECT seq FROM mail_cursor WHERE id FOR UPDATE SKIP LOCKED),
      ev AS (SELECT e.seq, e.tenant_id, e.type, e.data FROM events e, c WHERE e.seq > c.seq ORDER BY e.seq LIMIT $1),
      ins AS (
        INSERT INTO email_messages (tenant_id, booking_id, kind, seq, booking)
        SELECT ev.tenant_id, (ev.data #>> '{booking,id}')::uuid,
          CASE ev.type WHEN 'booking.confirmed' THEN 'confirmation' WHEN 'booking.cancelled' THEN 'cancellation' ELSE 'change' END,
          ev.seq, ev.data -> 'booking'
        FROM ev
        -- (booking.updated changes only the tenant's metadata: nothing the customer is told about.)
        WHERE ev.type IN ('booking.confirmed', 'booking.rescheduled', 'booking.cancelled')
          AND ${HAS_ADDRESS("(ev.data #> '{booking,customer}')", "(ev.data #> '{booking,attendees}')")}
        ORDER BY ev.seq
        ON CONFLICT DO NOTHING
        RETURNING booking_id
      ),
      moved AS (UPDATE mail_cursor SET seq = (SELECT max(seq) FROM ev) WHERE id AND EXISTS (SELECT 1 FROM ev) RETURNING seq)
      SELECT (SELECT count(*) FROM c)::int AS locked, (SELECT count(*) FROM ev)::int AS events,
             coalesce((SELECT array_agg(DISTINCT booking_id) FROM ins), '{}') AS bookings, (SELECT count(*) FROM moved) AS moved`, [limit]));
    const r = rows[0];
    if (r.locked === 0) return null;
    return { events: r.events, bookings: r.bookings };
  },

  async remind(q: Queryable, beforeMs: number, limit: number): Promise<string[]> {
    // A booking made or changed inside its reminder window has just had a message about it: no reminder.
    const { rows } = await q.query(named('mail.remind', `
      INSERT INTO email_messages (tenant_id, booking_id, kind, starts_at)
      SELECT b.tenant_id, b.id, 'reminder', b.start_at FROM bookings b
      WHERE b.status = 'confirmed' AND b.start_at > now() AND b.start_at <= now() + $1 * interval '1 millisecond'
        AND b.updated_at < b.start_at - $1 * interval '1 millisecond'
        AND ${HAS_ADDRESS('b.customer', 'b.attendees')}
        AND NOT EXISTS (SELECT 1 FROM email_messages m WHERE m.booking_id = b.id AND m.kind = 'reminder' AND m.starts_at = b.start_at)
      ORDER BY b.start_at LIMIT $2
      ON CONFLICT DO NOTHING
      RETURNING booking_id`, [beforeMs, limit]));
    return rows.map((r) => r.booking_id as string);
  },

  async lease(q: Queryable, bookingId: string, owner: string, ms: number): Promise<MailMessageRow | null> {
    // The booking's first pending message only: its messages go out in the order they were made.
    const { rows } = await q.query(named('mail.lease', `
      UPDATE email_messages m SET lease_owner = $2, lease_until = now() + $3 * interval '1 millisecond'
      WHERE m.position = (SELECT position FROM email_messages WHERE booking_id = $1 AND status = 'pending' ORDER BY position LIMIT 1)
        AND m.status = 'pending' AND m.next_attempt_at <= now()
        AND (m.lease_until IS NULL OR m.lease_until < now() OR m.lease_owner = $2)
      RETURNING ${COLUMNS}`, [bookingId, owner, ms]));
    return rows[0] ? toMessage(rows[0]) : null;
  },

  async record(q: Queryable, id: string, owner: string, r: { status: MailMessageRow['status']; error: string | null; recipients: string[]; nextAttemptAt?: number }): Promise<boolean> {
    // Only while the caller still holds the lease (a lease passes on only by being taken over, which changes the owner).
    const { rowCount } = await q.query(named('mail.record', `
      UPDATE email_messages SET status = $3, last_error = $4, recipients = $5, attempts = attempts + 1,
        next_attempt_at = coalesce($6, next_attempt_at),
        sent_at = CASE WHEN $3 IN ('sent', 'logged') THEN now() END,
        lease_owner = NULL, lease_until = NULL
      WHERE id = $1 AND lease_owner = $2`,
    [id, owner, r.status, r.error, r.recipients, r.nextAttemptAt === undefined ? null : new Date(r.nextAttemptAt)]));
    return rowCount === 1;
  },

  async due(q: Queryable, limit: number): Promise<string[]> {
    const { rows } = await q.query(named('mail.due', `
      SELECT DISTINCT booking_id FROM email_messages
      WHERE status = 'pending' AND next_attempt_at <= now() AND (lease_until IS NULL OR lease_until < now())
      LIMIT $1`, [limit]));
    return rows.map((r) => r.booking_id as string);
  },

  async ofBooking(q: Queryable, tenantId: string, bookingId: string): Promise<MailMessageRow[]> {
    const { rows } = await q.query(`SELECT ${COLUMNS} FROM email_messages WHERE tenant_id = $1 AND booking_id = $2 ORDER BY position`, [tenantId, bookingId]);
    return rows.map(toMessage);
  },

  async purge(q: Queryable, olderThanMs: number): Promise<number> {
    const { rowCount } = await q.query("DELETE FROM email_messages WHERE status <> 'pending' AND created_at < now() - $1 * interval '1 millisecond'", [olderThanMs]);
    return rowCount ?? 0;
  },

  async stats(q: Queryable): Promise<Record<string, number>> {
    const { rows } = await q.query('SELECT status, count(*)::int AS n FROM email_messages GROUP BY status');
    return Object.fromEntries(rows.map((r) => [r.status as string, r.n as number]));
  },
};
