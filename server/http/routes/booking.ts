/** Availability, holds and bookings. */
import { createHash } from 'node:crypto';
import {
  AvailabilityOptions, AvailabilityQuery, AvailabilitySlots, Booking, BookingCancel, BookingCreate, BookingListQuery, BookingPatch,
  Hold, HoldConfirm, HoldCreate, HoldExtend, Page,
} from '../../../shared/schemas';
import { DomainError } from '../../core/errors';
import { SLOTS_PER_REQUEST } from '../../core/services/protection';
import { requireTenantOrUser } from '../middleware/auth';
import { body, ETAG, idParam, json, LOCATION, query, route } from '../openapi';
import type { App, Services } from './types';

const ms = (iso: string) => Date.parse(iso);

/** Parses If-Match: `"3"`, `W/"3"` or `3`. */
function ifMatchVersion(header: string | undefined): number {
  if (!header) throw new DomainError('precondition-required', 'send If-Match with the ETag you last read');
  const m = /^(?:W\/)?"?(\d{1,9})"?$/.exec(header.trim());
  if (!m) throw new DomainError('precondition-failed', 'If-Match must be an ETag of this booking, such as "3"');
  return Number(m[1]);
}

/**
 * An availability answer as the route sends it, built once per computed
 * answer (and cached with it): the UTF-8 body, its ETag and both header sets.
 */
function renderAvailability(json: string) {
  const body = Buffer.from(json);
  const etag = `W/"${createHash('sha1').update(body).digest('base64url')}"`;
  return {
    body,
    etag,
    bytes: body.byteLength,
    ok: { ETag: etag, 'Cache-Control': 'private, no-cache', 'Content-Type': 'application/json' },
    notModified: { ETag: etag, 'Cache-Control': 'private, no-cache' },
  };
}

/** Registers availability, hold and booking routes. */
export function bookingRoutes(app: App, s: Services): void {
  const anyone = 'tenant API key or user token';
  const owner = 'the owner (user token) or the tenant API key';

  route(app, {
    method: 'get', path: '/v1/availability', tag: 'Availability', auth: anyone,
    summary: 'Free slots, or bookable options of a duration (mode all|any) across resources; ETag',
    query: AvailabilityQuery, ifNoneMatch: true,
    answers: {
      200: { schema: AvailabilitySlots.or(AvailabilityOptions), description: 'Slots per resource, or options', headers: { ETag: ETAG } },
      304: { description: 'Not modified: If-None-Match named the current ETag (no body)', headers: { ETag: ETAG } },
    },
    errors: { 404: 'A resource was not found', 422: `grid-misaligned (duration not on the grid), or limit-exceeded (more than ${s.availability.limits.maxSlots} slots read, or another bound)` },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    const q = query(c, AvailabilityQuery);
    let read = 0;
    const answer = await s.availability.rendered(p.tenantId, { ...q, from: ms(q.from), to: ms(q.to) }, renderAvailability, (slots) => (read = slots));
    // A big answer costs its budget more than a small one (a cached one costs nothing more).
    if (read >= SLOTS_PER_REQUEST) await s.protection.charge(c.get('ip'), p, 'availability', read / SLOTS_PER_REQUEST);
    // A Response with plain-object headers and a byte body: @hono/node-server writes it as it is, where c.header() or
    // c.body() with several headers would build a WHATWG Headers (undici validates every header), and a string
    // would be measured and encoded again on every answer.
    if (c.req.header('If-None-Match') === answer.etag) return new Response(null, { status: 304, headers: answer.notModified });
    return new Response(answer.body, { status: 200, headers: answer.ok });
  });

  route(app, {
    method: 'post', path: '/v1/holds', tag: 'Holds', auth: anyone, summary: 'Hold seats on one or more resources until expiresAt',
    body: HoldCreate, answers: { 201: { schema: Hold, description: 'The hold', headers: { Location: LOCATION } } },
    errors: { 404: 'A resource was not found', 409: 'slot-unavailable, with conflicts', 422: 'Grid, notice, advance or opening-hours rule broken' },
  }, async (c) => {
    const hold = await s.pipeline.run(s.commands.create, c.get('principal'), await json(c), 'body');
    return c.json(hold, 201, { Location: `/v1/holds/${hold.id}` });
  });

  route(app, {
    method: 'get', path: '/v1/holds/{id}', tag: 'Holds', auth: owner, summary: 'Read a hold',
    answers: { 200: { schema: Hold, description: 'The hold' } },
  }, async (c) => c.json(await s.holds.get(requireTenantOrUser(c), idParam(c))));

  route(app, {
    method: 'post', path: '/v1/holds/{id}/extend', tag: 'Holds', auth: owner, summary: 'Move the expiry to ttlSeconds from now (30 minutes in total at most)',
    body: HoldExtend, answers: { 200: { schema: Hold, description: 'The hold' } },
    errors: { 409: 'Not active', 410: 'Expired', 422: 'Beyond 30 minutes in total' },
  }, async (c) => {
    requireTenantOrUser(c);
    const id = idParam(c);
    return c.json(await s.pipeline.run(s.commands.extend, c.get('principal'), await json(c), 'body', id));
  });

  route(app, {
    method: 'delete', path: '/v1/holds/{id}', tag: 'Holds', auth: owner, summary: 'Release a hold (idempotent)',
    answers: { 200: { schema: Hold, description: 'The hold, released' } }, errors: { 409: 'Already confirmed' },
  }, async (c) => {
    requireTenantOrUser(c);
    return c.json(await s.pipeline.run(s.commands.release, c.get('principal'), {}, 'body', idParam(c)));
  });

  route(app, {
    method: 'post', path: '/v1/holds/{id}/confirm', tag: 'Holds', auth: owner, summary: 'Confirm a hold into a booking (a retry returns the same booking)',
    body: HoldConfirm,
    answers: {
      201: { schema: Booking, description: 'The booking, made now', headers: { ETag: ETAG, Location: LOCATION } },
      200: { schema: Booking, description: 'The hold was already confirmed: the same booking', headers: { ETag: ETAG, Location: LOCATION } },
    },
    errors: {
      409: 'Released', 410: 'hold-expired',
      // payments (docs/api.md "Payments")
      402: 'payment-declined: the card was declined; the hold stays active until it expires (retry with another card)',
      422: 'payment-required: the hold is priced and payment.token is missing (or the price changed meanwhile)',
      502: 'payment-failed: the payment provider failed; nothing was booked or charged',
    },
  }, async (c) => {
    requireTenantOrUser(c);
    const id = idParam(c);
    const { booking, created } = await s.pipeline.run(s.commands.confirm, c.get('principal'), await json(c), 'body', id);
    return c.json(booking, created ? 201 : 200, { ETag: `"${booking.version}"`, Location: `/v1/bookings/${booking.id}` });
  });

  route(app, {
    method: 'post', path: '/v1/bookings', tag: 'Bookings', auth: anyone, summary: 'Book directly, without a hold (atomic)',
    body: BookingCreate, answers: { 201: { schema: Booking, description: 'The booking', headers: { ETag: ETAG, Location: LOCATION } } },
    errors: {
      404: 'A resource was not found', 409: 'slot-unavailable, with conflicts', 422: 'Rule broken, or payment-required (priced resources, payment.token missing)',
      // payments (docs/api.md "Payments")
      402: 'payment-declined: the card was declined; nothing was booked', 502: 'payment-failed: the payment provider failed; nothing was booked or charged',
    },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    const b = await body(c, BookingCreate);
    const booking = await s.bookings.create(p, { ...b, start: ms(b.start), end: ms(b.end) }, c.req.header('Idempotency-Key'));
    return c.json(booking, 201, { ETag: `"${booking.version}"`, Location: `/v1/bookings/${booking.id}` });
  });

  route(app, {
    method: 'get', path: '/v1/bookings', tag: 'Bookings', auth: `${owner} (users see their own)`, summary: 'List bookings (filters, cursor paging)',
    query: BookingListQuery, answers: { 200: { schema: Page(Booking), description: 'A page of bookings' } },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    const q = query(c, BookingListQuery);
    const filter = { resourceId: q.resourceId, status: q.status, from: q.from ? ms(q.from) : undefined, to: q.to ? ms(q.to) : undefined };
    return c.json(await s.bookings.list(p, filter, q.cursor, q.limit));
  });

  route(app, {
    method: 'get', path: '/v1/bookings/{id}', tag: 'Bookings', auth: owner, summary: 'Read a booking (ETag = version)',
    answers: { 200: { schema: Booking, description: 'The booking', headers: { ETag: ETAG } } },
  }, async (c) => {
    const b = await s.bookings.get(requireTenantOrUser(c), idParam(c));
    return c.json(b, 200, { ETag: `"${b.version}"` });
  });

  route(app, {
    method: 'patch', path: '/v1/bookings/{id}', tag: 'Bookings', auth: owner, summary: 'Reschedule atomically (If-Match required)',
    body: BookingPatch, ifMatch: true, answers: { 200: { schema: Booking, description: 'The booking', headers: { ETag: ETAG } } },
    errors: { 409: 'Conflict or cancelled', 412: 'Stale version', 422: 'Rule broken', 428: 'If-Match missing' },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    const id = idParam(c);
    const version = ifMatchVersion(c.req.header('If-Match'));
    const b = await body(c, BookingPatch);
    const booking = await s.bookings.reschedule(p, id, version, {
      ...b,
      start: b.start ? ms(b.start) : undefined,
      end: b.end ? ms(b.end) : undefined,
    });
    return c.json(booking, 200, { ETag: `"${booking.version}"` });
  });

  route(app, {
    method: 'post', path: '/v1/bookings/{id}/cancel', tag: 'Bookings', auth: owner, summary: 'Cancel (idempotent)',
    body: BookingCancel, bodyRequired: false, answers: { 200: { schema: Booking, description: 'The cancelled booking', headers: { ETag: ETAG } } },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    const id = idParam(c);
    const b = await body(c, BookingCancel, true);
    const booking = await s.bookings.cancel(p, id, b.reason ?? null);
    return c.json(booking, 200, { ETag: `"${booking.version}"` });
  });
}
