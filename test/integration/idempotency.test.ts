/** Invariant 7: Idempotency-Key replays the first response and changes nothing more. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { futureWeekday, newTenant, startNode, type TestNode } from '../helpers/node';

let t: TestNode;
beforeAll(async () => {
  t = await startNode();
});
afterAll(async () => t.stop());

const holdCount = async (tenantId: string) =>
  (await t.pool.query('SELECT count(*)::int AS n FROM holds WHERE tenant_id = $1', [tenantId])).rows[0].n as number;

describe('Idempotency-Key', () => {
  it('replays the identical response and creates nothing more', async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource({ capacity: 3 });
    const day = futureWeekday(2);
    const body = { resourceIds: [room.id], start: `${day}T09:00:00Z`, end: `${day}T10:00:00Z` };
    const first = await tenant.api('POST', '/v1/holds', body, { 'Idempotency-Key': 'k-1' });
    const second = await tenant.api('POST', '/v1/holds', body, { 'Idempotency-Key': 'k-1' });
    expect(first.status).toBe(201);
    expect(second.status).toBe(201);
    expect(second.text).toBe(first.text);
    expect(second.headers.get('location')).toBe(first.headers.get('location'));
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(await holdCount(tenant.id)).toBe(1);
  });

  it('rejects the same key with another body (422) and changes nothing', async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource({ capacity: 3 });
    const day = futureWeekday(2);
    const body = { resourceIds: [room.id], start: `${day}T09:00:00Z`, end: `${day}T10:00:00Z` };
    expect((await tenant.api('POST', '/v1/holds', body, { 'Idempotency-Key': 'k-2' })).status).toBe(201);
    const other = await tenant.api('POST', '/v1/holds', { ...body, seats: 2 }, { 'Idempotency-Key': 'k-2' });
    expect(other.status).toBe(422);
    expect(other.body.code).toBe('idempotency-key-reuse');
    expect(await holdCount(tenant.id)).toBe(1);
  });

  it('keys are per credential: another tenant may use the same key', async () => {
    const a = await newTenant(t);
    const b = await newTenant(t);
    const ra = await a.newResource();
    const rb = await b.newResource();
    const day = futureWeekday(2);
    const range = { start: `${day}T09:00:00Z`, end: `${day}T10:00:00Z` };
    expect((await a.api('POST', '/v1/holds', { resourceIds: [ra.id], ...range }, { 'Idempotency-Key': 'shared' })).status).toBe(201);
    expect((await b.api('POST', '/v1/holds', { resourceIds: [rb.id], ...range }, { 'Idempotency-Key': 'shared' })).status).toBe(201);
  });

  it('20 concurrent requests with one key create one hold and all answer the same', async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource({ capacity: 50 });
    const day = futureWeekday(2);
    const body = { resourceIds: [room.id], start: `${day}T11:00:00Z`, end: `${day}T12:00:00Z` };
    const replies = await Promise.all(Array.from({ length: 20 }, () => tenant.api('POST', '/v1/holds', body, { 'Idempotency-Key': 'race' })));
    expect(replies.map((r) => r.status)).toEqual(Array(20).fill(201));
    expect(new Set(replies.map((r) => r.body.id)).size).toBe(1);
    expect(await holdCount(tenant.id)).toBe(1);
    const slot = await t.pool.query('SELECT seats_taken FROM slots WHERE resource_id = $1 AND start_at = $2', [room.id, body.start]);
    expect(slot.rows[0].seats_taken).toBe(1);
  });

  it('a failed request leaves no trace, so the same key may be retried', async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource({ capacity: 1 });
    const day = futureWeekday(2);
    const body = { resourceIds: [room.id], start: `${day}T13:00:00Z`, end: `${day}T14:00:00Z` };
    const blocker = await tenant.api('POST', '/v1/holds', body);
    expect(blocker.status).toBe(201);
    const failed = await tenant.api('POST', '/v1/holds', body, { 'Idempotency-Key': 'retry-me' });
    expect(failed.status).toBe(409);
    expect((await tenant.api('DELETE', `/v1/holds/${blocker.body.id}`)).status).toBe(200);
    const retried = await tenant.api('POST', '/v1/holds', body, { 'Idempotency-Key': 'retry-me' });
    expect(retried.status).toBe(201);
  });

  it('confirm and cancel replay the same booking', async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource();
    const day = futureWeekday(2);
    const hold = await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T15:00:00Z`, end: `${day}T16:00:00Z` });
    const customer = { customer: { name: 'Ada', email: 'ada@example.com' } };
    const c1 = await tenant.api('POST', `/v1/holds/${hold.body.id}/confirm`, customer, { 'Idempotency-Key': 'c' });
    const c2 = await tenant.api('POST', `/v1/holds/${hold.body.id}/confirm`, customer, { 'Idempotency-Key': 'c' });
    expect(c1.status).toBe(201);
    expect(c2.status).toBe(201);
    expect(c2.text).toBe(c1.text);
    const x1 = await tenant.api('POST', `/v1/bookings/${c1.body.id}/cancel`, {}, { 'Idempotency-Key': 'x' });
    const x2 = await tenant.api('POST', `/v1/bookings/${c1.body.id}/cancel`, {}, { 'Idempotency-Key': 'x' });
    expect(x2.text).toBe(x1.text);
    const feed = await tenant.api('GET', '/v1/events?after=0&limit=100');
    expect(feed.body.events.filter((e: any) => e.type === 'booking.cancelled')).toHaveLength(1);
    expect(feed.body.events.filter((e: any) => e.type === 'booking.confirmed')).toHaveLength(1);
  });
});
