/** Schedules, overrides, ancestor bounds and blocks over HTTP, read back through availability. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { futureWeekday, newTenant, startNode, type TestNode } from '../helpers/node';

const DAY = 86_400_000;
let t: TestNode;
beforeAll(async () => {
  // The next January and July may be up to a year away; the default 90-day horizon would not reach them.
  t = await startNode({ SLOT_HORIZON_DAYS: '400' });
});
afterAll(async () => t.stop());

const at = (day: string, hhmm: string) => `${day}T${hhmm}:00.000Z`;
const addDays = (day: string, n: number) => new Date(Date.parse(`${day}T00:00:00Z`) + n * DAY).toISOString().slice(0, 10);
const customer = { name: 'Ada', email: 'ada@example.com' };
const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri'];

/** The first Mon–Fri from the 10th of `month` (1–12) that is at least a week ahead. */
function weekdayIn(month: number): string {
  for (let y = new Date().getUTCFullYear(); ; y++) {
    let d = Date.UTC(y, month - 1, 10);
    if (d < Date.now() + 7 * DAY) continue;
    while ([0, 6].includes(new Date(d).getUTCDay())) d += DAY;
    return new Date(d).toISOString().slice(0, 10);
  }
}

/** The next Saturday at least a week ahead. */
function saturday(): string {
  let d = Date.parse(`${futureWeekday(7)}T00:00:00Z`);
  while (new Date(d).getUTCDay() !== 6) d += DAY;
  return new Date(d).toISOString().slice(0, 10);
}

type Api = Awaited<ReturnType<typeof newTenant>>['api'];

/** Start times (HH:MM UTC) of the free slots of one resource on one UTC day. */
async function startsOn(api: Api, resourceId: string, day: string): Promise<string[]> {
  const res = await api('GET', `/v1/availability?resourceIds=${resourceId}&from=${at(day, '00:00')}&to=${at(addDays(day, 1), '00:00')}`);
  expect(res.status).toBe(200);
  return res.body.resources[0].slots.map((s: any) => s.start.slice(11, 16));
}

const halfHours = (from: string, to: string) => {
  const out: string[] = [];
  for (let m = Number(from.slice(0, 2)) * 60; m < Number(to.slice(0, 2)) * 60; m += 30) {
    out.push(`${String(Math.floor(m / 60)).padStart(2, '0')}:${m % 60 ? '30' : '00'}`);
  }
  return out;
};

describe('PUT /v1/resources/:id/schedule', () => {
  it('turns Berlin wall-clock hours into UTC slots on both sides of DST', async () => {
    const { api } = await newTenant(t);
    const r = (await api('POST', '/v1/resources', { name: 'Berlin room', timezone: 'Europe/Berlin', slotMinutes: 30, rules: { maxAdvanceDays: 730 } })).body;
    const put = await api('PUT', `/v1/resources/${r.id}/schedule`, { weekly: [{ days: WEEKDAYS, start: '09:00', end: '17:00' }] });
    expect(put.status).toBe(200);
    expect(put.body.schedule).toMatchObject({ timezone: 'Europe/Berlin', weekly: [{ days: WEEKDAYS, start: '09:00', end: '17:00' }], overrides: [], version: 1 });
    expect(Date.parse(put.body.horizon.to)).toBeGreaterThan(Date.now() + 399 * DAY);
    expect(put.body.slots).toBeGreaterThan(0);

    const january = weekdayIn(1);
    const july = weekdayIn(7);
    expect(await startsOn(api, r.id, january)).toEqual(halfHours('08:00', '16:00'));
    expect(await startsOn(api, r.id, july)).toEqual(halfHours('07:00', '15:00'));
    const res = await api('GET', `/v1/availability?resourceIds=${r.id}&from=${at(july, '00:00')}&to=${at(july, '08:00')}`);
    expect(res.body.resources[0].slots).toEqual([
      { start: at(july, '07:00'), end: at(july, '07:30'), capacity: 1, remaining: 1 },
      { start: at(july, '07:30'), end: at(july, '08:00'), capacity: 1, remaining: 1 },
    ]);
    expect(await startsOn(api, r.id, saturday())).toEqual([]);

    const read = await api('GET', `/v1/resources/${r.id}/schedule`);
    expect(read.status).toBe(200);
    expect(read.body.schedule).toEqual(put.body.schedule);
  });

  it('applies overrides: a closed date has no slots, a special date has its own hours', async () => {
    const { api } = await newTenant(t);
    const r = (await api('POST', '/v1/resources', { name: 'Shop', slotMinutes: 60 })).body;
    const closed = futureWeekday(7);
    let special = addDays(closed, 1);
    while ([0, 6].includes(new Date(`${special}T00:00:00Z`).getUTCDay())) special = addDays(special, 1);
    const sat = saturday();
    const put = await api('PUT', `/v1/resources/${r.id}/schedule`, {
      weekly: [{ days: WEEKDAYS, start: '09:00', end: '17:00' }],
      overrides: [
        { date: closed, intervals: [] },
        { date: special, intervals: [{ start: '10:00', end: '12:00' }, { start: '14:00', end: '15:00' }] },
        { date: sat, intervals: [{ start: '08:00', end: '10:00' }] },
      ],
    });
    expect(put.status).toBe(200);
    expect(put.body.schedule.overrides).toHaveLength(3);
    expect(await startsOn(api, r.id, closed)).toEqual([]);
    expect(await startsOn(api, r.id, special)).toEqual(['10:00', '11:00', '14:00']);
    expect(await startsOn(api, r.id, sat)).toEqual(['08:00', '09:00']);
    expect(await startsOn(api, r.id, addDays(sat, 1))).toEqual([]);
  });

  it('refuses to drop a slot holding seats, listing it in conflicts, and keeps everything as it was', async () => {
    const tenant = await newTenant(t);
    const { api } = tenant;
    const weekly = [{ days: WEEKDAYS, start: '09:00', end: '17:00' }];
    const r = await tenant.newResource({ capacity: 2 }, weekly);
    const day = futureWeekday(7);
    expect((await api('POST', '/v1/bookings', { resourceIds: [r.id], start: at(day, '10:00'), end: at(day, '11:00'), customer })).status).toBe(201);
    const before = await api('GET', `/v1/availability?resourceIds=${r.id}&from=${at(day, '00:00')}&to=${at(addDays(day, 1), '00:00')}`);

    for (const change of [
      { weekly, overrides: [{ date: day, intervals: [] }] },
      { weekly: [{ days: WEEKDAYS, start: '11:00', end: '17:00' }] },
      { weekly: [{ days: ['sat'], start: '09:00', end: '17:00' }] },
    ]) {
      const refused = await api('PUT', `/v1/resources/${r.id}/schedule`, change);
      expect(refused.status).toBe(409);
      expect(refused.body.code).toBe('schedule-conflict');
      expect(refused.body.conflicts).toEqual([{ resourceId: r.id, start: at(day, '10:00'), end: at(day, '11:00'), seatsTaken: 1 }]);
    }
    const after = await api('GET', `/v1/availability?resourceIds=${r.id}&from=${at(day, '00:00')}&to=${at(addDays(day, 1), '00:00')}`);
    expect(after.body).toEqual(before.body);
    expect(after.body.resources[0].slots.find((s: any) => s.start === at(day, '10:00'))).toMatchObject({ remaining: 1 });
    expect((await api('GET', `/v1/resources/${r.id}/schedule`)).body.schedule).toMatchObject({ weekly, overrides: [], version: 1 });

    // A change that keeps the slot goes through.
    const narrowed = await api('PUT', `/v1/resources/${r.id}/schedule`, { weekly: [{ days: WEEKDAYS, start: '10:00', end: '12:00' }] });
    expect(narrowed.status).toBe(200);
    expect(await startsOn(api, r.id, day)).toEqual(['10:00', '11:00']);
  });

  it('validates the body and the resource', async () => {
    const { api } = await newTenant(t);
    const r = (await api('POST', '/v1/resources', { name: 'X' })).body;
    expect((await api('GET', `/v1/resources/${r.id}/schedule`)).status).toBe(404);
    for (const bad of [
      { weekly: [{ days: ['mon'], start: '17:00', end: '09:00' }] },
      { weekly: [{ days: ['funday'], start: '09:00', end: '17:00' }] },
      { weekly: [{ days: ['mon'], start: '9am', end: '17:00' }] },
      { weekly: [], overrides: [{ date: '2027-02-30x', intervals: [] }] },
      { weekly: [], extra: true },
    ]) {
      const res = await api('PUT', `/v1/resources/${r.id}/schedule`, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
    }
    expect((await api('PUT', `/v1/resources/${randomUUID()}/schedule`, { weekly: [] })).status).toBe(404);
  });
});

describe('ancestors and blocks', () => {
  /** A parent open 10:00–12:00 UTC on weekdays and a child open 09:00–17:00 in 30-minute slots. */
  async function tree() {
    const tenant = await newTenant(t);
    const parent = await tenant.newResource({ name: 'Building', capacity: 1 }, [{ days: WEEKDAYS, start: '10:00', end: '12:00' }]);
    const child = (await tenant.api('POST', '/v1/resources', { name: 'Room', parentId: parent.id, slotMinutes: 30 })).body;
    const put = await tenant.api('PUT', `/v1/resources/${child.id}/schedule`, { weekly: [{ days: WEEKDAYS, start: '09:00', end: '17:00' }] });
    expect(put.status).toBe(200);
    return { ...tenant, parent, child, day: futureWeekday(7) };
  }

  it('opens a child only while its ancestors are open', async () => {
    const { api, parent, child, day } = await tree();
    expect(await startsOn(api, child.id, day)).toEqual(['10:00', '10:30', '11:00', '11:30']);
    const outside = await api('POST', '/v1/holds', { resourceIds: [child.id], start: at(day, '09:00'), end: at(day, '09:30') });
    expect(outside.status).toBe(422);
    expect(outside.body.code).toBe('outside-hours');

    // Widening the parent widens the child.
    expect((await api('PUT', `/v1/resources/${parent.id}/schedule`, { weekly: [{ days: WEEKDAYS, start: '10:00', end: '13:00' }] })).status).toBe(200);
    expect(await startsOn(api, child.id, day)).toEqual(['10:00', '10:30', '11:00', '11:30', '12:00', '12:30']);
  });

  it('closes a resource and its descendants with a block, refuses blocks over taken seats, and reopens on DELETE', async () => {
    const { api, parent, child, day } = await tree();
    const block = await api('POST', `/v1/resources/${parent.id}/blocks`, { start: at(day, '10:00'), end: at(day, '11:00'), reason: 'maintenance' });
    expect(block.status).toBe(201);
    expect(block.body).toMatchObject({ resourceId: parent.id, start: at(day, '10:00'), end: at(day, '11:00'), reason: 'maintenance' });
    expect(await startsOn(api, child.id, day)).toEqual(['11:00', '11:30']);
    expect(await startsOn(api, parent.id, day)).toEqual(['11:00']);

    const blocked = await api('POST', '/v1/holds', { resourceIds: [child.id], start: at(day, '10:00'), end: at(day, '10:30') });
    expect(blocked.status).toBe(409);
    expect(blocked.body.code).toBe('slot-unavailable');
    expect(blocked.body.conflicts).toEqual([{ resourceId: child.id, start: at(day, '10:00'), end: at(day, '10:30'), remaining: 0, reason: 'blocked' }]);

    // A booking on the child makes a block over it on the parent a conflict.
    const booking = await api('POST', '/v1/bookings', { resourceIds: [child.id], start: at(day, '11:00'), end: at(day, '11:30'), customer });
    expect(booking.status).toBe(201);
    const refused = await api('POST', `/v1/resources/${parent.id}/blocks`, { start: at(day, '11:00'), end: at(day, '12:00') });
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('block-conflict');
    expect(refused.body.conflicts).toEqual([{ resourceId: child.id, start: at(day, '11:00'), end: at(day, '11:30'), seatsTaken: 1 }]);
    // Nothing of the refused block stayed: 11:30 is still open on the child.
    expect(await startsOn(api, child.id, day)).toEqual(['11:30']);

    const lifted = await api('DELETE', `/v1/blocks/${block.body.id}`);
    expect(lifted.status).toBe(200);
    expect(lifted.body.id).toBe(block.body.id);
    expect(await startsOn(api, child.id, day)).toEqual(['10:00', '10:30', '11:30']);
    expect(await startsOn(api, parent.id, day)).toEqual(['10:00', '11:00']);
    expect((await api('DELETE', `/v1/blocks/${block.body.id}`)).status).toBe(404);
  });

  it('validates blocks and keeps them per tenant', async () => {
    const { api, parent, day } = await tree();
    const other = await newTenant(t);
    expect((await api('POST', `/v1/resources/${parent.id}/blocks`, { start: at(day, '11:00'), end: at(day, '10:00') })).status).toBe(400);
    expect((await api('POST', `/v1/resources/${parent.id}/blocks`, { start: `${day}T10:00:00`, end: at(day, '11:00') })).status).toBe(400);
    expect((await api('POST', `/v1/resources/${randomUUID()}/blocks`, { start: at(day, '10:00'), end: at(day, '11:00') })).status).toBe(404);
    expect((await other.api('POST', `/v1/resources/${parent.id}/blocks`, { start: at(day, '10:00'), end: at(day, '11:00') })).status).toBe(404);
    const block = await api('POST', `/v1/resources/${parent.id}/blocks`, { start: at(day, '10:00'), end: at(day, '11:00') });
    expect(block.status).toBe(201);
    expect((await other.api('DELETE', `/v1/blocks/${block.body.id}`)).status).toBe(404);
    expect(await startsOn(api, parent.id, day)).toEqual(['11:00']);
  });

  it('refuses, before any work, a change that would regenerate more slots than one request may (422 naming the bound)', async () => {
    // A 400-day horizon of 5-minute slots is about 115,000 slots a resource: three resources are past the 300,000 cap.
    const { api } = await newTenant(t);
    const root = await api('POST', '/v1/resources', { name: 'Campus', slotMinutes: 5 });
    for (let i = 0; i < 2; i++) expect((await api('POST', '/v1/resources', { name: `Room ${i}`, parentId: root.body.id, slotMinutes: 5 })).status).toBe(201);
    const t0 = Date.now();
    const r = await api('PUT', `/v1/resources/${root.body.id}/schedule`, { weekly: [{ days: WEEKDAYS, start: '00:00', end: '24:00' }] });
    expect(r.status, r.text).toBe(422);
    expect(r.body).toMatchObject({ code: 'limit-exceeded', limit: 'schedule.slots', max: 300_000 });
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect((await t.pool.query('SELECT count(*)::int AS n FROM slots WHERE resource_id = $1', [root.body.id])).rows[0].n).toBe(0);
  });
});
