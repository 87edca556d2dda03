/** Domain rows → the API shapes of shared/schemas (ISO instants). */
import type { Booking, Hold, Resource } from '../../shared/schemas';
import type { BookingRow, HoldRow, ResourceRow } from './types';

const iso = (ms: number) => new Date(ms).toISOString();

/** A hold as clients see it. */
export function holdDto(h: HoldRow): Hold {
  return {
    id: h.id,
    status: h.status,
    resourceIds: h.resourceIds,
    start: iso(h.start),
    end: iso(h.end),
    seats: h.seats,
    expiresAt: iso(h.expiresAt),
    bookingId: h.bookingId,
    ownerId: h.ownerId,
    createdAt: iso(h.createdAt),
  };
}

/** A booking as clients see it. */
export function bookingDto(b: BookingRow): Booking {
  return {
    id: b.id,
    status: b.status,
    resourceIds: b.resourceIds,
    start: iso(b.start),
    end: iso(b.end),
    seats: b.seats,
    customer: b.customer,
    attendees: b.attendees,
    metadata: b.metadata,
    holdId: b.holdId,
    ownerId: b.ownerId,
    version: b.version,
    cancelReason: b.cancelReason,
    payment: b.payment ? { status: b.payment.status, amount: b.payment.amount, currency: b.payment.currency, reference: b.payment.reference } : null,
    createdAt: iso(b.createdAt),
    updatedAt: iso(b.updatedAt),
  };
}

/** A resource as clients see it. */
export function resourceDto(r: ResourceRow): Resource {
  return {
    id: r.id,
    name: r.name,
    kind: r.kind,
    parentId: r.parentId,
    capacity: r.capacity,
    timezone: r.timezone,
    slotMinutes: r.slotMinutes,
    rules: r.rules,
    metadata: r.metadata,
    version: r.version,
    archivedAt: r.archivedAt === null ? null : iso(r.archivedAt),
    price: r.price ?? null,
    createdAt: iso(r.createdAt),
    updatedAt: iso(r.updatedAt),
  };
}
