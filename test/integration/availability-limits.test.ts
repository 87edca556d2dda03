/**
 * The bounds on one availability answer, over REST and Socket.IO subscribe
 * alike: repeated ids count once, the range and the slots read are capped,
 * and past a bound the answer is a problem naming it, fast, while the node
 * goes on answering others.
 */
import { io, type Socket } from 'socket.io-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_SLOTS } from '../../server/core/services/availability';
import { futureWeekday, newTenant, startNode, type TestNode } from '../helpers/node';

const DAY = 86_400_000;
let t: TestNode;
const sockets: Socket[] = [];
beforeAll(async () => {
  t = await startNode();
});
afterAll(async () => {
  for (const s of sockets) s.disconnect();
  await t.stop();
});

const iso = (ms: number) => new Date(ms).toISOString();
const midnight = (day: string) => Date.parse(`${day}T00:00:00Z`);

async function live(token: string) {
  const socket = io(t.url, { auth: { token }, transports: ['websocket'], reconnection: false });
  sockets.push(socket);
  await new Promise<void>((resolve, reject) => {
    socket.once('connect', () => resolve());
    socket.once('connect_error', reject);
  });
  return (event: string, payload: unknown) => socket.timeout(10_000).emitWithAck(event, payload) as Promise<any>;
}

/** Two resources with 5-minute slots around the clock (the horizon's 25,920 each) and 98 without a schedule: 100 ids. */
async function hundredIds(tenant: Awaited<ReturnType<typeof newTenant>>) {
  const fine = [await tenant.newResource({ slotMinutes: 5 }), await tenant.newResource({ slotMinutes: 5 })];
  const bare = [];
  for (let i = 0; i < 98; i += 14) {
    bare.push(...(await Promise.all(Array.from({ length: 14 }, () => tenant.api('POST', '/v1/resources', { name: 'Spare', timezone: 'UTC' })))));
  }
  for (const r of bare) expect(r.status).toBe(201);
  return { fine: fine.map((r) => r.id), all: [...fine.map((r) => r.id), ...bare.map((r) => r.body.id as string)] };
}

describe('availability bounds', () => {
  it('answers a repeated id once, in the order of first occurrence, and counts it once against the id cap', async () => {
    const tenant = await newTenant(t);
    const a = await tenant.newResource();
    const b = await tenant.newResource();
    const day = futureWeekday();
    const range = `from=${day}T09:00:00Z&to=${day}T12:00:00Z`;
    const res = await tenant.api('GET', `/v1/availability?resourceIds=${b.id},${a.id},${b.id},${b.id},${a.id}&${range}`);
    expect(res.status).toBe(200);
    expect(res.body.resources.map((r: any) => r.resourceId)).toEqual([b.id, a.id]);
    expect(res.body.resources[0].slots).toHaveLength(3);

    // 150 copies of one id are one resource, under the cap of 100.
    const many = await tenant.api('GET', `/v1/availability?resourceIds=${Array(150).fill(a.id).join(',')}&${range}&duration=60`);
    expect(many.status).toBe(200);
    expect(many.body.options.map((o: any) => o.resourceIds)).toEqual([[a.id], [a.id], [a.id]]);
  });

  it('refuses 62 days of 5-minute slots on 100 ids with 422 limit-exceeded naming the bound, fast, while /healthz answers', async () => {
    const tenant = await newTenant(t);
    const { fine, all } = await hundredIds(tenant);
    const from = midnight(futureWeekday(1));
    const url = `/v1/availability?resourceIds=${all.join(',')}&from=${iso(from)}&to=${iso(from + 62 * DAY)}`;

    let done = false;
    const started = Date.now();
    const refused = tenant.api('GET', url).finally(() => (done = true));
    let slowestHealth = 0;
    let healthChecks = 0;
    while (!done) {
      const before = Date.now();
      const health = await fetch(`${t.url}/healthz`);
      expect(health.status).toBe(200);
      slowestHealth = Math.max(slowestHealth, Date.now() - before);
      healthChecks++;
    }
    const res = await refused;
    const took = Date.now() - started;
    expect(res.status).toBe(422);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(res.body).toMatchObject({ code: 'limit-exceeded', status: 422, limit: 'availability.slots', max: DEFAULT_MAX_SLOTS });
    expect(res.body.detail).toContain(String(DEFAULT_MAX_SLOTS));
    expect(res.body.detail).toMatch(/fewer resources or a shorter range/);
    expect(healthChecks).toBeGreaterThan(0);
    // Generous: the refusal reads 20,001 rows (tens of ms); before the bound it built 3.6 M slots for seconds.
    expect(slowestHealth).toBeLessThan(2_000);
    expect(took).toBeLessThan(5_000);

    // One of those resources alone over 62 days (17,856 slots) is an honest query, answered whole.
    const one = await tenant.api('GET', `/v1/availability?resourceIds=${fine[0]}&from=${iso(from)}&to=${iso(from + 62 * DAY)}`);
    expect(one.status).toBe(200);
    expect(one.body.resources[0].slots).toHaveLength(62 * 288);
    // With a duration the slots read past `to` count too: 62 + 31 days is past the bound.
    const longer = await tenant.api('GET', `/v1/availability?resourceIds=${fine[0]}&from=${iso(from)}&to=${iso(from + 62 * DAY)}&duration=${31 * 1440}`);
    expect(longer.status).toBe(422);
    expect(longer.body.limit).toBe('availability.slots');
    const shorter = await tenant.api('GET', `/v1/availability?resourceIds=${fine[0]}&from=${iso(from)}&to=${iso(from + 7 * DAY)}&duration=${31 * 1440}`);
    expect(shorter.status).toBe(200);
    expect(shorter.body.options).toHaveLength(7 * 288);
  });

  it('applies the same bounds to Socket.IO subscribe: the range, repeated ids and the slots read', async () => {
    const tenant = await newTenant(t);
    const { fine, all } = await hundredIds(tenant);
    const call = await live(tenant.key);

    const century = await call('subscribe', { resourceIds: all, from: '2000-01-01T00:00:00Z', to: '2100-01-01T00:00:00Z' });
    expect(century.ok).toBe(false);
    expect(century.error).toMatchObject({ status: 400, code: 'validation-failed' });
    expect(JSON.stringify(century.error.errors)).toContain('at most 62 days');

    const from = midnight(futureWeekday(1));
    const range = { from: iso(from), to: iso(from + 62 * DAY) };
    const tooMany = await call('subscribe', { resourceIds: all, ...range });
    expect(tooMany.ok).toBe(false);
    expect(tooMany.error).toMatchObject({ status: 422, code: 'limit-exceeded', limit: 'availability.slots', max: DEFAULT_MAX_SLOTS });

    const repeated = await call('subscribe', { resourceIds: Array(100).fill(fine[0]), from: iso(from), to: iso(from + DAY) });
    expect(repeated.ok).toBe(true);
    expect(repeated.availability.resources.map((r: any) => r.resourceId)).toEqual([fine[0]]);
    expect(repeated.availability.resources[0].slots).toHaveLength(288);
  });
});
