/** E-mail content (server/core/services/mail.ts) and its settings (server/config.ts). */
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../server/config';
import { composeMail, parseAddress, recipientsOf, whenText } from '../../server/core/services/mail';

const booking = {
  id: '6f1c2a8e-0000-4000-8000-000000000001',
  start: Date.parse('2026-07-01T08:00:00Z'),
  end: Date.parse('2026-07-01T09:30:00Z'),
  status: 'confirmed' as const,
  version: 1,
  createdAt: Date.parse('2026-06-01T00:00:00Z'),
  updatedAt: Date.parse('2026-06-01T00:00:00Z'),
  customer: { name: 'Ada <script>', email: 'ada@example.com' },
  attendees: [{ name: 'Bob', email: 'Ada@Example.com' }, { name: 'Cy' }, { name: 'Di', email: 'di@example.com' }],
  resourceIds: ['r1'],
  seats: 2,
  cancelReason: null,
};

describe('e-mail content', () => {
  it('goes to the customer and each attendee with an address, each address once (case aside)', () => {
    expect(recipientsOf(booking)).toEqual(['ada@example.com', 'di@example.com']);
    expect(recipientsOf({ customer: { name: 'Nobody' }, attendees: [{ name: 'Cy' }] })).toEqual([]);
  });

  it('reads From as `Name <address>` or a bare address', () => {
    expect(parseAddress('Slotwise bookings <bookings@example.com>')).toEqual({ name: 'Slotwise bookings', email: 'bookings@example.com' });
    expect(parseAddress('"Quoted, Name" <q@example.com>')).toEqual({ name: 'Quoted, Name', email: 'q@example.com' });
    expect(parseAddress('plain@example.com')).toEqual({ name: 'Slotwise', email: 'plain@example.com' });
  });

  it('gives times in the resource zone, and the end date when it is another day', () => {
    expect(whenText(booking.start, booking.end, 'Europe/Paris')).toBe('Wed 1 Jul 2026, 10:00–11:30 (Europe/Paris)');
    expect(whenText(booking.start, Date.parse('2026-07-02T01:00:00Z'), 'UTC')).toBe('Wed 1 Jul 2026, 08:00–Thu 2 Jul 2026, 01:00 (UTC)');
    // An unknown zone falls back to UTC rather than printing a wrong local time.
    expect(whenText(booking.start, booking.end, 'Mars/Olympus')).toBe('Wed 1 Jul 2026, 08:00–09:30 (UTC)');
  });

  it('escapes what customers wrote in the HTML body, and invites with REQUEST, or CANCEL once cancelled', () => {
    const o = { from: 'Bookings <b@example.com>', messageId: '<m1@example.com>', now: Date.parse('2026-06-02T00:00:00Z') };
    const room = [{ id: 'r1', name: 'Room & Co', timezone: 'Europe/Paris' }];
    const m = composeMail('confirmation', booking, room, o);
    expect(m.subject).toBe('Booking confirmed: Room & Co, Wed 1 Jul 2026, 10:00–11:30 (Europe/Paris)');
    expect(m.html).toContain('Hello Ada &#60;script&#62;,');
    expect(m.html).not.toContain('<script>');
    expect(m.text).toContain('Hello Ada <script>,');
    expect(m.calendar.method).toBe('REQUEST');
    expect(m.calendar.content).toContain('METHOD:REQUEST');
    expect(m.calendar.content).toContain('ORGANIZER;CN="Bookings":mailto:b@example.com');
    const c = composeMail('cancellation', { ...booking, status: 'cancelled', version: 3, cancelReason: 'Closed' }, room, o);
    expect(c.calendar.method).toBe('CANCEL');
    expect(c.calendar.content).toContain('SEQUENCE:2');
    expect(c.text).toContain('Your booking was cancelled: Closed');
  });
});

describe('e-mail settings', () => {
  it('accepts an smtp:// or smtps:// SMTP_URL, treats an empty one as unset, and refuses anything else clearly', () => {
    expect(loadConfig({ SMTP_URL: 'smtps://user:pass@mail.example.com:465' }).integrations.mail.smtpUrl).toBe('smtps://user:pass@mail.example.com:465');
    expect(loadConfig({ SMTP_URL: '' }).integrations.mail.smtpUrl).toBeUndefined();
    expect(() => loadConfig({ SMTP_URL: 'http://mail.example.com' })).toThrow(ConfigError);
    expect(() => loadConfig({ SMTP_URL: 'http://mail.example.com' })).toThrow(/SMTP_URL must be an smtp:\/\/ or smtps:\/\/ URL/);
  });

  it('reads reminder minutes (0 turns reminders off) within 0..30 days', () => {
    expect(loadConfig({}).integrations.mail.reminderBeforeMs).toBe(24 * 3_600_000);
    expect(loadConfig({ REMINDER_BEFORE_MINUTES: '0' }).integrations.mail.reminderBeforeMs).toBe(0);
    expect(() => loadConfig({ REMINDER_BEFORE_MINUTES: '-5' })).toThrow(/REMINDER_BEFORE_MINUTES/);
    expect(() => loadConfig({ REMINDER_BEFORE_MINUTES: String(31 * 1440) })).toThrow(/REMINDER_BEFORE_MINUTES/);
  });
});
