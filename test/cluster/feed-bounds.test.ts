/**
 * The feed's bounds gone past with real nodes, Postgres and Redis, while no
 * node decodes (the decoding node is stopped; the node the clients use runs
 * with `breakPublish`, so it never takes the replication slot):
 *
 * 1. the feed wait (`feedWaitMs`, 5 s): GET /v1/events, Socket.IO `resync`
 *    and `subscribe` answer a 503 problem naming `feed.wait` within about
 *    that long, never a stall, a 500 or a silently stale answer, and the
 *    node stays healthy; once a node decodes again the feed has every event,
 *    gap-free, and the live subscriber gets them in order;
 * 2. the decoder's batch (500 transactions): more than 500 commits wait in
 *    the WAL, and the new decoder finds them all pending at once (the test
 *    holds the cursor row and the resource heads while it streams them); they
 *    are numbered and stored in batches
 *    of at most 500, each exactly once, with contiguous seqs and intact
 *    per-resource `prevSeqs` chains, and live subscribers get them in order.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Socket } from 'socket.io-client';
import pg from 'pg';
import { feedSlotName } from '../../server/db/migrate';
import { haveAll, missing, oneToOne, readFeedUntil, storedChains } from '../helpers/feed';
import { checkOrderAndChains, connect, type LiveConnection } from '../helpers/live';
import { client, futureWeekday, isolatedDatabase, newTenant, startNode, waitFor, type TestNode } from '../helpers/node';
import { isFeedDecoder } from '../helpers/process';

/** The server's default `feedWaitMs` (server/core/services/events.ts). */
const FEED_WAIT_MS = 5_000;
/** Transactions the decoder stores in one batch (server/db/feed.ts). */
const BATCH_MAX = 500;

const pad = (n: number) => String(n).padStart(2, '0');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let db: Awaited<ReturnType<typeof isolatedDatabase>>;
let pool: pg.Pool;
let slot: string;
/** The node every client talks to: it never decodes. */
let front: TestNode;
/** The node that decodes right now (null while none does). */
let decoder: TestNode | null = null;
const running: TestNode[] = [];
const sockets: Socket[] = [];
let started = 0;

async function startDecoder(): Promise<TestNode> {
  const node = await startNode({ DATABASE_URL: db.url, REDIS_URL: inject('redisUrl'), NODE_ID: `bounds-decoder-${++started}` });
  running.push(node);
  await waitFor(() => isFeedDecoder(node.url), 10_000, 'the new node decoding the feed');
  decoder = node;
  return node;
}

/** Stops the decoding node and waits until nobody streams the slot. */
async function stopDecoder(): Promise<void> {
  const node = decoder!;
  decoder = null;
  running.splice(running.indexOf(node), 1);
  await node.stop();
  await waitFor(async () => {
    const { rows } = await pool.query('SELECT active FROM pg_replication_slots WHERE slot_name = $1', [slot]);
    return rows[0].active === false;
  }, 5_000, 'the replication slot released');
}

beforeAll(async () => {
  db = await isolatedDatabase();
  pool = new pg.Pool({ connectionString: db.url, max: 4 });
  slot = await feedSlotName(pool);
  await startDecoder();
  front = await startNode({ DATABASE_URL: db.url, REDIS_URL: inject('redisUrl'), NODE_ID: 'bounds-front' }, { breakPublish: true });
  running.push(front);
});

afterAll(async () => {
  for (const s of sockets) s.disconnect();
  for (const n of running) await n.stop().catch(() => {});
  await pool?.end();
  await db?.drop();
});

/** Every seq of the events table, in order. */
async function storedSeqs(): Promise<number[]> {
  const { rows } = await pool.query('SELECT seq FROM events ORDER BY seq');
  return rows.map((r) => Number(r.seq));
}

/** Runs `tasks` with at most `width` at once; resolves with their results in order. */
async function limited<T>(width: number, tasks: (() => Promise<T>)[]): Promise<T[]> {
  const out: T[] = new Array(tasks.length);
  let next = 0;
  await Promise.all(Array.from({ length: width }, async () => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]!();
    }
  }));
  return out;
}

describe('the feed wait bound', () => {
  it('answers 503 feed.wait within about feedWaitMs while no node decodes; the node stays healthy; the feed is whole once one does', async () => {
    const tenant = await newTenant(front, 'feed-wait');
    const room = await tenant.newResource({ capacity: 50 });
    const day = futureWeekday(6);
    const api = client(front.url, tenant.key);
    const hold = (h: number) => api('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T${pad(h)}:00:00Z`, end: `${day}T${pad(h + 1)}:00:00Z` });
    const range = { resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:59:00Z` };

    // A subscriber on the front node, while a node decodes.
    const live = await connect(front.url, tenant.key, sockets, { ackTimeoutMs: 20_000 });
    const sub = await live.call('subscribe', range);
    expect(sub.ok, JSON.stringify(sub)).toBe(true);
    const start = sub.seq as number;
    const first = await hold(1);
    expect(first.status).toBe(201);
    await waitFor(() => live.received.some((r) => r.type === 'hold.created' && r.payload.hold.id === first.body.id), 5_000, 'hold.created live while a node decodes');

    // Nobody decodes from here on; writes still commit.
    await stopDecoder();
    const during: string[] = [];
    for (const h of [2, 3, 4, 5, 6]) {
      const r = await hold(h);
      expect(r.status).toBe(201);
      during.push(r.body.id);
    }

    // The three reads that wait for the decoder, at once.
    const late = await connect(front.url, tenant.key, sockets, { ackTimeoutMs: 20_000 });
    const timed = async <T>(p: () => Promise<T>) => {
      const t0 = Date.now();
      const v = await p();
      return { v, ms: Date.now() - t0 };
    };
    const [rest, resync, subscribe] = await Promise.all([
      timed(() => api('GET', `/v1/events?after=${start}&limit=100`)),
      timed(() => live.call('resync', { afterSeq: start })),
      timed(() => late.call('subscribe', range)),
    ]);
    const said = (ack: any) => (ack.ok ? 'ok' : `${ack.error?.status} ${ack.error?.limit}`);
    console.log(`feed-bounds: with no decoder, GET /v1/events answered ${rest.v.status} after ${rest.ms} ms, resync ${said(resync.v)} after ${resync.ms} ms, subscribe ${said(subscribe.v)} after ${subscribe.ms} ms`);
    console.log(`feed-bounds: the problem: ${rest.v.text}`);

    expect(rest.v.status, rest.v.text).toBe(503);
    expect(rest.v.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(rest.v.body).toMatchObject({ status: 503, code: 'unavailable', limit: 'feed.wait', max: FEED_WAIT_MS });
    expect(Number(rest.v.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    for (const [what, ack] of [['resync', resync.v], ['subscribe', subscribe.v]] as const) {
      expect(ack.ok, `${what}: ${JSON.stringify(ack)}`).toBe(false);
      expect(ack.error, what).toMatchObject({ status: 503, code: 'unavailable', limit: 'feed.wait', max: FEED_WAIT_MS });
    }
    for (const { ms } of [rest, resync, subscribe]) {
      expect(ms).toBeGreaterThanOrEqual(FEED_WAIT_MS - 100);
      expect(ms).toBeLessThan(FEED_WAIT_MS + 3_000);
    }

    // The node is fine: live, ready, and writes answer at once.
    expect((await fetch(`${front.url}/healthz`)).status).toBe(200);
    const ready = await api('GET', '/readyz');
    expect(ready.status, ready.text).toBe(200);
    const t0 = Date.now();
    const after = await hold(7);
    expect(after.status).toBe(201);
    expect(Date.now() - t0).toBeLessThan(2_000);
    during.push(after.body.id);

    // A node decodes again: the feed has every event, each once, gap-free; the subscriber gets them live, in order.
    await startDecoder();
    const all = [first.body.id, ...during];
    const feed = await readFeedUntil(front.url, tenant.key, {
      after: 0, until: (ev) => haveAll(ev, 'hold.created', all), describe: (ev) => `missing ${missing(ev, 'hold.created', all).join(', ')}`, settleMs: 200,
    });
    expect(oneToOne(feed, 'hold.created', all)).toEqual([]);
    const seqs = await storedSeqs();
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    const { rows: mine } = await pool.query('SELECT seq::int FROM events WHERE tenant_id = $1 ORDER BY seq', [tenant.id]);
    expect(feed.map((e) => e.seq)).toEqual(mine.map((r) => r.seq));
    const liveIds = () => new Set(live.received.filter((r) => r.type === 'hold.created').map((r) => r.payload.hold.id));
    await waitFor(() => all.every((id) => liveIds().has(id)), 10_000, 'every hold.created live on the front node');
    const { outOfOrder, broken } = checkOrderAndChains(live.received, start);
    expect(outOfOrder).toEqual([]);
    expect(broken).toEqual([]);
    const liveSeqs = [...new Set(live.received.filter((r) => r.type === 'hold.created').map((r) => r.seq))];
    expect(liveSeqs).toEqual(feed.filter((e) => e.type === 'hold.created').map((e) => e.seq));
    // Resync answers again, with exactly what the feed has on the room.
    const again = await live.call('resync', { afterSeq: start });
    expect(again.ok, JSON.stringify(again)).toBe(true);
    expect(again.events.map((e: any) => e.seq)).toEqual(feed.filter((e) => e.seq > start && e.resourceIds.includes(room.id)).map((e) => e.seq));
    // The refused subscribe left no half subscription behind.
    expect(late.received.filter((r) => r.type === 'hold.created')).toEqual([]);
  }, 30_000);
});

describe('the decoder batch bound', () => {
  it('stores more than 500 transactions that waited in the WAL in batches of at most 500, each once, seqs contiguous, chains intact, delivered live in order', async () => {
    if (!decoder) await startDecoder();
    const tenant = await newTenant(front, 'feed-batch');
    const rooms = await Promise.all(Array.from({ length: 4 }, () => tenant.newResource({ capacity: 20 })));
    const day = futureWeekday(8);
    const range = { resourceIds: rooms.map((r) => r.id), from: `${day}T00:00:00Z`, to: `${day}T23:59:00Z` };
    const subscribers = [await connect(front.url, tenant.key, sockets), await connect(front.url, tenant.key, sockets)];
    const starts: number[] = [];
    for (const s of subscribers) {
      const sub = await s.call('subscribe', range);
      expect(sub.ok, JSON.stringify(sub)).toBe(true);
      starts.push(sub.seq);
    }
    const before = (await storedSeqs()).length;

    // More than a batch of commits while nobody decodes.
    await stopDecoder();
    const N = BATCH_MAX + 150;
    const api = client(front.url, tenant.key);
    // One at a time: each hold its own transaction (concurrent ones would share statements: group commit, batch.ts).
    const answers = await limited(1, Array.from({ length: N }, (_, i) => () => {
      // Every fifth spans two rooms, so one event moves two chains.
      const resourceIds = i % 5 === 0 ? [rooms[i % 4]!.id, rooms[(i + 1) % 4]!.id] : [rooms[i % 4]!.id];
      const h = (i >> 2) % 23;
      return api('POST', '/v1/holds', { resourceIds, start: `${day}T${pad(h)}:00:00Z`, end: `${day}T${pad(h + 1)}:00:00Z` });
    }));
    expect(answers.map((r) => r.status).filter((s) => s !== 201)).toEqual([]);
    const ids = answers.map((r) => r.body.id as string);
    const { rows: [{ lsn: committedUpTo }] } = await pool.query('SELECT pg_current_wal_lsn()::text AS lsn');

    // The new decoder streams all of them while its first numbering waits for the rooms' heads (it has not seen the
    // rooms yet, so it reads them), and its first store for the cursor row: they are all pending at once.
    const lock = await pool.connect();
    let locked = true;
    try {
      await lock.query('BEGIN');
      await lock.query('SELECT * FROM feed_cursor FOR UPDATE');
      await lock.query('LOCK TABLE feed_resource_heads IN ACCESS EXCLUSIVE MODE');
      await startDecoder();
      await waitFor(async () => {
        const { rows } = await pool.query(
          `SELECT r.sent_lsn >= $2::pg_lsn AS sent FROM pg_stat_replication r JOIN pg_replication_slots s ON s.active_pid = r.pid WHERE s.slot_name = $1`,
          [slot, committedUpTo]);
        return rows[0]?.sent === true;
      }, 10_000, 'the decoder streaming every commit');
      // Sent means in the node's socket; give it a moment to read them.
      await sleep(300);
      expect(await storedSeqs()).toHaveLength(before);
      await lock.query('COMMIT');
      locked = false;
    } finally {
      if (locked) await lock.query('ROLLBACK').catch(() => {});
      lock.release();
    }

    const feed = await readFeedUntil(front.url, tenant.key, {
      after: Math.min(...starts), until: (ev) => haveAll(ev, 'hold.created', ids), describe: (ev) => `${missing(ev, 'hold.created', ids).length} hold.created missing`,
      timeoutMs: 15_000, settleMs: 200,
    });
    expect(oneToOne(feed, 'hold.created', ids)).toEqual([]);

    // Stored exactly once, contiguous from 1, in batches (one inserting transaction each) of at most 500 transactions.
    const seqs = await storedSeqs();
    expect(seqs).toEqual(seqs.map((_, i) => i + 1));
    expect(seqs.length).toBe(before + N);
    const { rows: batches } = await pool.query(
      'SELECT xmin::text AS tx, count(*)::int AS n, min(seq)::int AS first FROM events WHERE seq > $1 GROUP BY xmin ORDER BY min(seq)', [before]);
    console.log(`feed-bounds: ${N} commits that waited in the WAL were stored in batches of ${batches.map((b) => b.n).join(' + ')} events`);
    expect(Math.max(...batches.map((b) => b.n))).toBe(BATCH_MAX);
    expect(batches.length).toBeGreaterThanOrEqual(2);

    // Per resource, each event names the previous one on it (0 for the first).
    const { rows: events } = await pool.query('SELECT seq::int, resource_ids, prev_seqs FROM events ORDER BY seq');
    expect(storedChains(events).broken).toEqual([]);

    // Every live subscriber gets all of them, first deliveries in seq order, chains unbroken, at the feed's seqs.
    const feedSeqs = feed.filter((e) => e.type === 'hold.created').map((e) => e.seq);
    for (const [i, s] of subscribers.entries()) {
      await waitFor(() => new Set(s.received.filter((r) => r.type === 'hold.created').map((r) => r.payload.hold.id)).size === N, 10_000, `all ${N} hold.created live on subscriber ${i}`);
      const order = checkOrderAndChains(s.received, starts[i]!);
      expect(order.outOfOrder, `subscriber ${i}`).toEqual([]);
      expect(order.broken, `subscriber ${i}`).toEqual([]);
      expect([...new Set(s.received.filter((r) => r.type === 'hold.created').map((r) => r.seq))]).toEqual(feedSeqs);
    }
  }, 60_000);
});
