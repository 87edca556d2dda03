/**
 * Fuzzing every edge of one node:
 *
 * - REST: every route (from the app's route table) with fuzzed bodies
 *   (arbitrary JSON, raw garbage, mutated valid bodies, hand-picked nasty
 *   ones), headers (Content-Type, Authorization, Idempotency-Key, If-Match,
 *   If-None-Match), path parameters and query strings: never a 5xx, every 4xx
 *   is problem+json with a catalogue code matching the status.
 * - Socket.IO: raw engine.io/socket.io frames over a plain WebSocket
 *   (garbage, wrong packet types, bad namespaces, odd ack ids, binary,
 *   oversized): no command is answered with a 5xx problem, and a
 *   well-behaved client on the same node keeps getting its events.
 * - Yjs: raw y-websocket frames (random bytes, truncated and mutated sync
 *   messages, unknown message types, bad awareness, oversized): the
 *   connection may be closed, but the document stays valid and two stock
 *   providers keep syncing.
 *
 * Afterwards the node is healthy, the seat invariant holds and nothing was
 * logged at error level.
 */
import fc from 'fast-check';
import * as encoding from 'lib0/encoding';
import { io as ioClient, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { errorCatalogue } from '../../shared/errors';
import { validateDraft } from '../../shared/group-doc';
import { checkAnswer } from '../helpers/contract';
import { ADMIN_TOKEN, client, futureWeekday, invariantViolations, isolatedDatabase, newTenant, waitFor, type Call } from '../helpers/node';
import { declaredRoutes, forgeToken, poll, rawSocket, startLoggedNode, type LoggedNode, type RawSocket } from '../security/helpers';

let t: LoggedNode;
let tenant: Awaited<ReturnType<typeof newTenant>>;
let organizer: { token: string; call: Call };
let member: { token: string; call: Call };
let expired: string;
let day: string;
// `live` and `yjsGroup` are never named in fuzzed requests: the live sections rely on them staying as they are.
const ids = { resource: '', hold: '', booking: '', block: '', group: '', live: '', yjsGroup: '' };
const at = (hhmm: string) => `${day}T${hhmm}:00Z`;
const customer = { name: 'Ada', email: 'ada@example.com' };

/** The app's own route table, read once the node is up. */
let routes: { method: string; path: string }[] = [];

/** A valid body per route, to mutate. */
function template(method: string, route: string): unknown {
  const bodies: Record<string, unknown> = {
    'POST /v1/tenants': { name: 'Fuzz tenant' },
    'POST /v1/tokens': { userId: 'u-1', name: 'U', role: 'member', ttlSeconds: 600 },
    'POST /v1/resources': { name: 'Room', kind: 'room', capacity: 2, timezone: 'Europe/Berlin', slotMinutes: 30, rules: { minNoticeMinutes: 0 }, metadata: { floor: 1 } },
    'PATCH /v1/resources/:id': { name: 'Room 2', metadata: { floor: 2 }, rules: { bufferAfterMinutes: 0 } },
    'PUT /v1/resources/:id/schedule': { timezone: 'UTC', weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], start: '00:00', end: '24:00' }], overrides: [{ date: day, intervals: [{ start: '00:00', end: '24:00' }] }] },
    'POST /v1/resources/:id/blocks': { start: at('20:00'), end: at('21:00'), reason: 'cleaning' },
    'POST /v1/holds': { resourceIds: [ids.resource], start: at('12:00'), end: at('13:00'), seats: 1, ttlSeconds: 60 },
    'POST /v1/holds/:id/extend': { ttlSeconds: 120 },
    'POST /v1/holds/:id/confirm': { customer, attendees: [{ name: 'Bo', email: 'bo@example.com' }], metadata: { source: 'fuzz' } },
    'POST /v1/bookings': { resourceIds: [ids.resource], start: at('14:00'), end: at('15:00'), seats: 1, customer, metadata: { a: [1, 2] } },
    'PATCH /v1/bookings/:id': { metadata: { moved: true } },
    'POST /v1/bookings/:id/cancel': { reason: 'fuzz' },
    'POST /v1/group-bookings': { title: 'Offsite', resourceIds: [ids.resource], members: [{ userId: 'm-1', role: 'participant' }] },
    'POST /v1/group-bookings/:id/members': { userId: 'm-2', role: 'participant' },
    'POST /v1/group-bookings/:id/hold': { ttlSeconds: 60 },
    'POST /v1/group-bookings/:id/confirm': { customer, metadata: { a: 1 } },
    'POST /v1/group-bookings/:id/cancel': { reason: 'fuzz' },
    'POST /v1/dev/tokens': { userId: 'alice' },
  };
  return bodies[`${method} ${route}`] ?? {};
}

/** The real id for a path parameter of a route. */
function realParam(route: string, name: string): string {
  if (name === 'userId') return 'm-1';
  if (name === 'file') return 'swagger-ui.css';
  if (route.startsWith('/v1/resources')) return ids.resource;
  if (route.startsWith('/v1/holds')) return ids.hold;
  if (route.startsWith('/v1/bookings')) return ids.booking;
  if (route.startsWith('/v1/blocks')) return ids.block;
  if (route.startsWith('/v1/group-bookings')) return ids.group;
  return 'x';
}

/** Checks one answer: never 5xx; a 4xx is a problem with a catalogue code for its status. */
function expectSane(status: number, type: string | null, text: string, ctx: string) {
  expect(status, `${ctx}: ${text.slice(0, 400)}`).toBeLessThan(500);
  if (status < 400) return;
  expect(type, `${ctx}: content type of ${status}`).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(text);
  expect(body.status, ctx).toBe(status);
  expect(Object.keys(errorCatalogue), ctx).toContain(body.code);
  expect(errorCatalogue[body.code as keyof typeof errorCatalogue].status, ctx).toBe(status);
  for (const k of ['type', 'title', 'detail']) expect(typeof body[k], `${ctx}: ${k}`).toBe('string');
}

interface FuzzRequest {
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

async function send(r: FuzzRequest): Promise<{ status: number; type: string | null; text: string } | null> {
  let res: Response;
  try {
    res = await fetch(t.url + r.path, { method: r.method, headers: r.headers, body: r.body });
  } catch (err) {
    // fetch refuses some header values before sending; that request never reached the server.
    if (err instanceof TypeError && !/fetch failed/.test(err.message)) return null;
    throw err;
  }
  const answer = { status: res.status, type: res.headers.get('Content-Type'), text: await res.text() };
  await checkAnswer(t.url, { method: r.method, path: r.path, status: answer.status, contentType: answer.type, text: answer.text });
  return answer;
}

let db: Awaited<ReturnType<typeof isolatedDatabase>> | null = null;

beforeAll(async () => {
  // A database of its own: this node runs without Redis, so it must be the one that decodes its events for
  // its live clients (on the shared database another file's node may hold the feed).
  db = await isolatedDatabase();
  // A short horizon: fuzzed schedule and resource changes regenerate every slot.
  t = await startLoggedNode({ SLOT_HORIZON_DAYS: '14', DATABASE_URL: db.url });
  routes = declaredRoutes(t.node.app);
  day = futureWeekday(5);
  tenant = await newTenant(t, 'Fuzz');
  const room = await tenant.newResource({ capacity: 5 });
  ids.resource = room.id;
  ids.live = (await tenant.newResource({ capacity: 5 })).id;
  const tokenOf = async (userId: string, role: string) => (await tenant.api('POST', '/v1/tokens', { userId, name: userId, role })).body.token as string;
  const orgToken = await tokenOf('org', 'organizer');
  const memberToken = await tokenOf('m-1', 'member');
  organizer = { token: orgToken, call: client(t.url, orgToken) };
  member = { token: memberToken, call: client(t.url, memberToken) };
  expired = await forgeToken({ tid: tenant.id, sub: 'org', role: 'organizer', exp: Math.floor(Date.now() / 1000) - 60 });
  ids.hold = (await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], start: at('09:00'), end: at('10:00'), ttlSeconds: 900 })).body.id;
  ids.booking = (await tenant.api('POST', '/v1/bookings', { resourceIds: [room.id], start: at('10:00'), end: at('11:00'), customer })).body.id;
  ids.block = (await tenant.api('POST', `/v1/resources/${room.id}/blocks`, { start: at('22:00'), end: at('23:00') })).body.id;
  const group = await organizer.call('POST', '/v1/group-bookings', { title: 'Fuzz group', resourceIds: [room.id], members: [{ userId: 'm-1', role: 'participant' }] });
  ids.group = group.body.id;
  const yjsGroup = await organizer.call('POST', '/v1/group-bookings', { title: 'Yjs fuzz', resourceIds: [ids.live], members: [{ userId: 'm-1', role: 'participant' }] });
  ids.yjsGroup = yjsGroup.body.id;
  for (const v of Object.values(ids)) expect(v).toMatch(/^[0-9a-f-]{36}$/);
});
afterAll(async () => {
  await t?.stop();
  await db?.drop();
});

// ---- REST ------------------------------------------------------------------------------------

/** Header values fetch can send: visible Latin-1 (obs-text included) and spaces. */
const headerText = (max: number) => fc.string({ unit: fc.integer({ min: 0x20, max: 0xff }).map((c) => String.fromCharCode(c === 0x7f ? 0x7e : c)), maxLength: max });
const garbage = fc.oneof(
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.constantFrom('', ' ', '..', '%', '%zz', '%00', '%C0%AF', '%ED%A0%80', "' OR 1=1 --", '__proto__', 'constructor', 'null', '-1', '1e999', '0x10', 'NaN', '[]', '{}', 'x'.repeat(3000)),
  fc.uuid(),
);
const enc = (s: string) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, '?'));

function credentials(): fc.Arbitrary<string | undefined> {
  return fc.oneof(
    { weight: 6, arbitrary: fc.constant(`Bearer ${tenant.key}`) },
    { weight: 2, arbitrary: fc.constant(`Bearer ${organizer.token}`) },
    { weight: 1, arbitrary: fc.constant(`Bearer ${member.token}`) },
    { weight: 1, arbitrary: fc.constant(`Bearer ${ADMIN_TOKEN}`) },
    { weight: 1, arbitrary: fc.constant(`Bearer ${expired}`) },
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 2, arbitrary: headerText(300) },
    { weight: 1, arbitrary: headerText(200).map((s) => `Bearer ${s}`) },
    { weight: 1, arbitrary: fc.constantFrom('Bearer', 'Bearer ', 'Basic YWRtaW46YWRtaW4=', `bearer ${tenant.key}`, `Bearer  ${tenant.key} `, `Bearer ${tenant.key}x`, `Bearer sw_${'A'.repeat(43)}`, `Bearer ${ADMIN_TOKEN.slice(0, -1)}`, 'Bearer a.b.c', `Bearer ${organizer.token.split('.').slice(0, 2).join('.')}.`, `Bearer eyJhbGciOiJub25lIn0.${Buffer.from(JSON.stringify({ tid: 'x', sub: 'y' })).toString('base64url')}.`) },
  );
}

/** A body for a route: valid, mutated, arbitrary JSON, raw text or absent. */
function bodyFor(method: string, route: string): fc.Arbitrary<string | undefined> {
  const valid = template(method, route);
  const json = fc.jsonValue({ maxDepth: 4, stringUnit: 'binary' });
  const mutated = fc
    .tuple(fc.constantFrom('set', 'delete', 'unknown', 'wrap'), fc.nat(), json, fc.string({ maxLength: 12 }))
    .map(([op, n, value, key]) => {
      const copy = structuredClone(valid) as Record<string, unknown>;
      // Walk to a random object inside the body, then change one of its keys.
      let target: Record<string, unknown> = copy;
      for (let depth = 0; depth < 3; depth++) {
        const objs = Object.values(target).filter((v): v is Record<string, unknown> => typeof v === 'object' && v !== null);
        if (!objs.length || (n >> depth) % 2 === 0) break;
        target = objs[(n >> (depth + 2)) % objs.length]!;
      }
      const keys = Object.keys(target);
      const k = keys.length ? keys[n % keys.length]! : key;
      if (op === 'set') target[k] = value;
      else if (op === 'delete') delete target[k];
      else if (op === 'unknown') target[key || 'extra'] = value;
      else return JSON.stringify([copy]);
      return JSON.stringify(copy);
    });
  return fc.oneof(
    { weight: 1, arbitrary: fc.constant(undefined) },
    { weight: 1, arbitrary: fc.constant(JSON.stringify(valid)) },
    { weight: 6, arbitrary: mutated },
    { weight: 2, arbitrary: json.map((v) => JSON.stringify(v)) },
    { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
    { weight: 1, arbitrary: fc.constantFrom('{', '{"a":', '[', 'nul', '\ufeff{}', '{"name":"a","name":"b"}', '{"__proto__":{"admin":true}}', '{"constructor":{"prototype":{"x":1}}}', '1e999', '"\\ud800"', '{"a":"\\u0000"}') },
  );
}

function requestArb(): fc.Arbitrary<FuzzRequest> {
  return fc.constantFrom(...routes).chain((route) =>
    fc
      .record({
        method: fc.oneof({ weight: 8, arbitrary: fc.constant(route.method) }, { weight: 1, arbitrary: fc.constantFrom('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS') }),
        params: fc.array(fc.oneof({ weight: 3, arbitrary: fc.constant(null) }, { weight: 2, arbitrary: garbage }), { minLength: 3, maxLength: 3 }),
        query: fc.oneof(
          fc.constant(''),
          fc.array(fc.tuple(fc.oneof(fc.constantFrom('resourceIds', 'from', 'to', 'duration', 'seats', 'mode', 'limit', 'cursor', 'after', 'status', 'resourceId', 'includeArchived'), garbage), garbage), { maxLength: 5 }).map((kv) => kv.map(([k, v]) => `${enc(k)}=${enc(v)}`).join('&')),
          fc.constantFrom(`resourceIds=${ids.resource}&from=${at('00:00')}&to=${at('23:00')}`, 'limit=0', 'limit=201', 'after=-1', 'cursor=AAAA', 'cursor=%00', '&&&', '=', 'a[b]=c', '%', 'limit=1&limit=2', `resourceIds=${Array(150).fill(ids.resource).join(',')}&from=${at('00:00')}&to=${at('01:00')}`),
        ),
        body: bodyFor(route.method, route.path),
        auth: credentials(),
        contentType: fc.oneof(
          { weight: 6, arbitrary: fc.constant('application/json') },
          { weight: 1, arbitrary: fc.constant(undefined) },
          { weight: 2, arbitrary: fc.constantFrom('text/plain', 'application/json; charset=utf-8', 'application/problem+json', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/jsonx', 'APPLICATION/JSON', 'application/vnd.api+json', ';', '*/*') },
          { weight: 1, arbitrary: headerText(60) },
        ),
        idempotencyKey: fc.option(fc.oneof(headerText(300), fc.constantFrom('', ' ', 'k', 'x'.repeat(255), 'x'.repeat(256), 'ключ', 'a b', 'tab\there')), { freq: 3 }),
        ifMatch: fc.option(fc.oneof(headerText(30), fc.constantFrom('"1"', 'W/"1"', '1', '*', '"999999999999"', '"-1"', '""')), { freq: 3 }),
        ifNoneMatch: fc.option(headerText(30), { freq: 6 }),
      })
      .map((r) => {
        let i = 0;
        const p = route.path.replace(/:(\w+)/g, (_m, name: string) => {
          const fuzzed = r.params[i++];
          return fuzzed === null || fuzzed === undefined ? realParam(route.path, name) : enc(fuzzed);
        });
        const headers: Record<string, string> = {};
        if (r.auth !== undefined) headers.Authorization = r.auth;
        if (r.body !== undefined && r.contentType !== undefined) headers['Content-Type'] = r.contentType;
        if (r.idempotencyKey !== null) headers['Idempotency-Key'] = r.idempotencyKey;
        if (r.ifMatch !== null) headers['If-Match'] = r.ifMatch;
        if (r.ifNoneMatch !== null) headers['If-None-Match'] = r.ifNoneMatch;
        const method = r.method;
        return { method, path: r.query ? `${p}?${r.query}` : p, headers, body: method === 'GET' || method === 'OPTIONS' ? undefined : r.body };
      }),
  );
}

describe('REST fuzzing', () => {
  it("finds the routes in the app's route table", () => {
    expect(routes.length).toBeGreaterThanOrEqual(30);
    expect(routes).toContainEqual({ method: 'POST', path: '/v1/holds' });
    expect(routes).toContainEqual({ method: 'DELETE', path: '/v1/group-bookings/:id/members/:userId' });
  });

  it('answers random requests on every route without a 5xx, with problem+json for every 4xx', async () => {
    let sent = 0;
    await fc.assert(
      fc.asyncProperty(requestArb(), async (r) => {
        const res = await send(r);
        if (!res) return;
        sent++;
        expectSane(res.status, res.type, res.text, `${r.method} ${r.path} ${JSON.stringify(r.headers).slice(0, 300)} ${String(r.body).slice(0, 300)}`);
      }),
      { numRuns: 300, endOnFailure: true },
    );
    expect(sent).toBeGreaterThan(250);
  }, 60_000);

  it('answers object-prototype names and path tricks in every path parameter without a 5xx', async () => {
    const odd = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'valueOf', '..%2F..%2Fpackage.json', '%2e%2e', '.', 'swagger-ui.css%00', 'SWAGGER-UI.CSS'];
    for (const route of routes.filter((r) => r.path.includes(':'))) {
      for (const value of odd) {
        const p = route.path.replace(/:(\w+)/g, () => value);
        const res = await send({ method: route.method, path: p, headers: { Authorization: `Bearer ${tenant.key}`, 'Content-Type': 'application/json' }, body: route.method === 'GET' || route.method === 'DELETE' ? undefined : '{}' });
        expectSane(res!.status, res!.type, res!.text, `${route.method} ${p}`);
        if (route.path.startsWith('/docs/')) expect(res!.status, p).toBe(404);
      }
    }
  });

  it('answers hand-picked nasty bodies on every route with a body without a 5xx', async () => {
    const deep = (n: number) => '['.repeat(n) + ']'.repeat(n);
    const nasty = (valid: unknown): string[] => {
      const strings = (v: unknown, replace: (s: string) => string): unknown =>
        typeof v === 'string' ? replace(v) : Array.isArray(v) ? v.map((x) => strings(x, replace)) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, strings(x, replace)])) : v;
      const numbers = (v: unknown, n: number): unknown =>
        typeof v === 'number' ? n : Array.isArray(v) ? v.map((x) => numbers(x, n)) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, numbers(x, n)])) : v;
      const obj = (valid ?? {}) as Record<string, unknown>;
      return [
        JSON.stringify(strings(valid, (s) => `${s}\u0000`)),
        JSON.stringify(strings(valid, (s) => `\ud800${s}`)),
        JSON.stringify(strings(valid, (s) => `${s}\u202e\u0301🙂`)),
        JSON.stringify(numbers(valid, 1e308)),
        JSON.stringify(numbers(valid, -1)),
        JSON.stringify(numbers(valid, 0.5)),
        JSON.stringify(numbers(valid, 2 ** 53 + 2)),
        // Built as text: JSON.stringify itself overflows the stack on 5,000 levels.
        JSON.stringify({ ...obj, metadata: { deep: '<deep>' } }).replace('"<deep>"', deep(5000)),
        JSON.stringify({ ...obj, metadata: { 'a\u0000b': 1 } }),
        JSON.stringify({ ...obj, metadata: { ['k'.repeat(101)]: 1 } }),
        JSON.stringify({ ...obj, metadata: Object.fromEntries(Array.from({ length: 3000 }, (_, i) => [`k${i}`, i])) }),
        JSON.stringify({ ...obj, metadata: { list: Array.from({ length: 10_000 }, () => 0) } }),
        JSON.stringify({ ...obj, attendees: Array.from({ length: 501 }, () => ({ name: 'x' })) }),
        deep(20_000),
        '{"__proto__":{"admin":true},"name":"x"}',
        JSON.stringify(obj).replace(/^\{/, '{"__proto__":{"tenantId":"x"},'),
      ];
    };
    const creds: Record<string, string> = { '/v1/tenants': ADMIN_TOKEN };
    const failures: string[] = [];
    for (const route of routes.filter((r) => ['POST', 'PUT', 'PATCH'].includes(r.method))) {
      const p = route.path.replace(/:(\w+)/g, (_m, name: string) => realParam(route.path, name));
      for (const body of nasty(template(route.method, route.path))) {
        const res = await send({ method: route.method, path: p, body, headers: { Authorization: `Bearer ${creds[route.path] ?? tenant.key}`, 'Content-Type': 'application/json', 'If-Match': '"1"' } });
        try {
          expectSane(res!.status, res!.type, res!.text, `${route.method} ${route.path} ${body.slice(0, 120)}`);
        } catch (err) {
          failures.push((err as Error).message.slice(0, 300));
        }
      }
    }
    expect(failures).toEqual([]);
  }, 60_000);
});

// ---- Socket.IO -------------------------------------------------------------------------------

const text = (m: { data: Buffer }) => m.data.toString('utf8');

/** A raw engine.io v4 / socket.io v5 connection, connected to the main namespace with `token`. */
async function sioConnect(token: unknown): Promise<RawSocket> {
  const s = await rawSocket(`${t.url.replace('http', 'ws')}/socket.io/?EIO=4&transport=websocket`);
  await poll(() => s.messages.some((m) => text(m).startsWith('0{')), 3000, 'engine.io open');
  s.ws.send(`40${JSON.stringify({ token })}`);
  await poll(() => s.messages.some((m) => /^4[04]/.test(text(m))), 3000, 'socket.io connect');
  return s;
}

/** Every ack a raw socket received: `43<id>[payload]`. */
function acks(s: RawSocket): { id: number; payload: any }[] {
  return s.messages.flatMap((m) => {
    const hit = /^43(\d+)(\[.*)$/s.exec(text(m));
    if (!hit) return [];
    return [{ id: Number(hit[1]), payload: JSON.parse(hit[2]!)[0] }];
  });
}

describe('Socket.IO fuzzing', () => {
  let observer: Socket;
  let sockHold: string;
  const seen: string[] = [];

  beforeAll(async () => {
    observer = ioClient(t.url, { auth: { token: tenant.key }, transports: ['websocket'], reconnection: false });
    observer.on('hold.created', (e: { hold: { id: string } }) => seen.push(e.hold.id));
    const ack = await observer.timeout(5000).emitWithAck('subscribe', { resourceIds: [ids.live], from: at('00:00'), to: at('23:00') });
    expect(ack.ok, JSON.stringify(ack)).toBe(true);
    sockHold = (await tenant.api('POST', '/v1/holds', { resourceIds: [ids.live], start: at('07:00'), end: at('08:00'), ttlSeconds: 900 })).body.id;
  });
  afterAll(() => void observer?.close());

  it('survives malformed frames; every command is acknowledged without a 5xx; other clients keep being served', async () => {
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
    const events = ['subscribe', 'unsubscribe', 'resync', 'hold.create', 'hold.extend', 'hold.release', 'hold.confirm'];
    const json = fc.jsonValue({ maxDepth: 3, stringUnit: 'binary' });
    const payload = fc.oneof(
      json,
      fc.record({ holdId: fc.oneof(fc.constant(ids.hold), fc.string()), ttlSeconds: json, idempotencyKey: fc.oneof(fc.string({ unit: 'binary' }), json), customer: json }, { requiredKeys: [] }),
      fc.record({ resourceIds: fc.oneof(fc.constant([ids.resource]), json), from: fc.constant(at('00:00')), to: fc.oneof(fc.constant(at('23:00')), json), afterSeq: json }, { requiredKeys: [] }),
      fc.constant(JSON.parse(`{"__proto__":{"ok":true},"holdId":"${ids.hold}","customer":{"name":"x","email":"x@example.com"}}`)),
    );
    const known = fc.constantFrom(...events);
    const frame = fc.oneof(
      { weight: 2, arbitrary: fc.string({ unit: 'binary', maxLength: 200 }) },
      { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 0, max: 9 }), fc.string({ maxLength: 50 })).map(([type, rest]) => `${type}${rest}`) },
      { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 0, max: 9 }), fc.string({ maxLength: 50 })).map(([type, rest]) => `4${type}${rest}`) },
      // Well-formed commands with odd payloads: each must be acknowledged.
      { weight: 6, arbitrary: fc.tuple(known, fc.nat({ max: 999_999 }), payload).map(([name, id, p]) => `42${id}${JSON.stringify([name, p])}`) },
      { weight: 2, arbitrary: fc.tuple(fc.oneof(known, fc.constantFrom('__proto__', 'constructor', 'toString', 'connect', 'disconnect', 'disconnecting', 'error', 'newListener', ''), fc.string()), fc.nat({ max: 999_999 }), payload, fc.boolean()).map(([name, id, p, withAck]) => `42${withAck ? id : ''}${JSON.stringify([name, p, p])}`) },
      { weight: 1, arbitrary: fc.constantFrom('42', '42[', '42{}', '42[]', '42[1]', '42[null]', '42["subscribe"]', '4299999999999999999999["resync",{"afterSeq":0}]', '42-1["resync",{"afterSeq":0}]', '42/nope,["subscribe",{}]', '40/nope,', '41', '43', '431[]', '44{}', '45', '451-["hold.create",{"_placeholder":true,"num":0}]', '451-["hold.create",{"_placeholder":true,"num":7}]', '4599999999-["resync"]', '46', '6', '5', '1', '3', '2probe', 'x', '') },
    );
    // What Postgres cannot store, over the socket: refused as validation errors, never answered 500.
    const unstorable = [
      { customer: { name: 'a\u0000b', email: 'ada@example.com' } },
      { customer: { name: '\ud800', email: 'ada@example.com' } },
      { customer, metadata: { 'k\u0000': 1 } },
      { customer, metadata: { deep: '<deep>' } },
    ].map((b, i) => `42${9_000_000 + i}${JSON.stringify(['hold.confirm', { holdId: sockHold, ...b }]).replace('"<deep>"', '['.repeat(5000) + ']'.repeat(5000))}`);

    /** Ack ids a batch's frames oblige the server to answer: a known command with one payload. */
    const obliged = (f: string | Buffer): number | null => {
      const m = typeof f === 'string' ? /^42(\d{1,7})(\[.*)$/s.exec(f) : null;
      if (!m) return null;
      try {
        const args = JSON.parse(m[2]!);
        return Array.isArray(args) && args.length === 2 && events.includes(args[0]) ? Number(m[1]) : null;
      } catch {
        return null;
      }
    };
    let probe = 1_000_000;
    let s = await sioConnect(tenant.key);
    let closes = 0;
    let silent = 0;
    let checked = 0;
    const unstorableAcks: unknown[] = [];
    const frames: (string | Buffer)[][] = fc.sample(fc.array(frame, { minLength: 1, maxLength: 4 }), { numRuns: 100, seed });
    frames.push(...unstorable.map((f) => [f]), [Buffer.from([0, 1, 2, 3, 255])], ['4' + 'x'.repeat(200_000)], [`42${JSON.stringify(['resync', { afterSeq: 0, pad: 'x'.repeat(70_000) }])}`]);
    for (const batch of frames) {
      const where = `seed ${seed}: ${JSON.stringify(batch).slice(0, 600)}`;
      if (!s.isOpen()) {
        closes++;
        s = await sioConnect(tenant.key);
        checked = 0;
      }
      const due = new Set<number>();
      for (const f of batch) {
        s.ws.send(f);
        const id = obliged(f);
        if (id !== null) due.add(id);
      }
      const id = probe++;
      due.add(id);
      s.ws.send(`42${id}${JSON.stringify(['resync', { afterSeq: 0 }])}`);
      // Every obliged ack arrives, or the server dropped this connection (which it may, for garbage). Acks may
      // also stop when the batch left the namespace ("41") or began a binary packet whose attachments never
      // came ("45…", "46…"): then the connection is replaced.
      const mayIgnore = batch.some((f) => typeof f === 'string' && /^4[156]/.test(f));
      const answered = await poll(() => !s.isOpen() || [...due].every((d) => acks(s).some((a) => a.id === d)), mayIgnore ? 300 : 5000, `acks ${[...due]} (${where})`).then(
        () => true,
        (err) => {
          if (!mayIgnore) throw err;
          return false;
        },
      );
      const all = acks(s);
      for (const a of all.slice(checked)) {
        if (a.payload?.ok === false) {
          expect(a.payload.error.status, `${JSON.stringify(a.payload)} (${where})`).toBeLessThan(500);
          expect(Object.keys(errorCatalogue)).toContain(a.payload.error.code);
        } else expect(a.payload?.ok, `${JSON.stringify(a.payload)} (${where})`).toBe(true);
        if (a.id >= 9_000_000 && a.id < 9_000_000 + unstorable.length) unstorableAcks.push(a.payload);
      }
      checked = all.length;
      if (!answered) {
        silent++;
        s.ws.terminate();
        s = await sioConnect(tenant.key);
        checked = 0;
      }
    }
    s.ws.terminate();
    expect(silent, 'most batches are answered').toBeLessThan(frames.length / 4);
    expect(closes, 'some garbage closes its connection').toBeGreaterThan(0);
    expect(unstorableAcks).toHaveLength(unstorable.length);
    for (const ack of unstorableAcks) expect(ack).toMatchObject({ ok: false, error: { status: 400, code: 'validation-failed' } });
    expect((await tenant.api('GET', `/v1/holds/${sockHold}`)).body.status).toBe('held');

    // Bad handshakes: refused with connect_error, never a crash.
    for (const token of [null, 42, [], { a: 1 }, 'x'.repeat(10_000), `${tenant.key}\u0000`, ADMIN_TOKEN, expired]) {
      const bad = await sioConnect(token);
      expect(bad.messages.map(text).find((m) => /^4[04]/.test(m)), JSON.stringify(token)).toMatch(/^44.*unauthorized/);
      bad.ws.terminate();
    }

    // The well-behaved client was served all along and still is.
    expect(observer.connected).toBe(true);
    const hold = await tenant.api('POST', '/v1/holds', { resourceIds: [ids.live], start: at('18:00'), end: at('19:00'), ttlSeconds: 60 });
    expect(hold.status, hold.text).toBe(201);
    await waitFor(() => seen.includes(hold.body.id), 5000, 'hold.created on the observer');
    const ack = await observer.timeout(5000).emitWithAck('resync', { afterSeq: 0 });
    expect(ack.ok).toBe(true);
  }, 60_000);
});

// ---- Yjs -------------------------------------------------------------------------------------

const syncFrame = (kind: number, payload: Uint8Array) => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 0);
  encoding.writeVarUint(e, kind);
  encoding.writeVarUint8Array(e, payload);
  return encoding.toUint8Array(e);
};
const awarenessFrame = (payload: Uint8Array) => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 1);
  encoding.writeVarUint8Array(e, payload);
  return encoding.toUint8Array(e);
};
/** An awareness update with one entry whose state is `state` (not necessarily JSON). */
const awarenessEntry = (clientId: number, clock: number, state: string) => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 1);
  encoding.writeVarUint(e, clientId);
  encoding.writeVarUint(e, clock);
  encoding.writeVarString(e, state);
  return encoding.toUint8Array(e);
};
/** A real update made on a doc with the group's layout. */
const realUpdate = (edit: (doc: Y.Doc) => void) => {
  const doc = new Y.Doc();
  const updates: Uint8Array[] = [];
  doc.on('update', (u: Uint8Array) => updates.push(u));
  edit(doc);
  doc.destroy();
  return Y.mergeUpdates(updates);
};

describe('Yjs fuzzing', () => {
  const providers: WebsocketProvider[] = [];
  afterAll(() => providers.forEach((p) => p.destroy()));

  function provider(token: string) {
    const doc = new Y.Doc();
    const p = new WebsocketProvider(`${t.url.replace('http', 'ws')}/yjs`, `group-booking:${ids.yjsGroup}`, doc, {
      params: { token },
      WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
      disableBc: true,
    });
    providers.push(p);
    return { doc, p };
  }

  it('survives malformed frames; the document stays valid and other clients keep syncing', async () => {
    const a = provider(organizer.token);
    const b = provider(tenant.key);
    await waitFor(() => a.p.synced && b.p.synced, 5000, 'providers synced');
    const before = (await tenant.api('GET', `/v1/group-bookings/${ids.yjsGroup}`)).body;

    const valid = realUpdate((d) => d.getText('notes').insert(0, 'hello'));
    const frame = fc.oneof(
      { weight: 3, arbitrary: fc.uint8Array({ maxLength: 300 }) },
      { weight: 2, arbitrary: fc.tuple(fc.oneof(fc.nat({ max: 300 }), fc.constant(2 ** 40)), fc.uint8Array({ maxLength: 60 })).map(([type, rest]) => { const e = encoding.createEncoder(); encoding.writeVarUint(e, type); encoding.writeUint8Array(e, rest); return encoding.toUint8Array(e); }) },
      { weight: 3, arbitrary: fc.tuple(fc.constantFrom(0, 1, 2, 3, 9, 200), fc.uint8Array({ maxLength: 200 })).map(([kind, bytes]) => syncFrame(kind, bytes)) },
      { weight: 3, arbitrary: fc.nat({ max: valid.length - 1 }).map((cut) => syncFrame(2, valid.slice(0, cut))) },
      { weight: 3, arbitrary: fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 })).map(([i, v]) => { const m = valid.slice(); m[i] = v; return syncFrame(2, m); }) },
      { weight: 1, arbitrary: fc.nat({ max: 20 }).map((cut) => syncFrame(2, valid).slice(0, cut)) },
      { weight: 2, arbitrary: fc.uint8Array({ maxLength: 100 }).map(awarenessFrame) },
      { weight: 2, arbitrary: fc.tuple(fc.nat(), fc.nat(), fc.oneof(fc.string({ unit: 'binary' }), fc.jsonValue().map((v) => JSON.stringify(v)))).map(([id, clock, state]) => awarenessFrame(awarenessEntry(id, clock, state))) },
      {
        weight: 2,
        arbitrary: fc.constantFrom(
          syncFrame(2, realUpdate((d) => d.getMap('server').set('status', 'confirmed'))),
          syncFrame(2, realUpdate((d) => d.getMap('evil').set('x', 1))),
          syncFrame(2, realUpdate((d) => d.getArray('draft').insert(0, [1]))),
          syncFrame(2, realUpdate((d) => d.getText('notes').insert(0, 'x'.repeat(21_000)))),
          syncFrame(2, realUpdate((d) => d.getMap('draft').set('title', ''))),
          syncFrame(2, new Uint8Array([0, 0])),
          syncFrame(0, new Uint8Array([200, 200, 200, 200, 200, 200, 200, 200, 200, 1])),
          new Uint8Array([0]),
          new Uint8Array([1]),
          new Uint8Array([3, 1, 2, 3]),
          new Uint8Array([0, 2, 255, 255, 255, 255, 15]),
          new Uint8Array([]),
        ),
      },
    );
    const url = `${t.url.replace('http', 'ws')}/yjs/${encodeURIComponent(`group-booking:${ids.yjsGroup}`)}?token=${organizer.token}`;
    const open = async () => {
      const s = await rawSocket(url);
      await poll(() => s.messages.length > 0 || !s.isOpen(), 3000, 'initial sync');
      return s;
    };
    let s = await open();
    const closeCodes = new Set<number>();
    const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
    const batches: (Uint8Array | string)[][] = fc.sample(fc.array(frame, { minLength: 1, maxLength: 3 }), { numRuns: 120, seed });
    batches.push(['text frame, not binary'], [new Uint8Array(1024 * 1024 + 10)], [syncFrame(2, new Uint8Array(70 * 1024))]);
    for (const batch of batches) {
      if (!s.isOpen()) {
        closeCodes.add((await s.closed).code);
        s = await open();
      }
      s.messages.length = 0;
      for (const f of batch) s.ws.send(f);
      // Probe: a query-awareness message is answered with an awareness message, unless the server closed us.
      s.ws.send(new Uint8Array([3]));
      await poll(() => !s.isOpen() || s.messages.some((m) => m.data[0] === 1), 5000, `seed ${seed}: probe after ${batch.map((f) => Buffer.from(f as Uint8Array).toString('hex').slice(0, 60)).join(',')}`);
    }
    if (!s.isOpen()) closeCodes.add((await s.closed).code);
    s.ws.terminate();
    // Undecodable frames close with 4400, oversized ones with 4413 or 1009; never 1011 (a server fault).
    expect([...closeCodes].every((c) => [4400, 4413, 1009].includes(c)), `seed ${seed}: close codes ${[...closeCodes]}`).toBe(true);
    expect(closeCodes.has(4400)).toBe(true);

    // Without a valid token, garbage is never read.
    for (const token of ['', 'garbage', expired, ADMIN_TOKEN]) {
      const bad = await rawSocket(`${t.url.replace('http', 'ws')}/yjs/group-booking:${ids.yjsGroup}?token=${encodeURIComponent(token)}`);
      bad.ws.send(new Uint8Array([0, 2, 5, 1, 2, 3, 4, 5]));
      expect((await bad.closed).code).toBe(4401);
    }

    // The two stock clients still converge, and the document is as valid as before.
    a.doc.getText('notes').insert(0, 'still here ');
    await waitFor(() => b.doc.getText('notes').toString().includes('still here'), 5000, 'provider b sees provider a');
    b.doc.getMap('draft').set('title', 'Renamed after fuzzing');
    await waitFor(() => a.doc.getMap('draft').get('title') === 'Renamed after fuzzing', 5000, 'provider a sees provider b');
    const after = (await tenant.api('GET', `/v1/group-bookings/${ids.yjsGroup}`)).body;
    expect(after.document.server).toEqual(before.document.server);
    expect(Object.keys(after.document).sort()).toEqual(['draft', 'notes', 'participants', 'server']);
    expect(validateDraft(after.document)).toEqual({ ok: true });
    expect(after.document.notes).toContain('still here');
  }, 60_000);
});

// ---- afterwards ------------------------------------------------------------------------------

describe('afterwards', () => {
  it('the node is healthy, seats add up and nothing was logged at error level', async () => {
    expect((await fetch(`${t.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${t.url}/readyz`)).status).toBe(200);
    expect(await invariantViolations(t.pool, tenant.id)).toEqual([]);
    const { rows } = await t.pool.query(`SELECT count(*)::int AS n FROM information_schema.tables WHERE table_schema = 'public' AND table_name = ANY($1)`, [
      ['tenants', 'api_keys', 'resources', 'slots', 'holds', 'hold_resources', 'bookings', 'booking_resources', 'events', 'idempotency_keys', 'group_bookings', 'yjs_updates'],
    ]);
    expect(rows[0].n).toBe(12);
    expect(t.atLeast(50).map((l) => `${l.msg} ${JSON.stringify(l).slice(0, 300)}`)).toEqual([]);
    expect(t.lines.length).toBeGreaterThan(0);
  });
});
