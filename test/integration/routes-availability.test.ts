/** GET /v1/availability over HTTP: durations across resources, seats, caching and the booking rules. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, futureWeekday, newTenant, startNode, type TestNode } from '../helpers/node';

const HOUR = 3_600_000;
const DAY = 86_400_000;
let t: TestNode;
beforeAll(async () => {
  t = await startNode();
});
afterAll(async () => t.stop());

const at = (day: string, hhmm: string) => `${day}T${hhmm}:00.000Z`;
const iso = (ms: number) => new Date(ms).toISOString();
const hhmm = (s: string) => s.slice(11, 16);
const customer = { name: 'Ada', email: 'ada@example.com' };

type Api = Awaited<ReturnType<typeof newTenant>>['api'];
const book = (api: Api, resourceIds: string[], start: string, end: string, seats = 1) =>
  api('POST', '/v1/bookings', { resourceIds, start, end, seats, customer });

describe('availability with a duration', () => {
  it('mode=all offers only starts where every resource is free for the whole duration; mode=any says who is free', async () => {
    const tenant = await newTenant(t);
    const a = await tenant.newResource({ name: 'A' });
    const b = await tenant.newResource({ name: 'B' });
    const day = futureWeekday();
    expect((await book(tenant.api, [a.id], at(day, '10:00'), at(day, '11:00'))).status).toBe(201);
    expect((await book(tenant.api, [b.id], at(day, '13:00'), at(day, '14:00'))).status).toBe(201);
    const base = `/v1/availability?resourceIds=${a.id},${b.id}&from=${at(day, '08:00')}&to=${at(day, '16:00')}&duration=120`;

    const all = await tenant.api('GET', `${base}&mode=all`);
    expect(all.status).toBe(200);
    expect(all.body.options.map((o: any) => [hhmm(o.start), hhmm(o.end)])).toEqual([
      ['08:00', '10:00'], ['11:00', '13:00'], ['14:00', '16:00'], ['15:00', '17:00'],
    ]);
    for (const o of all.body.options) expect([...o.resourceIds].sort()).toEqual([a.id, b.id].sort());
    // mode=all is the default.
    expect((await tenant.api('GET', base)).body).toEqual(all.body);

    const any = await tenant.api('GET', `${base}&mode=any`);
    expect(any.status).toBe(200);
    const who = (ids: string[]) => ids.map((id) => (id === a.id ? 'A' : 'B')).sort().join('');
    expect(any.body.options.map((o: any) => [hhmm(o.start), who(o.resourceIds)])).toEqual([
      ['08:00', 'AB'], ['09:00', 'B'], ['10:00', 'B'], ['11:00', 'AB'], ['12:00', 'A'], ['13:00', 'A'], ['14:00', 'AB'], ['15:00', 'AB'],
    ]);

    const offGrid = await tenant.api('GET', `/v1/availability?resourceIds=${a.id}&from=${at(day, '08:00')}&to=${at(day, '16:00')}&duration=90`);
    expect(offGrid.status).toBe(422);
    expect(offGrid.body.code).toBe('grid-misaligned');
  });

  it('filters by seats, with and without a duration', async () => {
    const tenant = await newTenant(t);
    const r = await tenant.newResource({ capacity: 4 });
    const day = futureWeekday();
    expect((await book(tenant.api, [r.id], at(day, '10:00'), at(day, '11:00'), 2)).status).toBe(201);
    const range = `resourceIds=${r.id}&from=${at(day, '09:00')}&to=${at(day, '12:00')}`;
    const slots = async (q: string) => (await tenant.api('GET', `/v1/availability?${range}${q}`)).body.resources[0].slots.map((s: any) => [hhmm(s.start), s.remaining]);

    expect(await slots('')).toEqual([['09:00', 4], ['10:00', 2], ['11:00', 4]]);
    expect(await slots('&seats=2')).toEqual([['09:00', 4], ['10:00', 2], ['11:00', 4]]);
    expect(await slots('&seats=3')).toEqual([['09:00', 4], ['11:00', 4]]);
    expect(await slots('&seats=5')).toEqual([]);
    const options = await tenant.api('GET', `/v1/availability?${range}&duration=120&seats=3`);
    expect(options.body.options.map((o: any) => hhmm(o.start))).toEqual(['11:00']);
    expect((await tenant.api('GET', `/v1/availability?${range}&seats=0`)).status).toBe(400);
  });

  it('validates the query and the resources', async () => {
    const tenant = await newTenant(t);
    const r = await tenant.newResource();
    const day = futureWeekday();
    const bad = [
      `resourceIds=${r.id}&from=${at(day, '10:00')}`,
      `resourceIds=${r.id}&from=${at(day, '10:00')}&to=${at(day, '09:00')}`,
      `resourceIds=${r.id}&from=${day}T10:00:00&to=${at(day, '12:00')}`,
      `resourceIds=${r.id}&from=${at(day, '00:00')}&to=${iso(Date.parse(at(day, '00:00')) + 63 * DAY)}`,
      `resourceIds=nope&from=${at(day, '10:00')}&to=${at(day, '12:00')}`,
      `resourceIds=${r.id}&from=${at(day, '10:00')}&to=${at(day, '12:00')}&mode=some`,
      `resourceIds=${r.id}&from=${at(day, '10:00')}&to=${at(day, '12:00')}&colour=red`,
    ];
    for (const q of bad) {
      const res = await tenant.api('GET', `/v1/availability?${q}`);
      expect(res.status, q).toBe(400);
      expect(res.body.code).toBe('validation-failed');
    }
    const unknown = await tenant.api('GET', `/v1/availability?resourceIds=${r.id},${randomUUID()}&from=${at(day, '10:00')}&to=${at(day, '12:00')}`);
    expect(unknown.status).toBe(404);
    const other = await newTenant(t);
    expect((await other.api('GET', `/v1/availability?resourceIds=${r.id}&from=${at(day, '10:00')}&to=${at(day, '12:00')}`)).status).toBe(404);
    expect((await client(t.url)('GET', `/v1/availability?resourceIds=${r.id}&from=${at(day, '10:00')}&to=${at(day, '12:00')}`)).status).toBe(401);
    // A user token reads availability too.
    const user = await tenant.userToken('u1');
    expect((await user('GET', `/v1/availability?resourceIds=${r.id}&from=${at(day, '10:00')}&to=${at(day, '12:00')}`)).status).toBe(200);
  });
});

describe('availability caching', () => {
  it('sends an ETag, answers If-None-Match with 304, and changes the ETag when seats change', async () => {
    const tenant = await newTenant(t);
    const r = await tenant.newResource();
    const day = futureWeekday();
    const url = `/v1/availability?resourceIds=${r.id}&from=${at(day, '09:00')}&to=${at(day, '12:00')}`;
    const first = await tenant.api('GET', url);
    const etag = first.headers.get('etag');
    expect(etag).toBeTruthy();

    const cached = await tenant.api('GET', url, undefined, { 'If-None-Match': etag! });
    expect(cached.status).toBe(304);
    expect(cached.text).toBe('');
    expect(cached.headers.get('etag')).toBe(etag);
    expect((await tenant.api('GET', url, undefined, { 'If-None-Match': '"stale"' })).status).toBe(200);

    expect((await tenant.api('POST', '/v1/holds', { resourceIds: [r.id], start: at(day, '10:00'), end: at(day, '11:00') })).status).toBe(201);
    const changed = await tenant.api('GET', url, undefined, { 'If-None-Match': etag! });
    expect(changed.status).toBe(200);
    expect(changed.headers.get('etag')).not.toBe(etag);
    expect(changed.body.resources[0].slots.map((s: any) => hhmm(s.start))).toEqual(['09:00', '11:00']);
  });
});

describe('booking rules', () => {
  it('hides slots inside the minimum notice and refuses holds there', async () => {
    const tenant = await newTenant(t);
    const r = await tenant.newResource({ rules: { minNoticeMinutes: 180 } });
    const now = Date.now();
    const nextHour = Math.ceil(now / HOUR) * HOUR;
    const res = await tenant.api('GET', `/v1/availability?resourceIds=${r.id}&from=${iso(now)}&to=${iso(nextHour + 8 * HOUR)}`);
    const starts = res.body.resources[0].slots.map((s: any) => Date.parse(s.start));
    expect(starts.length).toBeGreaterThan(0);
    for (const s of starts) expect(s).toBeGreaterThanOrEqual(now + 180 * 60_000);
    expect(starts[0]).toBeLessThanOrEqual(nextHour + 3 * HOUR);

    const tooSoon = await tenant.api('POST', '/v1/holds', { resourceIds: [r.id], start: iso(nextHour + HOUR), end: iso(nextHour + 2 * HOUR) });
    expect(tooSoon.status).toBe(422);
    expect(tooSoon.body.code).toBe('notice-too-short');
    const ok = await tenant.api('POST', '/v1/holds', { resourceIds: [r.id], start: iso(nextHour + 4 * HOUR), end: iso(nextHour + 5 * HOUR) });
    expect(ok.status).toBe(201);
  });

  it('hides and refuses starts beyond maxAdvanceDays', async () => {
    const tenant = await newTenant(t);
    const r = await tenant.newResource({ rules: { maxAdvanceDays: 2 } });
    const far = futureWeekday(5);
    const res = await tenant.api('GET', `/v1/availability?resourceIds=${r.id}&from=${at(far, '00:00')}&to=${at(far, '23:00')}`);
    expect(res.body.resources[0].slots).toEqual([]);
    const hold = await tenant.api('POST', '/v1/holds', { resourceIds: [r.id], start: at(far, '10:00'), end: at(far, '11:00') });
    expect(hold.status).toBe(422);
    expect(hold.body.code).toBe('too-far-ahead');
    const tomorrow = new Date(Date.now() + DAY).toISOString().slice(0, 10);
    expect((await tenant.api('POST', '/v1/holds', { resourceIds: [r.id], start: at(tomorrow, '10:00'), end: at(tomorrow, '11:00') })).status).toBe(201);
  });

  it('keeps the buffer after a booking free: not offered, and a hold there is 409 with reason buffer', async () => {
    const tenant = await newTenant(t);
    const r = await tenant.newResource({ slotMinutes: 30, rules: { bufferAfterMinutes: 30 } });
    const day = futureWeekday();
    expect((await book(tenant.api, [r.id], at(day, '10:00'), at(day, '11:00'))).status).toBe(201);
    const res = await tenant.api('GET', `/v1/availability?resourceIds=${r.id}&from=${at(day, '09:00')}&to=${at(day, '12:30')}`);
    const starts = res.body.resources[0].slots.map((s: any) => hhmm(s.start));
    expect(starts).not.toContain('11:00');
    expect(starts).toContain('11:30');
    expect(starts).toContain('09:00');

    const hold = await tenant.api('POST', '/v1/holds', { resourceIds: [r.id], start: at(day, '11:00'), end: at(day, '11:30') });
    expect(hold.status).toBe(409);
    expect(hold.body.code).toBe('slot-unavailable');
    expect(hold.body.conflicts).toContainEqual(expect.objectContaining({ resourceId: r.id, start: at(day, '10:30'), reason: 'buffer' }));
    expect((await tenant.api('POST', '/v1/holds', { resourceIds: [r.id], start: at(day, '11:30'), end: at(day, '12:00') })).status).toBe(201);
  });

  it('refuses ranges outside opening hours and off the grid with 422', async () => {
    const tenant = await newTenant(t);
    const r = await tenant.newResource({}, [{ days: ['mon', 'tue', 'wed', 'thu', 'fri'], start: '09:00', end: '17:00' }]);
    const day = futureWeekday();
    for (const [start, end] of [['18:00', '19:00'], ['16:00', '18:00'], ['08:00', '09:00']]) {
      const hold = await tenant.api('POST', '/v1/holds', { resourceIds: [r.id], start: at(day, start!), end: at(day, end!) });
      expect(hold.status, `${start}-${end}`).toBe(422);
      expect(hold.body.code).toBe('outside-hours');
    }
    const direct = await book(tenant.api, [r.id], at(day, '20:00'), at(day, '21:00'));
    expect(direct.status).toBe(422);
    expect(direct.body.code).toBe('outside-hours');
    const offGrid = await tenant.api('POST', '/v1/holds', { resourceIds: [r.id], start: at(day, '10:15'), end: at(day, '11:15') });
    expect(offGrid.status).toBe(422);
    expect(offGrid.body.code).toBe('grid-misaligned');
  });
});
