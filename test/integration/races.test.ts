/**
 * Invariant 1 (no oversell) and invariant 3 (one event per committed change)
 * while a resource changes under a storm of holds: a capacity cut, a new
 * block, a schedule change and an archive, each raced against 100 concurrent
 * holds on the same slots. Each change may win or lose the race; either way
 * the outcome must be the documented one, and afterwards, counted straight
 * from Postgres, every slot's seats_taken equals its live holds' and confirmed
 * bookings' seats and never exceeds its capacity, and no live hold or booking
 * sits on seats that no slot carries any more.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { haveAll, missing, oneToOne, readFeedUntil, type FeedEvent } from '../helpers/feed';
import { futureWeekday, invariantViolations, isolatedDatabase, newTenant, startNode, waitFor, type Reply, type TestNode } from '../helpers/node';

let t: TestNode;
beforeAll(async () => {
  t = await startNode();
});
afterAll(async () => t.stop());

type Tenant = Awaited<ReturnType<typeof newTenant>>;
const at = (day: string, hour: number) => `${day}T${String(hour).padStart(2, '0')}:00:00.000Z`;
const HOURS = [10, 11, 12, 13, 14];
const HOLDS = 100;
/**
 * When the change is sent relative to the holds: `lead` ms before the first
 * hold, in the middle of sending them (before any answered), or once
 * `answered` holds have answered. Early changes tend to win the race (the
 * holds then wait on the slots the change has locked), late ones to meet
 * seats already taken.
 */
type Trigger = { lead: number } | { amid: true } | { answered: number };
const TRIGGERS: [string, Trigger][] = [
  ['sent 15 ms before the holds', { lead: 15 }],
  ['sent amid the holds', { amid: true }],
  ['sent after 5 holds answered', { answered: 5 }],
  ['sent after 40 holds answered', { answered: 40 }],
];

/** 100 hold bodies over hours 10–14 of `day`: mostly one hour, every 7th two hours, some two seats. */
function holdBodies(resourceId: string, day: string) {
  return Array.from({ length: HOLDS }, (_, i) => {
    const h = HOURS[i % HOURS.length]!;
    const long = i % 7 === 0 && h < 14;
    return { resourceIds: [resourceId], start: at(day, h), end: at(day, long ? h + 2 : h + 1), seats: i % 9 === 0 ? 2 : 1 };
  });
}

type HoldBody = ReturnType<typeof holdBodies>[number];

/** Sends every hold at once and `change` at the trigger point; returns every answer. */
async function race(api: Tenant['api'], bodies: HoldBody[], change: () => Promise<Reply>, trigger: Trigger) {
  let fire!: () => void;
  const fired = new Promise<void>((r) => (fire = r));
  const changed = fired.then(change);
  if ('lead' in trigger) {
    fire();
    await new Promise((r) => setTimeout(r, trigger.lead));
  }
  let answered = 0;
  const holds: Promise<Reply>[] = [];
  for (const [i, body] of bodies.entries()) {
    if ('amid' in trigger && i === Math.floor(bodies.length / 2)) fire();
    holds.push(api('POST', '/v1/holds', body).then((r) => {
      if (!('answered' in trigger) || ++answered >= trigger.answered) fire();
      return r;
    }));
  }
  const t0 = Date.now();
  const results = await Promise.all(holds);
  slowest = Math.max(slowest, Date.now() - t0);
  return { holds: results, change: await changed, bodies };
}

/** Live holds and confirmed bookings (ending in the future) whose range is not fully covered by the slots of each of their resources. */
async function seatsWithoutSlots(pool: pg.Pool, tenantId: string) {
  const { rows } = await pool.query(
    `WITH live AS (
       SELECT 'hold' AS kind, h.id, hr.resource_id, h.start_at, h.end_at FROM holds h JOIN hold_resources hr ON hr.hold_id = h.id
        WHERE h.tenant_id = $1 AND h.status = 'held' AND h.end_at > now()
       UNION ALL
       SELECT 'booking', b.id, br.resource_id, b.start_at, b.end_at FROM bookings b JOIN booking_resources br ON br.booking_id = b.id
        WHERE b.tenant_id = $1 AND b.status = 'confirmed' AND b.end_at > now())
     SELECT l.kind, l.id, l.resource_id FROM live l
     WHERE COALESCE((SELECT sum(extract(epoch FROM s.end_at - s.start_at)) FROM slots s
                     WHERE s.resource_id = l.resource_id AND s.start_at >= l.start_at AND s.end_at <= l.end_at), 0)
           <> extract(epoch FROM l.end_at - l.start_at)`,
    [tenantId],
  );
  return rows;
}

/** The race day's slots of a resource (hours 10–14 and their neighbours), as plain rows. */
async function daySlots(pool: pg.Pool, resourceId: string, day: string) {
  const { rows } = await pool.query(
    `SELECT extract(hour FROM start_at AT TIME ZONE 'UTC')::int AS hour, capacity, seats_taken, blocked FROM slots
     WHERE resource_id = $1 AND start_at >= $2 AND start_at < $3 ORDER BY start_at`,
    [resourceId, at(day, 8), at(day, 17)],
  );
  return rows as { hour: number; capacity: number; seats_taken: number; blocked: boolean }[];
}

/**
 * The checks every race ends with: only documented answers to the holds;
 * invariant 1 counted from Postgres; no seats without a slot under them; and
 * the feed (read until it has them) with exactly one hold.created per hold
 * that answered 201 and nothing for the others, plus exactly one event of
 * `changeType` when the change succeeded and none when it was refused.
 * Returns the feed and the successful holds.
 */
async function settle(tenant: Tenant, result: Awaited<ReturnType<typeof race>>, changeType: string, changeOk: boolean, resourceId: string, after: number) {
  // 503 is the server's answer to a transaction that lost a lock race (a deadlock) three times (`unavailable`) or
  // waited on locks past its statement timeout (`deadline-exceeded`): nothing written, retry. Holds racing a resource
  // change meet both (see the deadlock test below); counted, and checked to leave no trace.
  const unexpected = result.holds.filter((r) => ![201, 404, 409, 422, 503].includes(r.status)).map((r) => `${r.status} ${r.text}`);
  expect(unexpected, 'hold answers other than 201, 404 (archived), 409 (no seats), 422 (closed), 503 (lost a lock race)').toEqual([]);
  for (const r of result.holds.filter((x) => x.status === 409)) expect(r.body.code).toBe('slot-unavailable');
  for (const r of result.holds.filter((x) => x.status === 503)) expect(['unavailable', 'deadline-exceeded']).toContain(r.body.code);
  unavailable.holds += result.holds.filter((x) => x.status === 503).length;
  if (result.change.status === 503) {
    expect(['unavailable', 'deadline-exceeded']).toContain(result.change.body.code);
    unavailable.changes++;
  }

  expect(await invariantViolations(t.pool, tenant.id), 'slots whose seats_taken differs from live holds + confirmed bookings, or exceeds capacity').toEqual([]);
  expect(await seatsWithoutSlots(t.pool, tenant.id), 'live holds or bookings with no slot under part of their range').toEqual([]);

  const won = result.holds.map((r, i) => ({ r, body: result.bodies[i]! })).filter(({ r }) => r.status === 201);
  const ids = won.map(({ r }) => r.body.id as string);
  // Every hold in the database is one a client was told about (refused ones left no row).
  const { rows: stored } = await t.pool.query('SELECT id FROM holds WHERE tenant_id = $1', [tenant.id]);
  expect(stored.map((h) => h.id).sort(), 'hold rows ↔ holds answered 201').toEqual([...ids].sort());
  const changeEvent = (e: FeedEvent) => e.type === changeType && e.resourceIds.includes(resourceId);
  const feed = await readFeedUntil(t.url, tenant.key, {
    after,
    until: (events) => haveAll(events, 'hold.created', ids) && (!changeOk || events.some(changeEvent)),
    describe: (events) => `hold.created missing for ${missing(events, 'hold.created', ids).length} of ${ids.length} holds; ${changeType} ${events.some(changeEvent) ? 'present' : 'absent'}`,
    timeoutMs: 10_000,
    settleMs: 200,
  });
  expect(oneToOne(feed, 'hold.created', ids), 'hold.created events ↔ holds answered 201').toEqual([]);
  expect(feed.filter(changeEvent).length, `${changeType} events (change answered ${changeOk ? 'success' : 'a refusal'})`).toBe(changeOk ? 1 : 0);
  // Each event's hold is the one the client was given.
  const byId = new Map(feed.filter((e) => e.type === 'hold.created').map((e) => [e.data.hold.id as string, e]));
  for (const { r } of won) expect(byId.get(r.body.id)!.data.hold).toMatchObject({ start: r.body.start, end: r.body.end, seats: r.body.seats });
  return { feed, won, changeSeq: feed.find(changeEvent)?.seq };
}

/** The seq of the last set-up event of a new resource (its schedule), once the feed shows it: the race's events come after. */
async function setupSeq(tenant: Tenant, resourceId: string): Promise<number> {
  const events = await readFeedUntil(t.url, tenant.key, {
    until: (ev) => ev.some((e) => e.type === 'schedule.updated' && e.resourceIds.includes(resourceId)),
    describe: () => `no schedule.updated yet for resource ${resourceId}`,
  });
  return events[events.length - 1]!.seq;
}

const overlaps = (body: { start: string; end: string }, from: string, to: string) => Date.parse(body.start) < Date.parse(to) && Date.parse(body.end) > Date.parse(from);

type Won = { r: Reply; body: { start: string; end: string; seats: number } }[];
/** Seats the granted holds (plus `extra` seats per hour) put on the slot at `hour`, from the clients' side. */
const heldAt = (won: Won, day: string, hour: number, extra: Record<number, number> = {}) =>
  won.filter(({ body }) => overlaps(body, at(day, hour), at(day, hour + 1))).reduce((n, { body }) => n + body.seats, extra[hour] ?? 0);
const outcomes: Record<string, string[]> = {};
const note = (race: string, outcome: string) => (outcomes[race] ??= []).push(outcome);
const unavailable = { holds: 0, changes: 0 };
let slowest = 0;
afterAll(() => console.log(`races: ${JSON.stringify(outcomes)}; 503: ${unavailable.holds} hold(s), ${unavailable.changes} change(s); slowest storm ${slowest} ms`));

describe('resource changes raced against 100 concurrent holds', () => {
  for (const [label, trigger] of TRIGGERS) {
    it(`a capacity cut from 10 to 3 (${label})`, async () => {
      const tenant = await newTenant(t);
      const room = await tenant.newResource({ capacity: 10 });
      const mark = await setupSeq(tenant, room.id);
      const day = futureWeekday(3);
      const result = await race(tenant.api, holdBodies(room.id, day), () => tenant.api('PATCH', `/v1/resources/${room.id}`, { capacity: 3 }), trigger);
      const cut = result.change;
      expect([200, 409, 503], cut.text).toContain(cut.status);
      const { won } = await settle(tenant, result, 'resource.updated', cut.status === 200, room.id, mark);
      const slots = await daySlots(t.pool, room.id, day);
      const resource = await tenant.api('GET', `/v1/resources/${room.id}`);
      if (cut.status === 200) {
        // The cut applies to every slot, and no slot carries more than the new capacity (nothing taken before it exceeded 3).
        expect(cut.body.capacity).toBe(3);
        expect(resource.body.capacity).toBe(3);
        expect(slots.filter((s) => s.capacity !== 3)).toEqual([]);
        expect(slots.filter((s) => s.seats_taken > 3)).toEqual([]);
      } else {
        // Refused because seats beyond 3 were already taken (listed), or lost a lock race: nothing changed.
        if (cut.status === 409) {
          expect(cut.body.code).toBe('capacity-conflict');
          expect(cut.body.conflicts.length).toBeGreaterThan(0);
          for (const c of cut.body.conflicts) {
            expect(c.resourceId).toBe(room.id);
            expect(c.seatsTaken).toBeGreaterThan(3);
          }
        }
        expect(resource.body.capacity).toBe(10);
        expect(resource.body.version).toBe(room.version);
        expect(slots.filter((s) => s.capacity !== 10)).toEqual([]);
      }
      // Whatever the order, the holds never took more than the capacity in force: with the cut, 3 a slot at most.
      for (const h of HOURS) {
        const taken = heldAt(won, day, h);
        expect(taken, `seats held at ${h}:00`).toBeLessThanOrEqual(cut.status === 200 ? 3 : 10);
        expect(slots.find((s) => s.hour === h)!.seats_taken, `slot ${h}:00`).toBe(taken);
      }
      note('capacity', String(cut.status));
    });

    it(`a new block over 11:00–13:00 (${label})`, async () => {
      const tenant = await newTenant(t);
      const room = await tenant.newResource({ capacity: 10 });
      const mark = await setupSeq(tenant, room.id);
      const day = futureWeekday(4);
      const from = at(day, 11);
      const to = at(day, 13);
      const result = await race(tenant.api, holdBodies(room.id, day), () => tenant.api('POST', `/v1/resources/${room.id}/blocks`, { start: from, end: to, reason: 'race' }), trigger);
      const block = result.change;
      expect([201, 409, 503], block.text).toContain(block.status);
      const { won, feed, changeSeq } = await settle(tenant, result, 'block.created', block.status === 201, room.id, mark);
      const slots = await daySlots(t.pool, room.id, day);
      const { rows: blocks } = await t.pool.query('SELECT id FROM blocks WHERE resource_id = $1', [room.id]);
      const inBlock = won.filter(({ body }) => overlaps(body, from, to));
      if (block.status === 201) {
        expect(blocks.map((b) => b.id)).toEqual([block.body.id]);
        expect(slots.filter((s) => s.hour >= 11 && s.hour < 13).map((s) => s.blocked)).toEqual([true, true]);
        expect(slots.filter((s) => s.hour < 11 || s.hour >= 13).every((s) => !s.blocked)).toBe(true);
        // No hold was granted on the blocked slots after the block committed (seq follows commit order).
        const createdSeq = new Map(feed.filter((e) => e.type === 'hold.created').map((e) => [e.data.hold.id as string, e.seq]));
        const after = inBlock.filter(({ r }) => createdSeq.get(r.body.id)! > changeSeq!).map(({ r }) => r.body.id);
        expect(after, 'holds inside the block committed after it').toEqual([]);
        // Holds outside the block went on: the slots at 10 and 13–14 took seats.
        for (const h of [10, 13, 14]) expect(heldAt(won, day, h), `seats held at ${h}:00`).toBeGreaterThan(0);
      } else {
        // Refused because seats are taken inside the range (listed), or lost a lock race: no trace of the block.
        if (block.status === 409) {
          expect(block.body.code).toBe('block-conflict');
          expect(block.body.conflicts.length).toBeGreaterThan(0);
          for (const c of block.body.conflicts) {
            expect(c.seatsTaken).toBeGreaterThan(0);
            expect(overlaps(c, from, to)).toBe(true);
          }
          expect(inBlock.length).toBeGreaterThan(0);
        }
        expect(blocks).toEqual([]);
        expect(slots.every((s) => !s.blocked)).toBe(true);
      }
      // Each slot carries exactly the seats its clients were granted.
      for (const s of slots) expect(s.seats_taken, `slot ${s.hour}:00`).toBe(heldAt(won, day, s.hour));
      note('block', String(block.status));
    });

    it(`a schedule change closing 12:00–24:00 (${label})`, async () => {
      const tenant = await newTenant(t);
      const room = await tenant.newResource({ capacity: 10 });
      const mark = await setupSeq(tenant, room.id);
      const day = futureWeekday(5);
      const before = (await tenant.api('GET', `/v1/resources/${room.id}/schedule`)).body.schedule;
      const weekly = [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], start: '00:00', end: '12:00' }];
      const result = await race(tenant.api, holdBodies(room.id, day), () => tenant.api('PUT', `/v1/resources/${room.id}/schedule`, { weekly }), trigger);
      const put = result.change;
      expect([200, 409, 503], put.text).toContain(put.status);
      const { won } = await settle(tenant, result, 'schedule.updated', put.status === 200, room.id, mark);
      const slots = await daySlots(t.pool, room.id, day);
      const schedule = (await tenant.api('GET', `/v1/resources/${room.id}/schedule`)).body.schedule;
      const closed = won.filter(({ body }) => overlaps(body, at(day, 12), at(day, 24)));
      if (put.status === 200) {
        expect(schedule.weekly).toEqual(weekly);
        // The closed hours are gone (no seats were left on them, or the change would have been refused) and no hold lies there.
        expect(slots.filter((s) => s.hour >= 12).map((s) => s.hour)).toEqual([]);
        expect(closed.map(({ r }) => r.body.id), 'holds in the closed hours').toEqual([]);
      } else {
        // Refused because slots that hold seats would go (listed), or lost a lock race: the old schedule and its slots stay.
        if (put.status === 409) {
          expect(put.body.code).toBe('schedule-conflict');
          expect(put.body.conflicts.length).toBeGreaterThan(0);
          for (const c of put.body.conflicts) {
            expect(c.seatsTaken).toBeGreaterThan(0);
            expect(Date.parse(c.start)).toBeGreaterThanOrEqual(Date.parse(at(day, 12)));
          }
          expect(closed.length).toBeGreaterThan(0);
        }
        expect(schedule).toEqual(before);
        expect(slots.map((s) => s.hour)).toEqual([8, 9, 10, 11, 12, 13, 14, 15, 16]);
      }
      for (const s of slots) expect(s.seats_taken, `slot ${s.hour}:00`).toBe(heldAt(won, day, s.hour));
      note('schedule', String(put.status));
    });

    it(`an archive (${label})`, async () => {
      const tenant = await newTenant(t);
      const room = await tenant.newResource({ capacity: 10 });
      const mark = await setupSeq(tenant, room.id);
      const day = futureWeekday(6);
      const result = await race(tenant.api, holdBodies(room.id, day), () => tenant.api('DELETE', `/v1/resources/${room.id}`), trigger);
      const archive = result.change;
      expect([200, 409, 503], archive.text).toContain(archive.status);
      const { won } = await settle(tenant, result, 'resource.archived', archive.status === 200, room.id, mark);
      const { rows: live } = await t.pool.query(
        `SELECT h.id FROM holds h JOIN hold_resources hr ON hr.hold_id = h.id WHERE hr.resource_id = $1 AND h.status = 'held'`,
        [room.id],
      );
      const slots = await daySlots(t.pool, room.id, day);
      const read = await tenant.api('GET', `/v1/resources/${room.id}`);
      if (archive.status === 200) {
        // Archived means nothing live lies ahead on it: no hold the storm was granted may survive, and its future slots are gone.
        expect(live.map((h) => h.id), 'live holds on the archived resource').toEqual([]);
        expect(won.map(({ r }) => r.body.id), 'holds granted on a resource that was archived with no live holds').toEqual([]);
        expect(slots).toEqual([]);
        expect(read.status).toBe(404);
      } else {
        // Refused because live holds lie ahead, or lost a lock race: the resource and its slots stay.
        if (archive.status === 409) {
          expect(archive.body.code).toBe('resource-in-use');
          expect(live.length).toBeGreaterThan(0);
        }
        expect(read.status).toBe(200);
        expect(slots.map((s) => s.hour)).toEqual([8, 9, 10, 11, 12, 13, 14, 15, 16]);
      }
      note('archive', String(archive.status));
    });
  }

  it('a block over a confirmed booking is refused however the holds around it go', async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource({ capacity: 10 });
    const mark = await setupSeq(tenant, room.id);
    const day = futureWeekday(7);
    const booking = await tenant.api('POST', '/v1/bookings', { resourceIds: [room.id], start: at(day, 12), end: at(day, 13), customer: { name: 'B', email: 'b@example.com' } });
    expect(booking.status).toBe(201);
    const result = await race(tenant.api, holdBodies(room.id, day), () => tenant.api('POST', `/v1/resources/${room.id}/blocks`, { start: at(day, 11), end: at(day, 13) }), { amid: true });
    const block = result.change;
    // Refused: 409 naming the booking's slot (or 503 when it lost a lock race; either way no block).
    expect([409, 503], block.text).toContain(block.status);
    if (block.status === 409) {
      expect(block.body.code).toBe('block-conflict');
      expect(block.body.conflicts).toContainEqual(expect.objectContaining({ resourceId: room.id, start: at(day, 12), end: at(day, 13) }));
    }
    const { won } = await settle(tenant, result, 'block.created', false, room.id, mark);
    const slots = await daySlots(t.pool, room.id, day);
    expect(slots.every((s) => !s.blocked)).toBe(true);
    expect((await t.pool.query('SELECT count(*)::int AS n FROM blocks WHERE resource_id = $1', [room.id])).rows[0].n).toBe(0);
    // Nothing stopped the holds: every hour took seats, and each slot carries exactly its holds' seats and the booking's.
    for (const h of HOURS) {
      expect(heldAt(won, day, h), `seats held at ${h}:00`).toBeGreaterThan(0);
      expect(slots.find((s) => s.hour === h)!.seats_taken, `slot ${h}:00`).toBe(heldAt(won, day, h, { 12: 1 }));
    }
  });
});

/**
 * A capacity cut (like a block or a schedule change) locks the resource row
 * and then its slots; a hold locks its slots and then, inserting
 * hold_resources, takes the foreign key's KEY SHARE lock on the same resource
 * row. With FOR UPDATE on the row the two orders met in a deadlock that
 * Postgres breaks only after deadlock_timeout (1 s), and a request that lost
 * three times answered 503; the change now locks the row FOR NO KEY UPDATE,
 * which KEY SHARE does not wait for. This pins the interleaving with a row
 * lock of the test's own, so it would happen every time.
 */
describe('a resource change and a hold, interleaved', () => {
  it('a capacity cut and a hold on a later slot do not deadlock', async () => {
    const db = await isolatedDatabase();
    const node = await startNode({ DATABASE_URL: db.url });
    const locker = new pg.Client({ connectionString: db.url });
    await locker.connect();
    const dbName = new URL(db.url).pathname.slice(1);
    const waiting = async (like: string) => (await node.pool.query(
      `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND wait_event_type = 'Lock' AND query LIKE $2`, [dbName, like],
    )).rows[0].n as number;
    const deadlocks = async () => Number((await node.pool.query('SELECT deadlocks FROM pg_stat_database WHERE datname = $1', [dbName])).rows[0].deadlocks);
    try {
      const tenant = await newTenant(node);
      const room = await tenant.newResource({ capacity: 10 });
      const day = futureWeekday(3);
      const before = await deadlocks();
      // Hold the 10:00 slot's row lock so the cut stops there, having locked every earlier slot and the resource row.
      await locker.query('BEGIN');
      await locker.query('SELECT id FROM slots WHERE resource_id = $1 AND start_at = $2 FOR UPDATE', [room.id, at(day, 10)]);
      const cut = tenant.api('PATCH', `/v1/resources/${room.id}`, { capacity: 3 });
      await waitFor(async () => (await waiting('%FOR UPDATE OF s%')) > 0, 5_000, 'the capacity cut waiting on the 10:00 slot');
      // A hold on 11:00 takes that slot, then its foreign key's KEY SHARE on the resource row the cut holds:
      // it must not wait for the cut (which waits behind the test's lock) but answer at once.
      const h = await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], start: at(day, 11), end: at(day, 12) });
      expect(h.status, h.text).toBe(201);
      expect(await waiting('%FOR UPDATE OF s%')).toBeGreaterThan(0);
      const released = Date.now();
      await locker.query('COMMIT');
      const c = await cut;
      const stalled = Date.now() - released;
      // Both are fine requests: a cut to 3 with one seat taken, and one seat on a free slot.
      expect(c.status, c.text).toBe(200);
      expect(await invariantViolations(node.pool, tenant.id)).toEqual([]);
      // Without a deadlock nothing waits for the detector; with one, pg_stat_database counts it (its stats arrive within about a second).
      const counted = await waitFor(async () => ((await deadlocks()) > before ? 'deadlock' : null), 3_000, 'a deadlock count').catch(() => null);
      expect({ counted, stalledOver900ms: stalled > 900 }).toEqual({ counted: null, stalledOver900ms: false });
    } finally {
      await locker.end().catch(() => {});
      await node.stop();
      await db.drop();
    }
  });
});
