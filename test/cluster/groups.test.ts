/** Group bookings across two nodes: shared drafts, one hold for concurrent organizers, confirm, expiry, revocation. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { client, futureWeekday, newTenant, startCluster, waitFor, type TestNode } from '../helpers/node';

let cluster: Awaited<ReturnType<typeof startCluster>>;
const providers: WebsocketProvider[] = [];

beforeAll(async () => {
  cluster = await startCluster(2);
});
afterAll(async () => {
  for (const p of providers) p.destroy();
  await cluster.stop();
});

/** A stock WebsocketProvider on a node for a user token. */
function open(node: TestNode, docName: string, token: string) {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(node.url.replace('http', 'ws') + '/yjs', docName, doc, {
    params: { token },
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  });
  providers.push(provider);
  return { doc, provider, synced: waitFor(() => provider.synced, 5000, `sync of ${docName}`) };
}

async function setup() {
  const [a, b] = cluster.nodes as [TestNode, TestNode];
  const tenant = await newTenant(a);
  const room = await tenant.newResource({ capacity: 10 });
  const alice = await tenant.api('POST', '/v1/tokens', { userId: 'alice', name: 'Alice', role: 'organizer' });
  const carol = await tenant.api('POST', '/v1/tokens', { userId: 'carol', name: 'Carol', role: 'organizer' });
  const bob = await tenant.api('POST', '/v1/tokens', { userId: 'bob', name: 'Bob', role: 'member' });
  const tokens = { alice: alice.body.token as string, carol: carol.body.token as string, bob: bob.body.token as string };
  const asAlice = client(a.url, tokens.alice);
  const asCarol = client(b.url, tokens.carol);
  const created = await asAlice('POST', '/v1/group-bookings', {
    title: 'Team offsite',
    resourceIds: [room.id],
    members: [{ userId: 'carol', role: 'organizer' }, { userId: 'bob', role: 'participant' }],
  });
  expect(created.status).toBe(201);
  return { a, b, tenant, room, tokens, asAlice, asCarol, group: created.body };
}

/** Sets the draft's times and three participants, from two organizers on two nodes at once. */
async function fillDraft(ctx: Awaited<ReturnType<typeof setup>>, day: string) {
  const pa = open(ctx.a, ctx.group.docName, ctx.tokens.alice);
  const pb = open(ctx.b, ctx.group.docName, ctx.tokens.carol);
  await Promise.all([pa.synced, pb.synced]);
  pa.doc.transact(() => {
    const draft = pa.doc.getMap('draft');
    draft.set('start', `${day}T10:00:00Z`);
    draft.set('end', `${day}T12:00:00Z`);
  });
  pb.doc.transact(() => {
    const participants = pb.doc.getMap('participants');
    for (const name of ['p1', 'p2', 'p3']) {
      const m = new Y.Map();
      m.set('name', name);
      m.set('email', `${name}@example.com`);
      participants.set(name, m);
    }
  });
  const json = (d: Y.Doc) => JSON.stringify({ draft: d.getMap('draft').toJSON(), participants: d.getMap('participants').toJSON() });
  await waitFor(() => json(pa.doc) === json(pb.doc) && Object.keys(pa.doc.getMap('participants').toJSON()).length === 3, 5000, 'draft convergence');
  return { pa, pb };
}

describe('group bookings across nodes', () => {
  it('two organizers edit, both hold at once (one hold), both documents show held, confirm books one seat per participant', async () => {
    const ctx = await setup();
    const day = futureWeekday(3);
    const { pa, pb } = await fillDraft(ctx, day);

    const [h1, h2] = await Promise.all([
      ctx.asAlice('POST', `/v1/group-bookings/${ctx.group.id}/hold`),
      ctx.asCarol('POST', `/v1/group-bookings/${ctx.group.id}/hold`),
    ]);
    expect([h1.status, h2.status]).toEqual([200, 200]);
    expect(h1.body.holdId).toBeTruthy();
    expect(h2.body.holdId).toBe(h1.body.holdId);
    const holds = await ctx.a.pool.query("SELECT count(*)::int AS n, max(seats) AS seats FROM holds WHERE tenant_id = $1 AND status = 'held'", [ctx.tenant.id]);
    expect(holds.rows[0]).toEqual({ n: 1, seats: 3 });

    for (const p of [pa, pb]) {
      await waitFor(() => p.doc.getMap('server').get('status') === 'held', 5000, 'held in both documents');
      expect(p.doc.getMap('server').get('holdId')).toBe(h1.body.holdId);
      expect(Date.parse(p.doc.getMap('server').get('expiresAt') as string)).toBeGreaterThan(Date.now());
    }

    const conf = await ctx.asCarol('POST', `/v1/group-bookings/${ctx.group.id}/confirm`);
    expect(conf.status).toBe(200);
    expect(conf.body.status).toBe('confirmed');
    expect(conf.body.booking.seats).toBe(3);
    expect(conf.body.booking.attendees.map((x: any) => x.name).sort()).toEqual(['p1', 'p2', 'p3']);
    for (const p of [pa, pb]) {
      await waitFor(() => p.doc.getMap('server').get('status') === 'confirmed', 5000, 'confirmed in both documents');
      expect(p.doc.getMap('server').get('bookingId')).toBe(conf.body.bookingId);
    }
    const snapshot = await ctx.asAlice('GET', `/v1/group-bookings/${ctx.group.id}`);
    expect(snapshot.body.document.server.status).toBe('confirmed');
    expect(Object.keys(snapshot.body.document.participants)).toHaveLength(3);
  });

  it('confirmed without a customer and with no participant e-mail: the customer is the confirming user, without an e-mail', async () => {
    const ctx = await setup();
    const day = futureWeekday(4);
    const pa = open(ctx.a, ctx.group.docName, ctx.tokens.alice);
    await pa.synced;
    pa.doc.transact(() => {
      pa.doc.getMap('draft').set('start', `${day}T10:00:00Z`);
      pa.doc.getMap('draft').set('end', `${day}T11:00:00Z`);
      // Participants with a name and no e-mail.
      for (const key of ['q1', 'q2']) {
        const m = new Y.Map();
        m.set('name', key);
        pa.doc.getMap('participants').set(key, m);
      }
    });
    await waitFor(async () => (await ctx.asAlice('GET', `/v1/group-bookings/${ctx.group.id}`)).body.document?.participants?.q2 !== undefined, 5000, 'the draft on the server');
    expect((await ctx.asAlice('POST', `/v1/group-bookings/${ctx.group.id}/hold`)).status).toBe(200);
    // The answer is checked against /openapi.json by the client: an empty or invalid e-mail would fail it.
    const conf = await ctx.asAlice('POST', `/v1/group-bookings/${ctx.group.id}/confirm`);
    expect(conf.status, conf.text).toBe(200);
    expect(conf.body.booking.customer).toEqual({ name: 'Alice' });
    expect(conf.body.booking.attendees).toEqual([{ name: 'q1' }, { name: 'q2' }]);
  });

  it('an expired group hold writes expired into the document on every node', async () => {
    const ctx = await setup();
    const { pa, pb } = await fillDraft(ctx, futureWeekday(4));
    const held = await ctx.asAlice('POST', `/v1/group-bookings/${ctx.group.id}/hold`, { ttlSeconds: 1 });
    expect(held.status).toBe(200);
    for (const p of [pa, pb]) await waitFor(() => p.doc.getMap('server').get('status') === 'expired', 5000, 'expired in both documents');
    const late = await ctx.asAlice('POST', `/v1/group-bookings/${ctx.group.id}/confirm`);
    expect(late.status).toBe(409);
  });

  it('an incomplete draft cannot be held, and participants cannot hold', async () => {
    const ctx = await setup();
    const res = await ctx.asAlice('POST', `/v1/group-bookings/${ctx.group.id}/hold`);
    expect(res.status).toBe(422);
    expect(res.body.code).toBe('draft-invalid');
    const asBob = client(ctx.a.url, ctx.tokens.bob);
    expect((await asBob('GET', `/v1/group-bookings/${ctx.group.id}`)).status).toBe(200);
    expect((await asBob('POST', `/v1/group-bookings/${ctx.group.id}/hold`)).status).toBe(403);
  });

  it('removing a member disconnects their live connection on the other node within seconds', async () => {
    const ctx = await setup();
    const bob = open(ctx.b, ctx.group.docName, ctx.tokens.bob);
    await bob.synced;
    let closedWith = 0;
    bob.provider.on('connection-close', (e: any) => {
      if (e) closedWith = e.code;
    });
    const removed = await ctx.asAlice('DELETE', `/v1/group-bookings/${ctx.group.id}/members/bob`);
    expect(removed.status).toBe(200);
    await waitFor(() => closedWith !== 0, 5000, 'bob disconnected');
    expect(closedWith).toBe(4403);
    bob.provider.disconnect();
  });
});
