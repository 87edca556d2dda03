/**
 * The fast paths decide with the resources a node remembers (resource-cache.ts)
 * only when the write finds them at the same version (migration 006). Here the
 * rows change behind the node's back (straight in the database, so no event
 * tells the node: what another node's change looks like before its message
 * arrives), and every request must still be decided by the rows as they are.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { futureWeekday, invariantViolations, newTenant, startNode, waitFor, type TestNode } from '../helpers/node';

/** Waits until the feed has stored the tenant's setup events (each makes the node forget the tenant's resources). */
async function settled(tenant: Awaited<ReturnType<typeof newTenant>>, resourceId: string): Promise<void> {
  await waitFor(async () => {
    const feed = await tenant.api('GET', '/v1/events?after=0&limit=1000');
    return feed.body.events?.some((e: any) => e.type === 'schedule.updated' && e.resourceIds.includes(resourceId));
  }, 10_000, 'setup events stored');
  await new Promise((r) => setTimeout(r, 200));
}

let node: TestNode;
beforeAll(async () => {
  node = await startNode();
});
afterAll(async () => {
  await node?.stop();
});

const at = (day: string, hhmm: string) => `${day}T${hhmm}:00.000Z`;
const customer = { name: 'Ada', email: 'ada@example.com' };

describe('remembered resources', () => {
  it('a hold or booking after a change the node has not heard of is decided by the changed row', async () => {
    const tenant = await newTenant(node);
    const r = await tenant.newResource({ capacity: 3 });
    const day = futureWeekday(5);
    const hold = (start: string, end: string) => tenant.api('POST', '/v1/holds', { resourceIds: [r.id], start: at(day, start), end: at(day, end), seats: 1 });
    const book = (start: string, end: string) =>
      tenant.api('POST', '/v1/bookings', { resourceIds: [r.id], start: at(day, start), end: at(day, end), seats: 1, customer });
    await settled(tenant, r.id);
    expect((await hold('09:00', '10:00')).status).toBe(201); // the node now remembers the resource

    // The advance window shrinks to a day: the remembered row would let these through.
    await node.pool.query('UPDATE resources SET max_advance_days = 1, version = version + 1 WHERE id = $1', [r.id]);
    const late = await hold('10:00', '11:00');
    expect(late.status).toBe(422);
    expect(late.body.code).toBe('too-far-ahead');
    expect((await book('10:00', '11:00')).body.code).toBe('too-far-ahead');

    // And back: the remembered row (read just now) is current again.
    await node.pool.query('UPDATE resources SET max_advance_days = 365, version = version + 1 WHERE id = $1', [r.id]);
    expect((await hold('10:00', '11:00')).status).toBe(201);

    // A buffer appears: the general path decides with it (the remembered row has none, which would let it through).
    await node.pool.query('UPDATE resources SET buffer_after_minutes = 60, version = version + 1 WHERE id = $1', [r.id]);
    const buffered = await hold('11:00', '12:00');
    expect(buffered.status).toBe(409);
    await node.pool.query('UPDATE resources SET buffer_after_minutes = 0, version = version + 1 WHERE id = $1', [r.id]);
    expect((await hold('11:00', '12:00')).status).toBe(201);

    // Archived behind its back: 404, not a hold on an archived resource.
    await node.pool.query('UPDATE resources SET archived_at = now(), version = version + 1 WHERE id = $1', [r.id]);
    const gone = await hold('13:00', '14:00');
    expect(gone.status).toBe(404);
    expect((await book('13:00', '14:00')).status).toBe(404);
    const { rows } = await node.pool.query(
      `SELECT count(*)::int AS n FROM holds h JOIN hold_resources hr ON hr.hold_id = h.id WHERE hr.resource_id = $1 AND h.start_at >= $2`,
      [r.id, at(day, '12:00')],
    );
    expect(rows[0].n).toBe(0);
    expect(await invariantViolations(node.pool, tenant.id)).toEqual([]);
  });

  it('a refusal by the remembered row is decided again on the row as it is', async () => {
    const tenant = await newTenant(node);
    const r = await tenant.newResource({ capacity: 1, rules: { maxAdvanceDays: 1 } });
    const day = futureWeekday(5);
    const hold = () => tenant.api('POST', '/v1/holds', { resourceIds: [r.id], start: at(day, '09:00'), end: at(day, '10:00'), seats: 1 });
    await settled(tenant, r.id);
    expect((await hold()).body.code).toBe('too-far-ahead'); // remembered with maxAdvanceDays 1
    await node.pool.query('UPDATE resources SET max_advance_days = 365, version = version + 1 WHERE id = $1', [r.id]);
    expect((await hold()).status).toBe(201);
  });

  it('a change through the API is seen by the next request at once', async () => {
    const tenant = await newTenant(node);
    const r = await tenant.newResource({ capacity: 2 });
    const day = futureWeekday(5);
    const hold = (start: string) => tenant.api('POST', '/v1/holds', { resourceIds: [r.id], start: at(day, start), end: at(day, `${String(Number(start.slice(0, 2)) + 1).padStart(2, '0')}:00`), seats: 1 });
    expect((await hold('09:00')).status).toBe(201);
    expect((await tenant.api('PATCH', `/v1/resources/${r.id}`, { rules: { maxAdvanceDays: 1 } })).status).toBe(200);
    expect((await hold('10:00')).body.code).toBe('too-far-ahead');
  });
});
