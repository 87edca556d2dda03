/**
 * The docker-compose topology without Docker: two nodes (a database of their
 * own, the run's Redis, TRUST_PROXY=1 as in compose) behind a real nginx
 * running the project's deploy/nginx.conf. REST, Socket.IO (long-polling then
 * upgrade, and WebSocket only) and Yjs (the stock y-websocket
 * WebsocketProvider) all go through nginx. Each node records every request and
 * upgrade that reaches it, with the X-Forwarded-For nginx set, so the tests
 * see where nginx sent what: different client addresses (127.0.0.x) land on
 * different nodes, and one Socket.IO session stays on one node.
 */
import http from 'node:http';
import type { IncomingMessage } from 'node:http';
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { ADMIN_TOKEN, client, futureWeekday, newTenant, startCluster, waitFor, type TestNode } from '../helpers/node';
import { startNginx, type NginxProcess } from '../helpers/nginx';

interface Hit { node: number; kind: 'request' | 'upgrade'; url: string; from: string }

let cluster: Awaited<ReturnType<typeof startCluster>>;
let lb: NginxProcess;
/** Every request and upgrade the nodes received, in order. */
const hits: Hit[] = [];
const sockets: Socket[] = [];
const providers: WebsocketProvider[] = [];
/** A client address (127.0.0.x) whose Socket.IO traffic nginx sends to node 0, and one for node 1. */
let addressOf: [string, string];

beforeAll(async () => {
  // Small pools: this file's requests come one at a time, and Postgres' connections are shared with the other test files.
  cluster = await startCluster(2, { TRUST_PROXY: '1', DB_POOL_SIZE: '5' });
  cluster.nodes.forEach((n, i) => {
    const record = (kind: Hit['kind']) => (req: IncomingMessage) => {
      const xff = req.headers['x-forwarded-for'];
      hits.push({ node: i, kind, url: req.url ?? '', from: String(xff ?? `direct ${req.socket.remoteAddress}`) });
    };
    n.node.server.prependListener('request', record('request'));
    n.node.server.prependListener('upgrade', record('upgrade'));
  });
  lb = await startNginx(cluster.nodes.map((n) => new URL(n.url).host) as [string, string]);
  addressOf = await addressesOnEachNode();
});

afterAll(async () => {
  for (const s of sockets) s.disconnect();
  for (const p of providers) {
    p.destroy();
    p.doc.destroy();
  }
  await lb?.stop();
  await cluster?.stop();
});

/** The nodes that received hits since `from` (an index into `hits`) matching `keep`. */
const nodesOf = (from: number, keep: (h: Hit) => boolean) => new Set(hits.slice(from).filter(keep).map((h) => h.node));

/** A GET through nginx from a given local address; resolves with the status. */
function getFrom(localAddress: string, path: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get(`${lb.url}${path}`, { localAddress, agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
  });
}

/**
 * Local addresses for each node under the sticky rule: probes /socket.io/
 * (an unknown transport, which the node refuses at once without a session)
 * from 127.0.0.2, .3, ... until each node has received one.
 */
async function addressesOnEachNode(): Promise<[string, string]> {
  const found: (string | undefined)[] = [undefined, undefined];
  for (let x = 2; x < 60 && (!found[0] || !found[1]); x++) {
    const address = `127.0.0.${x}`;
    const from = hits.length;
    expect(await getFrom(address, '/socket.io/?EIO=4&transport=probe')).toBe(400);
    const [node] = nodesOf(from, (h) => h.from === address);
    if (node !== undefined) found[node] ??= address;
  }
  if (!found[0] || !found[1]) throw new Error(`no client address reached each node: ${JSON.stringify(found)}`);
  return found as [string, string];
}

/** A TestNode-shaped handle on the load balancer, for the data factories (`newTenant`). */
function viaLb(): TestNode {
  return { ...cluster.nodes[0]!, url: lb.url, admin: client(lb.url, ADMIN_TOKEN) };
}

/** A Socket.IO client through nginx from `localAddress`, recording the events it receives. */
async function live(token: string, localAddress: string, transports: ('polling' | 'websocket')[]) {
  const socket = io(lb.url, {
    auth: { token },
    transports,
    reconnection: false,
    forceNew: true,
    // Polling requests go through the agent, the WebSocket through `localAddress` (engine.io-client passes both on).
    agent: new http.Agent({ localAddress }) as unknown as string,
    localAddress,
  } as Parameters<typeof io>[1]);
  sockets.push(socket);
  const received: { type: string; payload: any }[] = [];
  socket.onAny((type, payload) => received.push({ type, payload }));
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  const call = (event: string, payload: unknown) => socket.timeout(10_000).emitWithAck(event, payload) as Promise<any>;
  return { socket, received, call };
}

describe('two nodes behind nginx (deploy/nginx.conf)', () => {
  it('serves the REST API from both nodes, forwarding the client address; /nginx-health and /readyz answer', async () => {
    expect((await fetch(`${lb.url}/nginx-health`)).status).toBe(200);
    const ready = await fetch(`${lb.url}/readyz`);
    expect(ready.status).toBe(200);
    expect(((await ready.json()) as { status: string }).status).toBe('ok');

    const from = hits.length;
    const tenant = await newTenant(viaLb());
    const room = await tenant.newResource({ capacity: 2 });
    const day = futureWeekday(3);
    const hold = await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T10:00:00Z`, end: `${day}T11:00:00Z` });
    expect(hold.status).toBe(201);
    const booking = await tenant.api('POST', `/v1/holds/${hold.body.id}/confirm`, { customer: { name: 'Ann', email: 'ann@example.com' } });
    expect(booking.status).toBe(201);
    for (let i = 0; i < 4; i++) {
      const got = await tenant.api('GET', `/v1/bookings/${booking.body.id}`);
      expect(got.status).toBe(200);
      expect(got.body.status).toBe('confirmed');
    }
    const api = hits.slice(from).filter((h) => h.url.startsWith('/v1/'));
    expect(api.length).toBeGreaterThanOrEqual(8);
    // Stateless requests are spread over both nodes, each seeing the client's address nginx appended.
    expect(new Set(api.map((h) => h.node))).toEqual(new Set([0, 1]));
    expect(new Set(api.map((h) => h.from))).toEqual(new Set(['127.0.0.1']));
  });

  it('keeps a Socket.IO session that starts on long-polling and upgrades on one node, for clients on both nodes', async () => {
    const tenant = await newTenant(viaLb());
    const room = await tenant.newResource({ capacity: 5 });
    const day = futureWeekday(4);
    const clients = [];
    for (const [node, address] of addressOf.entries()) {
      const from = hits.length;
      const c = await live(tenant.key, address, ['polling', 'websocket']);
      await waitFor(() => c.socket.io.engine.transport.name === 'websocket', 10_000, 'upgrade to WebSocket');
      const sid = c.socket.io.engine.id;
      const session = hits.slice(from).filter((h) => h.url.startsWith('/socket.io/') && h.url.includes(`sid=${sid}`));
      // The handshake and polling requests of the session, then its upgrade, every one on the node of the client's address.
      expect(hits.slice(from).some((h) => h.kind === 'request' && h.from === address && /transport=polling/.test(h.url) && !h.url.includes('sid='))).toBe(true);
      expect(session.filter((h) => h.kind === 'request').length).toBeGreaterThanOrEqual(1);
      expect(session.filter((h) => h.kind === 'upgrade')).toHaveLength(1);
      expect(nodesOf(from, (h) => h.url.startsWith('/socket.io/') && (h.url.includes(`sid=${sid}`) || h.from === address))).toEqual(new Set([node]));
      const sub = await c.call('subscribe', { resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:00:00Z` });
      expect(sub.ok).toBe(true);
      clients.push(c);
    }
    // A command on node 0's connection; its event reaches the subscriber on node 1 (and back to node 0).
    const held = await clients[0]!.call('hold.create', { resourceIds: [room.id], start: `${day}T09:00:00Z`, end: `${day}T10:00:00Z` });
    expect(held.ok).toBe(true);
    for (const c of clients) {
      await waitFor(() => c.received.some((e) => e.type === 'hold.created' && e.payload.hold.id === held.data.id), 10_000, 'hold.created on both nodes');
    }
  });

  it('serves WebSocket-only Socket.IO clients on both nodes, with commands and events crossing between them', async () => {
    const tenant = await newTenant(viaLb());
    const room = await tenant.newResource({ capacity: 5 });
    const day = futureWeekday(5);
    const clients = [];
    // A WebSocket-only session is one connection: nginx sends it to the least busy node, whatever the address (two
    // clients from one address land on both nodes).
    const landed: number[] = [];
    for (const address of [addressOf[0]!, addressOf[0]!]) {
      const from = hits.length;
      const c = await live(tenant.key, address, ['websocket']);
      const mine = hits.slice(from).filter((h) => h.url.startsWith('/socket.io/') && h.from === address);
      expect(mine.map((h) => h.kind)).toEqual(['upgrade']);
      landed.push(mine[0]!.node);
      const sub = await c.call('subscribe', { resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:00:00Z` });
      expect(sub.ok).toBe(true);
      clients.push(c);
    }
    expect(landed.sort()).toEqual([0, 1]);
    const held = await clients[1]!.call('hold.create', { resourceIds: [room.id], start: `${day}T14:00:00Z`, end: `${day}T15:00:00Z` });
    expect(held.ok).toBe(true);
    const viaRest = await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T15:00:00Z`, end: `${day}T16:00:00Z` });
    expect(viaRest.status).toBe(201);
    for (const c of clients) {
      for (const id of [held.data.id, viaRest.body.id]) {
        await waitFor(() => c.received.some((e) => e.type === 'hold.created' && e.payload.hold.id === id), 10_000, `hold.created ${id} on both nodes`);
      }
    }
  });

  it('serves Yjs group documents to WebsocketProviders on both nodes: edits converge, hold and confirm reach both', async () => {
    const tenant = await newTenant(viaLb());
    const room = await tenant.newResource({ capacity: 10 });
    const token = async (userId: string) => (await tenant.api('POST', '/v1/tokens', { userId, name: userId, role: 'organizer' })).body.token as string;
    const [alice, carol] = [await token('alice'), await token('carol')];
    const asAlice = client(lb.url, alice);
    const group = await asAlice('POST', '/v1/group-bookings', { title: 'Offsite', resourceIds: [room.id], members: [{ userId: 'carol', role: 'organizer' }] });
    expect(group.status, group.text).toBe(201);

    const from = hits.length;
    const open = (userToken: string) => {
      const doc = new Y.Doc();
      const provider = new WebsocketProvider(`${lb.url.replace('http', 'ws')}/yjs`, group.body.docName, doc, {
        params: { token: userToken },
        WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
        disableBc: true,
      });
      providers.push(provider);
      return { doc, provider };
    };
    const pa = open(alice);
    await waitFor(() => pa.provider.synced, 10_000, 'alice synced');
    const pc = open(carol);
    await waitFor(() => pc.provider.synced, 10_000, 'carol synced');
    // nginx sends each new document connection to the node with fewer: one each.
    expect(nodesOf(from, (h) => h.kind === 'upgrade' && h.url.startsWith('/yjs/'))).toEqual(new Set([0, 1]));

    const day = futureWeekday(6);
    pa.doc.transact(() => {
      pa.doc.getMap('draft').set('start', `${day}T10:00:00Z`);
      pa.doc.getMap('draft').set('end', `${day}T11:00:00Z`);
    });
    pc.doc.transact(() => {
      const p = new Y.Map();
      p.set('name', 'Pat');
      p.set('email', 'pat@example.com');
      pc.doc.getMap('participants').set('pat', p);
    });
    const json = (d: Y.Doc) => JSON.stringify({ draft: d.getMap('draft').toJSON(), participants: d.getMap('participants').toJSON() });
    await waitFor(() => json(pa.doc) === json(pc.doc) && pc.doc.getMap('draft').get('start') === `${day}T10:00:00Z` && pa.doc.getMap('participants').has('pat'), 10_000, 'convergence');

    const held = await asAlice('POST', `/v1/group-bookings/${group.body.id}/hold`);
    expect(held.status, held.text).toBe(200);
    for (const p of [pa, pc]) await waitFor(() => p.doc.getMap('server').get('status') === 'held', 10_000, 'held in both documents');
    const confirmed = await client(lb.url, carol)('POST', `/v1/group-bookings/${group.body.id}/confirm`);
    expect(confirmed.status, confirmed.text).toBe(200);
    for (const p of [pa, pc]) await waitFor(() => p.doc.getMap('server').get('status') === 'confirmed', 10_000, 'confirmed in both documents');
  });

  it('keeps answering when a node stops: REST and new Socket.IO connections go to the other one', async () => {
    for (const s of sockets.splice(0)) s.disconnect();
    for (const p of providers.splice(0)) {
      p.destroy();
      p.doc.destroy();
    }
    const tenant = await newTenant(viaLb());
    const room = await tenant.newResource({ capacity: 5 });
    const day = futureWeekday(7);
    await cluster.nodes[0]!.stop();

    const from = hits.length;
    const at = (h: number) => `${day}T${String(h).padStart(2, '0')}:00:00Z`;
    for (let h = 8; h < 12; h++) {
      const res = await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], start: at(h), end: at(h + 1) });
      expect(res.status).toBe(201);
    }
    // The client whose address belonged to node 0 is served by node 1, over either transport.
    for (const transports of [['websocket'], ['polling', 'websocket']] as const) {
      const c = await live(tenant.key, addressOf[0], [...transports]);
      const h = transports.length === 1 ? 13 : 14;
      const held = await c.call('hold.create', { resourceIds: [room.id], start: at(h), end: at(h + 1) });
      expect(held.ok).toBe(true);
      c.socket.disconnect();
    }
    expect(nodesOf(from, () => true)).toEqual(new Set([1]));
  });
});
