/** Calendar feeds over HTTP: resource and user feeds read with credentials and with feed tokens, revocation, isolation, bounds. */
import { randomUUID } from 'node:crypto';
import ICAL from 'ical.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { client, futureWeekday, newTenant, startNode, type TestNode } from '../helpers/node';

let t: TestNode;
beforeAll(async () => {
  t = await startNode();
});
afterAll(async () => t.stop());

const at = (day: string, hhmm: string) => `${day}T${hhmm}:00.000Z`;
const customer = { name: 'Ada', email: 'ada@example.com' };

/** Reads a feed path (with its query) without credentials, or with the given client. */
async function fetchFeed(pathAndQuery: string, call = client(t.url)) {
  const res = await call('GET', pathAndQuery);
  return res;
}

function events(text: string) {
  const cal = new ICAL.Component(ICAL.parse(text));
  return {
    cal,
    events: cal.getAllSubcomponents('vevent').map((v) => ({
      uid: String(v.getFirstPropertyValue('uid')),
      status: String(v.getFirstPropertyValue('status')),
      sequence: Number(v.getFirstPropertyValue('sequence')),
      tzid: v.getFirstProperty('dtstart')!.getParameter('tzid') ?? null,
      start: new ICAL.Event(v).startDate.toJSDate().toISOString(),
      end: new ICAL.Event(v).endDate.toJSDate().toISOString(),
      summary: String(v.getFirstPropertyValue('summary')),
    })),
  };
}

const expectProblem = (res: { status: number; headers: Headers; body: any }, status: number) => {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(res.body.status).toBe(status);
};

describe('resource feeds', () => {
  it('serves the bookings with headers and with a feed token; a cancellation shows as CANCELLED with a higher SEQUENCE; a revoked token is refused', async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource({ name: 'Blue room', timezone: 'Europe/Berlin' });
    const day = futureWeekday();
    const a = await tenant.api('POST', '/v1/bookings', { resourceIds: [room.id], start: at(day, '09:00'), end: at(day, '10:00'), customer });
    const b = await tenant.api('POST', '/v1/bookings', { resourceIds: [room.id], start: at(day, '11:00'), end: at(day, '12:00'), customer });
    expect([a.status, b.status]).toEqual([201, 201]);
    expect((await tenant.api('POST', `/v1/bookings/${b.body.id}/cancel`, { reason: 'ill' })).status).toBe(200);

    const withKey = await tenant.api('GET', `/v1/resources/${room.id}/calendar.ics`);
    expect(withKey.status).toBe(200);
    expect(withKey.headers.get('content-type')).toBe('text/calendar; charset=utf-8');
    const parsed = events(withKey.text);
    expect(parsed.cal.getFirstPropertyValue('version')).toBe('2.0');
    expect(parsed.cal.getFirstSubcomponent('vtimezone')!.getFirstPropertyValue('tzid')).toBe('Europe/Berlin');
    expect(parsed.events).toEqual([
      { uid: `${a.body.id}@slotwise`, status: 'CONFIRMED', sequence: 0, tzid: 'Europe/Berlin', start: at(day, '09:00'), end: at(day, '10:00'), summary: 'Blue room: Ada' },
      { uid: `${b.body.id}@slotwise`, status: 'CANCELLED', sequence: 1, tzid: 'Europe/Berlin', start: at(day, '11:00'), end: at(day, '12:00'), summary: 'Blue room: Ada' },
    ]);

    // Not a user token: the feed names every customer on the resource, and a user sees only their own bookings.
    const member = await tenant.userToken('mia');
    const refused = await member('GET', `/v1/resources/${room.id}/calendar.ics`);
    expect([refused.status, refused.body.code]).toEqual([403, 'forbidden']);

    const made = await tenant.api('POST', '/v1/calendar-feeds', { resourceId: room.id });
    expect(made.status).toBe(201);
    expect(made.body).toMatchObject({ kind: 'resource', resourceId: room.id, userId: null, timezone: 'UTC', path: `/v1/resources/${room.id}/calendar.ics` });
    expect(made.body.token).toMatch(/^swcal_[\w-]{43}$/);
    expect(made.body.url).toBe(`${t.url}/v1/resources/${room.id}/calendar.ics?token=${made.body.token}`);
    expect(made.headers.get('location')).toBe(`/v1/calendar-feeds/${made.body.id}`);
    const { rows } = await t.pool.query('SELECT token_hash FROM calendar_feeds WHERE id = $1', [made.body.id]);
    expect(rows[0].token_hash.toString('utf8')).not.toContain(made.body.token);

    const byToken = await fetchFeed(`/v1/resources/${room.id}/calendar.ics?token=${made.body.token}`);
    expect(byToken.status).toBe(200);
    expect(events(byToken.text).events.map((e) => e.uid)).toEqual(parsed.events.map((e) => e.uid));

    const listed = await tenant.api('GET', '/v1/calendar-feeds');
    expect(listed.status).toBe(200);
    expect(listed.body.items).toHaveLength(1);
    expect(listed.body.items[0].id).toBe(made.body.id);
    expect(listed.text).not.toContain(made.body.token);

    expect((await tenant.api('DELETE', `/v1/calendar-feeds/${made.body.id}`)).status).toBe(204);
    expectProblem(await fetchFeed(`/v1/resources/${room.id}/calendar.ics?token=${made.body.token}`), 401);
    expectProblem(await tenant.api('DELETE', `/v1/calendar-feeds/${made.body.id}`), 404);
    expect((await tenant.api('GET', '/v1/calendar-feeds')).body.items).toEqual([]);
  });

  it('refuses bad ids and tokens with 4xx problems, and a token of one feed for another', async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource();
    const other = await tenant.newResource();
    const feed = (await tenant.api('POST', '/v1/calendar-feeds', { resourceId: room.id })).body;
    const anon = client(t.url);
    expectProblem(await anon('GET', `/v1/resources/${room.id}/calendar.ics`), 401);
    expectProblem(await anon('GET', `/v1/resources/${room.id}/calendar.ics?token=nope`), 401);
    expectProblem(await anon('GET', `/v1/resources/${room.id}/calendar.ics?token=swcal_${'A'.repeat(43)}`), 401);
    expectProblem(await anon('GET', `/v1/resources/${room.id}/calendar.ics?token=${'x'.repeat(201)}`), 400);
    expectProblem(await anon('GET', `/v1/resources/${room.id}/calendar.ics?token=`), 400);
    expectProblem(await anon('GET', `/v1/resources/${other.id}/calendar.ics?token=${feed.token}`), 401);
    expectProblem(await anon('GET', `/v1/resources/not-a-uuid/calendar.ics?token=${feed.token}`), 400);
    expectProblem(await tenant.api('GET', `/v1/resources/${randomUUID()}/calendar.ics`), 404);
    expectProblem(await tenant.api('GET', '/v1/resources/not-a-uuid/calendar.ics'), 400);

    expectProblem(await tenant.api('POST', '/v1/calendar-feeds', {}), 400);
    expectProblem(await tenant.api('POST', '/v1/calendar-feeds', { resourceId: room.id, userId: 'u1' }), 400);
    expectProblem(await tenant.api('POST', '/v1/calendar-feeds', { resourceId: 'nope' }), 400);
    expectProblem(await tenant.api('POST', '/v1/calendar-feeds', { userId: 'u1', timezone: 'Mars/Olympus' }), 400);
    expectProblem(await tenant.api('POST', '/v1/calendar-feeds', { resourceId: randomUUID() }), 404);
    expectProblem(await tenant.api('DELETE', '/v1/calendar-feeds/not-a-uuid'), 400);
    expectProblem(await tenant.api('GET', '/v1/calendar-feeds?limit=0'), 400);
  });

  it('keeps tenants apart: a token or key of A never reads B', async () => {
    const a = await newTenant(t, 'A');
    const b = await newTenant(t, 'B');
    const roomA = await a.newResource();
    const roomB = await b.newResource();
    const day = futureWeekday();
    expect((await b.api('POST', '/v1/bookings', { resourceIds: [roomB.id], start: at(day, '09:00'), end: at(day, '10:00'), customer })).status).toBe(201);
    const feedA = (await a.api('POST', '/v1/calendar-feeds', { resourceId: roomA.id })).body;
    const feedB = (await b.api('POST', '/v1/calendar-feeds', { resourceId: roomB.id })).body;

    expectProblem(await client(t.url)('GET', `/v1/resources/${roomB.id}/calendar.ics?token=${feedA.token}`), 401);
    expectProblem(await a.api('GET', `/v1/resources/${roomB.id}/calendar.ics`), 404);
    expectProblem(await a.api('POST', '/v1/calendar-feeds', { resourceId: roomB.id }), 404);
    expectProblem(await a.api('DELETE', `/v1/calendar-feeds/${feedB.id}`), 404);
    expect((await a.api('GET', '/v1/calendar-feeds')).body.items.map((f: any) => f.id)).toEqual([feedA.id]);
    // B's user feed through A's key reads A's bookings only (none).
    expect(events((await a.api('GET', '/v1/users/bob/calendar.ics')).text).events).toEqual([]);
    // B's own token still works.
    expect(events((await client(t.url)('GET', `/v1/resources/${roomB.id}/calendar.ics?token=${feedB.token}`)).text).events).toHaveLength(1);
  });
});

describe('user feeds', () => {
  it('serves the bookings a user made, to the user, the tenant and a feed token; never to another user', async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource({ name: 'Desk', timezone: 'America/New_York' });
    const uma = await tenant.userToken('uma');
    const ugo = await tenant.userToken('ugo');
    const day = futureWeekday();
    const mine = await uma('POST', '/v1/bookings', { resourceIds: [room.id], start: at(day, '14:00'), end: at(day, '15:00'), customer });
    const theirs = await ugo('POST', '/v1/bookings', { resourceIds: [room.id], start: at(day, '16:00'), end: at(day, '17:00'), customer });
    expect([mine.status, theirs.status]).toEqual([201, 201]);

    const own = await uma('GET', '/v1/users/uma/calendar.ics');
    expect(own.status).toBe(200);
    expect(events(own.text).events).toMatchObject([{ uid: `${mine.body.id}@slotwise`, status: 'CONFIRMED', tzid: null, start: at(day, '14:00'), end: at(day, '15:00') }]);
    expect(events((await tenant.api('GET', '/v1/users/ugo/calendar.ics')).text).events.map((e) => e.uid)).toEqual([`${theirs.body.id}@slotwise`]);
    expectProblem(await uma('GET', '/v1/users/ugo/calendar.ics'), 403);

    // A user token makes a feed of its own bookings only, in a zone of its choice.
    expectProblem(await uma('POST', '/v1/calendar-feeds', { userId: 'ugo' }), 403);
    expectProblem(await uma('POST', '/v1/calendar-feeds', { resourceId: room.id }), 403);
    const feed = await uma('POST', '/v1/calendar-feeds', { userId: 'uma', timezone: 'Asia/Tokyo' });
    expect(feed.status).toBe(201);
    expect(feed.body).toMatchObject({ kind: 'user', userId: 'uma', resourceId: null, timezone: 'Asia/Tokyo', path: '/v1/users/uma/calendar.ics' });
    const byToken = await client(t.url)('GET', `/v1/users/uma/calendar.ics?token=${feed.body.token}`);
    expect(byToken.status).toBe(200);
    const parsed = events(byToken.text);
    expect(parsed.cal.getFirstSubcomponent('vtimezone')!.getFirstPropertyValue('tzid')).toBe('Asia/Tokyo');
    expect(parsed.events).toMatchObject([{ uid: `${mine.body.id}@slotwise`, tzid: 'Asia/Tokyo', start: at(day, '14:00') }]);
    // The token opens uma's feed only.
    expectProblem(await client(t.url)('GET', `/v1/users/ugo/calendar.ics?token=${feed.body.token}`), 401);
    expectProblem(await client(t.url)('GET', `/v1/resources/${room.id}/calendar.ics?token=${feed.body.token}`), 401);

    // Rescheduling raises SEQUENCE; cancelling marks it CANCELLED with the same UID.
    const moved = await uma('PATCH', `/v1/bookings/${mine.body.id}`, { start: at(day, '15:00'), end: at(day, '16:00') }, { 'If-Match': `"${mine.body.version}"` });
    expect(moved.status).toBe(200);
    expect((await uma('POST', `/v1/bookings/${mine.body.id}/cancel`, {})).status).toBe(200);
    expect(events((await client(t.url)('GET', `/v1/users/uma/calendar.ics?token=${feed.body.token}`)).text).events)
      .toMatchObject([{ uid: `${mine.body.id}@slotwise`, status: 'CANCELLED', sequence: 2, start: at(day, '15:00') }]);

    // Listing and revoking: a user sees and revokes only its own feeds.
    const tenantFeed = await tenant.api('POST', '/v1/calendar-feeds', { userId: 'ugo' });
    expect((await uma('GET', '/v1/calendar-feeds')).body.items.map((f: any) => f.id)).toEqual([feed.body.id]);
    expect((await tenant.api('GET', '/v1/calendar-feeds')).body.items).toHaveLength(2);
    expectProblem(await uma('DELETE', `/v1/calendar-feeds/${tenantFeed.body.id}`), 404);
    expect((await uma('DELETE', `/v1/calendar-feeds/${feed.body.id}`)).status).toBe(204);
    expectProblem(await client(t.url)('GET', `/v1/users/uma/calendar.ics?token=${feed.body.token}`), 401);
  });

  it('does not replay a feed token from an idempotent retry', async () => {
    const tenant = await newTenant(t);
    const key = { 'Idempotency-Key': randomUUID() };
    const first = await tenant.api('POST', '/v1/calendar-feeds', { userId: 'zed' }, key);
    const again = await tenant.api('POST', '/v1/calendar-feeds', { userId: 'zed' }, key);
    expect(first.status).toBe(201);
    expect(again.status).toBe(201);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body).toMatchObject({ id: first.body.id, token: null, url: null, path: '/v1/users/zed/calendar.ics' });
    expect((await tenant.api('GET', '/v1/calendar-feeds')).body.items).toHaveLength(1);
  });
});

describe('bounds', () => {
  let small: TestNode;
  beforeAll(async () => {
    small = await startNode({ CALENDAR_MAX_EVENTS: '3', CALENDAR_MAX_FEEDS: '2' });
  });
  afterAll(async () => small.stop());

  it('holds at most CALENDAR_MAX_EVENTS events, the soonest, and refuses more feeds than CALENDAR_MAX_FEEDS', async () => {
    const tenant = await newTenant(small);
    const room = await tenant.newResource();
    const day = futureWeekday();
    const hours = ['13:00', '09:00', '11:00', '10:00', '12:00'];
    for (const h of hours) {
      const end = `${String(Number(h.slice(0, 2)) + 1).padStart(2, '0')}:00`;
      expect((await tenant.api('POST', '/v1/bookings', { resourceIds: [room.id], start: at(day, h), end: at(day, end), customer })).status).toBe(201);
    }
    const feed = await tenant.api('GET', `/v1/resources/${room.id}/calendar.ics`);
    expect(feed.status).toBe(200);
    expect(events(feed.text).events.map((e) => e.start)).toEqual([at(day, '09:00'), at(day, '10:00'), at(day, '11:00')]);

    expect((await tenant.api('POST', '/v1/calendar-feeds', { resourceId: room.id })).status).toBe(201);
    expect((await tenant.api('POST', '/v1/calendar-feeds', { userId: 'u' })).status).toBe(201);
    const third = await tenant.api('POST', '/v1/calendar-feeds', { userId: 'v' });
    expectProblem(third, 422);
    expect(third.body).toMatchObject({ code: 'limit-exceeded', limit: 'calendar-feeds.tenant', max: 2 });
    // Creates racing for the places: the limit holds (concurrent creates of a tenant are counted one after another).
    const racing = await newTenant(small);
    const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => racing.api('POST', '/v1/calendar-feeds', { userId: `u${i}` })));
    expect(answers.map((r) => r.status).sort()).toEqual([201, 201, 422, 422, 422, 422, 422, 422, 422, 422]);
    expect((await racing.api('GET', '/v1/calendar-feeds')).body.items).toHaveLength(2);
  });

  it('leaves out bookings older than 30 days and cancellations older than 30 days', async () => {
    const tenant = await newTenant(small);
    const room = await tenant.newResource();
    const day = futureWeekday();
    const kept = await tenant.api('POST', '/v1/bookings', { resourceIds: [room.id], start: at(day, '09:00'), end: at(day, '10:00'), customer });
    const old = await tenant.api('POST', '/v1/bookings', { resourceIds: [room.id], start: at(day, '10:00'), end: at(day, '11:00'), customer });
    const oldCancel = await tenant.api('POST', '/v1/bookings', { resourceIds: [room.id], start: at(day, '11:00'), end: at(day, '12:00'), customer });
    expect((await tenant.api('POST', `/v1/bookings/${oldCancel.body.id}/cancel`, {})).status).toBe(200);
    // Back-date directly: the API cannot book in the past.
    await small.pool.query(`UPDATE bookings SET start_at = now() - interval '40 days', end_at = now() - interval '40 days' + interval '1 hour' WHERE id = $1`, [old.body.id]);
    await small.pool.query(`UPDATE bookings SET updated_at = now() - interval '31 days' WHERE id = $1`, [oldCancel.body.id]);
    const feed = await tenant.api('GET', `/v1/resources/${room.id}/calendar.ics`);
    expect(events(feed.text).events.map((e) => e.uid)).toEqual([`${kept.body.id}@slotwise`]);
  });
});
