/**
 * Fault: one of two node processes, the one decoding and publishing the
 * event feed, is SIGKILLed while clients book through both. Nothing
 * acknowledged is lost, the survivor takes the feed over, every committed
 * change is in the feed (numbered, in order, no gaps) and reaches a live
 * subscriber on the survivor, and the dead node's holds still expire on time,
 * swept by the survivor.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ContractError } from '../helpers/contract';
import { client, futureWeekday, invariantViolations, isolatedDatabase, newTenant, waitFor, type TestNode } from '../helpers/node';
import { isFeedDecoder, killAll, liveClient, spawnNode, watchPool, type NodeProcess } from '../helpers/process';

let db: Awaited<ReturnType<typeof isolatedDatabase>> | null = null;
let pool: pg.Pool | null = null;
let a: NodeProcess;
let b: NodeProcess;
let live: Awaited<ReturnType<typeof liveClient>> | null = null;

beforeAll(async () => {
  db = await isolatedDatabase();
  pool = watchPool(db.url);
  const env = { DATABASE_URL: db.url, REDIS_URL: inject('redisUrl') };
  // A starts first and takes the feed's slot: the node killed below is the one that publishes.
  a = await spawnNode('kill-a', env);
  await waitFor(() => isFeedDecoder(a.url), 10_000, 'node A decoding the feed');
  b = await spawnNode('kill-b', env);
}, 120_000);

afterAll(async () => {
  live?.socket.disconnect();
  await killAll();
  await pool?.end();
  await db?.drop();
});

const pad = (n: number) => String(n).padStart(2, '0');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const DOMAIN = new Set(['hold.created', 'hold.extended', 'hold.released', 'hold.expired', 'booking.confirmed', 'booking.cancelled']);

describe('a node killed with SIGKILL under load', () => {
  it('loses nothing acknowledged, leaves a gap-free feed, reaches live clients and still expires its holds', async () => {
    const tenant = await newTenant(b as unknown as TestNode, 'kill-node');
    const rooms = await Promise.all(Array.from({ length: 4 }, () => tenant.newResource({ capacity: 2 })));
    const day = futureWeekday(5);
    const apiA = client(a.url, tenant.key);
    const apiB = tenant.api;

    live = await liveClient(b.url, tenant.key);
    const sub = await live.call('subscribe', { resourceIds: rooms.map((r) => r.id), from: `${day}T00:00:00Z`, to: `${day}T23:59:00Z` });
    expect(sub.ok).toBe(true);

    const ackedHolds = new Map<string, { node: string; expiresAt: number }>();
    const ackedBookings = new Set<string>();
    const statuses = new Map<string, number>();
    let stop = false;
    let killedAt = 0;
    let cutOff = 0;
    let inFlightA = 0;

    // A request to the dead node fails at the connection: it was never acknowledged (null).
    const send = async (via: 'A' | 'B', method: string, path: string, body?: unknown) => {
      if (via === 'A' && killedAt) return null;
      if (via === 'A') inFlightA++;
      try {
        return await (via === 'A' ? apiA : apiB)(method, path, body);
      } catch (err) {
        if (via === 'A' && killedAt && !(err instanceof ContractError)) {
          cutOff++;
          return null;
        }
        throw err;
      } finally {
        if (via === 'A') inFlightA--;
      }
    };
    const count = (what: string) => statuses.set(what, (statuses.get(what) ?? 0) + 1);

    // Each client holds an hour on a room through its node, and confirms about half of them through either node.
    const worker = async (node: 'A' | 'B', i: number) => {
      for (let n = 0; !stop && !(node === 'A' && killedAt); n++) {
        const room = rooms[(i + n) % rooms.length]!;
        const hour = (i * 7 + n * 5) % 23;
        const shortTtl = node === 'A' && n % 2 === 0;
        const h = await send(node, 'POST', '/v1/holds', {
          resourceIds: [room.id], start: `${day}T${pad(hour)}:00:00Z`, end: `${day}T${pad(hour + 1)}:00:00Z`,
          ...(shortTtl ? { ttlSeconds: 1 + (n % 3) } : {}),
        });
        if (!h) continue;
        count(`hold ${h.status}`);
        if (h.status !== 201) {
          expect(h.status, JSON.stringify(h.body)).toBe(409);
          continue;
        }
        ackedHolds.set(h.body.id, { node, expiresAt: Date.parse(h.body.expiresAt) });
        if (shortTtl || n % 2 === 0) continue;
        const c = await send((i + n) % 4 === 1 ? 'A' : 'B', 'POST', `/v1/holds/${h.body.id}/confirm`, { customer: { name: `c${i}-${n}`, email: 'c@example.com' } });
        if (!c) continue;
        count(`confirm ${c.status}`);
        if (c.status === 201) ackedBookings.add(c.body.id);
        else expect(c.status, JSON.stringify(c.body)).toBe(201);
      }
    };

    const failures: unknown[] = [];
    const workers = [...Array.from({ length: 6 }, (_, i) => worker('A', i)), ...Array.from({ length: 6 }, (_, i) => worker('B', i + 6))].map((w) => w.catch((err) => void failures.push(err)));
    // Kill A once the load is well under way.
    await waitFor(() => [...ackedHolds.values()].filter((h) => h.node === 'A').length >= 20 && ackedBookings.size >= 5, 20_000, 'load on both nodes');
    // Holds on A that are due only after A is gone: the survivor must expire them.
    const dueAfterKill = await Promise.all(rooms.slice(0, 3).map(async (room) => {
      const h = await apiA('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T23:00:00Z`, end: new Date(Date.parse(`${day}T23:00:00Z`) + 3_600_000).toISOString(), ttlSeconds: 4 });
      expect(h.status, JSON.stringify(h.body)).toBe(201);
      ackedHolds.set(h.body.id, { node: 'A', expiresAt: Date.parse(h.body.expiresAt) });
      return h.body.id as string;
    }));
    expect(await isFeedDecoder(a.url), 'A decodes and publishes the feed when it is killed').toBe(true);
    expect(await isFeedDecoder(b.url)).toBe(false);
    // Kill while requests are in flight on A, so the test shows what happens to them (nothing awaited in between).
    await waitFor(() => inFlightA >= 2, 10_000, 'requests in flight on A');
    const killed = a.kill('SIGKILL');
    killedAt = Date.now();
    await killed;
    await sleep(1000);
    stop = true;
    await Promise.all(workers);
    if (failures.length) throw failures[0];
    expect(a.alive()).toBe(false);
    // The kill caught requests in flight on A.
    expect(cutOff, 'requests in flight on A when it was killed').toBeGreaterThan(0);
    expect(b.alive()).toBe(true);
    expect([...ackedHolds.values()].some((h) => h.node === 'A')).toBe(true);
    expect([...ackedHolds.values()].some((h) => h.node === 'B')).toBe(true);
    expect(ackedBookings.size).toBeGreaterThan(0);

    // Every acknowledged hold and booking is in Postgres.
    const holdRows = await pool!.query('SELECT id, status, expires_at FROM holds WHERE tenant_id = $1', [tenant.id]);
    const holdsById = new Map(holdRows.rows.map((r) => [r.id as string, r]));
    for (const id of ackedHolds.keys()) expect(holdsById.has(id), `acknowledged hold ${id}`).toBe(true);
    const bookingRows = await pool!.query("SELECT id FROM bookings WHERE tenant_id = $1 AND status = 'confirmed'", [tenant.id]);
    const bookingIds = new Set(bookingRows.rows.map((r) => r.id as string));
    for (const id of ackedBookings) expect(bookingIds.has(id), `acknowledged booking ${id}`).toBe(true);

    // The dead node's short holds expire within ~1.5 s of expiresAt, swept by the survivor.
    const lastExpiry = Math.max(...holdRows.rows.map((r) => (r.expires_at as Date).getTime()).filter((t) => t < Date.now() + 10_000));
    await sleep(Math.max(0, lastExpiry + 1_600 - Date.now()));
    const expiredEvents = await pool!.query(
      `SELECT h.id, h.expires_at, e.created_at AS expired_at FROM holds h JOIN events e ON e.type = 'hold.expired' AND e.data->'hold'->>'id' = h.id::text
       WHERE h.tenant_id = $1`,
      [tenant.id],
    );
    const afterKill = [...ackedHolds].filter(([, h]) => h.node === 'A' && h.expiresAt > killedAt && h.expiresAt < Date.now());
    for (const id of dueAfterKill) expect(afterKill.some(([x]) => x === id), `hold ${id} is due after the kill`).toBe(true);
    const expiredAt = new Map(expiredEvents.rows.map((r) => [r.id as string, (r.expired_at as Date).getTime() - (r.expires_at as Date).getTime()]));
    for (const [id] of afterKill) {
      const row = holdsById.get(id)!;
      // Confirmed before it was due is fine; otherwise it must have expired, on time.
      if (row.status === 'confirmed') continue;
      expect(expiredAt.get(id), `hold ${id} of the dead node expired`).toBeDefined();
      expect(expiredAt.get(id)!, `hold ${id} expired late`).toBeLessThanOrEqual(1_500);
    }
    const overdue = await pool!.query("SELECT count(*)::int AS n FROM holds WHERE tenant_id = $1 AND status = 'held' AND expires_at < now() - interval '1.5 seconds'", [tenant.id]);
    expect(overdue.rows[0].n).toBe(0);

    // The survivor took the feed over: every committed event is stored with its seq and emitted.
    await waitFor(() => isFeedDecoder(b.url), 8_000, 'node B decoding the feed');
    await waitFor(async () => {
      const r = await pool!.query('SELECT c.last_seq, c.emitted_seq, (SELECT count(*)::int FROM events) AS n FROM feed_cursor c');
      return r.rows[0].emitted_seq === r.rows[0].last_seq && r.rows[0].n === r.rows[0].last_seq;
    }, 8_000, 'every event stored and emitted');
    const global = await pool!.query('SELECT count(*)::int AS n, max(seq)::int AS max, count(DISTINCT seq)::int AS distinct FROM events');
    expect(global.rows[0].n).toBe(global.rows[0].max);
    expect(global.rows[0].distinct).toBe(global.rows[0].n);

    // Exactly one event per committed change.
    const finalHolds = (await pool!.query('SELECT id, status FROM holds WHERE tenant_id = $1', [tenant.id])).rows;
    const events = (await pool!.query('SELECT seq, type, resource_ids, data FROM events WHERE tenant_id = $1 ORDER BY seq', [tenant.id])).rows;
    const eventsOf = (type: string, key: 'hold' | 'booking', id: string) => events.filter((e) => e.type === type && e.data[key]?.id === id).length;
    for (const h of finalHolds) {
      expect(eventsOf('hold.created', 'hold', h.id), `hold.created of ${h.id}`).toBe(1);
      expect(eventsOf('hold.expired', 'hold', h.id), `hold.expired of ${h.id}`).toBe(h.status === 'expired' ? 1 : 0);
    }
    for (const id of bookingIds) expect(eventsOf('booking.confirmed', 'booking', id), `booking.confirmed of ${id}`).toBe(1);

    // The feed through the survivor is the tenant's events, strictly increasing, none missing.
    const feed: number[] = [];
    for (let after = 0; ;) {
      const page = await apiB('GET', `/v1/events?after=${after}&limit=1000`);
      expect(page.status).toBe(200);
      if (page.body.events.length === 0) break;
      feed.push(...page.body.events.map((e: { seq: number }) => e.seq));
      after = page.body.lastSeq;
    }
    expect(feed).toEqual(events.map((e) => Number(e.seq)));
    for (let i = 1; i < feed.length; i++) expect(feed[i]!).toBeGreaterThan(feed[i - 1]!);

    // The subscriber on the survivor got every event of its resources after its subscribe seq, live.
    const roomIds = new Set(rooms.map((r) => r.id));
    const expected = events.filter((e) => Number(e.seq) > sub.seq && e.resource_ids.some((id: string) => roomIds.has(id)) && DOMAIN.has(e.type)).map((e) => Number(e.seq));
    const got = () => new Set(live!.received.filter((e) => DOMAIN.has(e.type)).map((e) => e.seq));
    await waitFor(() => expected.every((s) => got().has(s)), 8_000, 'every committed event live on node B').catch(() => {});
    const missingLive = expected.filter((s) => !got().has(s));
    // What did not arrive live must come with resync; nothing is lost either way.
    const resync = await live.call('resync', { afterSeq: sub.seq });
    expect(resync.ok).toBe(true);
    expect(resync.events.map((e: { seq: number }) => e.seq)).toEqual(events.filter((e) => Number(e.seq) > sub.seq && e.resource_ids.some((id: string) => roomIds.has(id))).map((e) => Number(e.seq)));
    expect(missingLive, 'events that never arrived live').toEqual([]);

    expect(await invariantViolations(pool!, tenant.id)).toEqual([]);
    console.log(`kill-node: ${ackedHolds.size} holds, ${ackedBookings.size} bookings acknowledged; ${events.length} events; ${cutOff} requests cut off; ${JSON.stringify(Object.fromEntries(statuses))}`);
  }, 120_000);
});
