/**
 * Tenant isolation (invariant 6): no /v1 route reaches another tenant's data,
 * and within a tenant a user reaches only their own holds and bookings.
 */
import { randomUUID } from 'node:crypto';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feedCaughtUp } from '../helpers/feed';
import { futureWeekday, newTenant, startNode, type Call, type Reply, type TestNode } from '../helpers/node';

const DAY = 86_400_000;
const customer = { name: 'Ada', email: 'ada@example.com' };

type Tenant = Awaited<ReturnType<typeof newTenant>>;
/** Tenant A's ids that a route can name, and a resource of the caller's own (for requests that mix the two). */
interface Ids {
  resource: string;
  hold: string;
  booking: string;
  cancelled: string;
  block: string;
  own: string;
}

let t: TestNode;
let A: Tenant;
let B: Tenant;
let alice: Call; // A's user who owns the hold and the bookings
let carol: Call; // another user of A
let bob: Call; // B's user
let day: string;
let a: Ids;
let bResource: string;
let bBooking: string;
let aBefore: Record<string, number>;
let bBefore: Record<string, number>;

const at = (d: string, hhmm: string) => `${d}T${hhmm}:00Z`;
const nextDay = (d: string) => new Date(Date.parse(d) + DAY).toISOString().slice(0, 10);
const SHARED_KEY = 'isolation-shared-key';
const aliceBookingBody = () => ({ resourceIds: [a.resource], start: at(day, '11:00'), end: at(day, '12:00'), customer });

/** Every id of tenant A (and the tenant itself), for leak checks. */
const allA = () => [A.id, ...Object.entries(a).filter(([k]) => k !== 'own').map(([, v]) => v)];

/** Counts of a tenant's rows in every table, plus seats taken and versions. */
async function snapshot(pool: pg.Pool, tenantId: string): Promise<Record<string, number>> {
  const sql: Record<string, string> = {
    tenants: 'SELECT count(*) FROM tenants WHERE id = $1',
    api_keys: 'SELECT count(*) FROM api_keys WHERE tenant_id = $1',
    resources: 'SELECT count(*) FROM resources WHERE tenant_id = $1',
    resource_versions: 'SELECT COALESCE(sum(version), 0) FROM resources WHERE tenant_id = $1',
    archived: 'SELECT count(*) FROM resources WHERE tenant_id = $1 AND archived_at IS NOT NULL',
    schedules: 'SELECT count(*) FROM schedules WHERE tenant_id = $1',
    schedule_versions: 'SELECT COALESCE(sum(version), 0) FROM schedules WHERE tenant_id = $1',
    blocks: 'SELECT count(*) FROM blocks WHERE tenant_id = $1',
    blocked_slots: 'SELECT count(*) FROM slots WHERE tenant_id = $1 AND blocked',
    seats_taken: 'SELECT COALESCE(sum(seats_taken), 0) FROM slots WHERE tenant_id = $1',
    holds: 'SELECT count(*) FROM holds WHERE tenant_id = $1',
    held: "SELECT count(*) FROM holds WHERE tenant_id = $1 AND status = 'held'",
    hold_resources: 'SELECT count(*) FROM hold_resources hr JOIN holds h ON h.id = hr.hold_id WHERE h.tenant_id = $1',
    bookings: 'SELECT count(*) FROM bookings WHERE tenant_id = $1',
    confirmed: "SELECT count(*) FROM bookings WHERE tenant_id = $1 AND status = 'confirmed'",
    booking_versions: 'SELECT COALESCE(sum(version), 0) FROM bookings WHERE tenant_id = $1',
    booking_resources: 'SELECT count(*) FROM booking_resources br JOIN bookings b ON b.id = br.booking_id WHERE b.tenant_id = $1',
    events: 'SELECT count(*) FROM events WHERE tenant_id = $1',
    idempotency_keys: `SELECT count(*) FROM idempotency_keys WHERE scope = 'tenant:' || $1 OR scope LIKE 'user:' || $1 || ':%'`,
  };
  const out: Record<string, number> = {};
  for (const [name, q] of Object.entries(sql)) {
    const { rows } = await pool.query(q, [tenantId]);
    out[name] = Number(Object.values(rows[0])[0]);
  }
  return out;
}

function expectCreated(r: Reply, what: string) {
  expect(r.status, `${what}: ${r.text}`).toBeLessThan(300);
  return r.body;
}

beforeAll(async () => {
  // A short slot horizon: every route's owner check makes fresh resources with opening hours.
  t = await startNode({ SLOT_HORIZON_DAYS: '21' });
  day = futureWeekday(7);
  A = await newTenant(t, 'Tenant A');
  alice = await A.userToken('alice');
  carol = await A.userToken('carol');
  const room = await A.newResource({ capacity: 3 });
  const hold = expectCreated(await alice('POST', '/v1/holds', { resourceIds: [room.id], start: at(day, '09:00'), end: at(day, '10:00'), ttlSeconds: 900 }), 'hold');
  a = { resource: room.id, hold: hold.id, booking: '', cancelled: '', block: '', own: '' };
  a.booking = expectCreated(await alice('POST', '/v1/bookings', aliceBookingBody(), { 'Idempotency-Key': SHARED_KEY }), 'booking').id;
  a.cancelled = expectCreated(await alice('POST', '/v1/bookings', { resourceIds: [room.id], start: at(day, '13:00'), end: at(day, '14:00'), customer }), 'booking 2').id;
  expect((await alice('POST', `/v1/bookings/${a.cancelled}/cancel`, { reason: 'changed plans' })).status).toBe(200);
  a.block = expectCreated(await A.api('POST', `/v1/resources/${room.id}/blocks`, { start: at(nextDay(day), '09:00'), end: at(nextDay(day), '10:00'), reason: 'cleaning' }), 'block').id;

  B = await newTenant(t, 'Tenant B');
  bob = await B.userToken('bob');
  bResource = (await B.newResource({ capacity: 2 })).id;
  a.own = bResource;
  bBooking = expectCreated(await B.api('POST', '/v1/bookings', { resourceIds: [bResource], start: at(day, '09:00'), end: at(day, '10:00'), customer }), 'B booking').id;

  // Each route first succeeds for A's own key on objects like the ones B will name (a fresh set for a route that
  // changes them, A's very objects for a read), so B's refusal below is the route refusing, not a route that
  // does not exist (an unknown route's 404) or a request that is wrong for everyone.
  const initial = await snapshot(t.pool, A.id);
  expect(initial).toMatchObject({ held: 1, confirmed: 1, bookings: 2, blocks: 1, seats_taken: 2 });
  const aOwn = (await A.newResource({ capacity: 3 })).id;
  for (const route of routes) {
    const ids = route.method === 'GET' ? { ...a, own: aOwn } : await freshIds(route.bare);
    ownerAnswers.set(route.name, await send(A.api, route.req(ids)));
  }
  // Holds the owner's requests left would expire during the run and change the counts: release them now.
  const { rows: left } = await t.pool.query("SELECT id FROM holds WHERE tenant_id = $1 AND status = 'held' AND id <> $2", [A.id, a.hold]);
  for (const { id } of left) expect((await A.api('DELETE', `/v1/holds/${id}`)).status).toBe(200);

  // The events of the changes above are stored by the feed decoder after their commits: wait until it has them,
  // or the "before" could miss events it stores later and the comparison would blame a route.
  await feedCaughtUp(t.url, A.key);
  await feedCaughtUp(t.url, B.key);
  aBefore = await snapshot(t.pool, A.id);
  bBefore = await snapshot(t.pool, B.id);
  expect(aBefore).toMatchObject({ held: 1 });
});
afterAll(async () => t?.stop());

interface Route {
  name: string;
  /** GET for reads (the owner's success is shown on A's own objects), anything else changes what it names. */
  method: string;
  /** The objects it changes must hold no seats (archiving, emptying the schedule, blocking the whole day). */
  bare?: boolean;
  /** Builds the request for a set of ids (A's real ones, or random ones for comparison). */
  req: (ids: Ids) => { method: string; path: string; body?: unknown; headers?: Record<string, string> };
  /** A list route: 200 with none of A's data (for the credential kinds it allows). */
  list?: boolean;
}

const from = () => at(day, '00:00');
const to = () => at(day, '23:00');

// The /v1 routes that name a tenant's resources, holds, bookings, blocks or events (the app's route table is
// checked against this list and the sweep's below). Each is first shown to succeed for A's own key.
const routes: Route[] = [
  { method: 'GET', name: 'GET /v1/resources', list: true, req: () => ({ method: 'GET', path: '/v1/resources?limit=200&includeArchived=true' }) },
  { method: 'GET', name: 'GET /v1/resources/:id', req: (i) => ({ method: 'GET', path: `/v1/resources/${i.resource}` }) },
  { method: 'PATCH', name: 'PATCH /v1/resources/:id', req: (i) => ({ method: 'PATCH', path: `/v1/resources/${i.resource}`, body: { name: 'pwned', capacity: 1 } }) },
  { method: 'DELETE', name: 'DELETE /v1/resources/:id', bare: true, req: (i) => ({ method: 'DELETE', path: `/v1/resources/${i.resource}` }) },
  { method: 'GET', name: 'GET /v1/resources/:id/schedule', req: (i) => ({ method: 'GET', path: `/v1/resources/${i.resource}/schedule` }) },
  { method: 'PUT', name: 'PUT /v1/resources/:id/schedule', bare: true, req: (i) => ({ method: 'PUT', path: `/v1/resources/${i.resource}/schedule`, body: { weekly: [] } }) },
  { method: 'POST', name: 'POST /v1/resources/:id/blocks', bare: true, req: (i) => ({ method: 'POST', path: `/v1/resources/${i.resource}/blocks`, body: { start: from(), end: to() } }) },
  { method: 'DELETE', name: 'DELETE /v1/blocks/:id', req: (i) => ({ method: 'DELETE', path: `/v1/blocks/${i.block}` }) },
  { method: 'POST', name: 'POST /v1/resources (parentId of A)', req: (i) => ({ method: 'POST', path: '/v1/resources', body: { name: 'Child', parentId: i.resource } }) },
  { method: 'PATCH', name: 'PATCH own resource (parentId of A)', req: (i) => ({ method: 'PATCH', path: `/v1/resources/${i.own}`, body: { parentId: i.resource } }) },
  { method: 'GET', name: 'GET /v1/availability', req: (i) => ({ method: 'GET', path: `/v1/availability?resourceIds=${i.resource}&from=${from()}&to=${to()}` }) },
  { method: 'GET', name: 'GET /v1/availability (own and A resource)', req: (i) => ({ method: 'GET', path: `/v1/availability?resourceIds=${i.own},${i.resource}&from=${from()}&to=${to()}&duration=60` }) },
  { method: 'POST', name: 'POST /v1/holds', req: (i) => ({ method: 'POST', path: '/v1/holds', body: { resourceIds: [i.resource], start: at(day, '15:00'), end: at(day, '16:00') } }) },
  { method: 'POST', name: 'POST /v1/holds (own and A resource)', req: (i) => ({ method: 'POST', path: '/v1/holds', body: { resourceIds: [i.own, i.resource], start: at(day, '15:00'), end: at(day, '16:00') } }) },
  { method: 'GET', name: 'GET /v1/holds/:id', req: (i) => ({ method: 'GET', path: `/v1/holds/${i.hold}` }) },
  { method: 'POST', name: 'POST /v1/holds/:id/extend', req: (i) => ({ method: 'POST', path: `/v1/holds/${i.hold}/extend`, body: { ttlSeconds: 600 } }) },
  { method: 'DELETE', name: 'DELETE /v1/holds/:id', req: (i) => ({ method: 'DELETE', path: `/v1/holds/${i.hold}` }) },
  { method: 'POST', name: 'POST /v1/holds/:id/confirm', req: (i) => ({ method: 'POST', path: `/v1/holds/${i.hold}/confirm`, body: { customer } }) },
  { method: 'POST', name: 'POST /v1/bookings', req: (i) => ({ method: 'POST', path: '/v1/bookings', body: { resourceIds: [i.resource], start: at(day, '15:00'), end: at(day, '16:00'), customer } }) },
  {
    method: 'POST',
    name: 'POST /v1/bookings (own and A resource)',
    req: (i) => ({ method: 'POST', path: '/v1/bookings', body: { resourceIds: [i.own, i.resource], start: at(day, '15:00'), end: at(day, '16:00'), customer } }),
  },
  {
    // The same Idempotency-Key and body A's user used must not replay A's response.
    method: 'POST',
    name: 'POST /v1/bookings replaying A idempotency key',
    req: (i) => ({ method: 'POST', path: '/v1/bookings', body: { ...aliceBookingBody(), resourceIds: [i.resource] }, headers: { 'Idempotency-Key': SHARED_KEY } }),
  },
  { method: 'GET', name: 'GET /v1/bookings', list: true, req: () => ({ method: 'GET', path: '/v1/bookings?limit=200' }) },
  { method: 'GET', name: 'GET /v1/bookings?resourceId=A', list: true, req: (i) => ({ method: 'GET', path: `/v1/bookings?resourceId=${i.resource}` }) },
  { method: 'GET', name: 'GET /v1/bookings/:id (confirmed)', req: (i) => ({ method: 'GET', path: `/v1/bookings/${i.booking}` }) },
  { method: 'GET', name: 'GET /v1/bookings/:id (cancelled)', req: (i) => ({ method: 'GET', path: `/v1/bookings/${i.cancelled}` }) },
  { method: 'PATCH', name: 'PATCH /v1/bookings/:id', req: (i) => ({ method: 'PATCH', path: `/v1/bookings/${i.booking}`, body: { metadata: { pwned: true } }, headers: { 'If-Match': '"1"' } }) },
  { method: 'PATCH', name: 'PATCH /v1/bookings/:id (move)', req: (i) => ({ method: 'PATCH', path: `/v1/bookings/${i.booking}`, body: { start: at(day, '15:00'), end: at(day, '16:00') }, headers: { 'If-Match': '"1"' } }) },
  { method: 'POST', name: 'POST /v1/bookings/:id/cancel', req: (i) => ({ method: 'POST', path: `/v1/bookings/${i.booking}/cancel`, body: { reason: 'pwned' } }) },
  { method: 'POST', name: 'POST /v1/bookings/:id/cancel (cancelled)', req: (i) => ({ method: 'POST', path: `/v1/bookings/${i.cancelled}/cancel` }) },
  { method: 'GET', name: 'GET /v1/events', list: true, req: () => ({ method: 'GET', path: '/v1/events?after=0&limit=1000' }) },
];

const randomIds = (): Ids => ({ resource: randomUUID(), hold: randomUUID(), booking: randomUUID(), cancelled: randomUUID(), block: randomUUID(), own: a.own });

/** What A's key got from each route on its own objects (beforeAll). */
const ownerAnswers = new Map<string, Reply>();

/** A fresh set of A's objects like `a` (a hold, a booking, a cancelled booking, a block: made with A's key, so alice's lists stay as they are), and another resource of A's. */
async function freshIds(bare = false): Promise<Ids> {
  const room = await A.newResource({ capacity: 3 });
  const own = (await A.newResource({ capacity: 3 })).id;
  const ids: Ids = { resource: room.id, hold: '', booking: '', cancelled: '', block: '', own };
  ids.block = expectCreated(await A.api('POST', `/v1/resources/${room.id}/blocks`, { start: at(nextDay(day), '09:00'), end: at(nextDay(day), '10:00') }), 'block').id;
  if (bare) return ids;
  ids.hold = expectCreated(await A.api('POST', '/v1/holds', { resourceIds: [room.id], start: at(day, '09:00'), end: at(day, '10:00'), ttlSeconds: 900 }), 'hold').id;
  ids.booking = expectCreated(await A.api('POST', '/v1/bookings', { resourceIds: [room.id], start: at(day, '11:00'), end: at(day, '12:00'), customer }), 'booking').id;
  ids.cancelled = expectCreated(await A.api('POST', '/v1/bookings', { resourceIds: [room.id], start: at(day, '13:00'), end: at(day, '14:00'), customer }), 'booking 2').id;
  expect((await A.api('POST', `/v1/bookings/${ids.cancelled}/cancel`, {})).status).toBe(200);
  return ids;
}

/** The route answered A's own key with a success (2xx). */
function expectOwnerSucceeded(route: Route) {
  const r = ownerAnswers.get(route.name);
  expect(r, `${route.name} was not tried with the owner's key`).toBeDefined();
  expect(r!.status, `the owner's key ${route.name}: ${r!.status} ${r!.text.slice(0, 400)}`).toBeGreaterThanOrEqual(200);
  expect(r!.status, `the owner's key ${route.name}: ${r!.status} ${r!.text.slice(0, 400)}`).toBeLessThan(300);
}

/** Replaces the ids a request named with placeholders, so two answers can be compared. */
function redact(text: string, ids: Ids): string {
  let out = text;
  for (const [k, v] of Object.entries(ids)) out = out.split(v).join(`<${k}>`);
  return out;
}

async function send(call: Call, r: ReturnType<Route['req']>): Promise<Reply> {
  return call(r.method, r.path, r.body, r.headers);
}

/** A 4xx that is not a leak: 403/404 problem+json, naming no A id beyond what the request itself named. */
async function expectDenied(call: Call, route: Route, who: string) {
  const real = await send(call, route.req(a));
  const where = `${who} ${route.name}: ${real.status} ${real.text.slice(0, 400)}`;
  expect([403, 404], where).toContain(real.status);
  expect(real.headers.get('Content-Type'), where).toMatch(/^application\/problem\+json/);
  expect(real.body.status, where).toBe(real.status);
  const rest = redact(real.text, a);
  for (const id of allA()) expect(rest, where).not.toContain(id);
  // No existence oracle: A's ids get exactly the answer that ids nobody has get.
  const fake = randomIds();
  const other = await send(call, route.req(fake));
  expect(other.status, `${where} vs random ids: ${other.text}`).toBe(real.status);
  expect(redact(other.text, fake), where).toBe(rest);
}

describe('tenant isolation', () => {
  for (const [who, call] of [['B key', () => B.api], ['B user', () => bob]] as const) {
    describe(who, () => {
      it.each(routes.map((r) => [r.name, r] as const))('%s', async (_name, route) => {
        expectOwnerSucceeded(route);
        const c = call();
        if (!route.list) return expectDenied(c, route, who);
        const r = await send(c, route.req(a));
        const where = `${who} ${route.name}: ${r.status} ${r.text.slice(0, 400)}`;
        if (route.name === 'GET /v1/events' && who === 'B user') {
          expect(r.status, where).toBe(403);
        } else {
          expect(r.status, where).toBe(200);
          if (route.name === 'GET /v1/events') {
            expect(r.body.events.length, where).toBeGreaterThan(0); // B's own events are there
            for (const e of r.body.events) for (const id of e.resourceIds) expect([bResource], where).toContain(id);
          } else {
            expect(Array.isArray(r.body.items), where).toBe(true);
          }
        }
        for (const id of allA()) expect(r.text, where).not.toContain(id);
      });
    });
  }

  it("covers every /v1 route of the app's route table, or names the test that does", () => {
    // Routes B's credentials are tried against in test/security/sweep.test.ts (every route, each credential kind).
    const elsewhere = new Set([
      'POST /v1/tenants', 'POST /v1/tokens', 'POST /v1/api-keys', 'GET /v1/api-keys', 'POST /v1/api-keys/:id/rotate', 'DELETE /v1/api-keys/:id',
      'DELETE /v1/tokens/:id', 'DELETE /v1/users/:userId/tokens', 'POST /v1/group-bookings', 'GET /v1/group-bookings/:id',
      'POST /v1/group-bookings/:id/members', 'DELETE /v1/group-bookings/:id/members/:userId', 'POST /v1/group-bookings/:id/hold',
      'POST /v1/group-bookings/:id/confirm', 'POST /v1/group-bookings/:id/cancel',
      'POST /v1/webhooks', 'GET /v1/webhooks', 'GET /v1/webhooks/:id', 'PATCH /v1/webhooks/:id', 'DELETE /v1/webhooks/:id',
      'POST /v1/webhooks/:id/rotate-secret', 'GET /v1/webhooks/:id/deliveries', 'GET /v1/webhooks/:id/deliveries/:deliveryId',
      'POST /v1/webhooks/:id/deliveries/:deliveryId/redeliver',
      // Calendar feeds: sweep.test.ts, and their own isolation cases in test/integration/calendar-feeds.test.ts.
      'GET /v1/resources/:id/calendar.ics', 'GET /v1/users/:userId/calendar.ics', 'POST /v1/calendar-feeds', 'GET /v1/calendar-feeds',
      'DELETE /v1/calendar-feeds/:id',
      // Development sign-in: refused outside development mode, and it reaches only the dev tenant (test/integration/dev-sign-in.test.ts).
      'GET /v1/dev/users', 'POST /v1/dev/tokens',
    ]);
    const here = new Set(routes.map((r) => r.name.split(/[ ?]/).slice(0, 2).join(' ')));
    const served = [...new Set(t.node.app.routes.filter((r) => r.path.startsWith('/v1/') && r.method !== 'ALL').map((r) => `${r.method} ${r.path}`))];
    expect(served.length).toBeGreaterThanOrEqual(30);
    expect(served.filter((r) => !here.has(r) && !elsewhere.has(r))).toEqual([]);
    // And neither list names a route the app does not serve.
    expect([...here, ...elsewhere].filter((r) => r.startsWith('GET') || r.startsWith('POST') || r.startsWith('PUT') || r.startsWith('PATCH') || r.startsWith('DELETE')).filter((r) => r.includes('/v1/') && !served.includes(r))).toEqual([]);
  });

  it('B sees its own data through the same routes', async () => {
    const resources = await B.api('GET', '/v1/resources');
    expect(resources.body.items.map((x: { id: string }) => x.id)).toEqual([bResource]);
    const bookings = await B.api('GET', '/v1/bookings');
    expect(bookings.body.items.map((x: { id: string }) => x.id)).toEqual([bBooking]);
    expect((await bob('GET', `/v1/resources/${bResource}`)).status).toBe(200);
    // bob owns nothing: B's key made the booking.
    expect((await bob('GET', '/v1/bookings')).body.items).toEqual([]);
    expect((await bob('GET', `/v1/bookings/${bBooking}`)).status).toBe(404);
  });
});

describe('ownership within a tenant', () => {
  const owned: Route[] = routes.filter((r) => /holds\/:id|bookings\/:id/.test(r.name));

  it.each(owned.map((r) => [r.name, r] as const))('another user of A gets 404: %s', async (_name, route) => {
    expectOwnerSucceeded(route);
    const real = await send(carol, route.req(a));
    const where = `carol ${route.name}: ${real.status} ${real.text.slice(0, 400)}`;
    expect(real.status, where).toBe(404);
    expect(real.headers.get('Content-Type'), where).toMatch(/^application\/problem\+json/);
    const fake = randomIds();
    const other = await send(carol, route.req(fake));
    expect(redact(other.text, fake), where).toBe(redact(real.text, a));
  });

  it("another user's list does not show the owner's bookings", async () => {
    const r = await carol('GET', '/v1/bookings?limit=200');
    expect(r.status).toBe(200);
    expect(r.body.items).toEqual([]);
    const mine = await alice('GET', '/v1/bookings?limit=200');
    expect(mine.body.items.map((x: { id: string }) => x.id).sort()).toEqual([a.booking, a.cancelled].sort());
  });

  it('the owner and the tenant key can read them', async () => {
    for (const call of [alice, A.api]) {
      const h = await call('GET', `/v1/holds/${a.hold}`);
      expect(h.status, h.text).toBe(200);
      expect(h.body).toMatchObject({ id: a.hold, status: 'held', ownerId: 'alice' });
      const b = await call('GET', `/v1/bookings/${a.booking}`);
      expect(b.status, b.text).toBe(200);
      expect(b.body).toMatchObject({ id: a.booking, status: 'confirmed', version: 1, ownerId: 'alice' });
      expect(b.headers.get('ETag')).toBe('"1"');
    }
  });
});

describe('afterwards', () => {
  it("leaves A's and B's data unchanged", async () => {
    await new Promise((r) => setTimeout(r, 300));
    await feedCaughtUp(t.url, A.key);
    await feedCaughtUp(t.url, B.key);
    expect(await snapshot(t.pool, A.id)).toEqual(aBefore);
    expect(await snapshot(t.pool, B.id)).toEqual(bBefore);

    const hold = await A.api('GET', `/v1/holds/${a.hold}`);
    expect(hold.body).toMatchObject({ status: 'held', bookingId: null });
    const booking = await A.api('GET', `/v1/bookings/${a.booking}`);
    expect(booking.body).toMatchObject({ status: 'confirmed', version: 1, metadata: {}, seats: 1, resourceIds: [a.resource] });
    expect(booking.body.start).toBe(new Date(at(day, '11:00')).toISOString());
    const cancelled = await A.api('GET', `/v1/bookings/${a.cancelled}`);
    expect(cancelled.body).toMatchObject({ status: 'cancelled', cancelReason: 'changed plans' });
    const resource = await A.api('GET', `/v1/resources/${a.resource}`);
    expect(resource.body).toMatchObject({ name: 'Room', capacity: 3, version: 1, archivedAt: null, parentId: null });
    const schedule = await A.api('GET', `/v1/resources/${a.resource}/schedule`);
    expect(schedule.status).toBe(200);
    expect(schedule.body.schedule.weekly).toHaveLength(1);
    const { rows } = await t.pool.query('SELECT id FROM blocks WHERE tenant_id = $1 AND resource_id = $2', [A.id, a.resource]);
    expect(rows.map((r) => r.id)).toEqual([a.block]);
    const avail = await alice('GET', `/v1/availability?resourceIds=${a.resource}&from=${at(day, '09:00')}&to=${at(day, '14:00')}`);
    expect(avail.body.resources[0].slots.map((s: { remaining: number }) => s.remaining)).toEqual([2, 3, 2, 3, 3]);
    // Nobody in B got a child under A's resource.
    const children = await t.pool.query('SELECT count(*)::int AS n FROM resources WHERE parent_id = $1', [a.resource]);
    expect(children.rows[0].n).toBe(0);
  });
});
