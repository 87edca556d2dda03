/** Holds and bookings over HTTP: multi-resource holds, extend, release, confirm, list, reschedule, users. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { futureWeekday, invariantViolations, newTenant, startNode, type TestNode } from '../helpers/node';

const DAY = 86_400_000;
let t: TestNode;
beforeAll(async () => {
  t = await startNode();
});
afterAll(async () => t.stop());

const at = (day: string, hhmm: string) => `${day}T${hhmm}:00.000Z`;
const addDays = (day: string, n: number) => new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY).toISOString().slice(0, 10);
const customer = { name: 'Ada', email: 'ada@example.com' };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

type Api = Awaited<ReturnType<typeof newTenant>>['api'];

/** Remaining seats per resource for the slot starting at `start` (undefined when not offered). */
async function remaining(api: Api, ids: string[], start: string, end: string): Promise<Record<string, number | undefined>> {
  const res = await api('GET', `/v1/availability?resourceIds=${ids.join(',')}&from=${start}&to=${end}`);
  expect(res.status).toBe(200);
  return Object.fromEntries(res.body.resources.map((r: any) => [r.resourceId, r.slots.find((s: any) => s.start === start)?.remaining]));
}

describe('holds', () => {
  it('takes seats on every resource of a multi-resource hold, all or nothing', async () => {
    const tenant = await newTenant(t);
    const a = await tenant.newResource({ capacity: 2 });
    const b = await tenant.newResource({ capacity: 2 });
    const day = futureWeekday();
    const hold = await tenant.api('POST', '/v1/holds', { resourceIds: [a.id, b.id], start: at(day, '10:00'), end: at(day, '11:00') });
    expect(hold.status).toBe(201);
    expect(hold.body).toMatchObject({ status: 'held', start: at(day, '10:00'), end: at(day, '11:00'), seats: 1, bookingId: null, ownerId: null });
    expect([...hold.body.resourceIds].sort()).toEqual([a.id, b.id].sort());
    expect(hold.headers.get('location')).toBe(`/v1/holds/${hold.body.id}`);
    expect(await remaining(tenant.api, [a.id, b.id], at(day, '10:00'), at(day, '11:00'))).toEqual({ [a.id]: 1, [b.id]: 1 });
    expect((await tenant.api('GET', `/v1/holds/${hold.body.id}`)).body).toEqual(hold.body);

    // B is full at 12:00: a hold on both takes nothing on A either.
    expect((await tenant.api('POST', '/v1/bookings', { resourceIds: [b.id], start: at(day, '12:00'), end: at(day, '13:00'), seats: 2, customer })).status).toBe(201);
    const refused = await tenant.api('POST', '/v1/holds', { resourceIds: [a.id, b.id], start: at(day, '11:00'), end: at(day, '13:00') });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('slot-unavailable');
    expect(refused.body.conflicts).toEqual([{ resourceId: b.id, start: at(day, '12:00'), end: at(day, '13:00'), remaining: 0, reason: 'full' }]);
    expect(await remaining(tenant.api, [a.id, b.id], at(day, '11:00'), at(day, '12:00'))).toEqual({ [a.id]: 2, [b.id]: 2 });
    expect(await remaining(tenant.api, [a.id], at(day, '12:00'), at(day, '13:00'))).toEqual({ [a.id]: 2 });

    const tooMany = await tenant.api('POST', '/v1/holds', { resourceIds: [a.id], start: at(day, '14:00'), end: at(day, '15:00'), seats: 3 });
    expect(tooMany.status).toBe(409);
    expect((await tenant.api('POST', '/v1/holds', { resourceIds: [a.id, randomUUID()], start: at(day, '14:00'), end: at(day, '15:00') })).status).toBe(404);
    expect((await tenant.api('POST', '/v1/holds', { resourceIds: [a.id, a.id], start: at(day, '14:00'), end: at(day, '15:00') })).status).toBe(400);
    expect((await tenant.api('POST', '/v1/holds', { resourceIds: [a.id], start: at(day, '14:00'), end: at(day, '15:00'), ttlSeconds: 901 })).status).toBe(400);
    expect(await invariantViolations(t.pool, tenant.id)).toEqual([]);
  });

  it('extends a hold within 30 minutes in total', async () => {
    const tenant = await newTenant(t);
    const r = await tenant.newResource();
    const day = futureWeekday();
    const hold = (await tenant.api('POST', '/v1/holds', { resourceIds: [r.id], start: at(day, '10:00'), end: at(day, '11:00'), ttlSeconds: 60 })).body;
    const extended = await tenant.api('POST', `/v1/holds/${hold.id}/extend`, { ttlSeconds: 600 });
    expect(extended.status).toBe(200);
    expect(Date.parse(extended.body.expiresAt)).toBeGreaterThan(Date.parse(hold.expiresAt));
    expect(Date.parse(extended.body.expiresAt) - Date.now()).toBeGreaterThan(590_000);
    expect((await tenant.api('GET', `/v1/holds/${hold.id}`)).body.expiresAt).toBe(extended.body.expiresAt);

    // Pretend the hold was made 20 minutes ago: only 10 minutes of its lifetime are left.
    await t.pool.query(`UPDATE holds SET created_at = created_at - interval '20 minutes' WHERE id = $1`, [hold.id]);
    const beyond = await tenant.api('POST', `/v1/holds/${hold.id}/extend`, { ttlSeconds: 900 });
    expect(beyond.status).toBe(422);
    expect(beyond.body.code).toBe('extend-limit');
    expect((await tenant.api('GET', `/v1/holds/${hold.id}`)).body.expiresAt).toBe(extended.body.expiresAt);
    expect((await tenant.api('POST', `/v1/holds/${hold.id}/extend`, { ttlSeconds: 300 })).status).toBe(200);
    expect((await tenant.api('POST', `/v1/holds/${hold.id}/extend`, {})).status).toBe(400);
    expect((await tenant.api('POST', `/v1/holds/${randomUUID()}/extend`, { ttlSeconds: 60 })).status).toBe(404);
  });

  it('releases idempotently, gives the seats back, and cannot be confirmed afterwards', async () => {
    const tenant = await newTenant(t);
    const r = await tenant.newResource({ capacity: 3 });
    const day = futureWeekday();
    const hold = (await tenant.api('POST', '/v1/holds', { resourceIds: [r.id], start: at(day, '10:00'), end: at(day, '11:00'), seats: 2 })).body;
    expect(await remaining(tenant.api, [r.id], at(day, '10:00'), at(day, '11:00'))).toEqual({ [r.id]: 1 });

    const released = await tenant.api('DELETE', `/v1/holds/${hold.id}`);
    expect(released.status).toBe(200);
    expect(released.body).toMatchObject({ id: hold.id, status: 'released' });
    expect(await remaining(tenant.api, [r.id], at(day, '10:00'), at(day, '11:00'))).toEqual({ [r.id]: 3 });
    const again = await tenant.api('DELETE', `/v1/holds/${hold.id}`);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(released.body);
    expect(await remaining(tenant.api, [r.id], at(day, '10:00'), at(day, '11:00'))).toEqual({ [r.id]: 3 });

    const confirm = await tenant.api('POST', `/v1/holds/${hold.id}/confirm`, { customer });
    expect(confirm.status).toBe(409);
    expect(confirm.body.code).toBe('hold-not-active');
    expect((await tenant.api('POST', `/v1/holds/${hold.id}/extend`, { ttlSeconds: 60 })).status).toBe(409);
    expect((await tenant.api('DELETE', `/v1/holds/${randomUUID()}`)).status).toBe(404);
    expect(await invariantViolations(t.pool, tenant.id)).toEqual([]);
  });

  it('answers 410 hold-expired when confirming a hold after its expiry, and frees its seats', async () => {
    const tenant = await newTenant(t);
    const r = await tenant.newResource();
    const day = futureWeekday();
    const hold = await tenant.api('POST', '/v1/holds', { resourceIds: [r.id], start: at(day, '10:00'), end: at(day, '11:00'), ttlSeconds: 1 });
    expect(hold.status).toBe(201);
    await sleep(1500);
    const confirm = await tenant.api('POST', `/v1/holds/${hold.body.id}/confirm`, { customer });
    expect(confirm.status).toBe(410);
    expect(confirm.body.code).toBe('hold-expired');
    expect((await tenant.api('POST', `/v1/holds/${hold.body.id}/extend`, { ttlSeconds: 60 })).status).toBe(410);
    expect((await tenant.api('GET', `/v1/holds/${hold.body.id}`)).body.status).toBe('expired');
    expect(await remaining(tenant.api, [r.id], at(day, '10:00'), at(day, '11:00'))).toEqual({ [r.id]: 1 });
    // Releasing an expired hold is a harmless replay.
    expect((await tenant.api('DELETE', `/v1/holds/${hold.body.id}`)).body.status).toBe('expired');
  });
});

describe('bookings', () => {
  it('books directly and lists with filters and cursor paging', async () => {
    const tenant = await newTenant(t);
    const a = await tenant.newResource({ capacity: 5 });
    const b = await tenant.newResource({ capacity: 5 });
    const d1 = futureWeekday();
    const d2 = addDays(d1, 1);
    const make = async (ids: string[], day: string, start: string, end: string) => {
      const res = await tenant.api('POST', '/v1/bookings', { resourceIds: ids, start: at(day, start), end: at(day, end), customer, metadata: { ref: start } });
      expect(res.status).toBe(201);
      return res;
    };
    const first = await make([a.id], d1, '10:00', '11:00');
    expect(first.body).toMatchObject({ status: 'confirmed', seats: 1, version: 1, holdId: null, ownerId: null, customer, metadata: { ref: '10:00' }, cancelReason: null });
    expect(first.headers.get('etag')).toBe('"1"');
    expect(first.headers.get('location')).toBe(`/v1/bookings/${first.body.id}`);
    const read = await tenant.api('GET', `/v1/bookings/${first.body.id}`);
    expect(read.body).toEqual(first.body);
    expect(read.headers.get('etag')).toBe('"1"');

    const second = (await make([a.id], d1, '12:00', '13:00')).body;
    const third = (await make([a.id], d2, '10:00', '11:00')).body;
    const onB = (await make([b.id], d1, '10:00', '11:00')).body;
    const both = (await make([a.id, b.id], d2, '14:00', '15:00')).body;
    expect((await tenant.api('POST', `/v1/bookings/${second.id}/cancel`, { reason: 'no' })).body.status).toBe('cancelled');

    const ids = async (q: string) => {
      const res = await tenant.api('GET', `/v1/bookings?${q}`);
      expect(res.status, q).toBe(200);
      return res.body.items.map((x: any) => x.id);
    };
    expect(await ids('')).toEqual([first.body.id, second.id, third.id, onB.id, both.id]);
    expect(await ids(`resourceId=${a.id}`)).toEqual([first.body.id, second.id, third.id, both.id]);
    expect(await ids(`resourceId=${b.id}`)).toEqual([onB.id, both.id]);
    expect(await ids(`from=${at(d2, '00:00')}`)).toEqual([third.id, both.id]);
    expect(await ids(`to=${at(d1, '11:00')}`)).toEqual([first.body.id, onB.id]);
    expect(await ids(`from=${at(d1, '11:00')}&to=${at(d2, '11:00')}`)).toEqual([second.id, third.id]);
    expect(await ids('status=cancelled')).toEqual([second.id]);
    expect(await ids(`status=confirmed&resourceId=${a.id}&from=${at(d1, '00:00')}&to=${at(d2, '00:00')}`)).toEqual([first.body.id]);

    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: any = await tenant.api('GET', `/v1/bookings?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      seen.push(...page.body.items.map((x: any) => x.id));
      cursor = page.body.nextCursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual(await ids(''));

    expect((await tenant.api('GET', '/v1/bookings?status=maybe')).status).toBe(400);
    expect((await tenant.api('GET', `/v1/bookings/${randomUUID()}`)).status).toBe(404);
    expect((await tenant.api('POST', '/v1/bookings', { resourceIds: [a.id], start: at(d1, '10:00'), end: at(d1, '11:00') })).status).toBe(400);
    const other = await newTenant(t);
    expect((await other.api('GET', `/v1/bookings/${first.body.id}`)).status).toBe(404);
    expect((await other.api('GET', '/v1/bookings')).body.items).toEqual([]);
  });

  it('reschedules with If-Match: moves the seats, bumps the version, and refuses conflicts and stale versions', async () => {
    const tenant = await newTenant(t);
    const r = await tenant.newResource();
    const day = futureWeekday();
    const slot = (h: string) => ({ start: at(day, h), end: at(day, `${String(Number(h.slice(0, 2)) + 1).padStart(2, '0')}:00`) });
    const booking = (await tenant.api('POST', '/v1/bookings', { resourceIds: [r.id], ...slot('10:00'), customer })).body;

    const moved = await tenant.api('PATCH', `/v1/bookings/${booking.id}`, slot('12:00'), { 'If-Match': '"1"' });
    expect(moved.status).toBe(200);
    expect(moved.body).toMatchObject({ id: booking.id, ...slot('12:00'), version: 2, status: 'confirmed' });
    expect(moved.headers.get('etag')).toBe('"2"');
    expect(await remaining(tenant.api, [r.id], at(day, '10:00'), at(day, '11:00'))).toEqual({ [r.id]: 1 });
    expect(await remaining(tenant.api, [r.id], at(day, '12:00'), at(day, '13:00'))).toEqual({ [r.id]: undefined });

    // The target is full: 409, and nothing changed.
    expect((await tenant.api('POST', '/v1/bookings', { resourceIds: [r.id], ...slot('14:00'), customer })).status).toBe(201);
    const full = await tenant.api('PATCH', `/v1/bookings/${booking.id}`, slot('14:00'), { 'If-Match': '"2"' });
    expect(full.status).toBe(409);
    expect(full.body.code).toBe('slot-unavailable');
    expect((await tenant.api('GET', `/v1/bookings/${booking.id}`)).body).toMatchObject({ ...slot('12:00'), version: 2 });
    expect(await remaining(tenant.api, [r.id], at(day, '12:00'), at(day, '13:00'))).toEqual({ [r.id]: undefined });

    const stale = await tenant.api('PATCH', `/v1/bookings/${booking.id}`, slot('15:00'), { 'If-Match': '"1"' });
    expect(stale.status).toBe(412);
    expect(stale.body.code).toBe('precondition-failed');
    const missing = await tenant.api('PATCH', `/v1/bookings/${booking.id}`, slot('15:00'));
    expect(missing.status).toBe(428);
    expect(missing.body.code).toBe('precondition-required');
    expect((await tenant.api('GET', `/v1/bookings/${booking.id}`)).body).toMatchObject({ ...slot('12:00'), version: 2 });

    // W/"2" and a bare 2 are accepted as the same ETag.
    const weak = await tenant.api('PATCH', `/v1/bookings/${booking.id}`, { metadata: { note: 'window seat' } }, { 'If-Match': 'W/"2"' });
    expect(weak.status).toBe(200);
    expect(weak.body).toMatchObject({ version: 3, metadata: { note: 'window seat' }, ...slot('12:00') });

    const cancelled = await tenant.api('POST', `/v1/bookings/${booking.id}/cancel`, {});
    expect(cancelled.body).toMatchObject({ status: 'cancelled', version: 4 });
    const afterCancel = await tenant.api('PATCH', `/v1/bookings/${booking.id}`, slot('15:00'), { 'If-Match': '"4"' });
    expect(afterCancel.status).toBe(409);
    expect(afterCancel.body.code).toBe('booking-cancelled');
    expect(await remaining(tenant.api, [r.id], at(day, '12:00'), at(day, '13:00'))).toEqual({ [r.id]: 1 });
    expect(await invariantViolations(t.pool, tenant.id)).toEqual([]);
  });

  it('reschedules into a range overlapping its own on a capacity-1 resource', async () => {
    const tenant = await newTenant(t);
    const r = await tenant.newResource({ capacity: 1 });
    const day = futureWeekday();
    const booking = (await tenant.api('POST', '/v1/bookings', { resourceIds: [r.id], start: at(day, '10:00'), end: at(day, '12:00'), customer })).body;
    const shifted = await tenant.api('PATCH', `/v1/bookings/${booking.id}`, { start: at(day, '11:00'), end: at(day, '13:00') }, { 'If-Match': '"1"' });
    expect(shifted.status).toBe(200);
    expect(shifted.body).toMatchObject({ start: at(day, '11:00'), end: at(day, '13:00'), version: 2 });
    const res = await tenant.api('GET', `/v1/availability?resourceIds=${r.id}&from=${at(day, '09:00')}&to=${at(day, '14:00')}`);
    expect(res.body.resources[0].slots.map((s: any) => s.start.slice(11, 16))).toEqual(['09:00', '10:00', '13:00']);
    expect(await invariantViolations(t.pool, tenant.id)).toEqual([]);
  });
});

describe('user tokens', () => {
  it('owns its holds and bookings; other users of the tenant cannot see them', async () => {
    const tenant = await newTenant(t);
    const r = await tenant.newResource({ capacity: 5 });
    const day = futureWeekday();
    const alice = await tenant.userToken('alice');
    const bob = await tenant.userToken('bob');

    const hold = await alice('POST', '/v1/holds', { resourceIds: [r.id], start: at(day, '10:00'), end: at(day, '11:00') });
    expect(hold.status).toBe(201);
    expect(hold.body.ownerId).toBe('alice');
    expect((await alice('GET', `/v1/holds/${hold.body.id}`)).status).toBe(200);
    expect((await bob('GET', `/v1/holds/${hold.body.id}`)).status).toBe(404);
    expect((await bob('POST', `/v1/holds/${hold.body.id}/extend`, { ttlSeconds: 60 })).status).toBe(404);
    expect((await bob('DELETE', `/v1/holds/${hold.body.id}`)).status).toBe(404);
    expect((await bob('POST', `/v1/holds/${hold.body.id}/confirm`, { customer })).status).toBe(404);
    expect((await tenant.api('GET', `/v1/holds/${hold.body.id}`)).status).toBe(200);

    const aliceBooking = await alice('POST', `/v1/holds/${hold.body.id}/confirm`, { customer });
    expect(aliceBooking.status).toBe(201);
    expect(aliceBooking.body.ownerId).toBe('alice');
    const bobBooking = await bob('POST', '/v1/bookings', { resourceIds: [r.id], start: at(day, '12:00'), end: at(day, '13:00'), customer });
    expect(bobBooking.status).toBe(201);
    expect(bobBooking.body.ownerId).toBe('bob');
    const tenantBooking = await tenant.api('POST', '/v1/bookings', { resourceIds: [r.id], start: at(day, '14:00'), end: at(day, '15:00'), customer });

    expect((await alice('GET', '/v1/bookings')).body.items.map((b: any) => b.id)).toEqual([aliceBooking.body.id]);
    expect((await bob('GET', '/v1/bookings')).body.items.map((b: any) => b.id)).toEqual([bobBooking.body.id]);
    expect((await tenant.api('GET', '/v1/bookings')).body.items.map((b: any) => b.id)).toEqual([aliceBooking.body.id, bobBooking.body.id, tenantBooking.body.id]);
    expect((await bob('GET', `/v1/bookings/${aliceBooking.body.id}`)).status).toBe(404);
    expect((await bob('POST', `/v1/bookings/${aliceBooking.body.id}/cancel`, {})).status).toBe(404);
    expect((await bob('PATCH', `/v1/bookings/${aliceBooking.body.id}`, { metadata: {} }, { 'If-Match': '"1"' })).status).toBe(404);
    expect((await alice('GET', `/v1/bookings/${tenantBooking.body.id}`)).status).toBe(404);
    expect((await alice('POST', `/v1/bookings/${aliceBooking.body.id}/cancel`, {})).body.status).toBe('cancelled');
    // Users may not manage resources or read the event feed.
    expect((await alice('PATCH', `/v1/resources/${r.id}`, { name: 'Mine' })).status).toBe(403);
    expect((await alice('GET', '/v1/events')).status).toBe(403);
  });
});
