/** iCalendar text for bookings (server/core/services/ics.ts), parsed back with ical.js. */
import ICAL from 'ical.js';
import { describe, expect, it } from 'vitest';
import { bookingInvitation, bookingsCalendar, type IcsBooking } from '../../server/core/services/ics';

const NOW = Date.parse('2026-06-01T12:00:00Z');
const names = new Map([['r1', 'Room A'], ['r2', 'Projector']]);
const booking = (over: Partial<IcsBooking> = {}): IcsBooking => ({
  id: '0b6a1b1e-1111-4c4c-8888-000000000001',
  start: Date.parse('2026-07-01T08:00:00Z'),
  end: Date.parse('2026-07-01T09:30:00Z'),
  status: 'confirmed',
  version: 1,
  createdAt: Date.parse('2026-05-30T10:00:00Z'),
  updatedAt: Date.parse('2026-05-30T10:00:00Z'),
  customer: { name: 'Ada', email: 'ada@example.com' },
  attendees: [{ name: 'Bob', email: 'bob@example.com' }, { name: 'No mail' }],
  resourceIds: ['r1', 'r2'],
  seats: 1,
  ...over,
});

function parse(text: string) {
  const cal = new ICAL.Component(ICAL.parse(text));
  return { cal, events: cal.getAllSubcomponents('vevent').map((v) => ({ v, e: new ICAL.Event(v) })) };
}

describe('bookingsCalendar', () => {
  it('writes one VEVENT per booking in the resource zone, with its VTIMEZONE', () => {
    const text = bookingsCalendar([booking(), booking({ id: 'b2', status: 'cancelled', version: 3 })], { name: 'Room A', timezone: 'Europe/Paris', resourceNames: names, now: NOW });
    expect(text.split('\r\n')).toContain('VERSION:2.0');
    const { cal, events } = parse(text);
    expect(cal.getFirstPropertyValue('prodid')).toBe('-//Slotwise//Slotwise bookings//EN');
    expect(cal.getFirstPropertyValue('method')).toBeNull();
    expect(cal.getFirstSubcomponent('vtimezone')?.getFirstPropertyValue('tzid')).toBe('Europe/Paris');
    expect(events).toHaveLength(2);
    const [a, b] = events;
    expect(a!.e.uid).toBe('0b6a1b1e-1111-4c4c-8888-000000000001@slotwise');
    expect(a!.v.getFirstProperty('dtstart')!.getParameter('tzid')).toBe('Europe/Paris');
    // 08:00Z is 10:00 in Paris in July.
    expect(a!.v.getFirstProperty('dtstart')!.toICALString()).toBe('DTSTART;TZID=Europe/Paris:20260701T100000');
    expect(a!.e.startDate.toJSDate().toISOString()).toBe('2026-07-01T08:00:00.000Z');
    expect(a!.e.endDate.toJSDate().toISOString()).toBe('2026-07-01T09:30:00.000Z');
    expect(a!.e.summary).toBe('Room A, Projector: Ada');
    expect(a!.v.getFirstPropertyValue('status')).toBe('CONFIRMED');
    expect(a!.e.sequence).toBe(0);
    expect(b!.e.uid).toBe('b2@slotwise');
    expect(b!.v.getFirstPropertyValue('status')).toBe('CANCELLED');
    expect(b!.e.sequence).toBe(2);
    expect(text).toMatch(/DTSTAMP:20260601T120000Z/);
    expect(text).toMatch(/LAST-MODIFIED:20260530T100000Z/);
  });

  it('writes UTC times without a TZID for UTC, and an empty calendar for no bookings', () => {
    const { cal, events } = parse(bookingsCalendar([booking()], { name: 'x', timezone: 'UTC', resourceNames: names, now: NOW }));
    expect(cal.getFirstSubcomponent('vtimezone')).toBeNull();
    expect(events[0]!.v.getFirstProperty('dtstart')!.toICALString()).toBe('DTSTART:20260701T080000Z');
    expect(parse(bookingsCalendar([], { name: 'x', timezone: 'UTC', resourceNames: names, now: NOW })).events).toEqual([]);
  });
});

describe('bookingInvitation', () => {
  it('is a REQUEST while confirmed and a CANCEL once cancelled, with the same UID and a higher SEQUENCE', () => {
    const req = parse(bookingInvitation(booking({ version: 2 }), { timezone: 'America/New_York', resourceNames: names, now: NOW }));
    const cancel = parse(bookingInvitation(booking({ version: 3, status: 'cancelled' }), { timezone: 'America/New_York', resourceNames: names, now: NOW }));
    expect(req.cal.getFirstPropertyValue('method')).toBe('REQUEST');
    expect(cancel.cal.getFirstPropertyValue('method')).toBe('CANCEL');
    const r = req.events[0]!;
    const c = cancel.events[0]!;
    expect(c.e.uid).toBe(r.e.uid);
    expect(c.e.sequence).toBeGreaterThan(r.e.sequence);
    expect(r.v.getFirstPropertyValue('status')).toBe('CONFIRMED');
    expect(c.v.getFirstPropertyValue('status')).toBe('CANCELLED');
    expect(r.v.getFirstProperty('dtstart')!.toICALString()).toBe('DTSTART;TZID=America/New_York:20260701T040000');
    // The customer organizes by default; attendees are the customer and those with an e-mail.
    expect(String(r.v.getFirstPropertyValue('organizer')).toLowerCase()).toBe('mailto:ada@example.com');
    expect(r.e.attendees.map((a) => String(a.getFirstValue()).toLowerCase())).toEqual(['mailto:ada@example.com', 'mailto:bob@example.com']);
    expect(c.e.attendees.map((a) => a.getParameter('partstat'))).toEqual(['DECLINED', 'DECLINED']);
  });

  it('takes a given organizer, and has none when the customer has no e-mail', () => {
    const given = parse(bookingInvitation(booking(), { timezone: 'UTC', resourceNames: names, now: NOW, organizer: { name: 'Front desk', email: 'desk@example.org' } }));
    expect(String(given.events[0]!.v.getFirstPropertyValue('organizer')).toLowerCase()).toBe('mailto:desk@example.org');
    const none = parse(bookingInvitation(booking({ customer: { name: 'Walk-in' }, attendees: [] }), { timezone: 'UTC', resourceNames: names, now: NOW }));
    expect(none.events[0]!.v.getFirstPropertyValue('organizer')).toBeNull();
    expect(none.events[0]!.e.attendees).toEqual([]);
  });
});
