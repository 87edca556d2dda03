/**
 * Shows two running nodes cooperating (start them with `npm run cluster`):
 * a socket.io-client on node 2 sees a hold made through node 1, and two stock
 * WebsocketProviders, one per node, converge on one group booking document.
 *
 *   ADMIN_TOKEN=<printed by the cluster> npx tsx scripts/demo-live.ts [http://localhost:3000 http://localhost:3001]
 */
import { io } from 'socket.io-client';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';

const [A = 'http://localhost:3000', B = 'http://localhost:3001'] = process.argv.slice(2);
const admin = process.env.ADMIN_TOKEN;
if (!admin) throw new Error('set ADMIN_TOKEN to the token the cluster printed');

async function call(base: string, token: string, method: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(base + path, {
    method,
    headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  const json = await res.json();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
  return json;
}

const until = async (cond: () => boolean, ms: number) => {
  for (const end = Date.now() + ms; !cond(); ) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 20));
  }
};

const tenant = await call(A, admin, 'POST', '/v1/tenants', { name: 'Live demo' });
const key: string = tenant.apiKey;
const room = await call(A, key, 'POST', '/v1/resources', { name: 'Demo room', capacity: 4, slotMinutes: 60 });
await call(A, key, 'PUT', `/v1/resources/${room.id}/schedule`, { weekly: [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], start: '00:00', end: '24:00' }] });
const day = new Date(Date.now() + 3 * 86_400_000).toISOString().slice(0, 10);

// 1. Socket.IO: subscribe on node 2, hold through node 1.
const socket = io(B, { auth: { token: key }, transports: ['websocket'] });
const seen: string[] = [];
socket.onAny((event, payload) => seen.push(`${event} seq=${payload.seq}${payload.slots ? ` remaining=${payload.slots.map((s: any) => s.remaining).join(',')}` : ''}`));
const sub = await socket.timeout(5000).emitWithAck('subscribe', { resourceIds: [room.id], from: `${day}T00:00:00Z`, to: `${day}T23:00:00Z` });
console.log(`node 2 socket subscribed at seq ${sub.seq}`);
const t0 = Date.now();
const hold = await call(A, key, 'POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T10:00:00Z`, end: `${day}T11:00:00Z`, seats: 3 });
console.log(`node 1 REST: hold ${hold.id} created (3 of 4 seats)`);
await until(() => seen.length >= 2, 5000);
console.log(`node 2 socket received within ${Date.now() - t0} ms:\n  ${seen.join('\n  ')}`);
socket.disconnect();

// 2. Yjs: one provider per node on one group booking document.
const token = async (userId: string) => (await call(A, key, 'POST', '/v1/tokens', { userId, name: userId, role: 'organizer' })).token as string;
const [alice, carol] = [await token('alice'), await token('carol')];
const group = await call(A, alice, 'POST', '/v1/group-bookings', { title: 'Offsite', resourceIds: [room.id], members: [{ userId: 'carol', role: 'organizer' }] });
const open = (base: string, t: string) => {
  const doc = new Y.Doc();
  const provider = new WebsocketProvider(base.replace('http', 'ws') + '/yjs', group.docName, doc, {
    params: { token: t },
    WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket,
    disableBc: true,
  });
  return { doc, provider };
};
const pa = open(A, alice);
const pb = open(B, carol);
await until(() => pa.provider.synced && pb.provider.synced, 5000);
pa.doc.getMap('draft').set('start', `${day}T10:00:00Z`);
pb.doc.getText('notes').insert(0, 'Carol on node 2 was here. ');
pa.doc.getText('notes').insert(0, 'Alice on node 1 too. ');
const json = (d: Y.Doc) => JSON.stringify({ draft: d.getMap('draft').toJSON(), notes: d.getText('notes').toString() });
await until(() => json(pa.doc) === json(pb.doc) && pa.doc.getText('notes').length > 40, 5000);
console.log(`provider on node 1: ${json(pa.doc)}`);
console.log(`provider on node 2: ${json(pb.doc)}`);
console.log(`converged: ${json(pa.doc) === json(pb.doc)}`);
pa.provider.destroy();
pb.provider.destroy();
process.exit(0);
