/**
 * Malformed requests: every one is a 4xx problem+json with a stable code, and
 * none of them leaves a trace in the database (invariant "client mistakes never
 * leave partial writes").
 */
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { feedCaughtUp } from '../helpers/feed';
import { client, futureWeekday, newTenant, startNode, type Call, type Reply, type TestNode } from '../helpers/node';

// Known here (rather than taken from the helper) so the test can forge tokens.
const JWT_SECRET = 'bad-input-jwt-secret-0123456789-0123456789-xyz';
const DAY = 86_400_000;

let t: TestNode;
let tenant: Awaited<ReturnType<typeof newTenant>>;
let user: Call;
let anonymous: Call;
let resourceId: string;
let bookingId: string;
let day: string;
let before: Snapshot;

const at = (hhmm: string) => `${day}T${hhmm}:00Z`;
const plusDays = (iso: string, days: number) => new Date(Date.parse(iso) + days * DAY).toISOString();
const hold = (over: Record<string, unknown> = {}) => ({ resourceIds: [resourceId], start: at('09:00'), end: at('10:00'), ...over });
const customer = { name: 'Ada', email: 'ada@example.com' };

/** Signs a user token with an arbitrary key and claims. */
async function forgeToken(secret: string, claims: { tid: string; sub: string; expSeconds?: number }) {
  const exp = Math.floor(Date.now() / 1000) + (claims.expSeconds ?? 3600);
  return new SignJWT({ tid: claims.tid, name: claims.sub, role: 'member' })
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(claims.sub)
    .setIssuer('slotwise')
    .setIssuedAt()
    .setExpirationTime(exp)
    .sign(new TextEncoder().encode(secret));
}

type Snapshot = Record<string, number>;

/** Row counts of every table, scoped to the tenant (the database is shared with other test files). */
async function snapshot(pool: pg.Pool, tenantId: string, slotCutoff: string): Promise<Snapshot> {
  const counts: Record<string, string> = {
    tenants: 'SELECT count(*) FROM tenants WHERE id = $1',
    api_keys: 'SELECT count(*) FROM api_keys WHERE tenant_id = $1',
    resources: 'SELECT count(*) FROM resources WHERE tenant_id = $1',
    schedules: 'SELECT count(*) FROM schedules WHERE tenant_id = $1',
    blocks: 'SELECT count(*) FROM blocks WHERE tenant_id = $1',
    // Slots beyond the cutoff may appear if the daily horizon job runs across UTC midnight.
    slots: `SELECT count(*) FROM slots WHERE tenant_id = $1 AND start_at < '${slotCutoff}'`,
    seats_taken: 'SELECT COALESCE(sum(seats_taken), 0) FROM slots WHERE tenant_id = $1',
    blocked_slots: 'SELECT count(*) FROM slots WHERE tenant_id = $1 AND blocked',
    holds: 'SELECT count(*) FROM holds WHERE tenant_id = $1',
    hold_resources: 'SELECT count(*) FROM hold_resources hr JOIN holds h ON h.id = hr.hold_id WHERE h.tenant_id = $1',
    bookings: 'SELECT count(*) FROM bookings WHERE tenant_id = $1',
    booking_versions: 'SELECT COALESCE(sum(version), 0) FROM bookings WHERE tenant_id = $1',
    booking_resources: 'SELECT count(*) FROM booking_resources br JOIN bookings b ON b.id = br.booking_id WHERE b.tenant_id = $1',
    resource_versions: 'SELECT COALESCE(sum(version), 0) FROM resources WHERE tenant_id = $1',
    events: 'SELECT count(*) FROM events WHERE tenant_id = $1',
    idempotency_keys: `SELECT count(*) FROM idempotency_keys WHERE scope LIKE 'tenant:' || $1 || '%' OR scope LIKE 'user:' || $1 || ':%'`,
  };
  const out: Snapshot = {};
  for (const [name, sql] of Object.entries(counts)) {
    const { rows } = await pool.query(sql, [tenantId]);
    out[name] = Number(Object.values(rows[0])[0]);
  }
  return out;
}

beforeAll(async () => {
  // The production minimum TTL (30 s), so ttlSeconds 29 is a client mistake here.
  t = await startNode({ JWT_SECRET, HOLD_MIN_TTL_SECONDS: '30' });
  tenant = await newTenant(t, 'Bad input');
  user = await tenant.userToken('user-1');
  anonymous = client(t.url);
  day = futureWeekday(7);
  const room = await tenant.newResource({ capacity: 3 });
  resourceId = room.id;
  const booking = await tenant.api('POST', '/v1/bookings', { resourceIds: [resourceId], start: at('11:00'), end: at('12:00'), customer });
  expect(booking.status).toBe(201);
  bookingId = booking.body.id;
  // The feed stores events a moment after their commit; a feed read waits until it has them all.
  expect((await tenant.api('GET', '/v1/events?after=0&limit=1')).status).toBe(200);
  await feedCaughtUp(t.url, tenant.key); // the set-up's events are stored before the "before" is counted
  before = await snapshot(t.pool, tenant.id, plusDays(at('00:00'), 30));
  expect(before.seats_taken).toBe(1);
});
afterAll(async () => t?.stop());

interface Case {
  name: string;
  send: () => Promise<Reply>;
  status: number;
  code: string;
  /** Substrings that must appear in some `errors[].path` or `errors[].message` (validation failures). */
  mentions?: string[];
  check?: (r: Reply) => void;
}

const asUser = (method: string, path: string, body?: unknown, headers?: Record<string, string>) => () => user(method, path, body, headers);
const avail = (qs: string) => `/v1/availability?resourceIds=${resourceId}&${qs}`;
const v = 'validation-failed';

const cases: Case[] = [
  // Wrong types
  { name: 'capacity as a string', send: () => tenant.api('POST', '/v1/resources', { name: 'R', capacity: '2' }), status: 400, code: v, mentions: ['body.capacity'] },
  { name: 'seats as a string', send: () => tenant.api('POST', '/v1/holds', hold({ seats: '1' })), status: 400, code: v, mentions: ['body.seats'] },
  { name: 'name as a number', send: () => tenant.api('POST', '/v1/resources', { name: 42 }), status: 400, code: v, mentions: ['body.name'] },
  { name: 'seats as a fraction', send: () => tenant.api('POST', '/v1/holds', hold({ seats: 1.5 })), status: 400, code: v, mentions: ['body.seats'] },
  { name: 'a JSON array instead of an object', send: () => tenant.api('POST', '/v1/resources', []), status: 400, code: v },
  { name: 'a JSON null body', send: () => tenant.api('POST', '/v1/holds', 'null'), status: 400, code: v },

  // Missing required fields
  { name: 'resource without name', send: () => tenant.api('POST', '/v1/resources', {}), status: 400, code: v, mentions: ['body.name'] },
  { name: 'hold without end', send: () => tenant.api('POST', '/v1/holds', { resourceIds: [resourceId], start: at('09:00') }), status: 400, code: v, mentions: ['body.end'] },
  { name: 'hold without resourceIds', send: () => tenant.api('POST', '/v1/holds', { start: at('09:00'), end: at('10:00') }), status: 400, code: v, mentions: ['body.resourceIds'] },
  { name: 'booking without customer', send: () => tenant.api('POST', '/v1/bookings', hold()), status: 400, code: v, mentions: ['body.customer'] },
  { name: 'tenant without name', send: () => t.admin('POST', '/v1/tenants', {}), status: 400, code: v, mentions: ['body.name'] },
  { name: 'token without name and role', send: () => tenant.api('POST', '/v1/tokens', { userId: 'u' }), status: 400, code: v, mentions: ['body.name', 'body.role'] },
  { name: 'empty JSON body on POST /v1/holds', send: () => tenant.api('POST', '/v1/holds', ''), status: 400, code: 'malformed-json' },
  { name: 'availability without from/to', send: () => tenant.api('GET', `/v1/availability?resourceIds=${resourceId}`), status: 400, code: v, mentions: ['query.from', 'query.to'] },

  // Ranges and instants
  { name: 'hold with end before start', send: () => tenant.api('POST', '/v1/holds', hold({ start: at('10:00'), end: at('09:00') })), status: 400, code: v, mentions: ['body.end'] },
  { name: 'hold with end equal to start', send: () => tenant.api('POST', '/v1/holds', hold({ start: at('10:00'), end: at('10:00') })), status: 400, code: v, mentions: ['body.end'] },
  { name: 'hold at :17 on a 60-minute grid', send: () => tenant.api('POST', '/v1/holds', hold({ start: at('09:17'), end: at('10:17') })), status: 422, code: 'grid-misaligned' },
  { name: 'booking at :30 on a 60-minute grid', send: () => tenant.api('POST', '/v1/bookings', { ...hold({ start: at('09:30'), end: at('10:30') }), customer }), status: 422, code: 'grid-misaligned' },
  { name: 'time without an offset', send: () => tenant.api('POST', '/v1/holds', hold({ start: `${day}T09:00:00`, end: `${day}T10:00:00` })), status: 400, code: v, mentions: ['body.start', 'body.end'] },
  { name: 'time in prose', send: () => tenant.api('POST', '/v1/holds', hold({ start: 'next tuesday at nine' })), status: 400, code: v, mentions: ['body.start'] },
  { name: 'month 13, day 45', send: () => tenant.api('POST', '/v1/holds', hold({ start: '2027-13-45T09:00:00Z' })), status: 400, code: v, mentions: ['body.start'] },
  { name: 'a date without a time', send: () => tenant.api('POST', '/v1/holds', hold({ start: day })), status: 400, code: v, mentions: ['body.start'] },
  { name: 'block with slashes in the date', send: () => tenant.api('POST', `/v1/resources/${resourceId}/blocks`, { start: '2027/01/11 09:00', end: at('10:00') }), status: 400, code: v, mentions: ['body.start'] },
  { name: 'block with end before start', send: () => tenant.api('POST', `/v1/resources/${resourceId}/blocks`, { start: at('15:00'), end: at('14:00') }), status: 400, code: v, mentions: ['body.end'] },
  { name: 'availability with a time without offset', send: () => tenant.api('GET', avail(`from=${day}T00:00:00&to=${at('23:00')}`)), status: 400, code: v, mentions: ['query.from'] },
  { name: 'availability over 62 days', send: () => tenant.api('GET', avail(`from=${at('00:00')}&to=${plusDays(at('00:00'), 63)}`)), status: 400, code: v, mentions: ['query.to'] },
  { name: 'hold over 31 days', send: () => tenant.api('POST', '/v1/holds', hold({ end: plusDays(at('09:00'), 32) })), status: 400, code: v, mentions: ['body.end'] },
  { name: 'availability duration off the grid', send: () => tenant.api('GET', avail(`from=${at('00:00')}&to=${at('23:00')}&duration=17`)), status: 422, code: 'grid-misaligned' },

  // Resource fields
  { name: 'unknown time zone', send: () => tenant.api('POST', '/v1/resources', { name: 'R', timezone: 'Mars/Base' }), status: 400, code: v, mentions: ['body.timezone'] },
  { name: 'offset instead of a time zone', send: () => tenant.api('POST', '/v1/resources', { name: 'R', timezone: '+02:00' }), status: 400, code: v, mentions: ['body.timezone'] },
  { name: 'slotMinutes 7', send: () => tenant.api('POST', '/v1/resources', { name: 'R', slotMinutes: 7 }), status: 400, code: v, mentions: ['body.slotMinutes'] },
  { name: 'capacity 0', send: () => tenant.api('POST', '/v1/resources', { name: 'R', capacity: 0 }), status: 400, code: v, mentions: ['body.capacity'] },
  { name: 'negative notice rule', send: () => tenant.api('POST', '/v1/resources', { name: 'R', rules: { minNoticeMinutes: -5 } }), status: 400, code: v, mentions: ['body.rules.minNoticeMinutes'] },
  { name: 'patch with slotMinutes 7', send: () => tenant.api('PATCH', `/v1/resources/${resourceId}`, { slotMinutes: 7 }), status: 400, code: v, mentions: ['body.slotMinutes'] },

  // Seats
  { name: 'seats 0', send: () => tenant.api('POST', '/v1/holds', hold({ seats: 0 })), status: 400, code: v, mentions: ['body.seats'] },
  { name: 'seats -1', send: () => tenant.api('POST', '/v1/holds', hold({ seats: -1 })), status: 400, code: v, mentions: ['body.seats'] },
  { name: 'seats 1e9', send: () => tenant.api('POST', '/v1/holds', JSON.stringify(hold()).replace(/}$/, ',"seats":1e9}')), status: 400, code: v, mentions: ['body.seats'] },
  { name: 'availability seats 0', send: () => tenant.api('GET', avail(`from=${at('00:00')}&to=${at('23:00')}&seats=0`)), status: 400, code: v, mentions: ['query.seats'] },

  // Bodies
  { name: 'malformed JSON', send: () => tenant.api('POST', '/v1/resources', '{"name":'), status: 400, code: 'malformed-json' },
  {
    name: 'body over 64 KiB',
    send: () => tenant.api('POST', '/v1/resources', { name: 'R', metadata: { blob: 'x'.repeat(70 * 1024) } }),
    status: 413,
    code: 'payload-too-large',
  },
  { name: 'unknown field in body', send: () => tenant.api('POST', '/v1/resources', { name: 'R', colour: 'red' }), status: 400, code: v, mentions: ['colour'] },
  { name: 'unknown field in a nested object', send: () => tenant.api('POST', '/v1/resources', { name: 'R', rules: { snooze: 1 } }), status: 400, code: v, mentions: ['snooze'] },
  { name: 'unknown field in a hold', send: () => tenant.api('POST', '/v1/holds', hold({ priority: 'high' })), status: 400, code: v, mentions: ['priority'] },
  { name: 'unknown query parameter on availability', send: () => tenant.api('GET', avail(`from=${at('00:00')}&to=${at('23:00')}&colour=blue`)), status: 400, code: v, mentions: ['colour'] },
  { name: 'unknown query parameter on bookings', send: () => tenant.api('GET', '/v1/bookings?sort=desc'), status: 400, code: v, mentions: ['sort'] },
  { name: 'text/plain body', send: () => tenant.api('POST', '/v1/resources', JSON.stringify({ name: 'R' }), { 'Content-Type': 'text/plain' }), status: 415, code: 'unsupported-media-type' },
  { name: 'form-encoded body', send: () => tenant.api('POST', '/v1/holds', 'resourceIds=x', { 'Content-Type': 'application/x-www-form-urlencoded' }), status: 415, code: 'unsupported-media-type' },

  // Ids
  { name: 'hold id not a UUID', send: () => tenant.api('GET', '/v1/holds/not-a-uuid'), status: 400, code: v, mentions: ['path.id'] },
  { name: 'booking id not a UUID', send: () => tenant.api('GET', '/v1/bookings/123'), status: 400, code: v, mentions: ['path.id'] },
  { name: 'resource id not a UUID on DELETE', send: () => tenant.api('DELETE', '/v1/resources/not-a-uuid'), status: 400, code: v, mentions: ['path.id'] },
  { name: 'block id not a UUID', send: () => tenant.api('DELETE', '/v1/blocks/%27%20OR%201=1--'), status: 400, code: v, mentions: ['path.id'] },
  { name: 'resourceIds ["x"]', send: () => tenant.api('POST', '/v1/holds', hold({ resourceIds: ['x'] })), status: 400, code: v, mentions: ['body.resourceIds'] },
  { name: 'duplicate resourceIds', send: () => tenant.api('POST', '/v1/holds', hold({ resourceIds: [resourceId, resourceId] })), status: 400, code: v, mentions: ['body.resourceIds'] },
  { name: 'empty resourceIds', send: () => tenant.api('POST', '/v1/holds', hold({ resourceIds: [] })), status: 400, code: v, mentions: ['body.resourceIds'] },
  { name: '21 resourceIds', send: () => tenant.api('POST', '/v1/holds', hold({ resourceIds: Array.from({ length: 21 }, () => randomUUID()) })), status: 400, code: v, mentions: ['body.resourceIds'] },
  { name: 'resourceIds as a string', send: () => tenant.api('POST', '/v1/bookings', { ...hold({ resourceIds: resourceId }), customer }), status: 400, code: v, mentions: ['body.resourceIds'] },
  { name: 'availability resourceIds=x', send: () => tenant.api('GET', `/v1/availability?resourceIds=x&from=${at('00:00')}&to=${at('23:00')}`), status: 400, code: v, mentions: ['query.resourceIds'] },
  { name: 'parentId not a UUID', send: () => tenant.api('POST', '/v1/resources', { name: 'R', parentId: 'root' }), status: 400, code: v, mentions: ['body.parentId'] },
  { name: 'hold on a resource that does not exist', send: () => tenant.api('POST', '/v1/holds', hold({ resourceIds: [randomUUID()] })), status: 404, code: 'not-found' },
  { name: 'booking with a bad e-mail', send: () => tenant.api('POST', '/v1/bookings', { ...hold(), customer: { name: 'Ada', email: 'not-an-email' } }), status: 400, code: v, mentions: ['body.customer.email'] },

  // Credentials
  {
    name: 'no credential',
    send: () => anonymous('GET', '/v1/resources'),
    status: 401,
    code: 'unauthorized',
    check: (r) => expect(r.headers.get('WWW-Authenticate')).toMatch(/^Bearer/),
  },
  {
    name: 'no credential on POST /v1/holds',
    send: () => anonymous('POST', '/v1/holds', hold()),
    status: 401,
    code: 'unauthorized',
    check: (r) => expect(r.headers.get('WWW-Authenticate')).toMatch(/^Bearer/),
  },
  {
    name: 'garbage credential',
    send: () => client(t.url, 'garbage')('GET', '/v1/resources'),
    status: 401,
    code: 'unauthorized',
    check: (r) => expect(r.headers.get('WWW-Authenticate')).toMatch(/^Bearer/),
  },
  { name: 'unknown API key', send: () => client(t.url, 'sw_doesnotexist0000000000000000000000000')('GET', '/v1/resources'), status: 401, code: 'unauthorized' },
  { name: 'Basic instead of Bearer', send: () => anonymous('GET', '/v1/resources', undefined, { Authorization: `Basic ${Buffer.from('a:b').toString('base64')}` }), status: 401, code: 'unauthorized' },
  { name: 'tenant key on POST /v1/tenants', send: () => tenant.api('POST', '/v1/tenants', { name: 'Sneaky' }), status: 403, code: 'forbidden' },
  { name: 'admin token on POST /v1/holds', send: () => t.admin('POST', '/v1/holds', hold()), status: 403, code: 'forbidden' },
  { name: 'user token on POST /v1/resources', send: asUser('POST', '/v1/resources', { name: 'R' }), status: 403, code: 'forbidden' },
  { name: 'user token on PUT schedule', send: () => user('PUT', `/v1/resources/${resourceId}/schedule`, { weekly: [] }), status: 403, code: 'forbidden' },
  { name: 'user token on GET /v1/events', send: asUser('GET', '/v1/events'), status: 403, code: 'forbidden' },
  { name: 'user token on POST /v1/tokens', send: asUser('POST', '/v1/tokens', { userId: 'u2', name: 'U2', role: 'organizer' }), status: 403, code: 'forbidden' },
  {
    name: 'user token signed with another secret',
    send: async () => client(t.url, await forgeToken('another-secret-0123456789-0123456789-abcdef', { tid: tenant.id, sub: 'mallory' }))('POST', '/v1/holds', hold()),
    status: 401,
    code: 'unauthorized',
  },
  {
    name: 'expired user token',
    send: async () => client(t.url, await forgeToken(JWT_SECRET, { tid: tenant.id, sub: 'user-1', expSeconds: -120 }))('POST', '/v1/holds', hold()),
    status: 401,
    code: 'unauthorized',
  },
  {
    name: 'unsigned user token (alg none)',
    send: () => {
      const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const token = `${b64({ alg: 'none', typ: 'JWT' })}.${b64({ tid: tenant.id, sub: 'mallory', iss: 'slotwise', exp: 9_999_999_999 })}.`;
      return client(t.url, token)('POST', '/v1/holds', hold());
    },
    status: 401,
    code: 'unauthorized',
  },

  // Schedules
  { name: 'schedule ending before it starts', send: () => tenant.api('PUT', `/v1/resources/${resourceId}/schedule`, { weekly: [{ days: ['mon'], start: '17:00', end: '09:00' }] }), status: 400, code: v, mentions: ['body.weekly.0.end'] },
  { name: 'schedule on funday', send: () => tenant.api('PUT', `/v1/resources/${resourceId}/schedule`, { weekly: [{ days: ['funday'], start: '09:00', end: '17:00' }] }), status: 400, code: v, mentions: ['body.weekly.0.days.0'] },
  { name: 'schedule at 25:00', send: () => tenant.api('PUT', `/v1/resources/${resourceId}/schedule`, { weekly: [{ days: ['mon'], start: '09:00', end: '25:00' }] }), status: 400, code: v, mentions: ['body.weekly.0.end'] },
  { name: 'schedule without weekly', send: () => tenant.api('PUT', `/v1/resources/${resourceId}/schedule`, { timezone: 'UTC' }), status: 400, code: v, mentions: ['body.weekly'] },
  {
    name: 'schedule override with a non-ISO date',
    send: () => tenant.api('PUT', `/v1/resources/${resourceId}/schedule`, { weekly: [], overrides: [{ date: '24-12-2026', intervals: [] }] }),
    status: 400,
    code: v,
    mentions: ['body.overrides.0.date'],
  },
  { name: 'schedule with unknown time zone', send: () => tenant.api('PUT', `/v1/resources/${resourceId}/schedule`, { timezone: 'Mars/Base', weekly: [] }), status: 400, code: v, mentions: ['body.timezone'] },

  // Hold lifetime
  { name: 'ttlSeconds 901', send: () => tenant.api('POST', '/v1/holds', hold({ ttlSeconds: 901 })), status: 400, code: v, mentions: ['body.ttlSeconds'] },
  { name: 'ttlSeconds 29 (below HOLD_MIN_TTL_SECONDS)', send: () => tenant.api('POST', '/v1/holds', hold({ ttlSeconds: 29 })), status: 400, code: v, mentions: ['ttlSeconds'] },
  { name: 'ttlSeconds as a string', send: () => tenant.api('POST', '/v1/holds', hold({ ttlSeconds: '60' })), status: 400, code: v, mentions: ['body.ttlSeconds'] },

  // Optimistic concurrency
  { name: 'PATCH booking without If-Match', send: () => tenant.api('PATCH', `/v1/bookings/${bookingId}`, { metadata: { a: 1 } }), status: 428, code: 'precondition-required' },
  { name: 'PATCH booking with a stale If-Match', send: () => tenant.api('PATCH', `/v1/bookings/${bookingId}`, { metadata: { a: 1 } }, { 'If-Match': '"7"' }), status: 412, code: 'precondition-failed' },
  { name: 'PATCH booking with a garbage If-Match', send: () => tenant.api('PATCH', `/v1/bookings/${bookingId}`, { metadata: { a: 1 } }, { 'If-Match': 'banana' }), status: 412, code: 'precondition-failed' },
  {
    name: 'PATCH booking moving it off the grid',
    send: () => tenant.api('PATCH', `/v1/bookings/${bookingId}`, { start: at('11:15'), end: at('12:15') }, { 'If-Match': '"1"' }),
    status: 422,
    code: 'grid-misaligned',
  },

  // Idempotency-Key
  { name: 'Idempotency-Key of 256 characters', send: () => tenant.api('POST', '/v1/resources', { name: 'R' }, { 'Idempotency-Key': 'k'.repeat(256) }), status: 400, code: v, mentions: ['Idempotency-Key'] },
  { name: 'Idempotency-Key with a space', send: () => tenant.api('POST', '/v1/resources', { name: 'R' }, { 'Idempotency-Key': 'two words' }), status: 400, code: v, mentions: ['Idempotency-Key'] },
  // A valid key on an invalid request must not be stored (checked by the final snapshot).
  { name: 'valid Idempotency-Key on an invalid body', send: () => tenant.api('POST', '/v1/holds', hold({ seats: 0 }), { 'Idempotency-Key': 'bad-input-1' }), status: 400, code: v, mentions: ['body.seats'] },
  { name: 'valid Idempotency-Key on a rule violation', send: () => user('POST', '/v1/holds', hold({ start: at('09:17'), end: at('10:17') }), { 'Idempotency-Key': 'bad-input-2' }), status: 422, code: 'grid-misaligned' },

  // Query strings
  { name: 'bookings status=pending', send: () => tenant.api('GET', '/v1/bookings?status=pending'), status: 400, code: v, mentions: ['query.status'] },
  { name: 'events limit=0', send: () => tenant.api('GET', '/v1/events?limit=0'), status: 400, code: v, mentions: ['query.limit'] },
  { name: 'resources limit=abc', send: () => tenant.api('GET', '/v1/resources?limit=abc'), status: 400, code: v, mentions: ['query.limit'] },
  { name: 'unknown route', send: () => tenant.api('POST', '/v1/nope', {}), status: 404, code: 'not-found' },
];

describe('malformed requests', () => {
  it('has enough cases', () => {
    expect(cases.length).toBeGreaterThanOrEqual(30);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  it.each(cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const r = await c.send();
    const where = `${c.name}: ${r.status} ${r.text.slice(0, 500)}`;
    expect(r.status, where).toBe(c.status);
    expect(r.headers.get('Content-Type'), where).toMatch(/^application\/problem\+json/);
    expect(r.body, where).toMatchObject({ type: expect.any(String), title: expect.any(String), status: c.status, detail: expect.any(String), code: c.code });
    expect(r.body.detail.length, where).toBeGreaterThan(0);
    if (c.code === v) {
      expect(Array.isArray(r.body.errors), where).toBe(true);
      expect(r.body.errors.length, where).toBeGreaterThan(0);
      for (const e of r.body.errors) expect(e, where).toMatchObject({ path: expect.any(String), message: expect.any(String) });
      const said = r.body.errors.map((e: { path: string; message: string }) => `${e.path} ${e.message}`).join('\n');
      for (const m of c.mentions ?? []) expect(said, where).toContain(m);
    }
    c.check?.(r);
  });

  it('leaves the database exactly as it was', async () => {
    // Let any work a request might have started settle first, and let the decoder store every event committed so far.
    await new Promise((r) => setTimeout(r, 300));
    await feedCaughtUp(t.url, tenant.key);
    const after = await snapshot(t.pool, tenant.id, plusDays(at('00:00'), 30));
    expect(after).toEqual(before);
    const b = await tenant.api('GET', `/v1/bookings/${bookingId}`);
    expect(b.body).toMatchObject({ status: 'confirmed', version: 1, metadata: {} });
  });
});
