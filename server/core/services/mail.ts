/**
 * E-mail about bookings (docs/integrations.md#e-mail): a confirmation, a
 * change, a cancellation, and a reminder before the start, each to the
 * booking's customer and attendees that have an address, each carrying an
 * iCalendar invitation (METHOD:REQUEST, or CANCEL once cancelled) with the
 * booking's UID, so a calendar updates the event it has.
 *
 * - The dispatcher turns stored booking events (only committed changes have
 *   them) into messages, moving its own cursor in the same statement: each
 *   event becomes one message, whichever node runs it. The reminder pass makes
 *   one reminder per booking start.
 * - A booking's messages go out one at a time in the order they were made, by
 *   jobs keyed by the booking that take a lease on the message they send. The
 *   lease outlasts the longest SMTP conversation, so no second sender starts
 *   while the first may still be talking to the server; a node that dies
 *   mid-send leaves its lease to run out and the message to be sent again.
 *   Every attempt of a message has the same Message-ID.
 * - A temporary refusal (4xx, no connection, a timeout) is retried with
 *   exponential backoff and jitter until `giveUpAfterMs`; a permanent one (5xx)
 *   is not. Without an SMTP server (SMTP_URL unset) messages are logged.
 */
import { randomUUID } from 'node:crypto';
import { DateTime } from 'luxon';
import type { CoreDeps, JobQueue, MailMessage, MailTransport } from '../ports';
import type { MailKind, MailMessageRow } from '../store';
import type { BookingRow, ResourceRow } from '../types';
import { bookingInvitation, type IcsBooking } from './ics';
import { retryDelay } from './webhooks';

export interface MailSettings {
  /** The From of every message: `Name <address>` or an address. */
  from: string;
  /** Reminders go this long before a booking's start (0: none). */
  reminderBeforeMs: number;
  retryBaseMs: number;
  retryMaxMs: number;
  /** A message that cannot be sent for this long is given up. */
  giveUpAfterMs: number;
  /** The longest one attempt can take; a sender's lease outlasts it. */
  attemptMs: number;
  /** A job sends a booking's messages for at most this long before handing over to a new job. */
  jobBudgetMs: number;
}

export const DEFAULT_MAIL_SETTINGS: MailSettings = {
  from: 'Slotwise <no-reply@localhost>',
  reminderBeforeMs: 24 * 3_600_000,
  retryBaseMs: 30_000,
  retryMaxMs: 3_600_000,
  giveUpAfterMs: 24 * 3_600_000,
  attemptMs: 4 * 30_000,
  jobBudgetMs: 30_000,
};

/** The job that sends a booking's pending messages. */
export const MAIL_JOB = 'mail-send';

/** `Name <address>` or `address` → its parts. */
export function parseAddress(s: string): { name: string; email: string } {
  const m = /^\s*"?([^"<]*?)"?\s*<([^<>\s]+@[^<>\s]+)>\s*$/.exec(s);
  if (m) return { name: m[1]!.trim() || m[2]!, email: m[2]! };
  return { name: 'Slotwise', email: s.trim() };
}

/** The booking as the event left it (the event's `booking`, as the API shows it). */
function fromEvent(b: Record<string, unknown>): IcsBooking & { cancelReason: string | null } {
  const t = (v: unknown) => Date.parse(String(v));
  return {
    id: String(b.id),
    start: t(b.start),
    end: t(b.end),
    status: b.status === 'cancelled' ? 'cancelled' : 'confirmed',
    version: Number(b.version),
    createdAt: t(b.createdAt),
    updatedAt: t(b.updatedAt),
    customer: b.customer as IcsBooking['customer'],
    attendees: (b.attendees ?? []) as IcsBooking['attendees'],
    resourceIds: (b.resourceIds ?? []) as string[],
    seats: Number(b.seats),
    cancelReason: (b.cancelReason as string | null) ?? null,
  };
}

/** Who a booking's messages go to: its customer and attendees with an address, each once. */
export function recipientsOf(b: Pick<IcsBooking, 'customer' | 'attendees'>): string[] {
  const seen = new Map<string, string>();
  for (const p of [b.customer, ...b.attendees]) {
    if (p?.email && !seen.has(p.email.toLowerCase())) seen.set(p.email.toLowerCase(), p.email);
  }
  return [...seen.values()];
}

const escapeHtml = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** "Mon 7 Dec 2026, 10:00–11:00 (Europe/Berlin)", in the zone given. */
export function whenText(start: number, end: number, zone: string): string {
  const z = DateTime.local().setZone(zone).isValid ? zone : 'UTC';
  const s = DateTime.fromMillis(start, { zone: z });
  const e = DateTime.fromMillis(end, { zone: z });
  const endText = s.hasSame(e, 'day') ? e.toFormat('HH:mm') : e.toFormat('ccc d LLL yyyy, HH:mm');
  return `${s.toFormat('ccc d LLL yyyy, HH:mm')}–${endText} (${z})`;
}

const HEADLINES: Record<MailKind, (b: { cancelReason: string | null }) => string> = {
  confirmation: () => 'Your booking is confirmed.',
  change: () => 'Your booking has changed. The details below replace the ones you had.',
  cancellation: (b) => `Your booking was cancelled${b.cancelReason ? `: ${b.cancelReason}` : '.'}`,
  reminder: () => 'A reminder: your booking is coming up.',
};
const SUBJECTS: Record<MailKind, string> = { confirmation: 'Booking confirmed', change: 'Booking changed', cancellation: 'Booking cancelled', reminder: 'Reminder' };

/** The message for one booking: subject, text and HTML, and its invitation. Pure. */
export function composeMail(
  kind: MailKind,
  b: IcsBooking & { cancelReason: string | null },
  resources: Pick<ResourceRow, 'id' | 'name' | 'timezone'>[],
  o: { from: string; messageId: string; now: number },
): MailMessage {
  const names = new Map(resources.map((r) => [r.id, r.name]));
  const zone = resources.find((r) => r.id === b.resourceIds[0])?.timezone ?? 'UTC';
  const what = b.resourceIds.map((id) => names.get(id) ?? id).join(', ');
  const when = whenText(b.start, b.end, zone);
  const cancelled = b.status === 'cancelled';
  const headline = HEADLINES[kind](b);
  const rows: [string, string][] = [['What', what], ['When', when], ['Seats', String(b.seats)], ['Booking', b.id]];
  const footer = cancelled ? 'The attached invitation removes it from your calendar.' : 'The attached invitation adds it to your calendar, or updates it there.';
  const text = [`Hello ${b.customer.name},`, '', headline, '', ...rows.map(([k, v]) => `  ${`${k}:`.padEnd(9)}${v}`), '', footer, ''].join('\n');
  const html = `<!doctype html><html><body style="font-family:sans-serif">
<p>Hello ${escapeHtml(b.customer.name)},</p>
<p>${escapeHtml(headline)}</p>
<table>${rows.map(([k, v]) => `<tr><th align="left">${escapeHtml(k)}</th><td>${escapeHtml(v)}</td></tr>`).join('')}</table>
<p>${escapeHtml(footer)}</p>
</body></html>`;
  return {
    from: o.from,
    to: recipientsOf(b),
    subject: `${SUBJECTS[kind]}: ${what}, ${when}`,
    text,
    html,
    messageId: o.messageId,
    calendar: {
      method: cancelled ? 'CANCEL' : 'REQUEST',
      content: bookingInvitation(b, { timezone: zone, resourceNames: names, now: o.now, organizer: parseAddress(o.from) }),
    },
  };
}

export function mailService(deps: CoreDeps & { jobs: JobQueue; transport: MailTransport }, overrides: Partial<MailSettings> = {}) {
  const { store, jobs, transport, clock, log } = deps;
  const settings: MailSettings = { ...DEFAULT_MAIL_SETTINGS, ...overrides };
  const domain = parseAddress(settings.from).email.split('@')[1] || 'slotwise';

  const kick = (bookingId: string) =>
    jobs.send(MAIL_JOB, { bookingId }, { key: bookingId }).catch((err) => log.warn({ err: (err as Error).message, bookingId }, 'mail job not queued; the sweep will queue it'));

  /** What the message says, from the event's booking, or for a reminder from the booking now (null: nothing to remind of any more). */
  async function compose(m: MailMessageRow): Promise<MailMessage | null> {
    let b: IcsBooking & { cancelReason: string | null };
    if (m.booking) b = fromEvent(m.booking);
    else {
      const row: BookingRow | null = await store.primary.bookings.get(m.tenantId, m.bookingId);
      if (!row || row.status !== 'confirmed' || row.start !== m.startsAt) return null;
      b = row;
    }
    const resources = b.resourceIds.length ? await store.primary.resources.byIds(m.tenantId, b.resourceIds) : [];
    return composeMail(m.kind, b, resources, { from: settings.from, messageId: `<${m.id}@${domain}>`, now: clock.now() });
  }

  /** One attempt at the leased message; returns whether the booking's next message may follow now. */
  async function attempt(m: MailMessageRow, owner: string): Promise<boolean> {
    let mail: MailMessage | null;
    try {
      mail = await compose(m);
    } catch (err) {
      // Nothing a retry would change (an event this code cannot read): given up, and said so.
      log.error({ err: (err as Error).message, messageId: m.id }, 'e-mail could not be composed; given up');
      return store.primary.mail.record(m.id, owner, { status: 'failed', error: `not composed: ${(err as Error).message}`, recipients: [] });
    }
    if (!mail || mail.to.length === 0) {
      return store.primary.mail.record(m.id, owner, { status: 'skipped', error: mail ? 'no recipient' : 'the booking is no longer at that time, or cancelled', recipients: [] });
    }
    const r = await transport.send(mail);
    const now = clock.now();
    if (r.outcome === 'sent' || r.outcome === 'logged') {
      const kept = await store.primary.mail.record(m.id, owner, { status: r.outcome, error: null, recipients: mail.to });
      if (!kept) log.warn({ messageId: m.id }, 'e-mail sent after its lease was taken over: it may arrive twice (same Message-ID)');
      return kept;
    }
    const giveUp = r.outcome === 'permanent' || now - m.createdAt >= settings.giveUpAfterMs;
    await store.primary.mail.record(m.id, owner, giveUp
      ? { status: 'failed', error: r.error, recipients: mail.to }
      : { status: 'pending', error: r.error, recipients: mail.to, nextAttemptAt: now + retryDelay(m.attempts + 1, settings) });
    (giveUp ? log.error : log.warn).call(log, { messageId: m.id, bookingId: m.bookingId, kind: m.kind, attempts: m.attempts + 1, err: r.error }, giveUp ? 'e-mail given up' : 'e-mail not sent; will retry');
    // A message given up does not hold back the booking's later ones.
    return giveUp;
  }

  return {
    settings,
    transportMode: transport.mode,

    /** Turns stored booking events into messages (on whichever node gets the cursor) and starts their bookings' jobs. */
    async dispatch(limit = 1000): Promise<number> {
      const r = await store.primary.mail.dispatch(limit);
      if (!r) return 0;
      await Promise.all(r.bookings.map(kick));
      return r.events;
    },

    /** Makes the reminders that are due and starts their jobs. */
    async remind(): Promise<number> {
      if (settings.reminderBeforeMs <= 0) return 0;
      const bookings = await store.primary.mail.remind(settings.reminderBeforeMs, 500);
      await Promise.all(bookings.map(kick));
      return bookings.length;
    },

    /** Starts a job for each booking whose next message is due (a retry's time came, or a job was lost). */
    async sweep(): Promise<void> {
      const due = await store.primary.mail.due(500);
      await Promise.all(due.map(kick));
    },

    /**
     * The job: sends the booking's pending messages in order, each under its
     * own lease (taken for longer than an attempt can take), until none is
     * left, one must wait for a retry, or the budget is spent.
     */
    async deliver(bookingId: string): Promise<void> {
      const owner = randomUUID();
      const until = clock.now() + settings.jobBudgetMs;
      for (;;) {
        const m = await store.primary.mail.lease(bookingId, owner, settings.attemptMs + 5_000);
        if (!m) return;
        if (!(await attempt(m, owner))) return;
        if (clock.now() >= until) {
          await kick(bookingId);
          return;
        }
      }
    },

    /** The messages of one booking, oldest first. */
    async ofBooking(tenantId: string, bookingId: string) {
      return store.primary.mail.ofBooking(tenantId, bookingId);
    },

    async purge(olderThanMs: number) {
      return store.primary.mail.purge(olderThanMs);
    },

    async stats() {
      return store.primary.mail.stats();
    },
  };
}

export type MailService = ReturnType<typeof mailService>;
