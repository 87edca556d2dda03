/** Resource routes over HTTP: create, read, list, update, the tree, archive and capacity changes. */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, futureWeekday, newTenant, startNode, type TestNode } from '../helpers/node';

let t: TestNode;
beforeAll(async () => {
  t = await startNode();
});
afterAll(async () => t.stop());

/** An instant on `day` (YYYY-MM-DD) at HH:MM UTC, as the API prints it. */
const at = (day: string, hhmm: string) => `${day}T${hhmm}:00.000Z`;
const customer = { name: 'Ada', email: 'ada@example.com' };

describe('POST/GET /v1/resources', () => {
  it('creates a resource with the documented defaults and reads it back with its ETag', async () => {
    const { api } = await newTenant(t);
    const created = await api('POST', '/v1/resources', { name: 'Desk' });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({
      name: 'Desk',
      kind: 'resource',
      parentId: null,
      capacity: 1,
      timezone: 'UTC',
      slotMinutes: 30,
      rules: { minNoticeMinutes: 0, maxAdvanceDays: 365, bufferBeforeMinutes: 0, bufferAfterMinutes: 0 },
      metadata: {},
      version: 1,
      archivedAt: null,
    });
    expect(created.headers.get('etag')).toBe('"1"');
    expect(created.headers.get('location')).toBe(`/v1/resources/${created.body.id}`);

    const read = await api('GET', `/v1/resources/${created.body.id}`);
    expect(read.status).toBe(200);
    expect(read.body).toEqual(created.body);
    expect(read.headers.get('etag')).toBe('"1"');
  });

  it('refuses bad input, missing credentials and user tokens', async () => {
    const tenant = await newTenant(t);
    const unknownField = await tenant.api('POST', '/v1/resources', { name: 'X', colour: 'red' });
    expect(unknownField.status).toBe(400);
    expect(unknownField.headers.get('content-type')).toContain('application/problem+json');
    expect(unknownField.body.code).toBe('validation-failed');
    expect((await tenant.api('POST', '/v1/resources', { name: 'X', capacity: 0 })).status).toBe(400);
    expect((await tenant.api('POST', '/v1/resources', { name: 'X', timezone: 'Mars/Base' })).status).toBe(400);
    expect((await tenant.api('POST', '/v1/resources', { name: 'X', slotMinutes: 7 })).status).toBe(400);
    expect((await tenant.api('GET', '/v1/resources/not-a-uuid')).status).toBe(400);
    expect((await tenant.api('GET', `/v1/resources/${randomUUID()}`)).status).toBe(404);

    const anonymous = await client(t.url)('POST', '/v1/resources', { name: 'X' });
    expect(anonymous.status).toBe(401);
    expect(anonymous.body.code).toBe('unauthorized');
    const user = await tenant.userToken('u1');
    const asUser = await user('POST', '/v1/resources', { name: 'X' });
    expect(asUser.status).toBe(403);
    expect(asUser.body.code).toBe('forbidden');
  });

  it('is invisible to another tenant', async () => {
    const a = await newTenant(t);
    const b = await newTenant(t);
    const res = await a.api('POST', '/v1/resources', { name: 'Private' });
    expect((await b.api('GET', `/v1/resources/${res.body.id}`)).status).toBe(404);
    expect((await b.api('PATCH', `/v1/resources/${res.body.id}`, { name: 'Mine' })).status).toBe(404);
    expect((await b.api('DELETE', `/v1/resources/${res.body.id}`)).status).toBe(404);
    expect((await b.api('GET', '/v1/resources')).body.items).toEqual([]);
  });
});

describe('GET /v1/resources (cursor paging)', () => {
  it('pages through five resources two at a time without duplicates', async () => {
    const { api, userToken } = await newTenant(t);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await api('POST', '/v1/resources', { name: `R${i}` })).body.id);

    const pages: string[][] = [];
    let cursor: string | null = null;
    do {
      const page: any = await api('GET', `/v1/resources?limit=2${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      expect(page.status).toBe(200);
      pages.push(page.body.items.map((r: any) => r.id));
      cursor = page.body.nextCursor;
    } while (cursor !== null && pages.length < 10);
    expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
    expect(pages.flat()).toEqual(ids);
    expect(new Set(pages.flat()).size).toBe(5);

    // A user token may list too; a forged cursor is a 400, not a 500.
    const user = await userToken('u1');
    expect((await user('GET', '/v1/resources')).body.items).toHaveLength(5);
    const forged = await api('GET', '/v1/resources?cursor=bm9wZQ');
    expect(forged.status).toBe(400);
    expect(forged.body.code).toBe('validation-failed');
    expect((await api('GET', '/v1/resources?limit=0')).status).toBe(400);
  });
});

describe('PATCH /v1/resources/:id', () => {
  it('updates name and rules, bumping the version and the ETag', async () => {
    const { api } = await newTenant(t);
    const r = (await api('POST', '/v1/resources', { name: 'Old' })).body;
    const patched = await api('PATCH', `/v1/resources/${r.id}`, { name: 'New', rules: { minNoticeMinutes: 60 } });
    expect(patched.status).toBe(200);
    expect(patched.body).toMatchObject({
      name: 'New',
      version: 2,
      rules: { minNoticeMinutes: 60, maxAdvanceDays: 365, bufferBeforeMinutes: 0, bufferAfterMinutes: 0 },
    });
    expect(patched.headers.get('etag')).toBe('"2"');

    const again = await api('PATCH', `/v1/resources/${r.id}`, { rules: { bufferAfterMinutes: 15 } });
    expect(again.body.version).toBe(3);
    expect(again.body.rules).toEqual({ minNoticeMinutes: 60, maxAdvanceDays: 365, bufferBeforeMinutes: 0, bufferAfterMinutes: 15 });
    const read = await api('GET', `/v1/resources/${r.id}`);
    expect(read.headers.get('etag')).toBe('"3"');
    expect(read.body.name).toBe('New');

    expect((await api('PATCH', `/v1/resources/${r.id}`, { rules: { nope: 1 } })).status).toBe(400);
    expect((await api('PATCH', `/v1/resources/${randomUUID()}`, { name: 'Ghost' })).status).toBe(404);
  });
});

describe('the resource tree', () => {
  it('links children to parents and refuses cycles and foreign or unknown parents', async () => {
    const { api } = await newTenant(t);
    const other = await newTenant(t);
    const parent = (await api('POST', '/v1/resources', { name: 'Building', kind: 'building' })).body;
    const child = await api('POST', '/v1/resources', { name: 'Room', kind: 'room', parentId: parent.id });
    expect(child.status).toBe(201);
    expect(child.body.parentId).toBe(parent.id);
    const grandchild = (await api('POST', '/v1/resources', { name: 'Projector', parentId: child.body.id })).body;

    for (const target of [parent.id, child.body.id, grandchild.id]) {
      const cycle = await api('PATCH', `/v1/resources/${parent.id}`, { parentId: target });
      expect(cycle.status).toBe(409);
      expect(cycle.body.code).toBe('resource-cycle');
    }
    expect((await api('GET', `/v1/resources/${parent.id}`)).body).toMatchObject({ parentId: null, version: 1 });

    const foreign = (await other.api('POST', '/v1/resources', { name: 'Elsewhere' })).body;
    for (const parentId of [foreign.id, randomUUID()]) {
      const create = await api('POST', '/v1/resources', { name: 'Orphan', parentId });
      expect(create.status).toBe(404);
      expect(create.body.code).toBe('not-found');
      expect((await api('PATCH', `/v1/resources/${child.body.id}`, { parentId })).status).toBe(404);
    }

    // Moving a child to the top level is allowed.
    const moved = await api('PATCH', `/v1/resources/${grandchild.id}`, { parentId: null });
    expect(moved.status).toBe(200);
    expect(moved.body.parentId).toBeNull();
  });
});

describe('DELETE /v1/resources/:id (archive)', () => {
  it('archives a resource, which then reads as 404 and leaves the list', async () => {
    const { api } = await newTenant(t);
    const r = (await api('POST', '/v1/resources', { name: 'Temp' })).body;
    const archived = await api('DELETE', `/v1/resources/${r.id}`);
    expect(archived.status).toBe(200);
    expect(archived.body.id).toBe(r.id);
    expect(archived.body.archivedAt).not.toBeNull();
    expect((await api('GET', `/v1/resources/${r.id}`)).status).toBe(404);
    expect((await api('DELETE', `/v1/resources/${r.id}`)).status).toBe(404);
    expect((await api('GET', '/v1/resources')).body.items).toEqual([]);
    const all = await api('GET', '/v1/resources?includeArchived=true');
    expect(all.body.items.map((x: any) => x.id)).toEqual([r.id]);
  });

  it('refuses while a live booking lies ahead, and allows it once cancelled', async () => {
    const tenant = await newTenant(t);
    const r = await tenant.newResource();
    const day = futureWeekday();
    const booking = await tenant.api('POST', '/v1/bookings', { resourceIds: [r.id], start: at(day, '10:00'), end: at(day, '11:00'), customer });
    expect(booking.status).toBe(201);

    const refused = await tenant.api('DELETE', `/v1/resources/${r.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('resource-in-use');
    expect((await tenant.api('GET', `/v1/resources/${r.id}`)).status).toBe(200);

    expect((await tenant.api('POST', `/v1/bookings/${booking.body.id}/cancel`)).status).toBe(200);
    expect((await tenant.api('DELETE', `/v1/resources/${r.id}`)).status).toBe(200);
    // Its slots are gone with it.
    const avail = await tenant.api('GET', `/v1/availability?resourceIds=${r.id}&from=${at(day, '00:00')}&to=${at(day, '23:00')}`);
    expect(avail.status).toBe(404);
  });

  it('refuses while a live child exists', async () => {
    const { api } = await newTenant(t);
    const parent = (await api('POST', '/v1/resources', { name: 'Floor' })).body;
    const child = (await api('POST', '/v1/resources', { name: 'Room', parentId: parent.id })).body;
    const refused = await api('DELETE', `/v1/resources/${parent.id}`);
    expect(refused.status).toBe(409);
    expect(refused.body.code).toBe('resource-in-use');
    expect((await api('DELETE', `/v1/resources/${child.id}`)).status).toBe(200);
    expect((await api('DELETE', `/v1/resources/${parent.id}`)).status).toBe(200);
  });
});

describe('capacity changes', () => {
  it('refuses to lower capacity below seats taken, listing the slots; raising works', async () => {
    const tenant = await newTenant(t);
    const r = await tenant.newResource({ capacity: 3 });
    const day = futureWeekday();
    const booking = await tenant.api('POST', '/v1/bookings', { resourceIds: [r.id], start: at(day, '10:00'), end: at(day, '12:00'), seats: 2, customer });
    expect(booking.status).toBe(201);

    const lowered = await tenant.api('PATCH', `/v1/resources/${r.id}`, { capacity: 1 });
    expect(lowered.status).toBe(409);
    expect(lowered.body.code).toBe('capacity-conflict');
    expect(lowered.body.conflicts).toEqual([
      { resourceId: r.id, start: at(day, '10:00'), end: at(day, '11:00'), seatsTaken: 2 },
      { resourceId: r.id, start: at(day, '11:00'), end: at(day, '12:00'), seatsTaken: 2 },
    ]);
    expect((await tenant.api('GET', `/v1/resources/${r.id}`)).body).toMatchObject({ capacity: 3, version: 1 });

    const slotsOf = async () =>
      (await tenant.api('GET', `/v1/availability?resourceIds=${r.id}&from=${at(day, '09:00')}&to=${at(day, '13:00')}`)).body.resources[0].slots.map(
        (s: any) => [s.start.slice(11, 16), s.capacity, s.remaining],
      );
    expect(await slotsOf()).toEqual([['09:00', 3, 3], ['10:00', 3, 1], ['11:00', 3, 1], ['12:00', 3, 3]]);

    const raised = await tenant.api('PATCH', `/v1/resources/${r.id}`, { capacity: 5 });
    expect(raised.status).toBe(200);
    expect(raised.body).toMatchObject({ capacity: 5, version: 2 });
    expect(await slotsOf()).toEqual([['09:00', 5, 5], ['10:00', 5, 3], ['11:00', 5, 3], ['12:00', 5, 5]]);

    // Lowering exactly to the seats taken is fine.
    expect((await tenant.api('PATCH', `/v1/resources/${r.id}`, { capacity: 2 })).status).toBe(200);
    expect(await slotsOf()).toEqual([['09:00', 2, 2], ['12:00', 2, 2]]);
  });
});
