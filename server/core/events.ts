/**
 * Domain events, typed. Each service builds its event once, from the rows the
 * database returned, in the transaction that made the change; the feed
 * decoder (server/db/feed.ts) stores it with its position and the seats it
 * left on the slots it changed, and every consumer (live fan-out,
 * `availability.changed`, the availability cache, group documents, the REST
 * feed) reads that same object. Nothing re-reads the slots or re-parses an
 * event to learn what it changed.
 */
import type { Booking, Hold, Resource } from '../../shared/schemas';

/** A range of a booking or hold before a reschedule. */
export interface PreviousRange {
  resourceIds: string[];
  start: string;
  end: string;
  seats: number;
}

/** The data each event type carries (the `data` of the REST feed). */
export interface EventData {
  'hold.created': { hold: Hold; [extra: string]: unknown };
  'hold.extended': { hold: Hold };
  'hold.released': { hold: Hold; [extra: string]: unknown };
  'hold.expired': { hold: Hold };
  'booking.confirmed': { booking: Booking; holdId: string | null; [extra: string]: unknown };
  'booking.cancelled': { booking: Booking };
  'booking.rescheduled': { booking: Booking; previous: PreviousRange };
  'booking.updated': { booking: Booking; previous: PreviousRange };
  'block.created': { block: { id: string; resourceId: string; start: string; end: string; [k: string]: unknown } };
  'block.deleted': { block: { id: string; resourceId: string; start: string; end: string; [k: string]: unknown } };
  'schedule.updated': { resourceId: string; schedule: unknown };
  'resource.created': { resource: Resource };
  'resource.updated': { resource: Resource };
  'resource.archived': { resource: Resource };
  'group.created': { group: { id: string; title: string; members: string[] } };
  'group.member.added': { groupId: string; userId: string; role: string };
  'group.member.removed': { groupId: string; userId: string };
  'group.cancelled': { groupId: string };
  'tenant.created': { tenant: { id: string; name: string } };
  'token.issued': Record<string, unknown>;
  'token.revoked': Record<string, unknown>;
  'api-key.created': Record<string, unknown>;
  'api-key.rotated': Record<string, unknown>;
  'api-key.revoked': Record<string, unknown>;
  'webhook.disabled': { webhook: { id: string; url: string; reason: string; failingSince: string | null; failures: number } };
}

export type EventType = keyof EventData;

/** Every event type (webhook endpoints filter by them). */
export const EVENT_TYPES = [
  'hold.created', 'hold.extended', 'hold.released', 'hold.expired',
  'booking.confirmed', 'booking.cancelled', 'booking.rescheduled', 'booking.updated',
  'block.created', 'block.deleted', 'schedule.updated', 'resource.created', 'resource.updated', 'resource.archived',
  'group.created', 'group.member.added', 'group.member.removed', 'group.cancelled',
  'tenant.created', 'token.issued', 'token.revoked', 'api-key.created', 'api-key.rotated', 'api-key.revoked', 'webhook.disabled',
] as const satisfies readonly EventType[];
// Each type listed once and none missing: a type added to EventData must be added above (this fails to compile otherwise).
type Missing = Exclude<EventType, (typeof EVENT_TYPES)[number]>;
const everyType: [Missing] extends [never] ? true : Missing = true;
void everyType;

/** An event as its service builds it. */
export type DomainEvent<T extends EventType = EventType> = {
  [K in T]: { tenantId: string; type: K; resourceIds: string[]; data: EventData[K] };
}[T];

/** The seats an event left on one slot it changed: [resourceId, startMs, endMs, capacity, remaining]. */
export type SlotState = [resourceId: string, start: number, end: number, capacity: number, remaining: number];

/** An event with its place in the feed: what every consumer receives. */
export interface FeedEvent {
  seq: number;
  tenantId: string;
  type: string;
  resourceIds: string[];
  data: Record<string, unknown>;
  /** The slots the change left, on the ranges it touched. */
  slots: SlotState[];
  /** For each of resourceIds, the seq of the previous event naming that resource (0: none). */
  prevSeqs: number[];
  /** Commit time, ms. */
  at: number;
}

/** The time ranges an event changed seats over, per resource (from its own typed data). */
export function changedRanges(e: DomainEvent): { resourceId: string; start: number; end: number }[] {
  const out: { resourceId: string; start: number; end: number }[] = [];
  const add = (ids: string[], start: string, end: string) => {
    for (const resourceId of ids) out.push({ resourceId, start: Date.parse(start), end: Date.parse(end) });
  };
  const d = e.data as Partial<Record<'hold' | 'booking' | 'block' | 'previous', { resourceIds?: string[]; resourceId?: string; start: string; end: string }>>;
  for (const key of ['hold', 'booking', 'block', 'previous'] as const) {
    const x = d[key];
    if (x && typeof x.start === 'string' && typeof x.end === 'string') add(x.resourceIds ?? (x.resourceId ? [x.resourceId] : e.resourceIds), x.start, x.end);
  }
  return out;
}

/** True when events of this type change seats on the resources they name (holds and bookings), and nothing else. */
export const movesSeatsOnly = (type: string) => type.startsWith('hold.') || type.startsWith('booking.');
