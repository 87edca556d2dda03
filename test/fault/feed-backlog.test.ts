/**
 * The feed publisher's in-memory backlog bound, gone past: the decoding node
 * reaches Redis through a proxy the test cuts, so its publisher cannot emit
 * (it waits for the bus) while it keeps storing every commit. Its bound is
 * lowered to 100 events (the `feedMaxUnsent` hook; production keeps
 * 20,000), and three times that many commit during the outage: the backlog
 * is dropped from memory (the node says so) and read back from the events
 * table once the proxy lets the node reach Redis again. Every event then
 * reaches the live subscribers on both nodes, exactly once, first
 * deliveries in seq order, per-resource chains unbroken, at the feed's seqs.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { Socket } from 'socket.io-client';
import type { Logger } from '../../server/core/ports';
import { haveAll, missing, oneToOne, readFeedUntil } from '../helpers/feed';
import { checkOrderAndChains, connect, type LiveConnection } from '../helpers/live';
import { client, futureWeekday, isolatedDatabase, newTenant, startNode, waitFor, type TestNode } from '../helpers/node';
import { isFeedDecoder } from '../helpers/process';
import { redisProxy } from '../helpers/redis-proxy';

/** The publisher's in-memory bound on this test's decoder. */
const MAX_UNSENT = 100;
const pad = (n: number) => String(n).padStart(2, '0');

/** A logger that keeps what the node says (for the backlog warning) and drops it otherwise. */
function recordingLog() {
  const lines: { level: string; obj: unknown; msg?: string }[] = [];
  const at = (level: string) => (obj: object | string, msg?: string) => void lines.push({ level, obj, msg: typeof obj === 'string' ? obj : msg });
  const log: Logger = { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') };
  return { log, lines };
}

/** A gauge of the node's /metrics. */
async function gauge(url: string, name: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
}

let db: Awaited<ReturnType<typeof isolatedDatabase>>;
let proxy: Awaited<ReturnType<typeof redisProxy>>;
let decoder: TestNode;
let other: TestNode;
const nodes: TestNode[] = [];
const sockets: Socket[] = [];
const said = recordingLog();

beforeAll(async () => {
  db = await isolatedDatabase();
  proxy = await redisProxy(inject('redisUrl'));
  // The decoder reaches Redis only through the proxy; the other node directly, and it never decodes.
  decoder = await startNode({ DATABASE_URL: db.url, REDIS_URL: proxy.url, NODE_ID: 'backlog-decoder' }, { feedMaxUnsent: MAX_UNSENT, log: said.log });
  nodes.push(decoder);
  await waitFor(() => isFeedDecoder(decoder.url), 10_000, 'the first node decoding the feed');
  other = await startNode({ DATABASE_URL: db.url, REDIS_URL: inject('redisUrl'), NODE_ID: 'backlog-other' }, { breakPublish: true });
  nodes.push(other);
});

afterAll(async () => {
  for (const s of sockets) s.disconnect();
  proxy?.restore();
  for (const n of nodes) await n.stop().catch(() => {});
  await proxy?.close();
  await db?.drop();
});

describe('the publisher backlog bound', () => {
  it('past its in-memory bound during a bus outage, reads the backlog back from the table: every event reaches live subscribers once, in seq order', async () => {
    const tenant = await newTenant(other, 'feed-backlog');
    const rooms = await Promise.all(Array.from({ length: 3 }, () => tenant.newResource({ capacity: 50 })));
    const day = futureWeekday(6);
    const range = { resourceIds: rooms.map((r) => r.id), from: `${day}T00:00:00Z`, to: `${day}T23:59:00Z` };
    const api = client(other.url, tenant.key);
    const hold = (i: number) => api('POST', '/v1/holds', {
      // Every fourth spans two rooms, so one event moves two chains.
      resourceIds: i % 4 === 0 ? [rooms[i % 3]!.id, rooms[(i + 1) % 3]!.id] : [rooms[i % 3]!.id],
      start: `${day}T${pad(i % 23)}:00:00Z`, end: `${day}T${pad((i % 23) + 1)}:00:00Z`,
    });
    const subscribers: [string, LiveConnection, number][] = [];
    for (const [name, node] of [['on the decoding node', decoder], ['on the other node', other]] as const) {
      const live = await connect(node.url, tenant.key, sockets);
      const sub = await live.call('subscribe', range);
      expect(sub.ok, JSON.stringify(sub)).toBe(true);
      subscribers.push([name, live, sub.seq]);
    }
    const warmup = await hold(0);
    expect(warmup.status).toBe(201);
    for (const [name, live] of subscribers) {
      await waitFor(() => live.received.some((r) => r.type === 'hold.created' && r.payload.hold.id === warmup.body.id), 5_000, `fan-out ${name} before the outage`);
    }

    // The decoder loses Redis; the other node keeps it and takes the commits.
    proxy.cut();
    await waitFor(async () => (await fetch(`${decoder.url}/readyz`)).status === 503, 5_000, 'the decoding node noticing Redis is gone');
    const N = 3 * MAX_UNSENT;
    const ids: string[] = [];
    for (let i = 1; i <= N; i += 10) {
      const batch = await Promise.all(Array.from({ length: Math.min(10, N + 1 - i) }, (_, j) => hold(i + j)));
      for (const r of batch) {
        expect(r.status, r.text).toBe(201);
        ids.push(r.body.id);
      }
    }
    // The decoder stores them all (the feed has them) but emits none: its backlog passes the bound.
    const feed = await readFeedUntil(other.url, tenant.key, {
      until: (ev) => haveAll(ev, 'hold.created', ids), describe: (ev) => `${missing(ev, 'hold.created', ids).length} hold.created not stored`, timeoutMs: 15_000,
    });
    expect(oneToOne(feed, 'hold.created', [warmup.body.id, ...ids])).toEqual([]);
    const backlog = await gauge(decoder.url, 'slotwise_feed_unpublished_events');
    expect(backlog).toBeGreaterThanOrEqual(N);
    const dropped = said.lines.filter((l) => l.level === 'warn' && /in-memory bound/.test(l.msg ?? ''));
    console.log(`feed-backlog: ${backlog} events stored and not emitted (bound ${MAX_UNSENT}); the in-memory backlog was dropped ${dropped.length} time(s)`);
    expect(dropped.length).toBeGreaterThanOrEqual(1);
    const outageIds = new Set(ids);
    for (const [name, live] of subscribers) {
      expect(live.received.filter((r) => r.type === 'hold.created' && outageIds.has(r.payload.hold.id)), `nothing emitted ${name} during the outage`).toEqual([]);
    }

    // Redis is reachable again: the backlog goes out, from the table, to every subscriber.
    const back = Date.now();
    proxy.restore();
    const feedSeqs = feed.filter((e) => e.type === 'hold.created').map((e) => e.seq);
    for (const [name, live, start] of subscribers) {
      const got = () => live.received.filter((r) => r.type === 'hold.created' && (outageIds.has(r.payload.hold.id) || r.payload.hold.id === warmup.body.id));
      await waitFor(() => new Set(got().map((r) => r.payload.hold.id)).size === N + 1, 15_000, `all ${N + 1} hold.created ${name}`);
      console.log(`feed-backlog: the subscriber ${name} had all ${N} outage events ${Date.now() - back} ms after Redis was reachable again`);
      const seqs = got().map((r) => r.seq);
      expect(seqs, `each hold.created once ${name}`).toHaveLength(N + 1);
      expect(seqs, `in seq order, at the feed's seqs, ${name}`).toEqual(feedSeqs);
      const { outOfOrder, broken } = checkOrderAndChains(live.received, start);
      expect(outOfOrder, name).toEqual([]);
      expect(broken, name).toEqual([]);
    }
    await waitFor(async () => (await gauge(decoder.url, 'slotwise_feed_unpublished_events')) === 0, 5_000, 'the backlog emptied');
  }, 60_000);
});
