/** Bookings: direct booking, read, list, reschedule, cancel. */
import type { BookingFilter, MarkedEvent, Unit } from '../store';
import type { Booking } from '../../../shared/schemas';
import { bookingDto } from '../dto';
import { DomainError, notFound } from '../errors';
import type { CoreDeps } from '../ports';
import { bookingDecision } from '../rules';
import type { BookingPaymentState, BookingRow, TenantPrincipal } from '../types';
import { randomUUID } from 'node:crypto';
import { amountOf, authorizationKey, paymentFlow, captureRetryOf } from './payments';
import { mayAccess, ownerOf } from './holds';
import { ResourceCache } from './resource-cache';
import { changeSeats, checkRequestTiming, liveResources, returnSeats, takeSeatsFast } from './seats';
import { decodeCursor, encodeCursor } from './cursor';

export interface CreateBooking {
  resourceIds: string[];
  start: number;
  end: number;
  seats: number;
  customer: { name: string; email: string };
  attendees?: { name: string; email?: string }[];
  metadata?: Record<string, unknown>;
  /** Payments: the card token, needed when the resources are priced. */
  payment?: { token: string };
}

export interface Reschedule {
  start?: number;
  end?: number;
  resourceIds?: string[];
  seats?: number;
  metadata?: Record<string, unknown>;
}

/** Cancels a locked, confirmed booking inside the caller's transaction. */
export async function cancelBookingIn(q: Unit, cur: BookingRow, reason: string | null): Promise<BookingRow> {
  await returnSeats(q, cur.tenantId, cur);
  const row = await q.bookings.cancel(cur.id, reason);
  await q.events.append(cur.tenantId, 'booking.cancelled', row.resourceIds, { booking: bookingDto(row) });
  return row;
}

/** Builds the booking service over the core's ports. */
export function bookingService({ store, clock, config, log, payments: provider, resourceCache = new ResourceCache() }: CoreDeps) {
  const payments = paymentFlow(provider, log, captureRetryOf(config, clock));

  async function visible(q: Unit, p: TenantPrincipal, id: string, lock: boolean): Promise<BookingRow> {
    const b = await q.bookings.get(p.tenantId, id, lock);
    if (!b || !mayAccess(p, b.ownerId)) throw notFound(`booking ${id}`);
    return b;
  }

  /** The general path of a priced direct booking (payments). */
  async function createPaid(p: TenantPrincipal, cmd: CreateBooking, due: { amount: number; currency: string }, requestKey: string | undefined, now: number): Promise<Booking> {
    const token = cmd.payment?.token;
    const authorized: BookingPaymentState = await payments.authorize(due, token, authorizationKey(p.tenantId, `booking:${requestKey ?? randomUUID()}`, token ?? '', due));
    const { booking } = await payments.book(store, authorized, async (q) => {
      const resources = await liveResources(q, p.tenantId, cmd.resourceIds);
      payments.check(authorized, resources);
      checkRequestTiming(resources, cmd, now);
      await changeSeats(q, p.tenantId, resources, cmd);
      const made = await q.bookings.insert(p.tenantId, {
        holdId: null, ownerId: ownerOf(p), resourceIds: cmd.resourceIds, start: cmd.start, end: cmd.end, seats: cmd.seats,
        customer: cmd.customer, attendees: cmd.attendees ?? [], metadata: cmd.metadata ?? {}, payment: authorized,
      });
      await q.events.append(p.tenantId, 'booking.confirmed', made.resourceIds, { booking: bookingDto(made), holdId: null });
      return { booking: made, created: true };
    });
    return bookingDto(booking);
  }

  return {
    /**
     * Books seats directly, without a hold, in one transaction. Priced
     * resources (payments) take the general path: authorize, book, capture
     * (void when the booking fails); `requestKey` (the Idempotency-Key) makes
     * a retry reuse the same authorization.
     */
    async create(p: TenantPrincipal, cmd: CreateBooking, requestKey?: string): Promise<Booking> {
      const now = clock.now();
      if (payments.enabled) {
        const due = amountOf(await store.primary.resources.byIds(p.tenantId, cmd.resourceIds));
        if (due) return createPaid(p, cmd, due, requestKey, now);
      }
      const fields = {
        holdId: null,
        ownerId: ownerOf(p),
        resourceIds: cmd.resourceIds,
        start: cmd.start,
        end: cmd.end,
        seats: cmd.seats,
        customer: cmd.customer,
        attendees: cmd.attendees ?? [],
        metadata: cmd.metadata ?? {},
      };
      // The event, with the places of what only the database knows (id, createdAt, updatedAt, the slots' seats) marked for it.
      const event: MarkedEvent = { names: ['id', 'createdAt', 'updatedAt'], build: (mark) => ({ tenantId: p.tenantId, type: 'booking.confirmed', resourceIds: [...cmd.resourceIds].sort(), data: {
        booking: { ...bookingDto({ ...fields, id: '', tenantId: p.tenantId, resourceIds: [...cmd.resourceIds].sort(), status: 'confirmed',
          version: 1, cancelReason: null, createdAt: 0, updatedAt: 0 }), id: mark('id'), createdAt: mark('createdAt'), updatedAt: mark('updatedAt') },
        holdId: null,
      } }) };
      const fast = config.fastPaths === false ? null : await store.autocommit(
        (q) => takeSeatsFast(q, resourceCache, p.tenantId, cmd, now, (versions) => q.bookings.createFast(p.tenantId, fields, event, versions)),
      );
      const b = fast ?? (await store.tx(async (q) => {
        const resources = await liveResources(q, p.tenantId, cmd.resourceIds);
        checkRequestTiming(resources, cmd, now);
        await changeSeats(q, p.tenantId, resources, cmd);
        const row = await q.bookings.insert(p.tenantId, fields);
        await q.events.append(p.tenantId, 'booking.confirmed', row.resourceIds, { booking: bookingDto(row), holdId: null });
        return row;
      }));
      return bookingDto(b);
    },

    /** Reads a booking. */
    async get(p: TenantPrincipal, id: string): Promise<Booking> {
      return bookingDto(await visible(store.primary, p, id, false));
    },

    /** Lists bookings (users see their own), oldest first, with a cursor. */
    async list(p: TenantPrincipal, filter: Omit<BookingFilter, 'ownerId'>, cursor: string | undefined, limit: number) {
      const after = decodeCursor(cursor);
      const rows = await store.primary.bookings.page(p.tenantId, { ...filter, ownerId: p.kind === 'user' ? p.userId : undefined }, after, limit + 1);
      const items = rows.slice(0, limit);
      const last = items[items.length - 1];
      return { items: items.map(bookingDto), nextCursor: rows.length > limit && last ? encodeCursor(last) : null };
    },

    /** Moves a booking: takes the new range and frees the old in one transaction (412 on a stale version). */
    async reschedule(p: TenantPrincipal, id: string, ifMatch: number, cmd: Reschedule): Promise<Booking> {
      const b = await store.tx(async (q) => {
        const cur = await visible(q, p, id, true);
        bookingDecision(cur, 'reschedule', ifMatch);
        const next = {
          id: cur.id,
          resourceIds: cmd.resourceIds ?? cur.resourceIds,
          start: cmd.start ?? cur.start,
          end: cmd.end ?? cur.end,
          seats: cmd.seats ?? cur.seats,
          metadata: cmd.metadata ?? cur.metadata,
        };
        const moved =
          next.start !== cur.start || next.end !== cur.end || next.seats !== cur.seats ||
          [...next.resourceIds].sort().join() !== [...cur.resourceIds].sort().join();
        if (moved) {
          if (!(next.end > next.start)) throw new DomainError('validation-failed', 'end must be after start', { errors: [{ path: 'end', message: 'end must be after start' }] });
          const resources = await liveResources(q, p.tenantId, next.resourceIds);
          checkRequestTiming(resources, next, clock.now());
          await changeSeats(q, p.tenantId, resources, next, cur);
        }
        const row = await q.bookings.reschedule(next);
        await q.events.append(p.tenantId, moved ? 'booking.rescheduled' : 'booking.updated', [...new Set([...cur.resourceIds, ...row.resourceIds])], {
          booking: bookingDto(row),
          previous: { resourceIds: cur.resourceIds, start: new Date(cur.start).toISOString(), end: new Date(cur.end).toISOString(), seats: cur.seats },
        });
        return row;
      });
      return bookingDto(b);
    },

    /** Cancels a booking and frees its seats; cancelling again returns the same result. */
    async cancel(p: TenantPrincipal, id: string, reason: string | null): Promise<Booking> {
      const b = await store.tx(async (q) => {
        const cur = await visible(q, p, id, true);
        if (bookingDecision(cur, 'cancel') === 'replay') return cur;
        return cancelBookingIn(q, cur, reason);
      });
      return bookingDto(b);
    },
  };
}

export type BookingService = ReturnType<typeof bookingService>;
