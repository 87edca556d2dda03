/**
 * The REST answer is written straight into JSON text (no object per slot);
 * it must be byte for byte what JSON.stringify makes of the answer that
 * Socket.IO subscribe sends, with holds, buffers, notice and blocks in play.
 */
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { newTenant, startNode, type TestNode } from '../helpers/node';

const DAY = 86_400_000;
const HOUR = 3_600_000;
let t: TestNode;
let socket: Socket | undefined;
beforeAll(async () => {
  t = await startNode();
});
afterAll(async () => {
  socket?.disconnect();
  await t.stop();
});

const iso = (ms: number) => new Date(ms).toISOString();

it('writes the REST answer exactly as JSON.stringify writes the same answer', async () => {
  const tenant = await newTenant(t);
  const plain = await tenant.newResource({ capacity: 3 });
  const padded = await tenant.newResource({ capacity: 2, slotMinutes: 30, timezone: 'Europe/Berlin', rules: { minNoticeMinutes: 120, maxAdvanceDays: 30, bufferBeforeMinutes: 30, bufferAfterMinutes: 15 } });
  const day = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 2);
  for (const [ids, start, end, seats] of [[[plain.id], day + 9 * HOUR, day + 11 * HOUR, 2], [[plain.id, padded.id], day + 14 * HOUR, day + 15 * HOUR, 1], [[padded.id], day + DAY + 8 * HOUR, day + DAY + 9 * HOUR, 2]] as const) {
    const hold = await tenant.api('POST', '/v1/holds', { resourceIds: ids, start: iso(start), end: iso(end), seats });
    expect(hold.status).toBe(201);
  }
  expect((await tenant.api('POST', `/v1/resources/${plain.id}/blocks`, { start: iso(day + 20 * HOUR), end: iso(day + 23 * HOUR) })).status).toBe(201);

  socket = io(t.url, { auth: { token: tenant.key }, transports: ['websocket'], reconnection: false });
  await new Promise<void>((resolve, reject) => {
    socket!.once('connect', () => resolve());
    socket!.once('connect_error', reject);
  });
  const ranges = [[day, day + DAY], [Date.now() - HOUR, Date.now() + 3 * DAY], [day + 7 * 60_000, day + 2 * DAY + 7 * 60_000], [day + 60 * DAY, day + 61 * DAY]];
  for (const ids of [[plain.id], [padded.id], [padded.id, plain.id]]) {
    for (const [from, to] of ranges) {
      const range = { resourceIds: ids, from: iso(from!), to: iso(to!) };
      const rest = await tenant.api('GET', `/v1/availability?resourceIds=${ids.join(',')}&from=${range.from}&to=${range.to}`);
      expect(rest.status).toBe(200);
      const live = await socket.timeout(10_000).emitWithAck('subscribe', range);
      expect(live.ok).toBe(true);
      expect(rest.text).toBe(JSON.stringify(live.availability));
    }
  }
});
