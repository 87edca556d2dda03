/**
 * The README walk-through through the typed client (shared/client): REST calls
 * typed by the types generated from /openapi.json, against a real node; and
 * the generated types are those of the document the app serves.
 */
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import { createSlotwiseClient, must, type Schemas } from '../../shared/client';
import { generatedTypes } from '../../scripts/codegen/generate';
import { readFileSync } from 'node:fs';
import { ADMIN_TOKEN, futureWeekday, startNode, type TestNode } from '../helpers/node';

let t: TestNode;
beforeAll(async () => {
  t = await startNode();
});
afterAll(async () => t.stop());

describe('README walk-through through the typed client', () => {
  it('books a room from scratch and cancels it', async () => {
    const admin = createSlotwiseClient({ baseUrl: t.url, token: ADMIN_TOKEN });
    const tenant = await admin.rest.POST('/v1/tenants', { body: { name: 'Acme Studios' } });
    expect(tenant.response.status).toBe(201);
    expect(tenant.data!.apiKey).toMatch(/^sw_/);
    // The key is shown once: an idempotent replay of this request answers null.
    expectTypeOf(tenant.data!.apiKey).toEqualTypeOf<string | null>();

    const { rest, clock } = createSlotwiseClient({ baseUrl: t.url, token: tenant.data!.apiKey! });
    const room = await must(rest.POST('/v1/resources', {
      body: { name: 'Room 1', kind: 'room', capacity: 4, timezone: 'Europe/Berlin', slotMinutes: 30 },
    }));
    expectTypeOf(room).toEqualTypeOf<Schemas['Resource']>();
    expect(room).toMatchObject({ name: 'Room 1', capacity: 4, version: 1 });

    const schedule = await rest.PUT('/v1/resources/{id}/schedule', {
      params: { path: { id: room.id } },
      body: { weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '09:00', end: '17:00' }] },
    });
    expect(schedule.response.status).toBe(200);
    expect(schedule.data!.slots).toBeGreaterThan(0);

    const day = futureWeekday();
    const avail = await rest.GET('/v1/availability', {
      params: { query: { resourceIds: room.id, from: `${day}T00:00:00Z`, to: `${day}T23:59:00Z` } },
    });
    expect(avail.response.status).toBe(200);
    const slots = (avail.data as Schemas['AvailabilitySlots']).resources[0]!.slots;
    expect(slots).toHaveLength(16);
    expect(slots[0]!.remaining).toBe(4);

    const hold = await rest.POST('/v1/holds', { body: { resourceIds: [room.id], start: slots[0]!.start, end: slots[1]!.end, seats: 2 } });
    expect(hold.response.status).toBe(201);
    expect(hold.data!.status).toBe('held');
    // Every answer's Date header set the client's server clock: the hold's life measured on it is the TTL, within a second.
    expect(clock.uncertaintyMs).toBeLessThan(2_000);
    expect(clock.msUntil(hold.data!.expiresAt)).toBeGreaterThan(298_000);

    const after = await rest.GET('/v1/availability', { params: { query: { resourceIds: room.id, from: slots[0]!.start, to: slots[2]!.end } } });
    expect((after.data as Schemas['AvailabilitySlots']).resources[0]!.slots.map((s) => s.remaining)).toEqual([2, 2, 4]);

    const customer = { name: 'Ada Lovelace', email: 'ada@example.com' };
    const booking = await rest.POST('/v1/holds/{id}/confirm', { params: { path: { id: hold.data!.id } }, body: { customer } });
    expect(booking.response.status).toBe(201);
    expect(booking.data).toMatchObject({ status: 'confirmed', seats: 2, holdId: hold.data!.id, version: 1 });
    const again = await rest.POST('/v1/holds/{id}/confirm', { params: { path: { id: hold.data!.id } }, body: { customer } });
    expect(again.response.status).toBe(200);
    expect(again.data!.id).toBe(booking.data!.id);

    const cancel = await rest.POST('/v1/bookings/{id}/cancel', { params: { path: { id: booking.data!.id } }, body: { reason: 'plans changed' } });
    expect(cancel.response.status).toBe(200);
    expect(cancel.data!.status).toBe('cancelled');

    const feed = await rest.GET('/v1/events', { params: { query: { after: 0, limit: 100 } } });
    expect(feed.response.status).toBe(200);
    expect(feed.data!.events.map((e) => e.type)).toEqual([
      'tenant.created', 'resource.created', 'schedule.updated', 'hold.created', 'booking.confirmed', 'booking.cancelled',
    ]);

    // A refusal is the problem+json, typed as the document describes it.
    const full = await rest.POST('/v1/holds', { body: { resourceIds: [room.id], start: slots[0]!.start, end: slots[1]!.end, seats: 5 } });
    expect(full.response.status).toBe(409);
    expect(full.error).toMatchObject({ code: 'slot-unavailable', status: 409 });
  });

  it('the committed shared/client/openapi.d.ts is what `npm run client:types` makes of the served document', async () => {
    const committed = readFileSync(new URL('../../shared/client/openapi.d.ts', import.meta.url), 'utf8');
    expect(committed === (await generatedTypes()), 'shared/client/openapi.d.ts is out of date: run npm run client:types').toBe(true);
  });
});
