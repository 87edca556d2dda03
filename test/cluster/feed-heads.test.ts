/**
 * The decoder's bounds on what it numbers ahead of storing (server/db/feed.ts),
 * lowered on one node: it keeps at most 2 resource heads in memory, letting go
 * of those already stored and reading them again when a resource comes back
 * (every event still names its resource's previous one); and it numbers at
 * most 3 transactions ahead of a store that cannot finish, then waits for it.
 */
import pg from 'pg';
import type { Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveAll, readFeedUntil, storedChains } from '../helpers/feed';
import { connect } from '../helpers/live';
import { futureWeekday, isolatedDatabase, newTenant, startNode, waitFor, type TestNode } from '../helpers/node';

const MAX_AHEAD = 3;
/** The decoder's warnings (a restart says why): none is expected here. */
const warnings: string[] = [];
const log = { info() {}, debug() {}, error: (o: unknown, m?: string) => void warnings.push(`${m ?? ''} ${JSON.stringify(o)}`), warn: (o: unknown, m?: string) => void warnings.push(`${m ?? ''} ${JSON.stringify(o)}`) };
const sockets: Socket[] = [];

let db: Awaited<ReturnType<typeof isolatedDatabase>>;
let node: TestNode;
let pool: pg.Pool;

beforeAll(async () => {
  db = await isolatedDatabase();
  node = await startNode({ DATABASE_URL: db.url }, { feedMaxHeads: 2, feedMaxAhead: MAX_AHEAD, log });
  pool = new pg.Pool({ connectionString: db.url, max: 2 });
});
afterAll(async () => {
  for (const s of sockets) s.disconnect();
  await node?.stop();
  await pool?.end();
  await db?.drop();
});

describe('resource heads past the decoder\'s bound', () => {
  it('reads the heads it let go again: every event names its resource\'s previous one', async () => {
    const tenant = await newTenant(node);
    const rooms: { id: string }[] = [];
    for (let i = 0; i < 6; i++) rooms.push(await tenant.newResource({ capacity: 50 }));
    const day = futureWeekday(5);
    const ids: string[] = [];
    // Round robin over 6 rooms, first one by one (each batch stored before the next), then 30 at once.
    for (let i = 0; i < 12; i++) {
      const r = await tenant.api('POST', '/v1/holds', { resourceIds: [rooms[i % 6]!.id], start: `${day}T09:00:00Z`, end: `${day}T10:00:00Z` });
      expect(r.status).toBe(201);
      ids.push(r.body.id);
    }
    const burst = await Promise.all(Array.from({ length: 30 }, (_, i) => tenant.api('POST', '/v1/holds', {
      resourceIds: i % 4 === 0 ? [rooms[i % 6]!.id, rooms[(i + 1) % 6]!.id] : [rooms[i % 6]!.id], start: `${day}T10:00:00Z`, end: `${day}T11:00:00Z`,
    })));
    expect(burst.map((r) => r.status)).toEqual(Array(30).fill(201));
    ids.push(...burst.map((r) => r.body.id));
    await readFeedUntil(node.url, tenant.key, { until: (ev) => haveAll(ev, 'hold.created', ids), timeoutMs: 10_000 });

    const { rows } = await pool.query('SELECT seq::int, resource_ids, prev_seqs FROM events ORDER BY seq');
    const { heads: head, broken } = storedChains(rows);
    expect(broken).toEqual([]);
    // Heads were read while stores were in flight, and none of those reads was taken for another decoder's work.
    expect(warnings.filter((w) => w.includes('decoder'))).toEqual([]);
    expect(rows.map((r) => r.seq)).toEqual(rows.map((_, i) => i + 1));
    // The stored heads agree with the events.
    const { rows: heads } = await pool.query('SELECT resource_id, seq::int FROM feed_resource_heads WHERE resource_id = ANY($1::uuid[])', [rooms.map((r) => r.id)]);
    expect(new Map(heads.map((h) => [h.resource_id, h.seq]))).toEqual(new Map(rooms.map((r) => [r.id, head.get(r.id)])));
  });

  it('numbers at most 3 transactions ahead of a store that cannot finish, then waits; all go out in order once it does', async () => {
    const tenant = await newTenant(node);
    const room = await tenant.newResource({ capacity: 50 });
    const day = futureWeekday(6);
    const live = await connect(node.url, tenant.key, sockets);
    const start = (await live.call('subscribe', { resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:59:00Z` })).seq as number;
    const created = () => live.received.filter((r) => r.type === 'hold.created');
    const lock = await pool.connect();
    let locked = true;
    try {
      // The decoder's INSERT INTO events waits behind this lock: its stores cannot finish.
      await lock.query('BEGIN');
      await lock.query('LOCK TABLE events IN SHARE MODE');
      for (let i = 0; i < 8; i++) {
        const r = await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T${String(8 + i).padStart(2, '0')}:00:00Z`, end: `${day}T${String(9 + i).padStart(2, '0')}:00:00Z` });
        expect(r.status).toBe(201);
      }
      await waitFor(() => created().length >= 1, 5_000, 'the first holds live while they cannot be stored');
      await new Promise((r) => setTimeout(r, 1_000));
      // One batch in the blocked store, at most MAX_AHEAD numbered behind it (each hold came alone: a batch of one).
      const whileBlocked = created().length;
      expect(whileBlocked).toBeGreaterThanOrEqual(1);
      expect(whileBlocked).toBeLessThanOrEqual(1 + MAX_AHEAD);
      await lock.query('COMMIT');
      locked = false;
    } finally {
      if (locked) await lock.query('ROLLBACK').catch(() => {});
      lock.release();
    }
    await waitFor(() => created().length === 8, 10_000, 'all 8 holds live once the store goes on');
    const seqs = created().map((r) => r.seq as number);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(seqs[0]).toBeGreaterThan(start);
  });
});
