/**
 * Fault: the Redis of a two-node cluster stops and comes back on the same
 * port. REST keeps working on both nodes throughout, live fan-out across nodes
 * resumes within seconds, and two organizers who edited a group booking on
 * different nodes during the outage converge once Redis is back. Every hold
 * acknowledged during the outage is in the event feed exactly once and reaches
 * a live subscriber on each node (so on the node that did not take it), live
 * or through resync.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { awaitLiveOrResync, oneToOne, haveAll, missing, readFeedUntil } from '../helpers/feed';
import { client, futureWeekday, invariantViolations, isolatedDatabase, newTenant, waitFor, type TestNode } from '../helpers/node';
import { killAll, liveClient, ownRedis, spawnNode, watchPool, type NodeProcess, type RedisProcess } from '../helpers/process';

let db: Awaited<ReturnType<typeof isolatedDatabase>> | null = null;
let pool: pg.Pool | null = null;
let redis: RedisProcess;
let a: NodeProcess;
let b: NodeProcess;
const providers: WebsocketProvider[] = [];
const sockets: { socket: { disconnect(): void } }[] = [];

beforeAll(async () => {
  db = await isolatedDatabase();
  pool = watchPool(db.url);
  redis = await ownRedis();
  const env = { DATABASE_URL: db.url, REDIS_URL: redis.url };
  [a, b] = await Promise.all([spawnNode('redis-a', env), spawnNode('redis-b', env)]);
}, 120_000);

afterAll(async () => {
  for (const p of providers) p.destroy();
  for (const s of sockets) s.socket.disconnect();
  await killAll();
  await pool?.end();
  await db?.drop();
});

/** A stock WebsocketProvider on a node for a token. */
function open(url: string, docName: string, token: string) {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(url.replace('http', 'ws') + '/yjs', docName, doc, {
    params: { token },
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  });
  providers.push(provider);
  return { doc, provider, synced: waitFor(() => provider.synced, 10_000, `sync of ${docName}`) };
}

/** JSON with object keys sorted: Y.Map key order differs between replicas. */
const canonical = (v: unknown): string =>
  JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).sort(([p], [q]) => p.localeCompare(q))) : x));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('Redis stops and comes back', () => {
  it('REST keeps working, fan-out resumes, and documents edited during the outage converge', async () => {
    const tenant = await newTenant(a as unknown as TestNode, 'redis-restart');
    const room = await tenant.newResource({ capacity: 50 });
    const day = futureWeekday(6);
    const apiA = client(a.url, tenant.key);
    const apiB = client(b.url, tenant.key);
    let hour = 0;
    const hold = (api: typeof apiA) => api('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T${String(hour % 23).padStart(2, '0')}:00:00Z`, end: `${day}T${String((hour++ % 23) + 1).padStart(2, '0')}:00:00Z` });

    // A live subscriber on each node, and two organizers on one group document, one per node.
    const live = await liveClient(b.url, tenant.key);
    const liveA = await liveClient(a.url, tenant.key);
    sockets.push(live, liveA);
    for (const l of [live, liveA]) {
      const sub = await l.call('subscribe', { resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:59:00Z` });
      expect(sub.ok).toBe(true);
    }
    const alice = await tenant.api('POST', '/v1/tokens', { userId: 'alice', name: 'Alice', role: 'organizer' });
    const carol = await tenant.api('POST', '/v1/tokens', { userId: 'carol', name: 'Carol', role: 'organizer' });
    const group = await client(a.url, alice.body.token)('POST', '/v1/group-bookings', {
      title: 'Outage offsite', resourceIds: [room.id], members: [{ userId: 'carol', role: 'organizer' }],
    });
    expect(group.status).toBe(201);
    const pa = open(a.url, group.body.docName, alice.body.token);
    const pb = open(b.url, group.body.docName, carol.body.token);
    await Promise.all([pa.synced, pb.synced]);
    const participants = (d: Y.Doc) => JSON.stringify(d.getMap('participants').toJSON());
    const addParticipant = (d: Y.Doc, name: string) => {
      const m = new Y.Map();
      m.set('name', name);
      m.set('email', `${name}@example.com`);
      d.getMap('participants').set(name, m);
    };
    addParticipant(pa.doc, 'before');
    await waitFor(() => participants(pb.doc).includes('before'), 5_000, 'edit before the outage reaches node B');

    // Fan-out works before the outage.
    const before = await hold(apiA);
    expect(before.status).toBe(201);
    await waitFor(() => live.received.some((e) => e.type === 'hold.created' && e.payload.hold.id === before.body.id), 5_000, 'hold.created on B before the outage');
    await waitFor(() => liveA.received.some((e) => e.type === 'hold.created' && e.payload.hold.id === before.body.id), 5_000, 'hold.created on A before the outage');
    // Where each subscriber would resync from: the last position it saw before the outage.
    const lastSeen = (l: typeof live) => Math.max(0, ...l.received.map((e) => e.seq).filter((x) => typeof x === 'number'));
    const resyncFromB = lastSeen(live);
    const resyncFromA = lastSeen(liveA);

    // Redis goes away.
    await redis.stop('SIGKILL');
    await waitFor(async () => (await apiA('GET', '/readyz')).status === 503 && (await apiB('GET', '/readyz')).status === 503, 5_000, 'both nodes notice Redis is gone');

    // REST keeps working on both nodes, fast.
    const acked: string[] = [];
    // The holds acknowledged while Redis was down, and the node that took each.
    const duringOutage = new Map<string, 'A' | 'B'>();
    for (let i = 0; i < 6; i++) {
      const t0 = Date.now();
      const r = await hold(i % 2 ? apiB : apiA);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(Date.now() - t0).toBeLessThan(2_000);
      acked.push(r.body.id);
      duringOutage.set(r.body.id, i % 2 ? 'B' : 'A');
    }
    // Both organizers edit while the nodes cannot talk.
    addParticipant(pa.doc, 'alice-offline');
    pb.doc.getMap('draft').set('title', 'Edited on B during the outage');
    addParticipant(pb.doc, 'carol-offline');
    await sleep(1_500);
    for (let i = 0; i < 2; i++) {
      const r = await hold(i % 2 ? apiB : apiA);
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      acked.push(r.body.id);
      duringOutage.set(r.body.id, i % 2 ? 'B' : 'A');
    }
    expect(a.alive() && b.alive()).toBe(true);

    // Redis comes back on the same port.
    await redis.start();
    await waitFor(async () => (await apiA('GET', '/readyz')).status === 200 && (await apiB('GET', '/readyz')).status === 200, 10_000, 'both nodes ready again');
    const back = Date.now();

    // Live fan-out from A to a subscriber on B resumes within 5 s.
    let resumedAt = 0;
    while (!resumedAt && Date.now() - back < 5_000) {
      const h = await hold(apiA);
      expect(h.status).toBe(201);
      acked.push(h.body.id);
      const got = await waitFor(() => live.received.some((e) => e.type === 'hold.created' && e.payload.hold.id === h.body.id), 500, 'fan-out').then(() => true, () => false);
      if (got) resumedAt = Date.now();
    }
    expect(resumedAt, 'fan-out resumed within 5 s of Redis coming back').toBeGreaterThan(0);

    // The documents converge without any further edit.
    const json = (d: Y.Doc) => canonical({ draft: d.getMap('draft').toJSON(), participants: d.getMap('participants').toJSON() });
    await waitFor(() => json(pa.doc) === json(pb.doc), 10_000, `documents converge: A=${json(pa.doc)} B=${json(pb.doc)}`);
    expect(Object.keys(pa.doc.getMap('participants').toJSON()).sort()).toEqual(['alice-offline', 'before', 'carol-offline']);
    expect(pa.doc.getMap('draft').get('title')).toBe('Edited on B during the outage');

    // Everything acknowledged is there; the feed has every hold; the invariants hold.
    const rows = await pool!.query('SELECT id FROM holds WHERE tenant_id = $1', [tenant.id]);
    const ids = new Set(rows.rows.map((r) => r.id));
    for (const id of acked) expect(ids.has(id)).toBe(true);
    expect(await invariantViolations(pool!, tenant.id)).toEqual([]);

    // The feed (which may lag its commits) has each hold exactly once: the outage ones, and no hold.created that was not acknowledged.
    const outageIds = [...duringOutage.keys()];
    const allHolds = [before.body.id, ...acked];
    const feed = await readFeedUntil(a.url, tenant.key, {
      until: (events) => haveAll(events, 'hold.created', allHolds),
      describe: (events) => `no hold.created yet for ${missing(events, 'hold.created', allHolds).join(', ')}`,
      timeoutMs: 10_000,
      settleMs: 200,
    });
    expect(oneToOne(feed, 'hold.created', allHolds)).toEqual([]);
    const feedSeq = new Map(feed.filter((e) => e.type === 'hold.created').map((e) => [e.data.hold.id as string, e.seq]));

    // Every outage hold reaches the subscriber on each node, so also the one on the node that did not take it:
    // live, or through resync from the last position the subscriber saw before the outage. Either way with its feed seq.
    for (const [who, l, from] of [['subscriber on B', live, resyncFromB], ['subscriber on A', liveA, resyncFromA]] as const) {
      const got = await awaitLiveOrResync(l, 'hold.created', outageIds, from, 10_000, who);
      for (const id of outageIds) {
        for (const [how, seq] of [['live', got.live.get(id)], ['resync', got.resynced.get(id)]] as const) {
          if (seq !== undefined) expect(seq, `${who}: ${how} seq of hold ${id} (taken on ${duringOutage.get(id)}) is its feed seq`).toBe(feedSeq.get(id));
        }
      }
      const liveCount = outageIds.filter((id) => got.live.has(id)).length;
      console.log(`redis-restart: ${who} got ${liveCount} of ${outageIds.length} outage holds live, the rest through resync`);
    }
    console.log(`redis-restart: fan-out resumed ${resumedAt - back} ms after Redis was back`);
  }, 120_000);
});
