/** Live fan-out across two nodes through Redis, resync, the relay after a failed publish, and socket commands. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { io, type Socket } from 'socket.io-client';
import { futureWeekday, invariantViolations, newTenant, startCluster, waitFor } from '../helpers/node';
import { connect as connectTo } from '../helpers/live';

let cluster: Awaited<ReturnType<typeof startCluster>>;
const sockets: Socket[] = [];
const connect = (url: string, token: string) => connectTo(url, token, sockets);

beforeAll(async () => {
  cluster = await startCluster(2);
});
afterAll(async () => {
  for (const s of sockets) s.disconnect();
  await cluster.stop();
});

const DOMAIN = ['hold.created', 'hold.released', 'hold.expired', 'booking.confirmed', 'booking.cancelled', 'booking.rescheduled'];

describe('live fan-out across nodes', () => {
  it('events made through node A reach a subscriber on node B in seq order with matching availability', async () => {
    const [a, b] = cluster.nodes as [any, any];
    const tenant = await newTenant(a);
    const room = await tenant.newResource({ capacity: 3 });
    const day = futureWeekday(3);
    const range = { start: `${day}T10:00:00Z`, end: `${day}T11:00:00Z` };
    const live = await connect(b.url, tenant.key);
    const sub = await live.call('subscribe', { resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:00:00Z` });
    expect(sub.ok).toBe(true);
    expect(typeof sub.seq).toBe('number');
    expect(sub.availability.resources[0].slots.find((s: any) => s.start.startsWith(`${day}T10:00`)).remaining).toBe(3);

    const h1 = await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], ...range, seats: 2 });
    await waitFor(() => live.received.some((e) => e.type === 'hold.created'), 5000, 'hold.created on B');
    const conf = await tenant.api('POST', `/v1/holds/${h1.body.id}/confirm`, { customer: { name: 'A', email: 'a@example.com' } });
    const h2 = await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], ...range, seats: 1 });
    await tenant.api('DELETE', `/v1/holds/${h2.body.id}`);
    await tenant.api('POST', `/v1/bookings/${conf.body.id}/cancel`, {});
    const h3 = await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], ...range, seats: 1, ttlSeconds: 1 });
    expect(h3.status).toBe(201);

    const types = () => live.received.filter((e) => DOMAIN.includes(e.type)).map((e) => e.type);
    await waitFor(() => types().length >= 6, 5000, 'six domain events on B');
    expect(types()).toEqual(['hold.created', 'booking.confirmed', 'hold.created', 'hold.released', 'booking.cancelled', 'hold.created']);
    await waitFor(() => types().includes('hold.expired'), 4000, 'hold.expired on B');

    const domain = live.received.filter((e) => DOMAIN.includes(e.type));
    const seqs = domain.map((e) => e.seq);
    expect([...seqs].sort((x, y) => x - y)).toEqual(seqs);
    expect(seqs[0]).toBeGreaterThan(sub.seq);
    // Each domain event is followed by availability.changed with the same seq and the slot's new remaining seats.
    const changes = live.received.filter((e) => e.type === 'availability.changed');
    const remainingAt = (seq: number) => changes.find((c) => c.seq === seq)?.payload.slots[0].remaining;
    expect(domain.map((e) => remainingAt(e.seq))).toEqual([1, 1, 0, 1, 3, 2, 3]);
    for (const c of changes) expect(c.payload.resourceId).toBe(room.id);
  });

  it('after a disconnect, resync returns exactly the missed events in order', async () => {
    const [a, b] = cluster.nodes as [any, any];
    const tenant = await newTenant(a);
    const room = await tenant.newResource({ capacity: 5 });
    const other = await tenant.newResource({ capacity: 5 });
    const day = futureWeekday(4);
    const sub = { resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:00:00Z` };
    const first = await connect(b.url, tenant.key);
    await first.call('subscribe', sub);
    await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T09:00:00Z`, end: `${day}T10:00:00Z` });
    const seen = (await waitFor(() => first.received.find((e) => e.type === 'hold.created'), 5000, 'first event'))!;
    first.socket.disconnect();

    const missed = [];
    for (let h = 10; h < 14; h++) {
      missed.push((await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T${h}:00:00Z`, end: `${day}T${h + 1}:00:00Z` })).body.id);
    }
    await tenant.api('POST', '/v1/holds', { resourceIds: [other.id], start: `${day}T10:00:00Z`, end: `${day}T11:00:00Z` });
    await tenant.api('DELETE', `/v1/holds/${missed[0]}`);

    const second = await connect(b.url, tenant.key);
    await second.call('subscribe', sub);
    const resync = await second.call('resync', { afterSeq: seen.seq });
    expect(resync.ok).toBe(true);
    expect(resync.events.map((e: any) => [e.type, e.hold.id])).toEqual([
      ...missed.map((id) => ['hold.created', id]),
      ['hold.released', missed[0]],
    ]);
    const feed = await tenant.api('GET', `/v1/events?after=${seen.seq}&limit=100`);
    const expected = feed.body.events.filter((e: any) => e.resourceIds.includes(room.id)).map((e: any) => e.seq);
    expect(resync.events.map((e: any) => e.seq)).toEqual(expected);
  });

  it('an event committed on a node that never publishes still reaches node B through the relay', async () => {
    const [, b] = cluster.nodes as [any, any];
    const broken = await cluster.add({ breakPublish: true });
    const tenant = await newTenant(broken);
    const room = await tenant.newResource();
    const day = futureWeekday(5);
    const live = await connect(b.url, tenant.key);
    await live.call('subscribe', { resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:00:00Z` });
    const hold = await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T10:00:00Z`, end: `${day}T11:00:00Z` });
    expect(hold.status).toBe(201);
    const got = (await waitFor(() => live.received.find((e) => e.type === 'hold.created'), 8000, 'relayed hold.created'))!;
    expect(got.payload.hold.id).toBe(hold.body.id);
    expect(live.received.filter((e) => e.type === 'hold.created')).toHaveLength(1);
  });
});

describe('what end users see', () => {
  it("a user token's subscription gets other customers' bookings without their personal details; the tenant key gets them whole", async () => {
    const [a, b] = cluster.nodes as [any, any];
    const tenant = await newTenant(a);
    const room = await tenant.newResource({ capacity: 3 });
    const day = futureWeekday(7);
    const token = (await tenant.api('POST', '/v1/tokens', { userId: 'watcher', name: 'Watcher', role: 'member' })).body.token;
    const sub = { resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:00:00Z` };
    const user = await connect(b.url, token);
    const owner = await connect(b.url, tenant.key);
    await user.call('subscribe', sub);
    await owner.call('subscribe', sub);
    const before = (await user.call('subscribe', sub)).seq;
    const booking = await tenant.api('POST', '/v1/bookings', {
      resourceIds: [room.id], start: `${day}T10:00:00Z`, end: `${day}T11:00:00Z`, customer: { name: 'Private Person', email: 'private@example.com' }, metadata: { note: 'secret' },
    });
    expect(booking.status).toBe(201);
    const forUser = (await waitFor(() => user.received.find((e) => e.type === 'booking.confirmed'), 5000, 'user event'))!;
    const forOwner = (await waitFor(() => owner.received.find((e) => e.type === 'booking.confirmed'), 5000, 'owner event'))!;
    expect(forOwner.payload.booking.customer.email).toBe('private@example.com');
    expect(forUser.payload.booking).toMatchObject({ id: booking.body.id, status: 'confirmed', seats: 1, start: booking.body.start });
    expect(JSON.stringify(forUser.payload)).not.toMatch(/Private Person|private@example.com|secret/);
    expect(user.received.some((e) => e.type === 'availability.changed' && e.seq === forUser.seq)).toBe(true);
    const resync = await user.call('resync', { afterSeq: before });
    expect(JSON.stringify(resync.events)).not.toMatch(/Private Person|private@example.com|secret/);
    expect(resync.events.map((e: any) => e.booking.id)).toEqual([booking.body.id]);
  });
});

describe('socket commands', () => {
  it('hold.create over the socket races REST on one slot and capacity still holds', async () => {
    const [a, b] = cluster.nodes as [any, any];
    const tenant = await newTenant(a);
    const room = await tenant.newResource({ capacity: 3 });
    const day = futureWeekday(6);
    const body = { resourceIds: [room.id], start: `${day}T10:00:00Z`, end: `${day}T11:00:00Z` };
    const live = await connect(b.url, tenant.key);
    const results = await Promise.all([
      ...Array.from({ length: 30 }, () => live.call('hold.create', body).then((r) => (r.ok ? 'ok' : r.error.code))),
      ...Array.from({ length: 30 }, () => tenant.api('POST', '/v1/holds', body).then((r) => (r.status === 201 ? 'ok' : r.body.code))),
    ]);
    expect(results.filter((r) => r === 'ok')).toHaveLength(3);
    expect(results.filter((r) => r === 'slot-unavailable')).toHaveLength(57);
    expect(await invariantViolations(a.pool, tenant.id)).toEqual([]);
  });

  it('extend, release and confirm work over the socket, with idempotency keys', async () => {
    const [a] = cluster.nodes as [any];
    const tenant = await newTenant(a);
    const room = await tenant.newResource({ capacity: 2 });
    const day = futureWeekday(6);
    const live = await connect(a.url, tenant.key);
    const body = { resourceIds: [room.id], start: `${day}T12:00:00Z`, end: `${day}T13:00:00Z`, idempotencyKey: 'sock-1' };
    const h1 = await live.call('hold.create', body);
    const again = await live.call('hold.create', body);
    expect(h1.ok).toBe(true);
    expect(again.data.id).toBe(h1.data.id);
    const ext = await live.call('hold.extend', { holdId: h1.data.id, ttlSeconds: 600 });
    expect(ext.ok).toBe(true);
    expect(Date.parse(ext.data.expiresAt)).toBeGreaterThan(Date.parse(h1.data.expiresAt));
    const conf = await live.call('hold.confirm', { holdId: h1.data.id, customer: { name: 'S', email: 's@example.com' } });
    expect(conf.ok).toBe(true);
    expect(conf.data.status).toBe('confirmed');
    const h2 = await live.call('hold.create', { ...body, idempotencyKey: undefined });
    const rel = await live.call('hold.release', { holdId: h2.data.id });
    expect(rel.data.status).toBe('released');
  });

  it('bad payloads get {ok: false} acks and never crash the node', async () => {
    const [a] = cluster.nodes as [any];
    const tenant = await newTenant(a);
    const live = await connect(a.url, tenant.key);
    const bad: [string, unknown][] = [
      ['subscribe', null],
      ['subscribe', 'x'],
      ['subscribe', { resourceIds: ['nope'], from: 'a', to: 'b' }],
      ['subscribe', { resourceIds: [], from: '2027-01-01T00:00:00Z', to: '2027-01-02T00:00:00Z' }],
      ['resync', { afterSeq: -1 }],
      ['resync', []],
      ['hold.create', { resourceIds: ['x'] }],
      ['hold.create', { resourceIds: [crypto.randomUUID()], start: '2027-01-01T10:00:00Z', end: '2027-01-01T11:00:00Z', extra: 1 }],
      ['hold.create', { idempotencyKey: 42 }],
      ['hold.extend', { holdId: 'x', ttlSeconds: 60 }],
      ['hold.release', { holdId: crypto.randomUUID() }],
      ['hold.confirm', { holdId: crypto.randomUUID(), customer: {} }],
      ['unsubscribe', { resourceIds: 'x' }],
    ];
    for (const [event, payload] of bad) {
      const ack = await live.call(event, payload);
      expect(ack.ok, `${event} ${JSON.stringify(payload)}`).toBe(false);
      expect(ack.error.status).toBeGreaterThanOrEqual(400);
      expect(ack.error.status).toBeLessThan(500);
    }
    // Unknown events and missing acks are ignored; the node still answers.
    live.socket.emit('no.such.event', { a: 1 });
    live.socket.emit('hold.create', { resourceIds: [] });
    const health = await fetch(`${a.url}/healthz`);
    expect(health.status).toBe(200);
    expect((await live.call('resync', { afterSeq: 0 })).ok).toBe(true);
  });

  it('refuses a handshake without a valid credential', async () => {
    const [a] = cluster.nodes as [any];
    for (const auth of [{}, { token: 'garbage' }, { token: 'test-admin-token-0123456789' }]) {
      const socket = io(a.url, { auth, transports: ['websocket'], reconnection: false });
      sockets.push(socket);
      const err = await new Promise<Error>((resolve) => socket.once('connect_error', resolve));
      expect(err.message).toBe('unauthorized');
    }
  });
});
