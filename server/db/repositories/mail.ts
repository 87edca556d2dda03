/** E-mail messages (migration 011): made from the stored feed and by the reminder pass, sent under a lease per message. */
import { named, type Queryable } from '../pool';
import { afterCursor } from './after-cursor';
import type { MailMessageRow, MailOutcome, UnstoredMessage } from '../../core/store';

const COLUMNS = 'id, tenant_id, booking_id, kind, seq, starts_at, status, attempts, last_error, next_attempt_at, created_at';

const toMessage = (r: Record<string, any>): MailMessageRow => ({
  id: r.id,
  tenantId: r.tenant_id,
  bookingId: r.booking_id,
  kind: r.kind,
  seq: r.seq === null ? null : Number(r.seq),
  booking: r.booking ?? null,
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

// The kind of message a booking event (in the CTE `ev`) makes.
const KIND_OF_EVENT = `CASE ev.type WHEN 'booking.confirmed' THEN 'confirmation' WHEN 'booking.cancelled' THEN 'cancellation' ELSE 'change' END`;

// A booking event (in the CTE `ev`) that makes a message: confirmed, moved or cancelled, with someone to write to.
const MAKES_MESSAGE = `ev.type IN ('booking.confirmed', 'booking.rescheduled', 'booking.cancelled')
          AND ${HAS_ADDRESS("(ev.data #> '{booking,customer}')", "(ev.data #> '{booking,attendees}')")}`;

export const mailRepository = {
  async dispatch(q: Queryable, limit: number): Promise<{ events: number; bookings: string[] } | null> {
    // A message per booking event with an address (./after-cursor.ts: one statement, each event once).
    const { rows } = await q.query(named('mail.dispatch', afterCursor({
      cursor: 'mail_cursor',
      eventColumns: 'e.seq, e.tenant_id, e.type, e.data',
      work: `ins AS (
        INSERT INTO email_messages (tenant_id, booking_id, kind, seq)
        SELECT ev.tenant_id, (ev.data #>> '{booking,id}')::uuid, ${KIND_OF_EVENT}, ev.seq
        FROM ev
        -- (booking.updated changes only the tenant's metadata: nothing the customer is told about.)
        WHERE ${MAKES_MESSAGE}
        ORDER BY ev.seq
        ON CONFLICT DO NOTHING
        RETURNING booking_id
      )`,
      answer: `coalesce((SELECT array_agg(DISTINCT booking_id) FROM ins), '{}') AS bookings`,
    }), [limit]));
    const r = rows[0];
    if (r.locked === 0) return null;
    return { events: r.events, bookings: r.bookings };
  },

  async dispatchUnstored(q: Queryable, limit: number): Promise<{ events: number; messages: UnstoredMessage[] } | null> {
    // As dispatch, but what it finds is answered, not stored: the booking events with an address, in feed order.
    const { rows } = await q.query(named('mail.dispatchUnstored', afterCursor({
      cursor: 'mail_cursor',
      eventColumns: 'e.seq, e.tenant_id, e.type, e.data',
      work: '',
      answer: `coalesce((SELECT jsonb_agg(jsonb_build_object('seq', ev.seq, 'tenantId', ev.tenant_id, 'kind', ${KIND_OF_EVENT}, 'booking', ev.data -> 'booking') ORDER BY ev.seq)
          FROM ev WHERE ${MAKES_MESSAGE}), '[]') AS messages`,
    }), [limit]));
    const r = rows[0];
    if (r.locked === 0) return null;
    return { events: r.events, messages: r.messages };
  },

  async remind(q: Queryable, beforeMs: number): Promise<string[] | null> {
    // The starts that entered the reminder window since the last pass (the cursor row locked, or skipped: another
    // node is at it), and the cursor moved, in one statement: each booking start is looked at once, not every pass.
    // A booking made or changed inside its reminder window has just had a message about it: no reminder.
    const { rows } = await q.query(named('mail.remind', `
      WITH c AS (SELECT until AS since, now() + $1 * interval '1 millisecond' AS until FROM reminder_cursor WHERE id FOR UPDATE SKIP LOCKED),
      ins AS (
        INSERT INTO email_messages (tenant_id, booking_id, kind, starts_at)
        SELECT b.tenant_id, b.id, 'reminder', b.start_at FROM bookings b, c
        WHERE b.status = 'confirmed' AND b.start_at > c.since AND b.start_at <= c.until AND b.start_at > now()
          AND b.updated_at < b.start_at - $1 * interval '1 millisecond'
          AND ${HAS_ADDRESS('b.customer', 'b.attendees')}
        ON CONFLICT DO NOTHING
        RETURNING booking_id
      ),
      moved AS (UPDATE reminder_cursor SET until = greatest(until, (SELECT until FROM c)) WHERE id AND EXISTS (SELECT 1 FROM c) RETURNING 1)
      SELECT (SELECT count(*) FROM c)::int AS locked, coalesce((SELECT array_agg(booking_id) FROM ins), '{}') AS bookings, (SELECT count(*) FROM moved) AS moved`,
    [beforeMs]));
    return rows[0].locked === 0 ? null : rows[0].bookings;
  },

  async claim(q: Queryable, owner: string, ms: number, limit: number): Promise<MailMessageRow[]> {
    // Due messages, each the first pending one of its booking (a booking's messages go out in the order they were
    // made), not leased: leased to `owner` for `ms`. SKIP LOCKED: nodes claiming at once take different ones.
    const { rows } = await q.query(named('mail.claim', `
      UPDATE email_messages m SET lease_owner = $1, lease_until = now() + $2 * interval '1 millisecond'
      WHERE m.position IN (
        SELECT c.position FROM email_messages c
        WHERE c.status = 'pending' AND c.next_attempt_at <= now() AND (c.lease_until IS NULL OR c.lease_until < now())
          AND NOT EXISTS (SELECT 1 FROM email_messages e WHERE e.booking_id = c.booking_id AND e.status = 'pending' AND e.position < c.position)
        ORDER BY c.position LIMIT $3
        FOR UPDATE SKIP LOCKED)
      RETURNING ${COLUMNS.split(', ').map((c) => `m.${c}`).join(', ')}, (SELECT e.data -> 'booking' FROM events e WHERE e.seq = m.seq) AS booking`,
    [owner, ms, limit]));
    return rows.map(toMessage).sort((x, y) => x.createdAt - y.createdAt);
  },

  async renew(q: Queryable, owner: string, ids: string[], ms: number): Promise<void> {
    if (ids.length === 0) return;
    await q.query(named('mail.renew', "UPDATE email_messages SET lease_until = now() + $3 * interval '1 millisecond' WHERE id = ANY($2) AND lease_owner = $1", [owner, ids, ms]));
  },

  async record(q: Queryable, owner: string, outcomes: MailOutcome[]): Promise<string[]> {
    // Only messages the caller still holds the lease of (a lease passes on only by being taken over, which changes the owner).
    const { rows } = await q.query(named('mail.record', `
      UPDATE email_messages m SET status = r.status, last_error = r.error, recipients = r.recipients, attempts = m.attempts + 1,
        next_attempt_at = coalesce(r.next_attempt_at, m.next_attempt_at),
        sent_at = CASE WHEN r.status IN ('sent', 'logged') THEN now() END,
        lease_owner = NULL, lease_until = NULL
      FROM jsonb_to_recordset($2::jsonb) AS r(id uuid, status text, error text, recipients text[], next_attempt_at timestamptz)
      WHERE m.id = r.id AND m.lease_owner = $1
      RETURNING m.id`,
    [owner, JSON.stringify(outcomes.map((o) => ({ ...o, next_attempt_at: o.nextAttemptAt === undefined ? null : new Date(o.nextAttemptAt).toISOString() })))]));
    return rows.map((r) => r.id as string);
  },

  async purge(q: Queryable, olderThanMs: number): Promise<number> {
    const { rowCount } = await q.query("DELETE FROM email_messages WHERE status <> 'pending' AND created_at < now() - $1 * interval '1 millisecond'", [olderThanMs]);
    return rowCount ?? 0;
  },

  async stats(q: Queryable): Promise<Record<string, number>> {
    // Pending: all of them (a partial index); the rest: those of the last 24 hours (an index by time), so a scrape
    // never counts a month of messages.
    const { rows } = await q.query(`
      SELECT 'pending' AS status, count(*)::int AS n FROM email_messages WHERE status = 'pending'
      UNION ALL
      SELECT status, count(*)::int FROM email_messages WHERE status <> 'pending' AND created_at > now() - interval '24 hours' GROUP BY status`);
    return Object.fromEntries(rows.map((r) => [r.status as string, r.n as number]));
  },
};
