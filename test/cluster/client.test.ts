/**
 * The typed client's live parts across two nodes: watched availability that
 * stays exact through a disconnect (subscribe again + resync), typed hold
 * commands, and a group booking document edited from both nodes with presence.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { createSlotwiseClient, type AvailabilityView, type DomainEvent, type GroupSession, type LiveClient } from '../../shared/client';
import { futureWeekday, newTenant, startCluster, waitFor, type TestNode } from '../helpers/node';

let cluster: Awaited<ReturnType<typeof startCluster>>;
const open: { close(): void }[] = [];
beforeAll(async () => {
  cluster = await startCluster(2);
});
afterAll(async () => {
  for (const o of open) o.close();
  await cluster.stop();
});

async function userClient(node: TestNode, tenant: Awaited<ReturnType<typeof newTenant>>, userId: string, role: 'member' | 'organizer' = 'member') {
  const r = await tenant.api('POST', '/v1/tokens', { userId, name: userId, role });
  const sw = createSlotwiseClient({ baseUrl: node.url, token: r.body.token, WebSocket });
  return sw;
}

/** Seats left in a slot: a snapshot lists free slots only, so a slot it leaves out has none. */
const remaining = (view: AvailabilityView, id: string, start: string) => view.slots.get(id)?.get(start)?.remaining ?? 0;

describe('LiveClient across nodes', () => {
  it('sees holds from the other node, and is exact again after a disconnect during which it missed events', async () => {
    const [a, b] = cluster.nodes as [TestNode, TestNode];
    const tenant = await newTenant(a);
    const room = await tenant.newResource({ capacity: 2 });
    const day = futureWeekday(5);
    const start = `${day}T10:00:00.000Z`;
    const end = `${day}T11:00:00.000Z`;

    const alice = (await userClient(a, tenant, 'alice')).live({ socket: { transports: ['websocket'] } });
    const bobClient = await userClient(b, tenant, 'bob');
    const bob = bobClient.live({ socket: { transports: ['websocket'] } });
    open.push(alice, bob);
    await waitFor(() => alice.status === 'online' && bob.status === 'online', 5000, 'both online');

    let view: AvailabilityView | null = null;
    const events: { type: string; seq: number; replayed: boolean }[] = [];
    bob.onEvent((e: DomainEvent, replayed) => events.push({ type: e.type, seq: e.seq, replayed }));
    const watch = await bob.watch({ resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:59:00Z` }, (v) => (view = v));
    expect(remaining(view!, room.id, start)).toBe(2);

    let aliceView: AvailabilityView | null = null;
    await alice.watch({ resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:59:00Z` }, (v) => (aliceView = v));
    const held = await alice.holdCreate({ resourceIds: [room.id], start, end, seats: 1 });
    if (!held.ok) throw new Error(held.error.detail);
    expect(held.data.status).toBe('held');
    await waitFor(() => remaining(view!, room.id, start) === 1, 5000, 'bob sees the hold');
    await waitFor(() => events.some((e) => e.type === 'hold.created' && !e.replayed), 5000, 'hold.created live');

    // A refused command is a typed problem, as REST answers it.
    const tooMany = await alice.holdCreate({ resourceIds: [room.id], start, end, seats: 2 });
    expect(tooMany.ok).toBe(false);
    if (!tooMany.ok) expect(tooMany.error.code).toBe('slot-unavailable');

    // Bob goes away; meanwhile Alice releases her hold and Carol (on node a) takes both seats.
    bob.socket.disconnect();
    await waitFor(() => bob.status === 'offline', 2000, 'bob offline');
    const released = await alice.holdRelease({ holdId: held.data.id });
    expect(released.ok && released.data.status).toBe('released');
    const carol = (await userClient(a, tenant, 'carol')).live({ socket: { transports: ['websocket'] } });
    open.push(carol);
    const carolHold = await carol.holdCreate({ resourceIds: [room.id], start, end, seats: 2 });
    expect(carolHold.ok).toBe(true);
    // Both events went out (Alice, still connected, saw the last), while Bob's view stayed as he left it.
    await waitFor(() => remaining(aliceView!, room.id, start) === 0, 5000, 'alice sees carol\'s hold');
    expect(remaining(view!, room.id, start)).toBe(1);

    const before = watch.positionOf(room.id);
    bob.socket.connect();
    await waitFor(() => remaining(view!, room.id, start) === 0, 5000, 'bob exact after reconnecting');
    expect(bob.status).toBe('online');
    expect(watch.positionOf(room.id)).toBeGreaterThan(before);
    // The events he missed reached his listeners once each: replayed by resync, in order (Carol's hold, if
    // node b relayed it only after he was back, arrived live instead, and is not repeated).
    const after = () => events.slice(events.findIndex((e) => e.replayed));
    await waitFor(() => events.some((e) => e.replayed) && after().map((e) => e.type).join() === 'hold.released,hold.created', 5000, 'missed events delivered');
    expect(after()[0]).toMatchObject({ type: 'hold.released', replayed: true });
    const replayed = events.filter((e) => e.replayed);
    expect(replayed.map((e) => e.seq)).toEqual([...replayed.map((e) => e.seq)].sort((x, y) => x - y));
    expect(new Set(events.map((e) => e.seq)).size).toBe(events.length);

    // And live again: Carol's hold expires early by release; Bob sees the seats come back.
    if (carolHold.ok) await carol.holdRelease({ holdId: carolHold.data.id });
    await waitFor(() => remaining(view!, room.id, start) === 2, 5000, 'seats back after the reconnect');
  });
});

describe('LiveClient after a lost message', () => {
  it('sees the gap in the next event\'s prevSeqs, takes a fresh snapshot and replays what it missed', async () => {
    const [a, b] = cluster.nodes as [TestNode, TestNode];
    const tenant = await newTenant(a);
    const room = await tenant.newResource({ capacity: 3 });
    const day = futureWeekday(9);
    const start = `${day}T14:00:00.000Z`;
    const alice = (await userClient(a, tenant, 'alice')).live({ socket: { transports: ['websocket'] } });
    const bob = (await userClient(b, tenant, 'bob')).live({ socket: { transports: ['websocket'] } });
    open.push(alice, bob);
    const range = { resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:59:00Z` };
    let bobView: AvailabilityView | null = null;
    await bob.watch(range, (v) => (bobView = v));
    const events: { type: string; replayed: boolean }[] = [];
    bob.onEvent((e, replayed) => events.push({ type: e.type, replayed }));

    // Bob's client loses the hold.created and its availability.changed, as if the bus had dropped them.
    const lost = ['hold.created', 'availability.changed'] as const;
    const saved = lost.map((t) => [t, bob.socket.listeners(t)] as const);
    for (const t of lost) bob.socket.off(t);
    // What reached Bob's socket while his client did not listen: the availability.changed comes after its hold.created.
    let dropped = 0;
    const drop = () => dropped++;
    bob.socket.on('availability.changed', drop);
    const held = await alice.holdCreate({ resourceIds: [room.id], start, end: `${day}T15:00:00.000Z`, seats: 2 });
    expect(held.ok).toBe(true);
    await waitFor(() => dropped > 0, 5000, 'the events reached bob\'s socket');
    bob.socket.off('availability.changed', drop);
    for (const [t, listeners] of saved) for (const l of listeners) bob.socket.on(t, l as never);
    expect(remaining(bobView!, room.id, start)).toBe(3);

    // The next event names the missed one as its predecessor: Bob's client catches up by itself.
    const extended = held.ok && (await alice.holdExtend({ holdId: held.data.id, ttlSeconds: 60 }));
    expect(extended && extended.ok).toBe(true);
    await waitFor(() => events.some((e) => e.type === 'hold.created' && e.replayed), 5000, 'the missed hold.created replayed');
    await waitFor(() => remaining(bobView!, room.id, start) === 1, 5000, 'bob exact again');
    expect(events.filter((e) => e.type === 'hold.created')).toHaveLength(1);
  });
});

describe('LiveClient when the server closes the socket', () => {
  it('connects again by itself, and reports unauthorized when the credential was revoked meanwhile', async () => {
    const [a, b] = cluster.nodes as [TestNode, TestNode];
    const tenant = await newTenant(a);
    const issued = await tenant.api('POST', '/v1/tokens', { userId: 'dora', name: 'Dora', role: 'member' });
    const live = createSlotwiseClient({ baseUrl: b.url, token: issued.body.token }).live({ socket: { transports: ['websocket'] } });
    open.push(live);
    const seen: string[] = [];
    live.onStatus((s) => seen.push(s));
    await waitFor(() => live.status === 'online', 5000, 'online');
    // Revocation on node a: node b closes the socket ('io server disconnect'), the client tries again and is refused.
    expect((await tenant.api('DELETE', `/v1/tokens/${issued.body.id}`)).status).toBe(200);
    await waitFor(() => live.status === 'unauthorized', 5000, 'unauthorized after the revocation');
    expect(seen).toEqual(['online', 'reconnecting', 'unauthorized']);
  });
});

describe('GroupSession across nodes', () => {
  it('two organizers on two nodes edit one document, see each other and the server state', async () => {
    const [a, b] = cluster.nodes as [TestNode, TestNode];
    const tenant = await newTenant(a);
    const room = await tenant.newResource({ capacity: 10 });
    const alice = await userClient(a, tenant, 'alice', 'organizer');
    const carol = await userClient(b, tenant, 'carol', 'organizer');
    const created = await alice.rest.POST('/v1/group-bookings', {
      body: { title: 'Team offsite', resourceIds: [room.id], members: [{ userId: 'carol', role: 'organizer' }] },
    });
    expect(created.response.status).toBe(201);
    const group = created.data!;

    const ga: GroupSession = alice.group(group.docName);
    const gc: GroupSession = carol.group(group.docName);
    open.push({ close: () => ga.destroy() }, { close: () => gc.destroy() });
    await Promise.all([ga.synced, gc.synced]);
    expect(ga.status).toBe('online');
    expect(gc.json().draft.title).toBe('Team offsite');

    ga.setPresence({ user: { id: 'alice', name: 'Alice', color: '#e11d48' }, field: 'title' });
    gc.setPresence({ user: { id: 'carol', name: 'Carol', color: '#2563eb' }, field: null });
    await waitFor(() => gc.peers().some((p) => p.user.id === 'alice' && p.field === 'title' && !p.self), 5000, 'carol sees alice in the title');
    gc.setField('notes');
    await waitFor(() => ga.peers().some((p) => p.user.id === 'carol' && p.field === 'notes'), 5000, 'alice sees carol in the notes');

    const day = futureWeekday(6);
    ga.editDraft({ title: 'Team offsite 2027', start: `${day}T10:00:00Z`, end: `${day}T12:00:00Z` });
    gc.setParticipant('p1', { name: 'Pat', email: 'pat@example.com' });
    gc.setParticipant('p2', { name: 'Sam' });
    gc.setNotes('Bring laptops');
    ga.setNotes('Bring laptops and snacks');
    const same = () => JSON.stringify(ga.json()) === JSON.stringify(gc.json());
    await waitFor(() => same() && Object.keys(ga.json().participants).length === 2 && ga.json().draft.title === 'Team offsite 2027', 5000, 'convergence');

    const held = await carol.rest.POST('/v1/group-bookings/{id}/hold', { params: { path: { id: group.id } }, body: {} });
    expect(held.response.status).toBe(200);
    for (const g of [ga, gc]) await waitFor(() => g.json().server.status === 'held', 5000, 'held in both documents');
    const expiresAt = ga.json().server.expiresAt!;
    expect(alice.clock.msUntil(expiresAt)).toBeGreaterThan(0);

    const confirmed = await alice.rest.POST('/v1/group-bookings/{id}/confirm', { params: { path: { id: group.id } }, body: {} });
    expect(confirmed.response.status).toBe(200);
    expect(confirmed.data!.booking!.seats).toBe(2);
    for (const g of [ga, gc]) await waitFor(() => g.json().server.status === 'confirmed', 5000, 'confirmed in both documents');
  });

  it('a non-member is refused for good (4403), reported as refused', async () => {
    const [a] = cluster.nodes as [TestNode, TestNode];
    const tenant = await newTenant(a);
    const alice = await userClient(a, tenant, 'alice', 'organizer');
    const created = await alice.rest.POST('/v1/group-bookings', { body: { title: 'Private' } });
    const eve = await userClient(a, tenant, 'eve');
    const g = eve.group(created.data!.docName);
    open.push({ close: () => g.destroy() });
    await waitFor(() => g.status === 'refused', 5000, 'refused');
    expect(g.refusal?.code).toBe(4403);
  });
});
