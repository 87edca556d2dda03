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
 * - The message table is the work queue: each node's sender claims a batch of
 *   due messages (FOR UPDATE SKIP LOCKED), each the first pending one of its
 *   booking, so a booking's messages go out one at a time in the order they
 *   were made. A claim is a lease, renewed while the sender talks to the
 *   server, so no second sender starts while the first is alive; a node that
 *   dies mid-send stops renewing, and once its lease runs out the message is
 *   sent again. Every attempt of a message has the
 *   same Message-ID. (One job of the job queue per message cost a fetch, a
 *   completion and a job row each: it sent about 10 messages a second.)
 * - A temporary refusal (4xx, no connection, a timeout) is retried with
 *   exponential backoff and jitter until `giveUpAfterMs`; a permanent one (5xx)
 *   is not. Without an SMTP server (SMTP_URL unset) messages are logged.
 */
import { randomUUID } from 'node:crypto';
import { DateTime } from 'luxon';
import type { CoreDeps, MailMessage, MailTransport } from '../ports';
import type { MailKind, MailMessageRow, MailOutcome } from '../store';
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
  /** A sender's claim on a message; renewed every third of it while the sender talks to the server. */
  leaseMs: number;
  /** Messages one node sends at once (SMTP connections). */
  concurrency: number;
}

export const DEFAULT_MAIL_SETTINGS: MailSettings = {
  from: 'Slotwise <no-reply@localhost>',
  reminderBeforeMs: 24 * 3_600_000,
  retryBaseMs: 30_000,
  retryMaxMs: 3_600_000,
  giveUpAfterMs: 24 * 3_600_000,
  leaseMs: 30_000,
  concurrency: 4,
};

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
  o: { from: string; messageId: string; now: number; /** false: no invitation text (a message only logged needs none; it is most of the cost). */ invitation?: boolean },
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
      content: o.invitation === false ? '' : bookingInvitation(b, { timezone: zone, resourceNames: names, now: o.now, organizer: parseAddress(o.from) }),
    },
  };
}

export function mailService(deps: CoreDeps & { transport: MailTransport }, overrides: Partial<MailSettings> = {}) {
  const { store, transport, clock, log } = deps;
  const settings: MailSettings = { ...DEFAULT_MAIL_SETTINGS, ...overrides };
  const domain = parseAddress(settings.from).email.split('@')[1] || 'slotwise';
  // Sent by SMTP: as many at once as connections allowed, each recorded as soon as the server answered. Logged:
  // larger batches, recorded together (logging a message twice after a crash harms no one).
  const smtp = transport.mode === 'smtp';
  const batchSize = smtp ? settings.concurrency : 200;

  /** The booking a message tells of: as its event left it, or for a reminder as it is now (null: nothing to remind of any more). */
  async function bookingOf(m: MailMessageRow): Promise<(IcsBooking & { cancelReason: string | null }) | null> {
    if (m.booking) return fromEvent(m.booking);
    const row: BookingRow | null = await store.primary.bookings.get(m.tenantId, m.bookingId);
    return row && row.status === 'confirmed' && row.start === m.startsAt ? row : null;
  }

  /** The resources of a batch's bookings, one read per tenant. */
  async function resourcesOf(batch: { tenantId: string; booking: IcsBooking | null }[]) {
    const ids = new Map<string, Set<string>>();
    for (const { tenantId, booking } of batch) for (const id of booking?.resourceIds ?? []) (ids.get(tenantId) ?? ids.set(tenantId, new Set()).get(tenantId)!).add(id);
    const rows = new Map<string, ResourceRow>();
    for (const [tenantId, set] of ids) for (const r of await store.primary.resources.byIds(tenantId, [...set])) rows.set(r.id, r);
    return rows;
  }

  /** The message about booking `b`, with the names and zone of its resources (from `resources`). */
  const compose = (kind: MailKind, b: IcsBooking & { cancelReason: string | null }, resources: Map<string, ResourceRow>, messageId: string) =>
    composeMail(kind, b, b.resourceIds.flatMap((id) => resources.get(id) ?? []), { from: settings.from, messageId, now: clock.now(), invitation: smtp });

  /** One attempt at a leased message: what it came to. */
  async function attempt(m: MailMessageRow, b: (IcsBooking & { cancelReason: string | null }) | null, resources: Map<string, ResourceRow>): Promise<MailOutcome> {
    let mail: MailMessage;
    try {
      if (!b) return { id: m.id, status: 'skipped', error: 'the booking is no longer at that time, or cancelled', recipients: [] };
      mail = compose(m.kind, b, resources, `<${m.id}@${domain}>`);
    } catch (err) {
      // Nothing a retry would change (an event this code cannot read): given up, and said so.
      log.error({ err: (err as Error).message, messageId: m.id }, 'e-mail could not be composed; given up');
      return { id: m.id, status: 'failed', error: `not composed: ${(err as Error).message}`, recipients: [] };
    }
    if (mail.to.length === 0) return { id: m.id, status: 'skipped', error: 'no recipient', recipients: [] };
    const r = await transport.send(mail);
    if (r.outcome === 'sent' || r.outcome === 'logged') return { id: m.id, status: r.outcome, error: null, recipients: mail.to };
    const now = clock.now();
    const giveUp = r.outcome === 'permanent' || now - m.createdAt >= settings.giveUpAfterMs;
    (giveUp ? log.error : log.warn).call(log, { messageId: m.id, bookingId: m.bookingId, kind: m.kind, attempts: m.attempts + 1, err: r.error }, giveUp ? 'e-mail given up' : 'e-mail not sent; will retry');
    // A message given up does not hold back the booking's later ones; one to retry does (they wait behind it).
    return giveUp
      ? { id: m.id, status: 'failed', error: r.error, recipients: mail.to }
      : { id: m.id, status: 'pending', error: r.error, recipients: mail.to, nextAttemptAt: now + retryDelay(m.attempts + 1, settings) };
  }

  async function record(owner: string, outcomes: MailOutcome[]) {
    if (outcomes.length === 0) return;
    const kept = new Set(await store.primary.mail.record(owner, outcomes));
    for (const o of outcomes) {
      if (!kept.has(o.id)) log.warn({ messageId: o.id }, 'e-mail attempt made after its lease was taken over: it may arrive twice (same Message-ID)');
    }
  }

  return {
    settings,

    /**
     * Turns stored booking events into messages (on whichever node gets the
     * cursor); returns how many events it read. Messages that are only logged
     * (no SMTP server) are logged here and not stored: a crash between the
     * cursor's move and the log line loses the line, which no one receives
     * anyway. (Stored, each costs three row writes: docs/benchmarks.md has
     * what storing them did to the bench's booking rate.)
     */
    async dispatch(limit = 1000): Promise<number> {
      if (smtp) return (await store.primary.mail.dispatch(limit))?.events ?? 0;
      const r = await store.primary.mail.dispatchUnstored(limit);
      if (!r || r.messages.length === 0) return r?.events ?? 0;
      const bookings = r.messages.map((m) => fromEvent(m.booking));
      const resources = await resourcesOf(r.messages.map((m, i) => ({ tenantId: m.tenantId, booking: bookings[i]! })));
      for (const [i, m] of r.messages.entries()) {
        try {
          await transport.send(compose(m.kind, bookings[i]!, resources, `<evt-${m.seq}@${domain}>`));
        } catch (err) {
          log.error({ err: (err as Error).message, seq: m.seq }, 'e-mail could not be composed; not logged');
        }
      }
      return r.events;
    },

    /** Makes the reminders that are due; returns how many. */
    async remind(): Promise<number> {
      if (settings.reminderBeforeMs <= 0) return 0;
      return (await store.primary.mail.remind(settings.reminderBeforeMs))?.length ?? 0;
    },

    /**
     * Claims a batch of due messages (each the first pending one of its
     * booking, leased, the leases renewed while they are sent) and sends them
     * at once; returns how many it claimed (a full batch: more may be due).
     */
    async sendDue(): Promise<{ claimed: number; full: boolean }> {
      const owner = randomUUID();
      const batch = await store.primary.mail.claim(owner, settings.leaseMs, batchSize);
      if (batch.length === 0) return { claimed: 0, full: false };
      // While the batch is out, its leases are renewed: a slow server never lets a second sender start. A node that
      // dies (or loses its database) stops renewing, and its messages are claimed again once the lease runs out.
      const inFlight = new Set(batch.map((m) => m.id));
      const renewal = setInterval(() => {
        void store.primary.mail.renew(owner, [...inFlight], settings.leaseMs)
          .catch((err) => log.warn({ err: (err as Error).message }, 'e-mail leases not renewed'));
      }, Math.max(100, Math.floor(settings.leaseMs / 3)));
      try {
        const bookings = await Promise.all(batch.map(bookingOf));
        const resources = await resourcesOf(batch.map((m, i) => ({ tenantId: m.tenantId, booking: bookings[i]! })));
        const outcomes = await Promise.all(batch.map(async (m, i) => {
          const o = await attempt(m, bookings[i]!, resources);
          // By SMTP, each message is recorded the moment the server answered: a crash after that never sends it again.
          if (smtp) await record(owner, [o]);
          inFlight.delete(m.id);
          return o;
        }));
        if (!smtp) await record(owner, outcomes);
        return { claimed: batch.length, full: batch.length === batchSize };
      } finally {
        clearInterval(renewal);
      }
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
