/**
 * Security sweep (invariant 6 and the credential rules), on one node whose log
 * output is captured:
 *
 * - every route (read from server/http/routes/*.ts) with another tenant's key
 *   and user, with an expired or forged user token, and the group routes with
 *   a participant's (and a non-member's) token where an organizer is needed;
 * - every Socket.IO room (subscribing to another tenant's resources, commands
 *   on its holds) and every document (another tenant's group document);
 * - SQL-injection, NUL, 10^5-character and unicode strings in every text
 *   field, path and query parameter: a 4xx, or a 2xx that stored the string
 *   verbatim; never a 5xx; every table intact;
 * - API keys: never logged, never in any answer but the one creating them,
 *   stored only as a SHA-256 hash (no table holds one in plain text);
 * - security headers and the CORS configuration.
 */
import { createHash, randomUUID } from 'node:crypto';
import { io as ioClient, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { checkAnswer } from '../helpers/contract';
import { ADMIN_TOKEN, client, futureWeekday, invariantViolations, waitFor, type Reply } from '../helpers/node';
import { declaredRoutes, forgeToken, JWT_SECRET, rawSocket, recordingClient, startLoggedNode, type LoggedNode } from './helpers';

let t: LoggedNode;
/** Every HTTP answer any client of this file received. */
const replies: Reply[] = [];
/** Every secret this file made or used: none of them may ever be logged. */
const secrets = new Set<string>([ADMIN_TOKEN, JWT_SECRET]);
/** API keys and the number of answers allowed to carry each (its creation, and an idempotent replay if any). */
const keys = new Map<string, number>();
let day: string;
const at = (hhmm: string, d = day) => `${d}T${hhmm}:00Z`;
const customer = { name: 'Ada', email: 'ada@example.com' };
const admin = () => recordingClient(t.url, ADMIN_TOKEN, replies);
type Call = ReturnType<typeof admin>;

interface Tenant { id: string; key: string; api: Call; resource: string }
interface User { userId: string; token: string; tokenId: string; call: Call }

async function newTenant(name: string): Promise<Tenant> {
  const r = await admin()('POST', '/v1/tenants', { name });
  expect(r.status, r.text).toBe(201);
  const key = r.body.apiKey as string;
  secrets.add(key);
  keys.set(key, 1);
  const api = recordingClient(t.url, key, replies);
  const res = await api('POST', '/v1/resources', { name: 'Room', capacity: 3, timezone: 'UTC', slotMinutes: 60 });
  expect(res.status, res.text).toBe(201);
  const s = await api('PUT', `/v1/resources/${res.body.id}/schedule`, { weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], start: '00:00', end: '24:00' }] });
  expect(s.status, s.text).toBe(200);
  return { id: r.body.id, key, api, resource: res.body.id };
}

async function newUser(tenant: Tenant, userId: string, role: 'member' | 'organizer'): Promise<User> {
  const r = await tenant.api('POST', '/v1/tokens', { userId, name: userId, role });
  expect(r.status, r.text).toBe(201);
  secrets.add(r.body.token);
  return { userId, token: r.body.token, tokenId: r.body.id, call: recordingClient(t.url, r.body.token, replies) };
}

let A: Tenant;
let B: Tenant;
let alice: User; // A, organizer of A's group
let pat: User; // A, participant of A's group (a member token)
let patOrganizerToken: User; // the same participant with an organizer-role token: the group role is what counts
let carol: User; // A, no member of the group
let bob: User; // B
interface Ids { resource: string; hold: string; booking: string; block: string; group: string; apiKey: string; token: string; webhook: string; delivery: string; calendarFeed: string }
let a: Ids;

beforeAll(async () => {
  t = await startLoggedNode({ SLOT_HORIZON_DAYS: '30' });
  day = futureWeekday(6);
  A = await newTenant('Tenant A');
  B = await newTenant('Tenant B');
  alice = await newUser(A, 'alice', 'member');
  pat = await newUser(A, 'pat', 'member');
  patOrganizerToken = await newUser(A, 'pat', 'organizer');
  carol = await newUser(A, 'carol', 'member');
  bob = await newUser(B, 'bob', 'organizer');
  // A webhook endpoint first, so the changes below give it deliveries. A public address (never connected to here:
  // the delivery fails and waits for its retry, which is all the routes below need).
  const webhook = await A.api('POST', '/v1/webhooks', { url: 'https://93.184.215.14/hook', description: 'sweep' });
  expect(webhook.status, webhook.text).toBe(201);
  secrets.add(webhook.body.secret);
  const hold = await alice.call('POST', '/v1/holds', { resourceIds: [A.resource], start: at('09:00'), end: at('10:00'), ttlSeconds: 900 });
  const booking = await alice.call('POST', '/v1/bookings', { resourceIds: [A.resource], start: at('10:00'), end: at('11:00'), customer });
  const block = await A.api('POST', `/v1/resources/${A.resource}/blocks`, { start: at('22:00'), end: at('23:00'), reason: 'cleaning' });
  const group = await alice.call('POST', '/v1/group-bookings', { title: 'Offsite', resourceIds: [A.resource], members: [{ userId: 'pat', role: 'participant' }] });
  const spare = await A.api('POST', '/v1/api-keys', { name: 'spare' });
  for (const r of [hold, booking, block, group, spare]) expect(r.status, r.text).toBe(201);
  secrets.add(spare.body.apiKey);
  keys.set(spare.body.apiKey, 1);
  const calendarFeed = await A.api('POST', '/v1/calendar-feeds', { resourceId: A.resource });
  expect(calendarFeed.status, calendarFeed.text).toBe(201);
  secrets.add(calendarFeed.body.token);
  // Read once with its token, so the log check below covers a token in a query string.
  expect((await client(t.url)('GET', `/v1/resources/${A.resource}/calendar.ics?token=${calendarFeed.body.token}`)).status).toBe(200);
  const delivery = await waitFor(async () => (await A.api('GET', `/v1/webhooks/${webhook.body.id}/deliveries?limit=1`)).body.items[0], 10_000, 'a webhook delivery');
  a = {
    resource: A.resource, hold: hold.body.id, booking: booking.body.id, block: block.body.id, group: group.body.id, apiKey: spare.body.id, token: carol.tokenId,
    webhook: webhook.body.id, delivery: delivery.id, calendarFeed: calendarFeed.body.id,
  };
  // B has data of its own, so its lists are not trivially empty.
  expect((await B.api('POST', '/v1/bookings', { resourceIds: [B.resource], start: at('09:00'), end: at('10:00'), customer })).status).toBe(201);
});
afterAll(async () => t?.stop());

const allA = () => [A.id, ...Object.values(a)];

/** Row counts of a tenant's tables, to show nothing changed. */
async function snapshot(tenantId: string) {
  const sql: Record<string, string> = {
    resources: 'SELECT count(*) FROM resources WHERE tenant_id = $1',
    resource_versions: 'SELECT COALESCE(sum(version), 0) FROM resources WHERE tenant_id = $1',
    blocks: 'SELECT count(*) FROM blocks WHERE tenant_id = $1',
    held: `SELECT count(*) FROM holds WHERE tenant_id = $1 AND status = 'held'`,
    bookings: `SELECT count(*) FROM bookings WHERE tenant_id = $1 AND status = 'confirmed'`,
    booking_versions: 'SELECT COALESCE(sum(version), 0) FROM bookings WHERE tenant_id = $1',
    seats_taken: 'SELECT COALESCE(sum(seats_taken), 0) FROM slots WHERE tenant_id = $1',
    groups: `SELECT count(*) FROM group_bookings WHERE tenant_id = $1 AND status = 'draft'`,
    members: 'SELECT count(*) FROM group_booking_members m JOIN group_bookings g ON g.id = m.group_booking_id WHERE g.tenant_id = $1',
    live_keys: 'SELECT count(*) FROM api_keys WHERE tenant_id = $1 AND revoked_at IS NULL AND expires_at IS NULL',
    revoked_tokens: 'SELECT count(*) FROM user_tokens WHERE tenant_id = $1 AND revoked_at IS NOT NULL',
    webhooks: 'SELECT count(*) FROM webhook_endpoints WHERE tenant_id = $1',
    webhooks_changed: 'SELECT count(*) FROM webhook_endpoints WHERE tenant_id = $1 AND (previous_secret IS NOT NULL OR description <> \'sweep\' OR NOT enabled)',
    redeliveries: 'SELECT count(*) FROM webhook_deliveries WHERE tenant_id = $1 AND redelivery_of IS NOT NULL',
    calendar_feeds: 'SELECT count(*) FROM calendar_feeds WHERE tenant_id = $1',
  };
  const out: Record<string, number> = {};
  for (const [k, q] of Object.entries(sql)) out[k] = Number(Object.values((await t.pool.query(q, [tenantId])).rows[0])[0]);
  return out;
}

// ---- every route ------------------------------------------------------------------------------

interface Req { method: string; path: string; body?: unknown; headers?: Record<string, string> }
type Kind =
  | 'admin' // admin token only
  | 'key' // tenant key only
  | 'tenant' // tenant key or user (no owner check)
  | 'owner' // the owner (user) or the tenant key
  | 'member' // a member of the group or the tenant key
  | 'organizer' // an organizer of the group or the tenant key
  | 'dev' // development mode only: refused (403) to every credential on this node, which runs with ADMIN_TOKEN
  | 'public';
interface RouteCase { kind: Kind; list?: boolean; req: (i: Ids) => Req }

const route: Record<string, RouteCase> = {
  'POST /v1/tenants': { kind: 'admin', req: () => ({ method: 'POST', path: '/v1/tenants', body: { name: 'Sweep' } }) },
  'POST /v1/tokens': { kind: 'key', req: () => ({ method: 'POST', path: '/v1/tokens', body: { userId: 'x', name: 'x', role: 'organizer' } }) },
  'POST /v1/resources': { kind: 'key', req: (i) => ({ method: 'POST', path: '/v1/resources', body: { name: 'Child', parentId: i.resource } }) },
  'GET /v1/resources': { kind: 'tenant', list: true, req: () => ({ method: 'GET', path: '/v1/resources?limit=200&includeArchived=true' }) },
  'GET /v1/resources/:id': { kind: 'tenant', req: (i) => ({ method: 'GET', path: `/v1/resources/${i.resource}` }) },
  'PATCH /v1/resources/:id': { kind: 'key', req: (i) => ({ method: 'PATCH', path: `/v1/resources/${i.resource}`, body: { name: 'pwned' } }) },
  'DELETE /v1/resources/:id': { kind: 'key', req: (i) => ({ method: 'DELETE', path: `/v1/resources/${i.resource}` }) },
  'PUT /v1/resources/:id/schedule': { kind: 'key', req: (i) => ({ method: 'PUT', path: `/v1/resources/${i.resource}/schedule`, body: { weekly: [] } }) },
  'GET /v1/resources/:id/schedule': { kind: 'tenant', req: (i) => ({ method: 'GET', path: `/v1/resources/${i.resource}/schedule` }) },
  'POST /v1/resources/:id/blocks': { kind: 'key', req: (i) => ({ method: 'POST', path: `/v1/resources/${i.resource}/blocks`, body: { start: at('00:00'), end: at('23:00') } }) },
  'DELETE /v1/blocks/:id': { kind: 'key', req: (i) => ({ method: 'DELETE', path: `/v1/blocks/${i.block}` }) },
  'GET /v1/availability': { kind: 'tenant', req: (i) => ({ method: 'GET', path: `/v1/availability?resourceIds=${i.resource}&from=${at('00:00')}&to=${at('23:00')}` }) },
  'POST /v1/holds': { kind: 'tenant', req: (i) => ({ method: 'POST', path: '/v1/holds', body: { resourceIds: [i.resource], start: at('15:00'), end: at('16:00') } }) },
  'GET /v1/holds/:id': { kind: 'owner', req: (i) => ({ method: 'GET', path: `/v1/holds/${i.hold}` }) },
  'POST /v1/holds/:id/extend': { kind: 'owner', req: (i) => ({ method: 'POST', path: `/v1/holds/${i.hold}/extend`, body: { ttlSeconds: 600 } }) },
  'DELETE /v1/holds/:id': { kind: 'owner', req: (i) => ({ method: 'DELETE', path: `/v1/holds/${i.hold}` }) },
  'POST /v1/holds/:id/confirm': { kind: 'owner', req: (i) => ({ method: 'POST', path: `/v1/holds/${i.hold}/confirm`, body: { customer } }) },
  'POST /v1/bookings': { kind: 'tenant', req: (i) => ({ method: 'POST', path: '/v1/bookings', body: { resourceIds: [i.resource], start: at('15:00'), end: at('16:00'), customer } }) },
  'GET /v1/bookings': { kind: 'owner', list: true, req: (i) => ({ method: 'GET', path: `/v1/bookings?limit=200&resourceId=${i.resource}` }) },
  'GET /v1/bookings/:id': { kind: 'owner', req: (i) => ({ method: 'GET', path: `/v1/bookings/${i.booking}` }) },
  'PATCH /v1/bookings/:id': { kind: 'owner', req: (i) => ({ method: 'PATCH', path: `/v1/bookings/${i.booking}`, body: { metadata: { pwned: true } }, headers: { 'If-Match': '"1"' } }) },
  'POST /v1/bookings/:id/cancel': { kind: 'owner', req: (i) => ({ method: 'POST', path: `/v1/bookings/${i.booking}/cancel`, body: { reason: 'pwned' } }) },
  'GET /v1/events': { kind: 'key', list: true, req: () => ({ method: 'GET', path: '/v1/events?after=0&limit=1000' }) },
  'POST /v1/group-bookings': { kind: 'tenant', req: (i) => ({ method: 'POST', path: '/v1/group-bookings', body: { title: 'Mine', resourceIds: [i.resource] } }) },
  'GET /v1/group-bookings/:id': { kind: 'member', req: (i) => ({ method: 'GET', path: `/v1/group-bookings/${i.group}` }) },
  'POST /v1/group-bookings/:id/members': { kind: 'organizer', req: (i) => ({ method: 'POST', path: `/v1/group-bookings/${i.group}/members`, body: { userId: 'mallory', role: 'organizer' } }) },
  'DELETE /v1/group-bookings/:id/members/:userId': { kind: 'organizer', req: (i) => ({ method: 'DELETE', path: `/v1/group-bookings/${i.group}/members/alice` }) },
  'POST /v1/group-bookings/:id/hold': { kind: 'organizer', req: (i) => ({ method: 'POST', path: `/v1/group-bookings/${i.group}/hold`, body: {} }) },
  'POST /v1/group-bookings/:id/confirm': { kind: 'organizer', req: (i) => ({ method: 'POST', path: `/v1/group-bookings/${i.group}/confirm`, body: {} }) },
  'POST /v1/group-bookings/:id/cancel': { kind: 'organizer', req: (i) => ({ method: 'POST', path: `/v1/group-bookings/${i.group}/cancel`, body: { reason: 'pwned' } }) },
  'POST /v1/api-keys': { kind: 'key', req: () => ({ method: 'POST', path: '/v1/api-keys', body: { name: 'mine' } }) },
  'GET /v1/api-keys': { kind: 'key', list: true, req: () => ({ method: 'GET', path: '/v1/api-keys?limit=200' }) },
  'POST /v1/api-keys/:id/rotate': { kind: 'key', req: (i) => ({ method: 'POST', path: `/v1/api-keys/${i.apiKey}/rotate`, body: { overlapSeconds: 0 } }) },
  'DELETE /v1/api-keys/:id': { kind: 'key', req: (i) => ({ method: 'DELETE', path: `/v1/api-keys/${i.apiKey}` }) },
  'DELETE /v1/tokens/:id': { kind: 'key', req: (i) => ({ method: 'DELETE', path: `/v1/tokens/${i.token}` }) },
  'DELETE /v1/users/:userId/tokens': { kind: 'key', req: () => ({ method: 'DELETE', path: '/v1/users/carol/tokens' }) },
  'POST /v1/webhooks': { kind: 'key', req: () => ({ method: 'POST', path: '/v1/webhooks', body: { url: 'https://93.184.215.14/mine' } }) },
  'GET /v1/webhooks': { kind: 'key', list: true, req: () => ({ method: 'GET', path: '/v1/webhooks?limit=200' }) },
  'GET /v1/webhooks/:id': { kind: 'key', req: (i) => ({ method: 'GET', path: `/v1/webhooks/${i.webhook}` }) },
  'PATCH /v1/webhooks/:id': { kind: 'key', req: (i) => ({ method: 'PATCH', path: `/v1/webhooks/${i.webhook}`, body: { description: 'pwned', enabled: false } }) },
  'DELETE /v1/webhooks/:id': { kind: 'key', req: (i) => ({ method: 'DELETE', path: `/v1/webhooks/${i.webhook}` }) },
  'POST /v1/webhooks/:id/rotate-secret': { kind: 'key', req: (i) => ({ method: 'POST', path: `/v1/webhooks/${i.webhook}/rotate-secret`, body: { overlapSeconds: 0 } }) },
  'GET /v1/webhooks/:id/deliveries': { kind: 'key', req: (i) => ({ method: 'GET', path: `/v1/webhooks/${i.webhook}/deliveries` }) },
  'GET /v1/webhooks/:id/deliveries/:deliveryId': { kind: 'key', req: (i) => ({ method: 'GET', path: `/v1/webhooks/${i.webhook}/deliveries/${i.delivery}` }) },
  'POST /v1/webhooks/:id/deliveries/:deliveryId/redeliver': { kind: 'key', req: (i) => ({ method: 'POST', path: `/v1/webhooks/${i.webhook}/deliveries/${i.delivery}/redeliver` }) },
  'GET /v1/resources/:id/calendar.ics': { kind: 'key', req: (i) => ({ method: 'GET', path: `/v1/resources/${i.resource}/calendar.ics` }) },
  // A user's own feed (bob's, for B): answers with the caller's tenant's bookings only.
  'GET /v1/users/:userId/calendar.ics': { kind: 'tenant', list: true, req: () => ({ method: 'GET', path: '/v1/users/bob/calendar.ics' }) },
  'POST /v1/calendar-feeds': { kind: 'key', req: (i) => ({ method: 'POST', path: '/v1/calendar-feeds', body: { resourceId: i.resource } }) },
  'GET /v1/calendar-feeds': { kind: 'tenant', list: true, req: () => ({ method: 'GET', path: '/v1/calendar-feeds?limit=200' }) },
  'DELETE /v1/calendar-feeds/:id': { kind: 'tenant', req: (i) => ({ method: 'DELETE', path: `/v1/calendar-feeds/${i.calendarFeed}` }) },
  'GET /v1/dev/users': { kind: 'dev', req: () => ({ method: 'GET', path: '/v1/dev/users' }) },
  'POST /v1/dev/tokens': { kind: 'dev', req: () => ({ method: 'POST', path: '/v1/dev/tokens', body: { userId: 'alice' } }) },
  'GET /healthz': { kind: 'public', req: () => ({ method: 'GET', path: '/healthz' }) },
  'GET /readyz': { kind: 'public', req: () => ({ method: 'GET', path: '/readyz' }) },
  'GET /metrics': { kind: 'public', req: () => ({ method: 'GET', path: '/metrics' }) },
  'GET /openapi.json': { kind: 'public', req: () => ({ method: 'GET', path: '/openapi.json' }) },
  'GET /docs': { kind: 'public', req: () => ({ method: 'GET', path: '/docs' }) },
  'GET /docs/assets/:file': { kind: 'public', req: () => ({ method: 'GET', path: '/docs/assets/swagger-ui.css' }) },
  // The browser demo's page and its built files (no credential, no data: the app signs in through the API).
  'GET /': { kind: 'public', req: () => ({ method: 'GET', path: '/' }) },
  'GET /assets/:file': { kind: 'public', req: () => ({ method: 'GET', path: '/assets/none.js' }) },
};
const v1 = Object.entries(route).filter(([name]) => name.includes(' /v1/'));
const send = (call: Call, r: Req) => call(r.method, r.path, r.body, r.headers);
const randomIds = (): Ids => ({
  resource: randomUUID(), hold: randomUUID(), booking: randomUUID(), block: randomUUID(), group: randomUUID(), apiKey: randomUUID(), token: randomUUID(),
  webhook: randomUUID(), delivery: randomUUID(), calendarFeed: randomUUID(),
});

/** A refusal: 401/403/404 problem+json naming no id of A beyond those the request named. */
function expectRefused(r: Reply, req: Req, statuses: number[], where: string) {
  const ctx = `${where}: ${r.status} ${r.text.slice(0, 300)}`;
  expect(statuses, ctx).toContain(r.status);
  expect(r.headers.get('Content-Type'), ctx).toMatch(/^application\/problem\+json/);
  expect(r.body.status, ctx).toBe(r.status);
  let rest = r.text;
  for (const id of allA()) if (req.path.includes(id) || JSON.stringify(req.body ?? '').includes(id)) rest = rest.split(id).join('<named>');
  for (const id of allA()) expect(rest, ctx).not.toContain(id);
}

describe('every route', () => {
  it('covers every route the app serves', () => {
    const declared = declaredRoutes(t.node.app).map((r) => `${r.method} ${r.path}`);
    expect(declared.length).toBeGreaterThanOrEqual(30);
    for (const r of declared) expect(Object.keys(route), `no sweep case for ${r}`).toContain(r);
  });

  it("another tenant's key and user reach nothing of A", async () => {
    const before = await snapshot(A.id);
    for (const [name, c] of v1) {
      for (const [who, call] of [['B key', B.api], ['B user', bob.call]] as const) {
        const req = c.req(a);
        const r = await send(call, req);
        const where = `${who} ${name}`;
        if (c.kind === 'admin' || c.kind === 'dev' || (c.kind === 'key' && who === 'B user')) {
          expectRefused(r, req, [403], where);
        } else if (c.list) {
          // Lists answer with B's own data only (bob's events are refused).
          if (name === 'GET /v1/events' && who === 'B user') expectRefused(r, req, [403], where);
          else {
            expect(r.status, `${where}: ${r.text.slice(0, 300)}`).toBe(200);
            for (const id of allA()) expect(r.text, where).not.toContain(id);
          }
        } else if (name === 'POST /v1/tokens') {
          // Signs for B's own tenant, whatever it asks.
          expect(r.status, where).toBe(201);
          const claims = JSON.parse(Buffer.from(r.body.token.split('.')[1], 'base64url').toString());
          expect(claims.tid, where).toBe(B.id);
          secrets.add(r.body.token);
        } else if (name === 'POST /v1/api-keys' && who === 'B key') {
          // Makes a key of B's own tenant.
          expect(r.status, where).toBe(201);
          secrets.add(r.body.apiKey);
          keys.set(r.body.apiKey, 1);
          expect((await client(t.url, r.body.apiKey)('GET', '/v1/api-keys?limit=200')).text).toContain(r.body.id);
        } else if (name === 'POST /v1/webhooks' && who === 'B key') {
          // Makes an endpoint of B's own tenant.
          expect(r.status, where).toBe(201);
          secrets.add(r.body.secret);
          expect((await B.api('GET', '/v1/webhooks?limit=200')).text).toContain(r.body.id);
        } else if (name === 'DELETE /v1/users/:userId/tokens' && who === 'B key') {
          // B's own users named carol (it has none): nothing of A's carol is touched (the snapshot checks).
          expect(r.status, where).toBe(200);
          expect(r.body, where).toEqual({ userId: 'carol', revoked: [] });
        } else if (name === 'POST /v1/group-bookings') {
          // Group drafts take resource ids unchecked (holding the group checks them): B's group, nothing of A's.
          expectRefusedOrOwn(r, req, where);
        } else {
          expectRefused(r, req, [403, 404], where);
          // No existence oracle: ids nobody has get the same answer.
          const fake = randomIds();
          const other = await send(call, c.req(fake));
          expect(other.status, `${where} vs random ids`).toBe(r.status);
          expect(other.body.code, `${where} vs random ids`).toBe(r.body.code);
        }
      }
    }
    expect(await snapshot(A.id)).toEqual(before);
  });

  function expectRefusedOrOwn(r: Reply, req: Req, where: string) {
    if (r.status >= 400) return expectRefused(r, req, [403, 404], where);
    expect(r.status, where).toBe(201);
    const rest = r.text.split(a.resource).join('<named>');
    for (const id of allA()) expect(rest, where).not.toContain(id);
  }

  it('an expired, forged or malformed user token is 401 on every /v1 route', async () => {
    const now = Math.floor(Date.now() / 1000);
    const forged = {
      expired: await forgeToken({ tid: A.id, sub: 'alice', role: 'organizer', exp: now - 5 }),
      'expired long ago': await forgeToken({ tid: A.id, sub: 'alice', exp: now - 86_400 * 365 }),
      'wrong secret': await forgeToken({ tid: A.id, sub: 'alice', exp: now + 600 }, 'another-secret-0123456789-0123456789-0123'),
      'wrong issuer': await forgeToken({ tid: A.id, sub: 'alice', exp: now + 600, iss: 'someone-else' }),
      'alg none': `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${Buffer.from(JSON.stringify({ tid: A.id, sub: 'alice', iss: 'slotwise', exp: now + 600 })).toString('base64url')}.`,
      'tenant swapped': (() => {
        const [h, p, s] = alice.token.split('.') as [string, string, string];
        const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
        return `${h}.${Buffer.from(JSON.stringify({ ...claims, tid: B.id })).toString('base64url')}.${s}`;
      })(),
      'revoked-looking key': `sw_${'A'.repeat(43)}`,
      // Signed with the right secret, but a token must carry exp (it would never expire) and jti (it could never be revoked).
      'without exp': await forgeToken({ tid: A.id, sub: 'alice', exp: null, jti: alice.tokenId }),
      'without jti': await forgeToken({ tid: A.id, sub: 'alice', exp: now + 600 }),
    };
    for (const token of Object.values(forged)) secrets.add(token);
    for (const [what, token] of Object.entries(forged)) {
      const call = recordingClient(t.url, token, replies);
      for (const [name, c] of v1) {
        const req = c.req(a);
        const r = await send(call, req);
        expectRefused(r, req, [401], `${what} ${name}`);
        expect(r.body.code).toBe('unauthorized');
        expect(r.headers.get('WWW-Authenticate'), `${what} ${name}`).toBe('Bearer');
      }
    }
  });

  it('a participant (with any token role) or a non-member cannot act as an organizer', async () => {
    const before = await snapshot(A.id);
    const group = v1.filter(([, c]) => c.kind === 'member' || c.kind === 'organizer');
    expect(group.length).toBe(6);
    for (const [name, c] of group) {
      for (const [who, user] of [['participant', pat], ['participant with an organizer token', patOrganizerToken]] as const) {
        const req = c.req(a);
        const r = await send(user.call, req);
        if (c.kind === 'member') expect(r.status, `${who} ${name}: ${r.text}`).toBe(200);
        else {
          expectRefused(r, req, [403], `${who} ${name}`);
          expect(r.body.code).toBe('forbidden');
        }
      }
      const req = c.req(a);
      expectRefused(await send(carol.call, req), req, [404], `non-member ${name}`);
    }
    // A participant may not even remove themselves through the organizer route, nor add an organizer.
    expectRefused(await pat.call('DELETE', `/v1/group-bookings/${a.group}/members/pat`), { method: 'DELETE', path: `/v1/group-bookings/${a.group}/members/pat` }, [403], 'self-removal');
    expect(await snapshot(A.id)).toEqual(before);
    const g = await alice.call('GET', `/v1/group-bookings/${a.group}`);
    expect(g.body.members.map((m: { userId: string; role: string }) => `${m.userId}:${m.role}`).sort()).toEqual(['alice:organizer', 'pat:participant']);
    expect(g.body.status).toBe('draft');
  });

  it('another user of the same tenant gets 404 for what alice owns', async () => {
    for (const [name, c] of v1.filter(([, c]) => c.kind === 'owner' && !c.list)) {
      const req = c.req(a);
      expectRefused(await send(carol.call, req), req, [404], `carol ${name}`);
    }
    const list = await carol.call('GET', '/v1/bookings?limit=200');
    expect(list.body.items).toEqual([]);
  });

  it('the admin token is refused where a tenant credential is needed, and tenant credentials on admin routes', async () => {
    for (const [name, c] of v1) {
      const req = c.req(a);
      if (c.kind !== 'admin') expectRefused(await send(admin(), req), req, [403], `admin ${name}`);
      else for (const call of [A.api, alice.call]) expectRefused(await send(call, req), req, [403], `tenant ${name}`);
    }
  });

  it('/metrics, /openapi.json and /docs name no tenant, key or id', async () => {
    for (const path of ['/metrics', '/openapi.json', '/docs', '/healthz', '/readyz']) {
      const r = await client(t.url)('GET', path);
      expect(r.status, path).toBe(200);
      for (const s of [...allA(), ...secrets]) expect(r.text, path).not.toContain(s);
    }
  });
});

// ---- Socket.IO rooms ---------------------------------------------------------------------------

function connect(token: string): Promise<Socket> {
  const s = ioClient(t.url, { auth: { token }, transports: ['websocket'], reconnection: false, forceNew: true });
  return new Promise((resolve, reject) => {
    s.on('connect', () => resolve(s));
    s.on('connect_error', (err) => {
      s.close();
      reject(err);
    });
  });
}

describe('Socket.IO rooms', () => {
  const sockets: Socket[] = [];
  afterAll(() => sockets.forEach((s) => s.close()));

  it("another tenant subscribing to A's resources gets an error and no events; commands on A's holds are 404", async () => {
    const watcher = await connect(alice.token);
    const intruders = [await connect(B.key), await connect(bob.token)];
    sockets.push(watcher, ...intruders);
    const range = { from: at('00:00'), to: at('23:59') };
    expect((await watcher.timeout(5000).emitWithAck('subscribe', { resourceIds: [a.resource], ...range })).ok).toBe(true);
    const heard: string[][] = intruders.map(() => []);
    intruders.forEach((s, i) => s.onAny((event: string) => heard[i]!.push(event)));

    for (const s of intruders) {
      for (const ids of [[a.resource], [B.resource, a.resource]]) {
        const ack = await s.timeout(5000).emitWithAck('subscribe', { resourceIds: ids, ...range });
        expect(ack, JSON.stringify(ack)).toMatchObject({ ok: false, error: { status: 404, code: 'not-found' } });
      }
      for (const [event, payload] of [
        ['hold.create', { resourceIds: [a.resource], start: at('17:00'), end: at('18:00') }],
        ['hold.extend', { holdId: a.hold, ttlSeconds: 600 }],
        ['hold.release', { holdId: a.hold }],
        ['hold.confirm', { holdId: a.hold, customer }],
      ] as const) {
        const ack = await s.timeout(5000).emitWithAck(event, payload);
        expect(ack, `${event} ${JSON.stringify(ack)}`).toMatchObject({ ok: false, error: { status: 404 } });
        for (const id of allA()) if (!JSON.stringify(payload).includes(id)) expect(JSON.stringify(ack)).not.toContain(id);
      }
      const resync = await s.timeout(5000).emitWithAck('resync', { afterSeq: 0 });
      expect(resync).toEqual({ ok: true, events: [] });
    }

    // A's activity reaches A's watcher (the positive control) and no intruder.
    const got: string[] = [];
    watcher.onAny((event: string) => got.push(event));
    const hold = await A.api('POST', '/v1/holds', { resourceIds: [a.resource], start: at('19:00'), end: at('20:00'), ttlSeconds: 60 });
    expect(hold.status, hold.text).toBe(201);
    const booking = await A.api('POST', '/v1/bookings', { resourceIds: [a.resource], start: at('20:00'), end: at('21:00'), customer });
    expect(booking.status, booking.text).toBe(201);
    expect((await A.api('DELETE', `/v1/holds/${hold.body.id}`)).status).toBe(200);
    expect((await A.api('POST', `/v1/bookings/${booking.body.id}/cancel`, {})).status).toBe(200);
    // Live delivery goes through the feed decoder of the run's shared database, which nodes of every test file take
    // over from one another as they stop: a generous wait (what is checked is what arrives, not how fast).
    await waitFor(() => got.includes('booking.cancelled'), 20_000, "the watcher's events");
    await new Promise((r) => setTimeout(r, 200));
    expect(heard).toEqual([[], []]);
    // The hold was untouched by the intruders' commands.
    expect((await A.api('GET', `/v1/holds/${a.hold}`)).body).toMatchObject({ status: 'held' });
  });

  it('refuses an expired, forged, admin or absent credential at the handshake', async () => {
    const now = Math.floor(Date.now() / 1000);
    for (const token of [
      await forgeToken({ tid: A.id, sub: 'alice', exp: now - 5 }),
      await forgeToken({ tid: A.id, sub: 'alice', exp: now + 600 }, 'another-secret-0123456789-0123456789-0123'),
      ADMIN_TOKEN,
      `${A.key}x`,
      '',
    ]) {
      await expect(connect(token)).rejects.toThrow('unauthorized');
    }
  });
});

// ---- Yjs documents -------------------------------------------------------------------------------

describe('Yjs documents', () => {
  const ws = () => t.url.replace('http', 'ws');
  const closeCode = async (doc: string, token?: string) => {
    const s = await rawSocket(`${ws()}/yjs/${doc}${token === undefined ? '' : `?token=${encodeURIComponent(token)}`}`);
    return (await s.closed).code;
  };

  it("another tenant's credentials see no document; non-members are 4403; bad credentials 4401", async () => {
    const doc = `group-booking:${a.group}`;
    const now = Math.floor(Date.now() / 1000);
    expect(await closeCode(doc, B.key)).toBe(4404);
    expect(await closeCode(doc, bob.token)).toBe(4404);
    // The same answer as a document that does not exist: no existence oracle.
    expect(await closeCode(`group-booking:${randomUUID()}`, B.key)).toBe(4404);
    expect(await closeCode(doc, carol.token)).toBe(4403);
    expect(await closeCode(doc, await forgeToken({ tid: A.id, sub: 'alice', exp: now - 5 }))).toBe(4401);
    expect(await closeCode(doc, await forgeToken({ tid: A.id, sub: 'alice', exp: now + 600 }, 'another-secret-0123456789-0123456789-0123'))).toBe(4401);
    expect(await closeCode(doc, ADMIN_TOKEN)).toBe(4401);
    expect(await closeCode(doc)).toBe(4401);
    expect(await closeCode(doc, '')).toBe(4401);
    for (const name of [`group-booking:${a.group.toUpperCase()}x`, `other:${a.group}`, encodeURIComponent(`group-booking:${a.group}/../x`), "group-booking:' OR 1=1 --", '%E0%A4%A']) {
      expect(await closeCode(name, A.key), name).toBe(4404);
    }
  });

  it('a participant may not write the draft or the server map, only their own entry and the notes', async () => {
    const doc = new Y.Doc();
    const provider = new WebsocketProvider(`${ws()}/yjs`, `group-booking:${a.group}`, doc, {
      params: { token: pat.token },
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
    });
    try {
      await waitFor(() => provider.synced, 5000, 'participant synced');
      // Allowed first: after a refused update the client's later ones depend on it and are refused too (until it reloads).
      const mine = new Y.Map();
      mine.set('name', "Pat'; DROP TABLE holds; --");
      doc.getMap('participants').set('pat', mine);
      doc.getText('notes').insert(0, 'pat was here');
      const read = async () => (await A.api('GET', `/v1/group-bookings/${a.group}`)).body;
      await waitFor(async () => (await read()).document.notes.includes('pat was here'), 5000, 'the notes');
      expect((await read()).document.participants.pat).toEqual({ name: "Pat'; DROP TABLE holds; --" });
      doc.getMap('draft').set('title', 'hijacked');
      doc.getMap('server').set('status', 'confirmed');
      const other = new Y.Map();
      other.set('name', 'not pat');
      doc.getMap('participants').set('alice', other);
      await new Promise((r) => setTimeout(r, 500));
      const g = await read();
      expect(g.document.draft.title).toBe('Offsite');
      expect(g.document.server.status).toBe('draft');
      expect(g.document.participants.alice).toBeUndefined();
      expect(g.status).toBe('draft');
    } finally {
      provider.destroy();
      doc.destroy();
    }
  });
});

describe('text typed into a group document', () => {
  /** A group whose document the tenant key (an organizer) fills through a stock provider. */
  async function groupWith(participants: Record<string, string>, range: { start: string; end: string }) {
    const g = await A.api('POST', '/v1/group-bookings', { title: 'Doc text', resourceIds: [A.resource] });
    expect(g.status, g.text).toBe(201);
    const doc = new Y.Doc();
    const provider = new WebsocketProvider(`${t.url.replace('http', 'ws')}/yjs`, g.body.docName, doc, {
      params: { token: A.key },
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
    });
    try {
      await waitFor(() => provider.synced, 5000, 'synced');
      doc.transact(() => {
        const draft = doc.getMap('draft');
        draft.set('start', range.start);
        draft.set('end', range.end);
        draft.set('seats', 1);
        for (const [id, name] of Object.entries(participants)) {
          const m = new Y.Map();
          m.set('name', name);
          m.set('email', "o'r1=1--@example.com");
          doc.getMap('participants').set(id, m);
        }
      });
      const n = Object.keys(participants).length;
      await waitFor(async () => Object.keys((await A.api('GET', `/v1/group-bookings/${g.body.id}`)).body.document.participants).length === n, 5000, 'participants stored');
    } finally {
      provider.destroy();
      doc.destroy();
    }
    return g.body.id as string;
  }

  it('reaches the booking verbatim, or is refused with a 4xx; never a 5xx', async () => {
    const storable = INJECTIONS.filter((s) => s.length <= 200 && !s.includes('\u0000'));
    const d = futureWeekday(12);
    const id = await groupWith(Object.fromEntries(storable.map((s, i) => [`p${i}`, s])), { start: `${d}T09:00:00Z`, end: `${d}T10:00:00Z` });
    expect((await A.api('POST', `/v1/group-bookings/${id}/hold`, {})).status).toBe(200);
    const confirmed = await A.api('POST', `/v1/group-bookings/${id}/confirm`, {});
    expect(confirmed.status, confirmed.text).toBe(200);
    expect(confirmed.body.booking.attendees.map((x: { name: string }) => x.name).sort()).toEqual([...storable].sort());

    // NUL is valid in a Yjs string but not in Postgres text: the confirm is refused, as a client mistake.
    const nul = await groupWith({ p: 'nul\u0000inside' }, { start: `${d}T11:00:00Z`, end: `${d}T12:00:00Z` });
    expect((await A.api('POST', `/v1/group-bookings/${nul}/hold`, {})).status).toBe(200);
    const refused = await A.api('POST', `/v1/group-bookings/${nul}/confirm`, {});
    expect(refused.status, refused.text).toBe(400);
    expect(refused.headers.get('Content-Type')).toMatch(/^application\/problem\+json/);
    expect((await A.api('POST', `/v1/group-bookings/${nul}/cancel`, {})).status).toBe(200);
    expect(await invariantViolations(t.pool, A.id)).toEqual([]);
  });
});

// ---- injection strings in every text field --------------------------------------------------------

const INJECTIONS = [
  "' OR 1=1 --",
  "'; DROP TABLE holds; --",
  'Robert"); DROP TABLE bookings;--',
  '1; SELECT pg_sleep(10)',
  '\u0000',
  'nul\u0000inside',
  'x'.repeat(100_000),
  'Zoë 🙂 مرحبا \u202eevil\u202c ̈ 𝕊',
  '$1 %s %n {{7*7}} ${jndi:ldap://x} <script>alert(1)</script> \\ \' "',
];

describe('injection strings in every text field', () => {
  it('answers 4xx, or 2xx with the string stored verbatim; never 5xx; tables intact', async () => {
    const bBefore = await snapshot(B.id);
    const failures: string[] = [];
    /** Checks an answer: 4xx problem, or one of the 2xx given; returns whether it succeeded. */
    const ok = (r: Reply, where: string, success = [200, 201]): boolean => {
      const ctx = `${where} → ${r.status} ${r.text.slice(0, 200)}`;
      if (r.status >= 500) failures.push(ctx);
      // Refused before the app: the URL alone is over Node's 16 KiB header limit (431), or an oversized body's
      // connection was closed before its 413 arrived (0, see recordingClient).
      else if (r.status === 431 || r.status === 0) return false;
      else if (r.status >= 400) {
        if (!/^application\/problem\+json/.test(r.headers.get('Content-Type') ?? '')) failures.push(`${ctx}: not problem+json`);
      } else if (!success.includes(r.status)) failures.push(`${ctx}: unexpected`);
      return success.includes(r.status);
    };
    const same = (actual: unknown, expected: unknown, where: string) => {
      if (actual !== expected) failures.push(`${where}: stored ${JSON.stringify(actual)?.slice(0, 80)}, sent ${JSON.stringify(expected)?.slice(0, 80)}`);
    };
    const enc = encodeURIComponent;
    let slot = 0;
    const base = Date.parse(`${futureWeekday(8)}T00:00:00Z`);
    const nextRange = () => {
      const d = new Date(base + Math.floor(slot / 20) * 86_400_000).toISOString().slice(0, 10);
      const h = String(slot++ % 20).padStart(2, '0');
      return { start: `${d}T${h}:00:00Z`, end: `${d}T${String(Number(h) + 1).padStart(2, '0')}:00:00Z` };
    };

    for (const s of INJECTIONS) {
      const tag = JSON.stringify(s.slice(0, 30));
      const trimmed = s.trim();
      const email = "o'r1=1--@example.com";

      // Tenants (admin).
      let r = await admin()('POST', '/v1/tenants', { name: s });
      if (ok(r, `tenant name ${tag}`, [201])) {
        secrets.add(r.body.apiKey);
        keys.set(r.body.apiKey, 1);
        same(r.body.name, trimmed, `tenant name ${tag}`);
        same((await t.pool.query('SELECT name FROM tenants WHERE id = $1', [r.body.id])).rows[0].name, trimmed, `tenant row ${tag}`);
      }

      // Tokens: userId and name, then the token in use (owner_id is the userId).
      r = await A.api('POST', '/v1/tokens', { userId: s, name: s, role: 'member' });
      if (ok(r, `token ${tag}`, [201])) {
        secrets.add(r.body.token);
        const user = recordingClient(t.url, r.body.token, replies);
        const h = await user('POST', '/v1/holds', { resourceIds: [A.resource], ...nextRange(), ttlSeconds: 60 });
        if (ok(h, `hold by user ${tag}`, [201])) {
          same(h.body.ownerId, trimmed, `hold owner ${tag}`);
          ok(await user('GET', `/v1/holds/${h.body.id}`), `read own hold ${tag}`);
          const c = await user('POST', `/v1/holds/${h.body.id}/confirm`, { customer: { name: s, email }, attendees: [{ name: s }], metadata: { [s]: s } });
          if (ok(c, `confirm by user ${tag}`, [201])) {
            same(c.body.ownerId, trimmed, `booking owner ${tag}`);
            const list = await user('GET', '/v1/bookings');
            if (ok(list, `list own bookings ${tag}`)) same(list.body.items.length, 1, `own bookings ${tag}`);
          } else await user('DELETE', `/v1/holds/${h.body.id}`);
        }
      }

      // API keys: name; then revoked. Cutting off a user by id (the path).
      r = await A.api('POST', '/v1/api-keys', { name: s });
      if (ok(r, `api key ${tag}`, [201])) {
        secrets.add(r.body.apiKey);
        keys.set(r.body.apiKey, 1);
        same(r.body.name, trimmed, `api key name ${tag}`);
        ok(await A.api('DELETE', `/v1/api-keys/${r.body.id}`), `revoke api key ${tag}`);
      }
      ok(await A.api('DELETE', `/v1/users/${enc(s)}/tokens`), `revoke user tokens ${tag}`);

      // Calendar feeds: a user id (body and path), a time zone, a feed token in the query.
      r = await A.api('POST', '/v1/calendar-feeds', { userId: s });
      if (ok(r, `calendar feed ${tag}`, [201])) {
        secrets.add(r.body.token);
        same(r.body.userId, trimmed, `calendar feed user ${tag}`);
        ok(await client(t.url)('GET', `${r.body.path}?token=${r.body.token}`), `calendar feed by token ${tag}`, [200]);
        ok(await A.api('DELETE', `/v1/calendar-feeds/${r.body.id}`), `revoke calendar feed ${tag}`, [204]);
      }
      ok(await A.api('GET', `/v1/users/${enc(s)}/calendar.ics`), `user calendar ${tag}`, [200]);
      ok(await A.api('POST', '/v1/calendar-feeds', { userId: 'u', timezone: s }), `calendar feed timezone ${tag}`, []);
      ok(await client(t.url)('GET', `/v1/resources/${A.resource}/calendar.ics?token=${enc(s)}`), `calendar feed token ${tag}`, []);

      // Webhooks: description (kept verbatim), URL and event types (refused unless a URL / a type).
      r = await A.api('POST', '/v1/webhooks', { url: 'https://93.184.215.14/x', description: s });
      if (ok(r, `webhook description ${tag}`, [201])) {
        secrets.add(r.body.secret);
        same((await A.api('GET', `/v1/webhooks/${r.body.id}`)).body.description, s, `webhook description ${tag}`);
        ok(await A.api('DELETE', `/v1/webhooks/${r.body.id}`), `delete webhook ${tag}`, [204]);
      }
      ok(await A.api('POST', '/v1/webhooks', { url: s }), `webhook url ${tag}`, []);
      ok(await A.api('POST', '/v1/webhooks', { url: `https://93.184.215.14/${enc(s)}`, eventTypes: [s] }), `webhook event type ${tag}`, []);

      // Resources: name, kind, metadata key and value; PATCH; read back.
      r = await A.api('POST', '/v1/resources', { name: s, kind: s, metadata: { [s]: s, nested: { value: s } } });
      if (ok(r, `resource ${tag}`, [201])) {
        const back = (await A.api('GET', `/v1/resources/${r.body.id}`)).body;
        same(back.name, trimmed, `resource name ${tag}`);
        same(back.kind, trimmed, `resource kind ${tag}`);
        same(back.metadata[s], s, `resource metadata ${tag}`);
        same(back.metadata.nested.value, s, `resource nested metadata ${tag}`);
      }
      r = await A.api('POST', '/v1/resources', { name: s });
      if (ok(r, `resource name only ${tag}`, [201])) {
        same(r.body.name, trimmed, `resource name only ${tag}`);
        const p = await A.api('PATCH', `/v1/resources/${r.body.id}`, { name: `${s}!`, metadata: { k: s } });
        if (ok(p, `patch resource ${tag}`)) {
          same(p.body.name, `${s}!`.trim(), `patched name ${tag}`);
          same(p.body.metadata.k, s, `patched metadata ${tag}`);
        }
      }
      ok(await A.api('POST', '/v1/resources', { name: 'R', timezone: s }), `timezone ${tag}`, []);

      // Blocks: reason.
      const far = futureWeekday(25);
      r = await A.api('POST', `/v1/resources/${A.resource}/blocks`, { start: `${far}T00:00:00Z`, end: `${far}T01:00:00Z`, reason: s });
      if (ok(r, `block ${tag}`, [201])) {
        same(r.body.reason, s, `block reason ${tag}`);
        same((await t.pool.query('SELECT reason FROM blocks WHERE id = $1', [r.body.id])).rows[0].reason, s, `block row ${tag}`);
        ok(await A.api('DELETE', `/v1/blocks/${r.body.id}`), `unblock ${tag}`);
      }

      // Bookings: customer, attendees, metadata; cancel reason; metadata PATCH.
      r = await A.api('POST', '/v1/bookings', { resourceIds: [A.resource], ...nextRange(), customer: { name: s, email }, attendees: [{ name: s, email }], metadata: { [s]: s } });
      if (ok(r, `booking ${tag}`, [201])) {
        const back = (await A.api('GET', `/v1/bookings/${r.body.id}`)).body;
        same(back.customer.name, trimmed, `customer name ${tag}`);
        same(back.customer.email, email, `customer email ${tag}`);
        same(back.attendees[0].name, trimmed, `attendee ${tag}`);
        same(back.metadata[s], s, `booking metadata ${tag}`);
        const p = await A.api('PATCH', `/v1/bookings/${r.body.id}`, { metadata: { note: s } }, { 'If-Match': `"${back.version}"` });
        if (ok(p, `patch booking ${tag}`)) same(p.body.metadata.note, s, `patched booking metadata ${tag}`);
        const c = await A.api('POST', `/v1/bookings/${r.body.id}/cancel`, { reason: s });
        if (ok(c, `cancel ${tag}`)) same((await A.api('GET', `/v1/bookings/${r.body.id}`)).body.cancelReason, s, `cancel reason ${tag}`);
      }
      ok(await A.api('POST', '/v1/bookings', { resourceIds: [A.resource], ...nextRange(), customer: { name: 'Ada', email: s } }), `email ${tag}`, [201]);

      // Group bookings: title, member userId (body and path), cancel reason.
      r = await A.api('POST', '/v1/group-bookings', { title: s, members: [{ userId: s, role: 'participant' }] });
      if (ok(r, `group ${tag}`, [201])) {
        const back = (await A.api('GET', `/v1/group-bookings/${r.body.id}`)).body;
        same(back.title, trimmed, `group title ${tag}`);
        same(back.document.draft.title, trimmed, `group document title ${tag}`);
        same(back.members.some((m: { userId: string }) => m.userId === trimmed), true, `group member ${tag}`);
        const del = await A.api('DELETE', `/v1/group-bookings/${r.body.id}/members/${enc(trimmed)}`);
        if (ok(del, `remove member ${tag}`)) same(del.body.members.length, 0, `member removed ${tag}`);
        ok(await A.api('POST', `/v1/group-bookings/${r.body.id}/members`, { userId: s, role: 'organizer' }), `add member ${tag}`);
        const c = await A.api('POST', `/v1/group-bookings/${r.body.id}/cancel`, { reason: s });
        if (ok(c, `group cancel ${tag}`)) same(c.body.status, 'cancelled', `group cancelled ${tag}`);
      }
      ok(await A.api('DELETE', `/v1/group-bookings/${a.group}/members/${enc(s)}`), `remove unknown member ${tag}`, []);

      // Path and query parameters.
      const q = enc(s);
      for (const path of [
        `/v1/resources/${q}`,
        `/v1/holds/${q}`,
        `/v1/bookings/${q}`,
        `/v1/group-bookings/${q}`,
        `/v1/bookings?status=${q}`,
        `/v1/bookings?cursor=${q}`,
        `/v1/bookings?resourceId=${q}`,
        `/v1/bookings?from=${q}`,
        `/v1/resources?cursor=${q}`,
        `/v1/resources?includeArchived=${q}`,
        `/v1/resources?limit=${q}`,
        `/v1/api-keys?cursor=${q}`,
        `/v1/api-keys?limit=${q}`,
        `/v1/events?after=${q}`,
        `/v1/availability?resourceIds=${q}&from=${at('00:00')}&to=${at('23:00')}`,
        `/v1/availability?resourceIds=${a.resource}&from=${q}&to=${at('23:00')}`,
        `/v1/availability?resourceIds=${a.resource}&from=${at('00:00')}&to=${at('23:00')}&mode=${q}&duration=60`,
        `/v1/availability?resourceIds=${a.resource}&from=${at('00:00')}&to=${at('23:00')}&${q}=1`,
      ]) {
        ok(await A.api('GET', path), `GET ${path.slice(0, 80)}`, []);
      }
    }

    expect(failures).toEqual([]);
    // Tables intact: every table there, B untouched, seats add up everywhere this file wrote.
    const tables = ['tenants', 'api_keys', 'user_tokens', 'settings', 'resources', 'schedules', 'blocks', 'slots', 'holds', 'hold_resources', 'bookings', 'booking_resources', 'events', 'feed_cursor', 'feed_resource_heads', 'idempotency_keys', 'group_bookings', 'group_booking_members', 'yjs_updates'];
    for (const name of tables) expect((await t.pool.query('SELECT to_regclass($1) AS t', [name])).rows[0].t, name).not.toBeNull();
    expect(await snapshot(B.id)).toEqual(bBefore);
    expect(await invariantViolations(t.pool, A.id)).toEqual([]);
    expect(await invariantViolations(t.pool, B.id)).toEqual([]);
  }, 60_000);
});

// ---- API keys --------------------------------------------------------------------------------------

describe('API keys', () => {
  it('are stored only as a SHA-256 hash', async () => {
    for (const key of [A.key, B.key]) {
      const { rows } = await t.pool.query('SELECT key_hash, prefix FROM api_keys WHERE key_hash = $1', [createHash('sha256').update(key).digest()]);
      expect(rows).toHaveLength(1);
      expect(Buffer.from(rows[0].key_hash).toString('utf8')).not.toBe(key);
      expect(rows[0].prefix.length).toBeLessThanOrEqual(7);
    }
  });

  it('an idempotent retry of POST /v1/tenants makes no second tenant and never stores or repeats the key', async () => {
    const name = `Retry ${randomUUID()}`;
    const idempotencyKey = `tenant-${randomUUID()}`;
    const first = await admin()('POST', '/v1/tenants', { name }, { 'Idempotency-Key': idempotencyKey });
    expect(first.status).toBe(201);
    secrets.add(first.body.apiKey);
    keys.set(first.body.apiKey, 1);
    const again = await admin()('POST', '/v1/tenants', { name }, { 'Idempotency-Key': idempotencyKey });
    expect(again.status).toBe(201);
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
    expect(again.body).toMatchObject({ id: first.body.id, name, apiKey: null });
    const { rows } = await t.pool.query('SELECT count(*)::int AS n FROM tenants WHERE name = $1', [name]);
    expect(rows[0].n).toBe(1);
    // The key works, and is what the first answer said.
    expect((await client(t.url, first.body.apiKey)('GET', '/v1/resources')).status).toBe(200);
  });

  it('an idempotent retry of POST /v1/api-keys or a rotation makes no second key and never stores or repeats the secret', async () => {
    const idempotencyKey = `key-${randomUUID()}`;
    const first = await A.api('POST', '/v1/api-keys', { name: 'retried' }, { 'Idempotency-Key': idempotencyKey });
    expect(first.status, first.text).toBe(201);
    secrets.add(first.body.apiKey);
    keys.set(first.body.apiKey, 1);
    const again = await A.api('POST', '/v1/api-keys', { name: 'retried' }, { 'Idempotency-Key': idempotencyKey });
    expect(again.headers.get('Idempotent-Replayed')).toBe('true');
    expect(again.body).toMatchObject({ id: first.body.id, apiKey: null });
    const rotateKey = `rotate-${randomUUID()}`;
    const rotated = await A.api('POST', `/v1/api-keys/${first.body.id}/rotate`, { overlapSeconds: 0 }, { 'Idempotency-Key': rotateKey });
    expect(rotated.status, rotated.text).toBe(201);
    secrets.add(rotated.body.apiKey);
    keys.set(rotated.body.apiKey, 1);
    const replay = await A.api('POST', `/v1/api-keys/${first.body.id}/rotate`, { overlapSeconds: 0 }, { 'Idempotency-Key': rotateKey });
    expect(replay.body).toMatchObject({ id: rotated.body.id, apiKey: null });
    const { rows } = await t.pool.query("SELECT count(*)::int AS n FROM api_keys WHERE tenant_id = $1 AND name = 'retried'", [A.id]);
    expect(rows[0].n).toBe(2);
    // The rotated-away key stopped at once (overlap 0); its replacement works.
    expect((await client(t.url, first.body.apiKey)('GET', '/v1/api-keys')).status).toBe(401);
    expect((await client(t.url, rotated.body.apiKey)('GET', '/v1/api-keys')).status).toBe(200);
  });

  it('no table holds a key, token or the admin token in plain text', async () => {
    const { rows: tables } = await t.pool.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE'`);
    const plain = [...keys.keys(), ADMIN_TOKEN];
    for (const { table_name } of tables) {
      const { rows } = await t.pool.query(`SELECT count(*)::int AS n FROM ${table_name} x WHERE EXISTS (SELECT 1 FROM unnest($1::text[]) k WHERE strpos(x::text, k) > 0)`, [plain]);
      expect(rows[0].n, `${table_name} holds a secret in plain text`).toBe(0);
    }
  });

  it('no answer but the creating one carries a key; no log line carries any secret', async () => {
    expect(replies.length).toBeGreaterThan(200);
    for (const [key, allowed] of keys) {
      const carrying = replies.filter((r) => r.text.includes(key));
      expect(carrying.length, `answers carrying ${key.slice(0, 7)}…`).toBe(allowed);
      expect(carrying[0]!.status).toBe(201);
      expect(carrying[0]!.body.apiKey).toBe(key);
    }
    expect(t.lines.length).toBeGreaterThan(0);
    const log = t.lines.join('\n');
    for (const s of secrets) expect(log.includes(s), `a log line carries ${s.slice(0, 12)}…`).toBe(false);
    // A sanity check that the capture works: the unhandled-error path and friends log JSON lines with the node id.
    expect(JSON.parse(t.lines[0]!)).toHaveProperty('node');
  });
});

// ---- headers ----------------------------------------------------------------------------------------

describe('security headers and CORS', () => {
  it('sends the secure headers on answers of every kind', async () => {
    for (const [method, path, cred] of [
      ['GET', '/healthz', undefined],
      ['GET', '/docs', undefined],
      ['GET', '/v1/resources', A.key],
      ['GET', '/v1/resources', undefined],
      ['GET', '/v1/nope', A.key],
      ['POST', '/v1/holds', A.key],
    ] as const) {
      const r = await fetch(t.url + path, { method, headers: cred ? { Authorization: `Bearer ${cred}` } : {} });
      const where = `${method} ${path} ${r.status}`;
      await checkAnswer(t.url, { method, path, status: r.status, contentType: r.headers.get('content-type'), text: await r.clone().text() });
      expect(r.headers.get('X-Content-Type-Options'), where).toBe('nosniff');
      expect(r.headers.get('X-Frame-Options'), where).toBe('SAMEORIGIN');
      expect(r.headers.get('Referrer-Policy'), where).toBe('no-referrer');
      expect(r.headers.get('Strict-Transport-Security'), where).toMatch(/max-age=\d+/);
      expect(r.headers.get('Cross-Origin-Opener-Policy'), where).toBe('same-origin');
      expect(r.headers.get('X-Permitted-Cross-Domain-Policies'), where).toBe('none');
      expect(r.headers.get('X-XSS-Protection'), where).toBe('0');
      expect(r.headers.get('X-DNS-Prefetch-Control'), where).toBe('off');
      expect(r.headers.get('X-Download-Options'), where).toBe('noopen');
      expect(r.headers.get('Origin-Agent-Cluster'), where).toBe('?1');
      // Browsers on other origins may read the API (it is CORS-enabled and takes bearer tokens, not cookies).
      expect(r.headers.get('Cross-Origin-Resource-Policy'), where).toBe('cross-origin');
      expect(r.headers.get('X-Powered-By'), where).toBeNull();
      expect(r.headers.get('Server'), where).toBeNull();
      await r.text();
    }
  });

  it('answers CORS preflights for the API headers and exposes ETag', async () => {
    const pre = await fetch(`${t.url}/v1/bookings/${a.booking}`, {
      method: 'OPTIONS',
      headers: { Origin: 'https://shop.example', 'Access-Control-Request-Method': 'PATCH', 'Access-Control-Request-Headers': 'authorization,content-type,idempotency-key,if-match' },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('Access-Control-Allow-Origin')).toBe('*');
    const allowed = (pre.headers.get('Access-Control-Allow-Headers') ?? '').toLowerCase().split(/\s*,\s*/);
    for (const h of ['authorization', 'content-type', 'idempotency-key', 'if-match', 'if-none-match']) expect(allowed).toContain(h);
    expect(pre.headers.get('Access-Control-Allow-Methods')).toMatch(/PATCH/);
    // A wildcard origin never comes with credentials (cookies are not used at all).
    expect(pre.headers.get('Access-Control-Allow-Credentials')).toBeNull();

    const get = await fetch(`${t.url}/v1/bookings/${a.booking}`, { headers: { Origin: 'https://shop.example', Authorization: `Bearer ${alice.token}` } });
    expect(get.status).toBe(200);
    await checkAnswer(t.url, { method: 'GET', path: `/v1/bookings/${a.booking}`, status: get.status, contentType: get.headers.get('content-type'), text: await get.clone().text() });
    expect(get.headers.get('Access-Control-Allow-Origin')).toBe('*');
    const exposed = (get.headers.get('Access-Control-Expose-Headers') ?? '').toLowerCase().split(/\s*,\s*/);
    for (const h of ['etag', 'location', 'idempotent-replayed']) expect(exposed).toContain(h);
    await get.text();
  });
});
