/**
 * The event feed's promises across two nodes (PRODUCT.md §2 Event, §3.3):
 * first deliveries in seq order on every node while both nodes commit; each
 * live event naming its resource's previous position, so a subscriber that
 * misses one can tell and resync exactly; and an unrelated transaction left
 * open holding back no one's events; live delivery not waiting for the
 * events' rows to be stored.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Socket } from 'socket.io-client';
import { client, futureWeekday, newTenant, startCluster, waitFor } from '../helpers/node';
import { readFeedUntil } from '../helpers/feed';
import { checkOrderAndChains, connect as connectTo, type Received } from '../helpers/live';

const pad = (n: number) => String(n).padStart(2, '0');
let cluster: Awaited<ReturnType<typeof startCluster>>;
const sockets: Socket[] = [];
const connect = (url: string, token: string, lose?: (r: Received) => boolean) => connectTo(url, token, sockets, { lose });

beforeAll(async () => {
  cluster = await startCluster(2);
});
afterAll(async () => {
  for (const s of sockets) s.disconnect();
  await cluster.stop();
});

describe('the event feed across two nodes', () => {
  it('delivers first in seq order on both nodes, each message naming its resource\'s previous one, while both nodes commit at once', async () => {
    const [a, b] = cluster.nodes as [any, any];
    const tenant = await newTenant(a);
    const rooms = await Promise.all(Array.from({ length: 3 }, () => tenant.newResource({ capacity: 100 })));
    const day = futureWeekday(6);
    const sub = { resourceIds: rooms.map((r) => r.id), from: `${day}T00:00:00Z`, to: `${day}T23:59:00Z` };
    const onA = await connect(a.url, tenant.key);
    const onB = await connect(b.url, tenant.key);
    const startA = (await onA.call('subscribe', sub)).seq as number;
    const startB = (await onB.call('subscribe', sub)).seq as number;

    const viaA = client(a.url, tenant.key);
    const viaB = client(b.url, tenant.key);
    const N = 120;
    const answers = await Promise.all(Array.from({ length: N }, (_, i) => {
      // Some holds span two rooms, so one event moves two chains.
      const resourceIds = i % 5 === 0 ? [rooms[i % 3]!.id, rooms[(i + 1) % 3]!.id] : [rooms[i % 3]!.id];
      const hour = 8 + (i % 10);
      return (i % 2 ? viaA : viaB)('POST', '/v1/holds', { resourceIds, start: `${day}T${pad(hour)}:00:00Z`, end: `${day}T${pad(hour + 1)}:00:00Z` });
    }));
    expect(answers.map((r) => r.status).filter((s) => s !== 201)).toEqual([]);
    const ids = new Set(answers.map((r) => r.body.id as string));

    for (const [name, live, start] of [['A', onA, startA], ['B', onB, startB]] as const) {
      await waitFor(() => live.received.filter((r) => r.type === 'hold.created' && ids.has(r.payload.hold.id)).length === N, 10_000, `all ${N} hold.created on node ${name}`);
      const { outOfOrder, broken } = checkOrderAndChains(live.received, start);
      expect(outOfOrder, `out-of-order first deliveries on node ${name}`).toEqual([]);
      expect(broken, `broken prevSeq chains on node ${name}`).toEqual([]);
      // Each hold's availability.changed comes with it (same seq), from the seats the event carries.
      const created = live.received.filter((r) => r.type === 'hold.created' && ids.has(r.payload.hold.id));
      for (const c of created) {
        const changes = live.received.filter((r) => r.type === 'availability.changed' && r.seq === c.seq);
        expect(changes.map((x) => x.payload.resourceId).sort()).toEqual([...c.payload.hold.resourceIds].sort());
      }
    }
    // The REST feed holds the same events at the same positions.
    const feed = await readFeedUntil(a.url, tenant.key, { after: startA, until: (ev) => ev.filter((e) => e.type === 'hold.created').length >= N });
    const liveSeqs = onB.received.filter((r) => r.type === 'hold.created' && ids.has(r.payload.hold.id)).map((r) => r.seq).sort((x, y) => x - y);
    expect(feed.filter((e) => e.type === 'hold.created').map((e) => e.seq)).toEqual(liveSeqs);
  });

  it('times each event\'s stages after commit on the decoding node (slotwise_feed_delay_seconds), and only there', async () => {
    const [a] = cluster.nodes as [any, any];
    const counts = async () => Promise.all(cluster.nodes.map(async (n: any) => {
      const text = await (await fetch(`${n.url}/metrics`)).text();
      const count = (stage: string) => Number(new RegExp(`^slotwise_feed_delay_seconds_count\\{stage="${stage}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
      const sum = (stage: string) => Number(new RegExp(`^slotwise_feed_delay_seconds_sum\\{stage="${stage}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? 0);
      return { decoding: /^slotwise_feed_decoder 1$/m.test(text), decoded: count('decoded'), stored: count('stored'), emitted: count('emitted'), storedSum: sum('stored') };
    }));
    const before = await counts();
    const tenant = await newTenant(a);
    const room = await tenant.newResource({ capacity: 100 });
    const day = futureWeekday(9);
    const N = 10;
    const answers = await Promise.all(Array.from({ length: N }, (_, i) => tenant.api('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T${pad(8 + i)}:00:00Z`, end: `${day}T${pad(9 + i)}:00:00Z` })));
    expect(answers.map((r) => r.status)).toEqual(Array(N).fill(201));
    let after = before;
    await waitFor(async () => {
      after = await counts();
      return after.some((n, i) => n.emitted - before[i]!.emitted >= N && n.stored - before[i]!.stored >= N);
    }, 10_000, 'the decoder to time the holds\' events');
    const decoder = after.findIndex((n) => n.decoding);
    expect(decoder, 'one node decodes').toBeGreaterThanOrEqual(0);
    after.forEach((n, i) => {
      const grew = { decoded: n.decoded - before[i]!.decoded, stored: n.stored - before[i]!.stored, emitted: n.emitted - before[i]!.emitted };
      // The resource's creation wrote an event too (resource.created), and other events may be timed meanwhile: at least N.
      if (i === decoder) for (const g of Object.values(grew)) expect(g).toBeGreaterThanOrEqual(N);
      else expect(grew, 'a standby node times nothing').toEqual({ decoded: 0, stored: 0, emitted: 0 });
    });
    const d = after[decoder]!;
    expect(d.storedSum / d.stored, 'mean seconds from commit to stored').toBeGreaterThanOrEqual(0);
    expect(d.storedSum / d.stored).toBeLessThan(60);
  });

  it('a subscriber that misses an event tells from the next one, and resync returns exactly what it missed', async () => {
    const [a, b] = cluster.nodes as [any, any];
    const tenant = await newTenant(a);
    const room = await tenant.newResource({ capacity: 5 });
    const day = futureWeekday(8);
    // This subscriber "loses" the first hold's messages, as if the bus dropped them.
    let lostSeq = -1;
    const live = await connect(b.url, tenant.key, (r) => {
      if (lostSeq === -1 && r.type === 'hold.created') lostSeq = r.seq;
      return r.seq === lostSeq;
    });
    const start = (await live.call('subscribe', { resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:59:00Z` })).seq as number;
    const hold = (h: number) => tenant.api('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T${pad(h)}:00:00Z`, end: `${day}T${pad(h + 1)}:00:00Z` });
    const first = await hold(9);
    const second = await hold(10);
    expect([first.status, second.status]).toEqual([201, 201]);
    const next = (await waitFor(() => live.received.find((r) => r.type === 'hold.created'), 5_000, 'the second hold.created'))!;
    expect(next.payload.hold.id).toBe(second.body.id);
    expect(live.received.some((r) => r.payload?.hold?.id === first.body.id)).toBe(false);
    // The gap shows: the resource's previous position is one this subscriber never saw.
    const seenBefore = start;
    expect(next.payload.prevSeqs[room.id]).toBe(lostSeq);
    expect(lostSeq).toBeGreaterThan(seenBefore);
    const resync = await live.call('resync', { afterSeq: seenBefore });
    expect(resync.ok).toBe(true);
    const feed = await readFeedUntil(a.url, tenant.key, { after: seenBefore, until: (ev) => ev.some((e) => e.seq === next.seq) });
    // Exactly the room's events after what it had seen: the lost one, then the one that revealed the gap.
    expect(resync.events.map((e: any) => e.seq)).toEqual(feed.filter((e) => e.resourceIds.includes(room.id)).map((e) => e.seq));
    expect(resync.events.map((e: any) => e.hold?.id)).toEqual([first.body.id, second.body.id]);
  });

  it('an unrelated writing transaction left open holds back no live event and no feed read', async () => {
    const [a, b] = cluster.nodes as [any, any];
    const tenant = await newTenant(a);
    const other = await newTenant(a, 'other tenant');
    const room = await tenant.newResource({ capacity: 5 });
    const elsewhere = await other.newResource({ capacity: 1 });
    const day = futureWeekday(9);
    const live = await connect(b.url, tenant.key);
    const start = (await live.call('subscribe', { resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:59:00Z` })).seq as number;
    const open = await a.pool.connect();
    try {
      // A writing transaction (it has a transaction id and a row lock) that stays open while others commit.
      await open.query('BEGIN');
      await open.query('UPDATE resources SET name = name WHERE id = $1', [elsewhere.id]);
      const holds = await Promise.all([9, 10, 11].map((h) =>
        client(a.url, tenant.key)('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T${pad(h)}:00:00Z`, end: `${day}T${pad(h + 1)}:00:00Z` })));
      expect(holds.map((r) => r.status)).toEqual([201, 201, 201]);
      const ids = holds.map((r) => r.body.id);
      await waitFor(() => ids.every((id) => live.received.some((r) => r.type === 'hold.created' && r.payload.hold.id === id)), 5_000, 'live hold.created while the transaction is open');
      const feed = await readFeedUntil(b.url, tenant.key, { after: start, timeoutMs: 5_000, until: (ev) => ids.every((id) => ev.some((e) => e.data.hold?.id === id)) });
      expect(feed.filter((e) => e.type === 'hold.created')).toHaveLength(3);
      // It was open all along: everything above arrived without waiting for it.
      const { rows } = await open.query('SELECT pg_current_xact_id_if_assigned() IS NOT NULL AS writing');
      expect(rows[0].writing).toBe(true);
    } finally {
      await open.query('ROLLBACK').catch(() => {});
      open.release();
    }
  });
  it('delivers live as soon as the decoder has numbered the events, before their rows (or earlier ones) are stored, at the seqs they are then stored with', async () => {
    const [a, b] = cluster.nodes as [any, any];
    const tenant = await newTenant(a);
    const room = await tenant.newResource({ capacity: 5 });
    const day = futureWeekday(11);
    const live = await connect(b.url, tenant.key);
    await live.call('subscribe', { resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:59:00Z` });
    const lock = await a.pool.connect();
    let locked = true;
    try {
      // The decoder's INSERT INTO events waits behind this lock: its store cannot commit.
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE events IN SHARE MODE');
      const hold = await client(a.url, tenant.key)('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T09:00:00Z`, end: `${day}T10:00:00Z` });
      expect(hold.status).toBe(201);
      await waitFor(() => live.received.some((r) => r.type === 'hold.created' && r.payload.hold.id === hold.body.id), 5_000, 'hold.created live while its row cannot be stored');
      const seq = live.received.find((r) => r.type === 'hold.created' && r.payload.hold.id === hold.body.id)!.seq;
      const { rows } = await a.pool.query('SELECT count(*)::int AS n FROM events WHERE seq = $1', [seq]);
      expect(rows[0].n).toBe(0);
      // Numbering does not wait for the store before it either: a later hold is delivered while the first one's
      // store is still blocked, after it, naming it as the room's previous event.
      const second = await client(a.url, tenant.key)('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T10:00:00Z`, end: `${day}T11:00:00Z` });
      expect(second.status).toBe(201);
      await waitFor(() => live.received.some((r) => r.type === 'hold.created' && r.payload.hold.id === second.body.id), 5_000, 'the second hold.created live while the first cannot be stored');
      const next = live.received.find((r) => r.type === 'hold.created' && r.payload.hold.id === second.body.id)!;
      expect(next.seq).toBeGreaterThan(seq);
      expect(next.payload.prevSeqs).toEqual({ [room.id]: seq });
      expect((await a.pool.query('SELECT count(*)::int AS n FROM events WHERE seq >= $1', [seq])).rows[0].n).toBe(0);
      await lock.query('COMMIT');
      locked = false;
      // Stored once the lock is gone, at the seqs they were delivered with.
      const feed = await readFeedUntil(b.url, tenant.key, { after: seq - 1, timeoutMs: 10_000, until: (ev) => ev.some((e) => e.data.hold?.id === second.body.id) });
      expect(feed.find((e) => e.data.hold?.id === hold.body.id)!.seq).toBe(seq);
      expect(feed.find((e) => e.data.hold?.id === second.body.id)!.seq).toBe(next.seq);
    } finally {
      if (locked) await lock.query('ROLLBACK').catch(() => {});
      lock.release();
    }
  });
  it('acknowledges the slot exactly at the end of what it stored (never one past it), and past WAL without events once idle', async () => {
    const [a] = cluster.nodes as [any];
    const tenant = await newTenant(a);
    const room = await tenant.newResource({ capacity: 5 });
    const day = futureWeekday(12);
    const slot = async () => (await a.pool.query(
      `SELECT s.confirmed_flush_lsn::text AS acked, (s.confirmed_flush_lsn - '0/0'::pg_lsn) % 8 AS misaligned,
              s.confirmed_flush_lsn >= c.lsn AS past_cursor
       FROM pg_replication_slots s, feed_cursor c WHERE s.database = current_database() AND c.id`)).rows[0];
    const hold = await client(a.url, tenant.key)('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T09:00:00Z`, end: `${day}T10:00:00Z` });
    expect(hold.status).toBe(201);
    await waitFor(async () => (await a.pool.query("SELECT 1 FROM events WHERE type = 'hold.created' AND data->'hold'->>'id' = $1", [hold.body.id])).rowCount, 10_000, 'hold.created stored');
    await waitFor(async () => (await slot()).past_cursor, 10_000, 'the slot acknowledged up to the stored cursor');
    // Postgres resumes a slot by skipping every transaction whose commit record starts before the acknowledged
    // position. A commit's end (what is stored) is where the next record starts, always on an 8-byte boundary: one
    // byte past it would skip a transaction committed right after, and lose its events after a restart.
    expect(Number((await slot()).misaligned), 'acknowledged position not on a record boundary').toBe(0);

    // WAL with no event in it (a table the feed does not publish): the idle decoder acknowledges it too, so the slot
    // keeps no WAL back and a fast shutdown of Postgres (whose WAL sender waits for the client to confirm everything
    // it sent) does not wait for the sender's timeout.
    await a.pool.query('CREATE TABLE IF NOT EXISTS feed_ack_probe (n int); INSERT INTO feed_ack_probe VALUES (1)');
    const { rows } = await a.pool.query('SELECT pg_current_wal_flush_lsn()::text AS lsn');
    await waitFor(async () => (await a.pool.query('SELECT confirmed_flush_lsn >= $1::pg_lsn AS past FROM pg_replication_slots WHERE database = current_database()', [rows[0].lsn])).rows[0].past,
      10_000, `the slot acknowledged past ${rows[0].lsn}`);
    expect(Number((await slot()).misaligned), 'acknowledged position not on a record boundary').toBe(0);
  });
});
