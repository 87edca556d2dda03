/** Invariants 1 and 2 under real concurrency: hundreds of requests racing over HTTP. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { futureWeekday, invariantViolations, newTenant, startNode, type TestNode } from '../helpers/node';

let t: TestNode;
beforeAll(async () => {
  t = await startNode();
});
afterAll(async () => t.stop());

const at = (day: string, hour: number) => `${day}T${String(hour).padStart(2, '0')}:00:00.000Z`;

describe('no oversell under concurrency', () => {
  it('200 concurrent holds on one slot of capacity 5 give exactly 5 × 201 and 195 × 409', { timeout: 120_000 }, async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource({ capacity: 5 });
    const day = futureWeekday(3);
    const results = await Promise.all(
      Array.from({ length: 200 }, () => tenant.api('POST', '/v1/holds', { resourceIds: [room.id], start: at(day, 10), end: at(day, 11) })),
    );
    const statuses = results.map((r) => r.status);
    expect(statuses.filter((s) => s === 201)).toHaveLength(5);
    expect(statuses.filter((s) => s === 409)).toHaveLength(195);
    for (const r of results.filter((x) => x.status === 409)) expect(r.body.code).toBe('slot-unavailable');

    const { rows } = await t.pool.query(
      `SELECT s.seats_taken, (SELECT count(*)::int FROM holds h JOIN hold_resources hr ON hr.hold_id = h.id
          WHERE hr.resource_id = s.resource_id AND h.status = 'held') AS held
       FROM slots s WHERE s.resource_id = $1 AND s.start_at = $2`,
      [room.id, at(day, 10)],
    );
    expect(rows[0]).toEqual({ seats_taken: 5, held: 5 });
    expect(await invariantViolations(t.pool, tenant.id)).toEqual([]);
  });

  it('two multi-resource holds taking the same resources in opposite order never deadlock and never both win', async () => {
    const tenant = await newTenant(t);
    const a = await tenant.newResource();
    const b = await tenant.newResource();
    const day = futureWeekday(4);
    const base = Date.parse(`${day}T00:00:00Z`);
    for (let round = 0; round < 100; round++) {
      // 20 hours a day over 5 days: every round races on fresh slots.
      const start = base + Math.floor(round / 20) * 86_400_000 + (round % 20) * 3_600_000;
      const body = (ids: string[]) => ({ resourceIds: ids, start: new Date(start).toISOString(), end: new Date(start + 3_600_000).toISOString() });
      const [x, y] = await Promise.all([
        tenant.api('POST', '/v1/holds', body([a.id, b.id])),
        tenant.api('POST', '/v1/holds', body([b.id, a.id])),
      ]);
      expect([x.status, y.status].sort()).toEqual([201, 409]);
    }
    expect(await invariantViolations(t.pool, tenant.id)).toEqual([]);
  });

  it('50 clients mixing hold, confirm, release, cancel, reschedule and expiry keep every slot exact', async () => {
    const tenant = await newTenant(t);
    const rooms = [await tenant.newResource({ capacity: 4 }), await tenant.newResource({ capacity: 3 })];
    const day = futureWeekday(5);
    const hours = [8, 9, 10, 11, 12, 13, 14, 15, 16, 17];
    const statuses = new Map<number, number>();
    const count = (s: number) => statuses.set(s, (statuses.get(s) ?? 0) + 1);
    const pick = <T,>(xs: T[]) => xs[Math.floor(Math.random() * xs.length)]!;
    // At least 4 s of mixed load; on a slow machine, on until every kind of change has happened (20 s at most).
    const deadline = Date.now() + 4_000;
    const hardDeadline = Date.now() + 20_000;
    const happened = new Set<string>();
    const KINDS = ['hold', 'confirm', 'release', 'expire', 'reschedule', 'cancel'];
    const keepGoing = () => Date.now() < deadline || (KINDS.some((k) => !happened.has(k)) && Date.now() < hardDeadline);

    async function client() {
      const mine: { hold?: string; booking?: string; version?: number } = {};
      while (keepGoing()) {
        const h = pick(hours);
        const ids = Math.random() < 0.3 ? rooms.map((r) => r.id) : [pick(rooms).id];
        const range = { start: at(day, h), end: at(day, h + (Math.random() < 0.3 ? 2 : 1)) };
        const action = Math.random();
        let r;
        if (!mine.hold && !mine.booking) {
          r = await tenant.api('POST', '/v1/holds', { resourceIds: ids, ...range, seats: 1 + Math.floor(Math.random() * 2), ttlSeconds: pick([1, 2, 60]) });
          if (r.status === 201) {
            mine.hold = r.body.id;
            happened.add('hold');
          }
        } else if (mine.hold) {
          if (action < 0.5) {
            r = await tenant.api('POST', `/v1/holds/${mine.hold}/confirm`, { customer: { name: 'C', email: 'c@example.com' } });
            if (r.status === 201) {
              Object.assign(mine, { booking: r.body.id, version: r.body.version });
              happened.add('confirm');
            }
          } else if (action < 0.8) {
            r = await tenant.api('DELETE', `/v1/holds/${mine.hold}`);
            if (r.status === 200 && r.body.status === 'released') happened.add('release');
          } else {
            // Let it expire: wait past a short TTL, then forget it.
            await new Promise((res) => setTimeout(res, 300));
            r = await tenant.api('GET', `/v1/holds/${mine.hold}`);
            if (r.status === 200 && Date.parse(r.body.expiresAt) <= Date.now()) happened.add('expire');
          }
          if (r.status !== 201 || action >= 0.5) mine.hold = undefined;
        } else {
          if (action < 0.5) {
            r = await tenant.api('PATCH', `/v1/bookings/${mine.booking}`, { ...range, resourceIds: ids }, { 'If-Match': `"${mine.version}"` });
            if (r.status === 200) {
              mine.version = r.body.version;
              happened.add('reschedule');
            }
          } else {
            r = await tenant.api('POST', `/v1/bookings/${mine.booking}/cancel`, {});
            if (r.status === 200) happened.add('cancel');
            mine.booking = undefined;
          }
        }
        count(r.status);
      }
    }

    await Promise.all(Array.from({ length: 50 }, client));
    // Wait for short holds to expire and be swept.
    await new Promise((res) => setTimeout(res, 2_500));

    // Every request was well-formed: only successes, conflicts and expiries may come back.
    expect([...statuses.keys()].filter((s) => ![200, 201, 409, 410].includes(s))).toEqual([]);
    const { rows: kinds } = await t.pool.query('SELECT type, count(*)::int AS n FROM events WHERE tenant_id = $1 GROUP BY type', [tenant.id]);
    const seen = Object.fromEntries(kinds.map((k) => [k.type, k.n]));
    for (const type of ['hold.created', 'hold.released', 'hold.expired', 'booking.confirmed', 'booking.cancelled', 'booking.rescheduled']) {
      expect(seen[type], type).toBeGreaterThan(0);
    }
    expect(statuses.get(201) ?? 0).toBeGreaterThan(20);
    expect(statuses.get(409) ?? 0).toBeGreaterThan(0);
    expect(await invariantViolations(t.pool, tenant.id)).toEqual([]);
    const { rows } = await t.pool.query(
      `SELECT count(*)::int AS n FROM holds WHERE tenant_id = $1 AND status = 'held' AND expires_at < now() - interval '1.5 seconds'`,
      [tenant.id],
    );
    expect(rows[0].n).toBe(0);
  });
});
