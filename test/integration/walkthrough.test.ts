/** The README walk-through, over HTTP: tenant → resource → schedule → availability → hold → confirm → cancel. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, futureWeekday, startNode, type TestNode } from '../helpers/node';

let t: TestNode;
beforeAll(async () => {
  t = await startNode();
});
afterAll(async () => t.stop());

describe('README walk-through', () => {
  it('books a room from scratch and cancels it', async () => {
    const tenant = await t.admin('POST', '/v1/tenants', { name: 'Acme' });
    expect(tenant.status).toBe(201);
    expect(tenant.body.apiKey).toMatch(/^sw_/);
    const api = client(t.url, tenant.body.apiKey);

    const room = await api('POST', '/v1/resources', { name: 'Room 1', capacity: 4, timezone: 'Europe/Berlin', slotMinutes: 30 });
    expect(room.status).toBe(201);
    const id = room.body.id;

    const sched = await api('PUT', `/v1/resources/${id}/schedule`, { weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '09:00', end: '17:00' }] });
    expect(sched.status).toBe(200);
    expect(sched.body.slots).toBeGreaterThan(0);

    const day = futureWeekday();
    const avail = await api('GET', `/v1/availability?resourceIds=${id}&from=${day}T00:00:00Z&to=${day}T23:59:00Z`);
    expect(avail.status).toBe(200);
    const slots = avail.body.resources[0].slots;
    expect(slots).toHaveLength(16);
    expect(slots[0].remaining).toBe(4);

    const hold = await api('POST', '/v1/holds', { resourceIds: [id], start: slots[0].start, end: slots[1].end, seats: 2 });
    expect(hold.status).toBe(201);
    expect(hold.body.status).toBe('held');
    const ttl = Date.parse(hold.body.expiresAt) - Date.now();
    expect(ttl).toBeGreaterThan(290_000);
    expect(ttl).toBeLessThanOrEqual(300_000);

    const after = await api('GET', `/v1/availability?resourceIds=${id}&from=${slots[0].start}&to=${slots[2].end}`);
    expect(after.body.resources[0].slots.map((s: any) => s.remaining)).toEqual([2, 2, 4]);

    const booking = await api('POST', `/v1/holds/${hold.body.id}/confirm`, { customer: { name: 'Ada', email: 'ada@example.com' } });
    expect(booking.status).toBe(201);
    expect(booking.body).toMatchObject({ status: 'confirmed', seats: 2, holdId: hold.body.id, version: 1 });

    const again = await api('POST', `/v1/holds/${hold.body.id}/confirm`, { customer: { name: 'Ada', email: 'ada@example.com' } });
    expect(again.status).toBe(200);
    expect(again.body.id).toBe(booking.body.id);

    const cancel = await api('POST', `/v1/bookings/${booking.body.id}/cancel`, { reason: 'plans changed' });
    expect(cancel.status).toBe(200);
    expect(cancel.body.status).toBe('cancelled');
    const cancelAgain = await api('POST', `/v1/bookings/${booking.body.id}/cancel`);
    expect(cancelAgain.status).toBe(200);
    expect(cancelAgain.body).toEqual(cancel.body);

    const freed = await api('GET', `/v1/availability?resourceIds=${id}&from=${slots[0].start}&to=${slots[1].end}`);
    expect(freed.body.resources[0].slots.map((s: any) => s.remaining)).toEqual([4, 4]);

    const feed = await api('GET', '/v1/events?after=0&limit=100');
    expect(feed.status).toBe(200);
    expect(feed.body.events.map((e: any) => e.type)).toEqual([
      'tenant.created', 'resource.created', 'schedule.updated', 'hold.created', 'booking.confirmed', 'booking.cancelled',
    ]);
    const seqs = feed.body.events.map((e: any) => e.seq);
    expect([...seqs].sort((a, b) => a - b)).toEqual(seqs);
    expect(new Set(seqs).size).toBe(seqs.length);
  });
});
