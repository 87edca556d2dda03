/**
 * A hostile member against the Yjs gateway, on two in-process nodes (real
 * Postgres, real Redis): stock WebsocketProviders for honest clients, raw
 * sockets for the attacker. Each case replays an attack found on main (issue 8):
 * a second document through another spelling of the name, presence spoofing
 * and amplification, invisible growth, flooding, and a client that never reads.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as encoding from 'lib0/encoding';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { client, newTenant, startCluster, waitFor, type TestNode } from '../helpers/node';
import { rawSocket, type RawSocket } from './helpers';

let cluster: Awaited<ReturnType<typeof startCluster>>;
let A: TestNode;
let B: TestNode;
const providers: WebsocketProvider[] = [];
const sockets: RawSocket[] = [];

beforeAll(async () => {
  cluster = await startCluster(2);
  [A, B] = cluster.nodes as [TestNode, TestNode];
});
afterEach(() => {
  for (const p of providers.splice(0)) {
    p.destroy();
    p.doc.destroy();
  }
  for (const s of sockets.splice(0)) s.ws.terminate();
});
afterAll(async () => {
  await cluster?.stop();
});

const wsBase = (node: TestNode) => `${node.url.replace('http', 'ws')}/yjs`;

/** A tenant, a group with an organizer (alice) and a participant (mallory), and their tokens. */
async function group() {
  const tenant = await newTenant(A);
  const token = async (userId: string, role: 'member' | 'organizer' = 'member') => (await tenant.api('POST', '/v1/tokens', { userId, name: userId, role })).body.token as string;
  const tokens = { alice: await token('alice', 'organizer'), mallory: await token('mallory'), pat: await token('pat') };
  const created = await client(A.url, tokens.alice)('POST', '/v1/group-bookings', {
    title: 'Hostile',
    members: [{ userId: 'mallory', role: 'participant' }, { userId: 'pat', role: 'participant' }],
  });
  expect(created.status, created.text).toBe(201);
  return { tenant, tokens, id: created.body.id as string, docName: created.body.docName as string, asAlice: client(A.url, tokens.alice) };
}

/** A stock WebsocketProvider on a node, recording close codes. */
function provider(node: TestNode, docName: string, token: string) {
  const doc = new Y.Doc();
  const p = new WebsocketProvider(wsBase(node), docName, doc, { params: { token }, WebSocketPolyfill: WebSocket as never, disableBc: true });
  providers.push(p);
  const closes: number[] = [];
  p.on('connection-close', (event) => event && closes.push(event.code));
  return { doc, p, closes, synced: () => waitFor(() => p.synced, 5000, `${docName} synced`) };
}

/** A raw socket on `/yjs/<path>`, `path` sent as is (already encoded as the attacker likes). */
async function raw(node: TestNode, path: string, token: string): Promise<RawSocket> {
  const s = await rawSocket(`${wsBase(node)}/${path}?token=${encodeURIComponent(token)}`);
  sockets.push(s);
  return s;
}

const closeCode = async (node: TestNode, path: string, token: string) => (await (await raw(node, path, token)).closed).code;

const syncUpdate = (update: Uint8Array) => {
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 0);
  encoding.writeVarUint(e, 2);
  encoding.writeVarUint8Array(e, update);
  return encoding.toUint8Array(e);
};

describe('document names', () => {
  it('one group is one document whatever the spelling; a removed member is closed on every spelling and refused on all', async () => {
    const g = await group();
    const id = g.id;
    const upper = `group-booking:${id.toUpperCase()}`;
    const watcher = provider(B, g.docName, g.tokens.alice);
    // Mallory on node A under the upper-case id, and on node B under the canonical name.
    const m1 = provider(A, upper, g.tokens.mallory);
    const m2 = provider(B, g.docName, g.tokens.mallory);
    await Promise.all([watcher.synced(), m1.synced(), m2.synced()]);
    // The same document: what she writes under the upper-case name reaches the canonical one, and is stored under it.
    m1.doc.getText('notes').insert(0, 'upper ');
    await waitFor(() => watcher.doc.getText('notes').toString().includes('upper'), 5000, 'the edit on the canonical document');
    await waitFor(async () => (await A.pool.query('SELECT count(*)::int AS n FROM yjs_updates WHERE doc_name = $1', [g.docName])).rows[0].n > 0, 5000, 'stored');
    const names = await A.pool.query('SELECT DISTINCT doc_name FROM yjs_updates WHERE lower(doc_name) = lower($1)', [g.docName]);
    expect(names.rows.map((r) => r.doc_name)).toEqual([g.docName]);

    // Removed through the REST path with the id in upper case too.
    const removed = await g.asAlice('DELETE', `/v1/group-bookings/${id.toUpperCase()}/members/mallory`);
    expect(removed.status, removed.text).toBe(200);
    await waitFor(() => m1.closes.includes(4403) && m2.closes.includes(4403), 5000, 'both of her connections closed 4403');
    expect(watcher.closes).toEqual([]);

    const spellings = [
      g.docName,
      upper,
      `GROUP-BOOKING:${id.toUpperCase()}`,
      `Group-Booking:${id.slice(0, 18)}${id.slice(18).toUpperCase()}`,
      encodeURIComponent(g.docName),
      `%67roup-booking%3A${id.toUpperCase().replace(/-/g, '%2D')}`,
    ];
    for (const [i, name] of spellings.entries()) expect(await closeCode(i % 2 ? A : B, name, g.tokens.mallory), name).toBe(4403);
    // A spelling that is no group booking name at all stays unknown.
    expect(await closeCode(A, `group-booking:${id}%20`, g.tokens.alice)).toBe(4404);
  });
});

/** An awareness message (type 1) carrying `entries` as y-protocols encodes them. */
const awarenessMessage = (entries: [clientId: number, clock: number, state: unknown][]) => {
  const u = encoding.createEncoder();
  encoding.writeVarUint(u, entries.length);
  for (const [id, clock, state] of entries) {
    encoding.writeVarUint(u, id);
    encoding.writeVarUint(u, clock);
    encoding.writeVarString(u, JSON.stringify(state));
  }
  const e = encoding.createEncoder();
  encoding.writeVarUint(e, 1);
  encoding.writeVarUint8Array(e, encoding.toUint8Array(u));
  return encoding.toUint8Array(e);
};

/** Counts the bytes a provider's current socket receives from now on. */
function countBytes(p: WebsocketProvider) {
  const counter = { bytes: 0 };
  (p.ws as unknown as WebSocket).on('message', (d: Buffer) => void (counter.bytes += d.byteLength));
  return counter;
}

const names = (p: WebsocketProvider) => [...p.awareness.getStates().values()].map((s) => s.user?.name).filter(Boolean).sort();

describe('presence', () => {
  it('a connection speaks only for its own client id: made-up ids and a forged state for a real client are dropped', async () => {
    const g = await group();
    const pat = provider(B, g.docName, g.tokens.pat);
    pat.p.awareness.setLocalStateField('user', { name: 'Pat' });
    const wA = provider(A, g.docName, g.tokens.alice);
    const wB = provider(B, g.docName, g.tokens.alice);
    wA.p.awareness.setLocalStateField('user', { name: 'Alice A' });
    wB.p.awareness.setLocalStateField('user', { name: 'Alice B' });
    await Promise.all([pat.synced(), wA.synced(), wB.synced()]);
    const everyone = ['Alice A', 'Alice B', 'Pat'];
    await waitFor(() => [wA, wB, pat].every((w) => JSON.stringify(names(w.p)) === JSON.stringify(everyone)), 5000, 'everyone sees everyone');
    const counters = [countBytes(wA.p), countBytes(wB.p)];

    const attacker = await raw(A, g.docName, g.tokens.mallory);
    // Its first non-null state claims an id: that one is the attacker's own presence.
    const own = 4_000_000_001;
    attacker.ws.send(awarenessMessage([[own, 1, { user: { name: 'Mallory' } }]]));
    // 1,000 made-up ids with padded states, then a forged state and a removal for Pat's real id.
    for (let m = 0; m < 10; m++) {
      attacker.ws.send(awarenessMessage(Array.from({ length: 100 }, (_, i) => [1_000_000 + m * 100 + i, 1, { user: { name: `ghost ${m * 100 + i}` }, pad: 'x'.repeat(100) }])));
    }
    const patClock = wA.p.awareness.meta.get(pat.doc.clientID)!.clock;
    attacker.ws.send(awarenessMessage([[pat.doc.clientID, patClock + 10, { user: { name: 'Mallory as Pat' } }]]));
    attacker.ws.send(awarenessMessage([[pat.doc.clientID, patClock + 20, null]]));
    // Its own id still works: a later state of its own is relayed.
    attacker.ws.send(awarenessMessage([[own, 2, { user: { name: 'Mallory 2' } }]]));

    const expected = ['Alice A', 'Alice B', 'Mallory 2', 'Pat'];
    await waitFor(() => [wA, wB, pat].every((w) => JSON.stringify(names(w.p)) === JSON.stringify(expected)), 5000, 'the attacker\'s own state everywhere');
    await new Promise((r) => setTimeout(r, 500)); // anything else would have arrived by now
    for (const w of [wA, wB, pat]) {
      expect(names(w.p)).toEqual(expected);
      expect(w.p.awareness.getStates().size).toBe(4);
      expect(w.p.awareness.getStates().get(pat.doc.clientID)).toEqual({ user: { name: 'Pat' } });
    }
    expect(attacker.isOpen()).toBe(true);
    // About 130 KiB of made-up presence was sent; each watcher got two small states (and its provider's own echoes).
    for (const c of counters) expect(c.bytes).toBeLessThan(2048);

    // A stock provider that reconnects gets its presence back at once (its old clock is not held against it).
    pat.p.disconnect();
    await waitFor(() => !names(wA.p).includes('Pat'), 5000, 'pat gone');
    pat.p.connect();
    await waitFor(() => names(wA.p).includes('Pat') && names(wB.p).includes('Pat'), 3000, 'pat back on both nodes');
  });
});
