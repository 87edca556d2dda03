/**
 * iCalendar (RFC 5545) text for bookings: the calendar feeds
 * (docs/integrations.md#calendar-feeds) and the invitations e-mails will carry
 * (iTIP, RFC 5546: METHOD:REQUEST, METHOD:CANCEL). Pure: no I/O.
 *
 * - A booking's UID is `<bookingId>@slotwise` in every feed and invitation, so a
 *   client updates the event it has instead of adding another.
 * - SEQUENCE is the booking's version minus one (0 when made; each change and
 *   the cancellation raise it), so later text always wins in clients.
 * - DTSTART/DTEND are in the time zone given (with its VTIMEZONE), or in UTC
 *   (`Z`) for UTC, where RFC 5545 forbids a TZID. DTSTAMP, LAST-MODIFIED are UTC.
 */
import { getVtimezoneComponent } from '@touch4it/ical-timezones';
import ical, { ICalAttendeeRole, ICalAttendeeStatus, ICalCalendarMethod, ICalEventStatus, type ICalCalendar } from 'ical-generator';
import { DateTime } from 'luxon';
import type { BookingRow } from '../types';

/** The UID of a booking's event, the same in every feed and invitation. */
export const bookingUid = (bookingId: string) => `${bookingId}@slotwise`;

/** SEQUENCE from a booking's version (versions start at 1, SEQUENCE at 0). */
export const bookingSequence = (version: number) => Math.max(0, version - 1);

/** What an event needs of a booking. */
export type IcsBooking = Pick<BookingRow, 'id' | 'start' | 'end' | 'status' | 'version' | 'createdAt' | 'updatedAt' | 'customer' | 'attendees' | 'resourceIds' | 'seats'>;

export interface FeedOptions {
  /** The calendar's name (X-WR-CALNAME). */
  name: string;
  /** IANA time zone for DTSTART/DTEND and the VTIMEZONE (`UTC`: plain UTC times). */
  timezone: string;
  /** Resource names by id, for SUMMARY. */
  resourceNames: Map<string, string>;
  /** DTSTAMP: when the text was made. */
  now: number;
}

export interface InvitationOptions {
  /** The time zone of the invitation's times (the resource's). */
  timezone: string;
  resourceNames: Map<string, string>;
  now: number;
  /** ORGANIZER (iTIP requires one); by default the booking's customer, when it has an e-mail. */
  organizer?: { name: string; email: string };
}

const PRODID = { company: 'Slotwise', product: 'Slotwise bookings', language: 'EN' };

// A zone's VTIMEZONE text never changes while the process runs; building it is most of an invitation's cost.
const vtimezones = new Map<string, string | null>();
function vtimezone(zone: string): string | null {
  let v = vtimezones.get(zone);
  if (v === undefined) {
    v = getVtimezoneComponent(zone) ?? null;
    // Bounded: zone names come from resources, validated as IANA names (a few hundred exist).
    if (vtimezones.size < 1_000) vtimezones.set(zone, v);
  }
  return v;
}

/** A zone ical-generator can put in a TZID: a known IANA name other than UTC; anything else is written as UTC. */
function zoneOf(timezone: string): string | null {
  if (!timezone || timezone === 'UTC' || timezone === 'Etc/UTC') return null;
  return vtimezone(timezone) ? timezone : null;
}

const at = (ms: number, zone: string | null) => (zone ? DateTime.fromMillis(ms, { zone }) : new Date(ms));

function calendar(name: string | null, method: ICalCalendarMethod | null): ICalCalendar {
  // The calendar itself has no zone (DTSTAMP and LAST-MODIFIED stay UTC); events carry theirs, and the
  // generator adds one VTIMEZONE per zone the events use.
  return ical({ prodId: PRODID, name, method, timezone: { name: null, generator: vtimezone } });
}

function summaryOf(b: IcsBooking, names: Map<string, string>): string {
  const rooms = b.resourceIds.map((id) => names.get(id) ?? id).join(', ');
  return `${rooms}: ${b.customer.name}${b.seats > 1 ? ` (${b.seats} seats)` : ''}`;
}

function addEvent(cal: ICalCalendar, b: IcsBooking, zone: string | null, names: Map<string, string>, now: number, cancelled: boolean) {
  return cal.createEvent({
    id: bookingUid(b.id),
    sequence: bookingSequence(b.version),
    start: at(b.start, zone),
    end: at(b.end, zone),
    timezone: zone,
    summary: summaryOf(b, names),
    status: cancelled ? ICalEventStatus.CANCELLED : ICalEventStatus.CONFIRMED,
    stamp: new Date(now),
    created: new Date(b.createdAt),
    lastModified: new Date(b.updatedAt),
  });
}

/** A feed: one VEVENT per booking (cancelled ones as STATUS:CANCELLED), METHOD absent (a subscription, not a message). */
export function bookingsCalendar(bookings: IcsBooking[], o: FeedOptions): string {
  const cal = calendar(o.name, null);
  const zone = zoneOf(o.timezone);
  for (const b of bookings) addEvent(cal, b, zone, o.resourceNames, o.now, b.status === 'cancelled');
  return cal.toString();
}

/**
 * An invitation for one booking (iTIP): METHOD:REQUEST while it is confirmed,
 * METHOD:CANCEL once it is cancelled, with the same UID and a higher SEQUENCE.
 * ATTENDEEs are the customer and the attendees that have an e-mail.
 */
export function bookingInvitation(b: IcsBooking, o: InvitationOptions): string {
  const cancelled = b.status === 'cancelled';
  const cal = calendar(null, cancelled ? ICalCalendarMethod.CANCEL : ICalCalendarMethod.REQUEST);
  const event = addEvent(cal, b, zoneOf(o.timezone), o.resourceNames, o.now, cancelled);
  const organizer = o.organizer ?? (b.customer.email ? { name: b.customer.name, email: b.customer.email } : null);
  if (organizer) event.organizer(organizer);
  const seen = new Set<string>();
  for (const p of [b.customer, ...b.attendees]) {
    if (!p.email || seen.has(p.email.toLowerCase())) continue;
    seen.add(p.email.toLowerCase());
    event.createAttendee({
      name: p.name, email: p.email, role: ICalAttendeeRole.REQ,
      status: cancelled ? ICalAttendeeStatus.DECLINED : ICalAttendeeStatus.ACCEPTED,
    });
  }
  return cal.toString();
}
