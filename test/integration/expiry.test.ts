/** Invariant 4: an expired hold frees its seats within about a second, once. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { futureWeekday, invariantViolations, isolatedDatabase, newTenant, startNode, type TestNode } from '../helpers/node';

let t: TestNode;
beforeAll(async () => {
  t = await startNode();
});
afterAll(async () => t.stop());

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('hold expiry', () => {
  it('frees the seats within about a second of expiresAt and emits one hold.expired event', async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource({ capacity: 2 });
    const day = futureWeekday(2);
    const range = { start: `${day}T10:00:00Z`, end: `${day}T11:00:00Z` };
    const hold = await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], ...range, seats: 2, ttlSeconds: 2 });
    expect(hold.status).toBe(201);
    const expiresAt = Date.parse(hold.body.expiresAt);

    const remaining = async () =>
      (await tenant.api('GET', `/v1/availability?resourceIds=${room.id}&from=${range.start}&to=${range.end}`)).body.resources[0].slots.length;
    expect(await remaining()).toBe(0);

    let freedAt = 0;
    while (Date.now() < expiresAt + 5_000) {
      if ((await remaining()) === 1) {
        freedAt = Date.now();
        break;
      }
      await sleep(50);
    }
    expect(freedAt).toBeGreaterThanOrEqual(expiresAt);
    expect(freedAt - expiresAt).toBeLessThan(1_200);

    const read = await tenant.api('GET', `/v1/holds/${hold.body.id}`);
    expect(read.body.status).toBe('expired');
    await sleep(500); // further sweeps must not expire it again
    const feed = await tenant.api('GET', '/v1/events?after=0&limit=1000');
    const expired = feed.body.events.filter((e: any) => e.type === 'hold.expired');
    expect(expired).toHaveLength(1);
    expect(expired[0].data.hold.id).toBe(hold.body.id);

    const confirm = await tenant.api('POST', `/v1/holds/${hold.body.id}/confirm`, { customer: { name: 'Late', email: 'late@example.com' } });
    expect(confirm.status).toBe(410);
    expect(confirm.body.code).toBe('hold-expired');
    expect(await invariantViolations(t.pool, tenant.id)).toEqual([]);
  });

  it('a request that needs seats of an expired hold reclaims them itself, even with no sweeper running', async () => {
    // A database of its own and a node whose sweeper waits 10 s after its first run:
    // only the reclaim path can free the seats in time.
    const db = await isolatedDatabase();
    const lazy = await startNode({ SWEEP_INTERVAL_MS: '10000', DATABASE_URL: db.url });
    try {
      const tenant = await newTenant(lazy);
      const room = await tenant.newResource({ capacity: 1 });
      const day = futureWeekday(2);
      const range = { resourceIds: [room.id], start: `${day}T12:00:00Z`, end: `${day}T13:00:00Z` };
      const first = await tenant.api('POST', '/v1/holds', { ...range, ttlSeconds: 1 });
      expect(first.status).toBe(201);
      await sleep(1_100);
      const second = await tenant.api('POST', '/v1/holds', range);
      expect(second.status).toBe(201);
      const old = await tenant.api('GET', `/v1/holds/${first.body.id}`);
      expect(old.body.status).toBe('expired');
      const feed = await tenant.api('GET', '/v1/events?after=0&limit=1000');
      expect(feed.body.events.filter((e: any) => e.type === 'hold.expired')).toHaveLength(1);
      expect(await invariantViolations(lazy.pool, tenant.id)).toEqual([]);
    } finally {
      await lazy.stop();
      await db.drop();
    }
  });
});
