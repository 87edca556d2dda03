/**
 * E-mail against a real local SMTP server (test/helpers/smtp.ts): a booking's
 * confirmation, change and cancellation arrive in order, each to its customer
 * and attendees with an address and each with an iCalendar invitation
 * (REQUEST, then CANCEL) of one UID and a rising SEQUENCE; a temporary
 * refusal is retried, a permanent one given up without holding back the
 * booking's next message; reminders go once per booking start, only to
 * bookings made before their reminder time; without SMTP_URL messages are
 * logged, not sent.
 */
import { DateTime } from 'luxon';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { futureWeekday, newTenant, startCluster, waitFor, type TestNode } from '../helpers/node';
import { invitationOf, smtpSink, type SmtpSink, type Verdict } from '../helpers/smtp';

let cluster: Awaited<ReturnType<typeof startCluster>>;
let a: TestNode;
let b: TestNode;
let sink: SmtpSink;
/** Per test: how the server answers (by recipient and subject); accept by default. */
let verdict: (m: { to: string[]; subject: string; n: number }) => Verdict = () => 'accept';
const FROM = 'Slotwise bookings <bookings@slotwise.test>';
const REMINDER_MINUTES = 2 * 24 * 60;

beforeAll(async () => {
  sink = await smtpSink((m) => verdict(m));
  cluster = await startCluster(2, {
    SMTP_URL: sink.url, MAIL_FROM: FROM, REMINDER_BEFORE_MINUTES: String(REMINDER_MINUTES),
    MAIL_RETRY_BASE_MS: '100', MAIL_TIMEOUT_MS: '5000', INTEGRATION_POLL_MS: '50',
  });
  [a, b] = cluster.nodes as [TestNode, TestNode];
}, 60_000);

afterAll(async () => {
  await cluster?.stop();
  await sink?.close();
});

const pad = (n: number) => String(n).padStart(2, '0');
const at = (day: string, h: number) => `${day}T${pad(h)}:00:00Z`;

/** A tenant with a room in Berlin (capacity 10) and helpers to book hour h of a day. */
async function setUp(node: TestNode, name: string) {
  const t = await newTenant(node, 'email');
  const room = await t.newResource({ name, capacity: 10, timezone: 'Europe/Berlin' });
  const book = async (day: string, h: number, customer: { name: string; email: string }, attendees?: { name: string; email?: string }[]) => {
    const hold = await t.api('POST', '/v1/holds', { resourceIds: [room.id], start: at(day, h), end: at(day, h + 1) });
    expect(hold.status, hold.text).toBe(201);
    const booking = await t.api('POST', `/v1/holds/${hold.body.id}/confirm`, { customer, attendees });
    expect(booking.status, booking.text).toBe(201);
    return booking.body;
  };
  return { ...t, room, book };
}

/** Messages at the server for one recipient, in arrival order. */
const to = (address: string) => sink.got.filter((r) => r.to.includes(address));
const berlin = (iso: string) => DateTime.fromISO(iso, { zone: 'Europe/Berlin' });

async function messagesOf(node: TestNode, bookingId: string) {
  const { rows } = await node.pool.query('SELECT kind, status, attempts, recipients, last_error FROM email_messages WHERE booking_id = $1 ORDER BY position', [bookingId]);
  return rows as { kind: string; status: string; attempts: number; recipients: string[]; last_error: string | null }[];
}

describe('e-mail', () => {
  it('sends a confirmation, a change and a cancellation in order, each with an invitation of the same UID and a rising SEQUENCE', async () => {
    verdict = () => 'accept';
    const t = await setUp(a, 'Blue room');
    const day = futureWeekday(10);
    const booking = await t.book(day, 9, { name: 'Ada', email: 'ada@example.com' }, [{ name: 'Bob', email: 'bob@example.com' }, { name: 'Cy' }, { name: 'Ada again', email: 'ADA@example.com' }]);
    const moved = await t.api('PATCH', `/v1/bookings/${booking.id}`, { start: at(day, 12), end: at(day, 13) }, { 'If-Match': `"${booking.version}"` });
    expect(moved.status, moved.text).toBe(200);
    // A change of the tenant's metadata alone tells the customer nothing: no message (the version still rises).
    const noted = await t.api('PATCH', `/v1/bookings/${booking.id}`, { metadata: { note: 'VIP' } }, { 'If-Match': `"${moved.body.version}"` });
    expect(noted.status, noted.text).toBe(200);
    const cancelled = await t.api('POST', `/v1/bookings/${booking.id}/cancel`, { reason: 'Plans changed' });
    expect(cancelled.status).toBe(200);

    await waitFor(() => to('ada@example.com').length === 3, 15_000, 'three messages for Ada');
    await waitFor(async () => (await messagesOf(b, booking.id)).every((m) => m.status === 'sent'), 5_000, 'all three recorded');
    const got = to('ada@example.com');
    // One message per change, to the customer and each attendee with an address (each address once).
    expect(got.map((r) => [...r.to].sort())).toEqual([0, 1, 2].map(() => ['ada@example.com', 'bob@example.com']));
    expect(got.map((r) => r.from)).toEqual([0, 1, 2].map(() => 'bookings@slotwise.test'));
    expect(got[0]!.mail.from?.value).toEqual([{ name: 'Slotwise bookings', address: 'bookings@slotwise.test' }]);

    // Subjects and text name the room and the time in the room's zone.
    const when = (startIso: string, endIso: string) => `${berlin(startIso).toFormat('ccc d LLL yyyy, HH:mm')}–${berlin(endIso).toFormat('HH:mm')} (Europe/Berlin)`;
    const first = when(at(day, 9), at(day, 10));
    const second = when(at(day, 12), at(day, 13));
    expect(got.map((r) => r.mail.subject)).toEqual([`Booking confirmed: Blue room, ${first}`, `Booking changed: Blue room, ${second}`, `Booking cancelled: Blue room, ${second}`]);
    expect(got[0]!.mail.text).toContain('Hello Ada,');
    expect(got[0]!.mail.text).toContain(`Booking: ${booking.id}`);
    expect(got[2]!.mail.text).toContain('Your booking was cancelled: Plans changed');
    expect(got[0]!.mail.html).toContain('<th align="left">When</th>');

    // Invitations: REQUEST, REQUEST, CANCEL; one UID; SEQUENCE rising; times in Berlin with its VTIMEZONE.
    const invites = got.map((r) => invitationOf(r.mail));
    expect(invites.map((i) => i.method)).toEqual(['REQUEST', 'REQUEST', 'CANCEL']);
    expect(new Set(invites.map((i) => i.uid))).toEqual(new Set([`${booking.id}@slotwise`]));
    expect(invites.map((i) => i.sequence)).toEqual([0, 1, 3]);
    expect(invites.map((i) => i.status)).toEqual(['CONFIRMED', 'CONFIRMED', 'CANCELLED']);
    expect(invites.map((i) => i.start)).toEqual([Date.parse(at(day, 9)), Date.parse(at(day, 12)), Date.parse(at(day, 12))]);
    expect(invites[0]!.tzid).toBe('Europe/Berlin');
    expect(invites[0]!.timezones).toEqual(['Europe/Berlin']);
    expect(invites[0]!.organizer).toBe('mailto:bookings@slotwise.test');
    expect(invites[0]!.attendees.sort()).toEqual(['mailto:ada@example.com', 'mailto:bob@example.com']);

    // Each message has its own Message-ID, kept across attempts; the log says what was sent to whom.
    const ids = got.map((r) => r.mail.messageId);
    expect(new Set(ids).size).toBe(3);
    for (const id of ids) expect(id).toMatch(/^<[0-9a-f-]{36}@slotwise\.test>$/);
    expect(await messagesOf(b, booking.id)).toEqual([
      { kind: 'confirmation', status: 'sent', attempts: 1, recipients: ['ada@example.com', 'bob@example.com'], last_error: null },
      { kind: 'change', status: 'sent', attempts: 1, recipients: ['ada@example.com', 'bob@example.com'], last_error: null },
      { kind: 'cancellation', status: 'sent', attempts: 1, recipients: ['ada@example.com', 'bob@example.com'], last_error: null },
    ]);
  });

  it('retries a temporary refusal; gives up a permanent one without holding back the next message', async () => {
    const flaky = new Map<string, number>();
    verdict = ({ to: rcpt, subject }) => {
      if (rcpt.includes('flaky@example.com')) {
        const n = flaky.get(subject) ?? 0;
        flaky.set(subject, n + 1);
        return n < 2 ? 'temporary' : 'accept';
      }
      if (rcpt.includes('picky@example.com') && subject.startsWith('Booking confirmed')) return 'permanent';
      return 'accept';
    };
    const t = await setUp(b, 'Green room');
    const day = futureWeekday(11);
    const one = await t.book(day, 9, { name: 'Flo', email: 'flaky@example.com' });
    const two = await t.book(day, 10, { name: 'Pia', email: 'picky@example.com' });
    expect((await t.api('POST', `/v1/bookings/${two.id}/cancel`, {})).status).toBe(200);

    await waitFor(() => to('flaky@example.com').length === 1, 15_000, 'the flaky recipient gets its message');
    expect(sink.refused.filter((r) => r.to.includes('flaky@example.com')).map((r) => r.why)).toEqual(['temporary', 'temporary']);
    await waitFor(async () => (await messagesOf(a, one.id))[0]?.status === 'sent', 5_000, 'the retried message recorded');
    const [retried] = await messagesOf(a, one.id);
    expect(retried).toMatchObject({ kind: 'confirmation', status: 'sent', attempts: 3, last_error: null });

    await waitFor(() => to('picky@example.com').length === 1, 15_000, 'the cancellation after the refused confirmation');
    expect(to('picky@example.com')[0]!.mail.subject).toMatch(/^Booking cancelled: Green room/);
    const picky = await messagesOf(a, two.id);
    expect(picky.map((m) => [m.kind, m.status, m.attempts])).toEqual([['confirmation', 'failed', 1], ['cancellation', 'sent', 1]]);
    expect(picky[0]!.last_error).toMatch(/550/);
    expect(sink.refused.filter((r) => r.to.includes('picky@example.com')).map((r) => r.why)).toEqual(['permanent']);
  });

  it('reminds once per booking start, only bookings made before their reminder time, and not cancelled ones', async () => {
    verdict = () => 'accept';
    const t = await setUp(a, 'Red room');
    // Tomorrow (inside the two-day reminder window).
    const day = DateTime.utc().plus({ days: 1 }).toISODate()!;
    const early = await t.book(day, 9, { name: 'Eve', email: 'eve@example.com' });
    const late = await t.book(day, 10, { name: 'Lou', email: 'lou@example.com' });
    const gone = await t.book(day, 11, { name: 'Gil', email: 'gil@example.com' });
    expect((await t.api('POST', `/v1/bookings/${gone.id}/cancel`, {})).status).toBe(200);
    await waitFor(() => to('eve@example.com').length === 1 && to('lou@example.com').length === 1 && to('gil@example.com').length === 2, 15_000, 'the confirmations');
    // As if they had been booked three days ago: Eve's and Gil's bookings were made (and last changed) before their
    // reminder times, and the reminder pass has not reached their starts yet; Lou's was made just now.
    await a.pool.query("UPDATE bookings SET updated_at = now() - interval '3 days' WHERE id = ANY($1)", [[early.id, gone.id]]);
    await a.pool.query('UPDATE reminder_cursor SET until = now()');

    await waitFor(() => to('eve@example.com').length === 2, 15_000, "Eve's reminder");
    const reminder = to('eve@example.com')[1]!;
    expect(reminder.mail.subject).toMatch(/^Reminder: Red room, /);
    expect(reminder.mail.text).toContain('A reminder: your booking is coming up.');
    const invite = invitationOf(reminder.mail);
    expect(invite).toMatchObject({ method: 'REQUEST', uid: `${early.id}@slotwise`, sequence: 0 });

    // A few more passes of the reminder loop (its cursor moved back again, as if no pass had looked yet): still one
    // reminder (one per booking start), and none for Lou (booked inside the window) or Gil (cancelled).
    const passes = async () => (await a.pool.query('SELECT count(*)::int AS n FROM email_messages')).rows[0].n;
    const before = await passes();
    await a.pool.query('UPDATE reminder_cursor SET until = now()');
    await new Promise((r) => setTimeout(r, 1_500));
    expect(await passes()).toBe(before);
    expect(to('eve@example.com')).toHaveLength(2);
    expect(to('lou@example.com')).toHaveLength(1);
    expect(to('gil@example.com')).toHaveLength(2);
    expect((await messagesOf(a, early.id)).map((m) => [m.kind, m.status])).toEqual([['confirmation', 'sent'], ['reminder', 'sent']]);

    // Moved to another time (still inside the window): the change message, and no second reminder for the new start
    // (the booking changed inside its window); moved back out of it and aged again, the new start is reminded once.
    const current = (await t.api('GET', `/v1/bookings/${early.id}`)).body;
    const moved = await t.api('PATCH', `/v1/bookings/${early.id}`, { start: at(day, 14), end: at(day, 15) }, { 'If-Match': `"${current.version}"` });
    expect(moved.status, moved.text).toBe(200);
    await waitFor(() => to('eve@example.com').length === 3, 15_000, "Eve's change message");
    expect(to('eve@example.com')[2]!.mail.subject).toMatch(/^Booking changed: Red room/);
    await a.pool.query("UPDATE bookings SET updated_at = now() - interval '3 days' WHERE id = $1", [early.id]);
    await a.pool.query('UPDATE reminder_cursor SET until = now()');
    await waitFor(() => to('eve@example.com').length === 4, 15_000, "Eve's reminder for the new start");
    expect(invitationOf(to('eve@example.com')[3]!.mail)).toMatchObject({ method: 'REQUEST', sequence: 1, start: Date.parse(at(day, 14)) });
  });

  it('counts messages by status in /metrics', async () => {
    const scrape = async () => (await fetch(`${a.url}/metrics`)).text();
    // Every message the server got is recorded (the last one may still be on its way to its row).
    await waitFor(async () => /slotwise_emails\{status="pending"\} 0/.test(await scrape()), 10_000, 'nothing pending');
    const metrics = await scrape();
    const sent = Number(/slotwise_emails\{status="sent"\} (\d+)/.exec(metrics)?.[1]);
    const failed = Number(/slotwise_emails\{status="failed"\} (\d+)/.exec(metrics)?.[1]);
    expect(sent).toBe(sink.got.length);
    expect(failed).toBe(1);
    expect(metrics).toMatch(/slotwise_emails\{status="pending"\} 0/);
  });
});

describe('e-mail without SMTP_URL', () => {
  it('logs each message instead of sending it, and stores none', async () => {
    const lines: { msg: string; obj: any }[] = [];
    const log = { info: (obj: any, msg?: string) => lines.push({ obj, msg: msg ?? '' }), warn() {}, error() {}, debug() {} };
    const alone = await startCluster(1, { INTEGRATION_POLL_MS: '50' }, { log });
    try {
      const node = alone.nodes[0]!;
      const t = await setUp(node, 'Quiet room');
      const booking = await t.book(futureWeekday(12), 9, { name: 'Max', email: 'max@example.com' });
      const logLines = () => lines.filter((l) => l.msg === 'e-mail logged, not sent (SMTP_URL is not set)');
      await waitFor(() => logLines().length === 1, 15_000, 'the message logged');
      const logged = logLines();
      // Only logged messages are not stored (reminders aside: their row keeps them to one per start).
      expect(await messagesOf(node, booking.id)).toEqual([]);
      expect(logged[0]!.obj).toMatchObject({ to: ['max@example.com'], calendar: 'REQUEST' });
      expect(logged[0]!.obj.subject).toMatch(/^Booking confirmed: Quiet room/);
      expect(sink.got.some((r) => r.to.includes('max@example.com'))).toBe(false);
    } finally {
      await alone.stop();
    }
  });
});
