/**
 * The event feed and Socket.IO resync are bounded by bytes: events whose
 * data is ~60 KiB each (booking metadata) end a feed page early, with
 * `lastSeq` the last event sent so nothing is skipped, and make resync ask
 * for a snapshot once the missed events pass its budget.
 */
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_FEED_MAX_BYTES, DEFAULT_RESYNC_MAX_BYTES, eventService } from '../../server/core/services/events';
import { PgStore } from '../../server/db/store';
import { futureWeekday, newTenant, startNode, waitFor, type TestNode } from '../helpers/node';

let t: TestNode;
const sockets: Socket[] = [];
beforeAll(async () => {
  t = await startNode();
});
afterAll(async () => {
  for (const s of sockets) s.disconnect();
  await t.stop();
});

const PAD = 60 * 1024;
const dataBytes = (events: { data: unknown }[]) => events.reduce((n, e) => n + Buffer.byteLength(JSON.stringify(e.data)), 0);

/** A tenant with one resource (capacity 500) and `n` bookings on one slot, each carrying ~60 KiB of metadata. */
async function bigEvents(n: number, tenant?: Awaited<ReturnType<typeof newTenant>>, resourceId?: string) {
  tenant ??= await newTenant(t);
  resourceId ??= (await tenant.newResource({ capacity: 500 })).id;
  const day = futureWeekday();
  for (let i = 0; i < n; i += 10) {
    const batch = await Promise.all(Array.from({ length: Math.min(10, n - i) }, (_, j) => tenant.api('POST', '/v1/bookings', {
      resourceIds: [resourceId], start: `${day}T10:00:00Z`, end: `${day}T11:00:00Z`,
      customer: { name: 'Ada', email: 'ada@example.com' }, metadata: { n: i + j, pad: 'x'.repeat(PAD) },
    })));
    for (const b of batch) expect(b.status, b.text.slice(0, 200)).toBe(201);
  }
  // The feed stores events a moment after their commit; a feed read waits until it has them all (or answers
  // 503 feed.wait when the decoder has not caught up within its wait, as it may on a loaded machine: read again).
  await waitFor(async () => (await tenant.api('GET', '/v1/events?after=0&limit=1')).status === 200, 30_000, 'the feed to hold the set-up events');
  return { tenant, resourceId };
}

async function connect(token: string) {
  const socket = io(t.url, { auth: { token }, transports: ['websocket'], reconnection: false });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  return (event: string, payload: unknown) => socket.timeout(10_000).emitWithAck(event, payload) as Promise<any>;
}

describe('event byte budgets', () => {
  it('ends a feed page at the byte budget; resuming from lastSeq returns every event exactly once', async () => {
    const count = Math.ceil(DEFAULT_FEED_MAX_BYTES / PAD) + 10;
    const { tenant } = await bigEvents(count);
    const seen: number[] = [];
    let after = 0;
    let pages = 0;
    for (;;) {
      const res = await tenant.api('GET', `/v1/events?after=${after}&limit=1000`);
      expect(res.status).toBe(200);
      const { events, lastSeq } = res.body;
      if (events.length === 0) {
        expect(lastSeq).toBe(after);
        break;
      }
      pages++;
      expect(dataBytes(events)).toBeLessThanOrEqual(DEFAULT_FEED_MAX_BYTES);
      expect(res.text.length).toBeLessThan(DEFAULT_FEED_MAX_BYTES + 64 * 1024);
      expect(lastSeq).toBe(events[events.length - 1].seq);
      seen.push(...events.map((e: any) => e.seq));
      after = lastSeq;
    }
    expect(pages).toBeGreaterThanOrEqual(2);
    expect(new Set(seen).size).toBe(seen.length);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    const { rows } = await t.pool.query('SELECT seq FROM events WHERE tenant_id = $1 AND seq IS NOT NULL ORDER BY seq', [tenant.id]);
    expect(seen).toEqual(rows.map((r) => Number(r.seq)));
  });

  it('always sends the first event of a page, even when it alone passes the budget', async () => {
    const { tenant } = await bigEvents(3);
    const small = eventService({ store: new PgStore(t.node.db) }, { feedMaxBytes: 1_000 });
    const { rows } = await t.pool.query(`SELECT seq FROM events WHERE tenant_id = $1 AND type = 'booking.confirmed' ORDER BY seq`, [tenant.id]);
    const first = Number(rows[0].seq);
    const page = await small.feed(tenant.id, first - 1, 1000);
    expect(page.events.map((e) => e.seq)).toEqual([first]);
    expect(page.lastSeq).toBe(first);
    const two = await eventService({ store: new PgStore(t.node.db) }, { feedMaxBytes: 2 * PAD + 4_000 }).feed(tenant.id, first - 1, 1000);
    expect(two.events).toHaveLength(2);
  });

  it('answers resync with the missed events under the budget, and snapshotRequired past it', async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource({ capacity: 500 });
    const call = await connect(tenant.key);
    const day = futureWeekday();
    const sub = await call('subscribe', { resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:00:00Z` });
    expect(sub.ok).toBe(true);

    await bigEvents(5, tenant, room.id);
    const few = await call('resync', { afterSeq: sub.seq });
    expect(few.ok).toBe(true);
    expect(few.events).toHaveLength(5);
    expect(few.events.every((e: any) => e.type === 'booking.confirmed')).toBe(true);

    await bigEvents(Math.ceil(DEFAULT_RESYNC_MAX_BYTES / PAD) + 5, tenant, room.id);
    const many = await call('resync', { afterSeq: sub.seq });
    expect(many).toEqual({ ok: true, snapshotRequired: true });
    // From a recent position the missed events fit again.
    const last = Math.max(...few.events.map((e: any) => e.seq));
    const { rows } = await t.pool.query('SELECT max(seq) AS seq FROM events WHERE tenant_id = $1', [tenant.id]);
    const recent = await call('resync', { afterSeq: Number(rows[0].seq) - 3 });
    expect(recent.ok).toBe(true);
    expect(recent.events.length).toBeGreaterThan(0);
    expect(recent.events.length).toBeLessThanOrEqual(3);
    expect(recent.events.every((e: any) => e.seq > last)).toBe(true);
  });
});
