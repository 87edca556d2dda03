/**
 * The hold service and the command pipeline over the core's ports alone: an
 * in-memory store (test/helpers/memory-store.ts), a fake clock, no Postgres.
 * What they decide (seats, conflicts, expiry, replays, the events written)
 * is the domain's, whatever stores it.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { holdCommands } from '../../server/core/commands';
import { DomainError } from '../../server/core/errors';
import { commandPipeline } from '../../server/core/pipeline';
import type { CoreDeps } from '../../server/core/ports';
import { holdService } from '../../server/core/services/holds';
import type { ResourceRow, TenantPrincipal } from '../../server/core/types';
import { memoryStore, type MemoryStore } from '../helpers/memory-store';

const HOUR = 3_600_000;
const T0 = Date.UTC(2030, 0, 7, 0, 0);
const TENANT = '00000000-0000-4000-8000-000000000001';
const ROOM = '00000000-0000-4000-8000-0000000000a1';
const DESK = '00000000-0000-4000-8000-0000000000a2';
const alice: TenantPrincipal = { kind: 'user', tenantId: TENANT, userId: 'alice', name: 'Alice', role: 'member', tokenId: 't1', expiresAt: T0 + 24 * HOUR };
const bob: TenantPrincipal = { ...alice, userId: 'bob', name: 'Bob', tokenId: 't2' };
const silent = { info() {}, warn() {}, error() {}, debug() {} };

function resource(id: string, capacity: number): ResourceRow {
  return { id, tenantId: TENANT, parentId: null, name: id, kind: 'room', capacity, timezone: 'UTC', slotMinutes: 60,
    rules: { minNoticeMinutes: 0, maxAdvanceDays: 365, bufferBeforeMinutes: 0, bufferAfterMinutes: 0 },
    metadata: {}, version: 1, archivedAt: null, createdAt: T0, updatedAt: T0 };
}

let now: number;
let store: MemoryStore;
let holds: ReturnType<typeof holdService>;
const at = (hours: number) => ({ start: T0 + hours * HOUR, end: T0 + (hours + 1) * HOUR });
const seatsTaken = (resourceId: string, hours: number) => [...store.state.slots.values()].find((s) => s.resourceId === resourceId && s.start === at(hours).start)!.seatsTaken;
const eventTypes = () => store.state.events.map((e) => e.type);

beforeEach(() => {
  now = T0;
  const clock = { now: () => now };
  store = memoryStore(clock);
  let slotId = 0;
  for (const r of [resource(ROOM, 2), resource(DESK, 1)]) {
    store.state.resources.set(r.id, r);
    for (let h = 8; h < 18; h++) {
      const id = ++slotId;
      store.state.slots.set(id, { id, resourceId: r.id, ...at(h), capacity: r.capacity, seatsTaken: 0, blocked: false });
    }
  }
  const deps: CoreDeps = { store, clock, log: silent, config: { holdTtlSeconds: 300, holdMinTtlSeconds: 10, slotHorizonDays: 30 } };
  holds = holdService(deps);
});

async function refusal(work: Promise<unknown>): Promise<DomainError> {
  const err = await work.then(() => null, (e: unknown) => e);
  expect(err).toBeInstanceOf(DomainError);
  return err as DomainError;
}

describe('hold service over in-memory ports', () => {
  it('takes seats on every resource, and refuses what does not fit without writing anything', async () => {
    const h = await holds.create(alice, { resourceIds: [ROOM, DESK], ...at(9), seats: 1 });
    expect(h).toMatchObject({ status: 'held', seats: 1, resourceIds: [ROOM, DESK].sort() });
    expect(Date.parse(h.expiresAt)).toBe(T0 + 300_000);
    expect([seatsTaken(ROOM, 9), seatsTaken(DESK, 9)]).toEqual([1, 1]);

    // The desk is full: the room's seat is not taken either, and no event is written.
    const commits = store.commits;
    const err = await refusal(holds.create(bob, { resourceIds: [ROOM, DESK], ...at(9), seats: 1 }));
    expect(err.code).toBe('slot-unavailable');
    expect(err.extra.conflicts).toEqual([expect.objectContaining({ resourceId: DESK, remaining: 0, reason: 'full' })]);
    expect([seatsTaken(ROOM, 9), seatsTaken(DESK, 9)]).toEqual([1, 1]);
    expect(store.commits).toBe(commits);
    expect(eventTypes()).toEqual(['hold.created']);
  });

  it('refuses a range off the grid and an unknown resource', async () => {
    expect((await refusal(holds.create(alice, { resourceIds: [ROOM], start: T0 + 9 * HOUR + 60_000, end: T0 + 10 * HOUR, seats: 1 }))).code).toBe('grid-misaligned');
    expect((await refusal(holds.create(alice, { resourceIds: ['00000000-0000-4000-8000-0000000000ff'], ...at(9), seats: 1 }))).code).toBe('not-found');
    expect(store.state.holds.size).toBe(0);
  });

  it('releases once, gives the seats back, and answers a second release with the hold as it is', async () => {
    const h = await holds.create(alice, { resourceIds: [ROOM], ...at(10), seats: 2 });
    expect(seatsTaken(ROOM, 10)).toBe(2);
    expect((await holds.release(alice, h.id)).status).toBe('released');
    expect(seatsTaken(ROOM, 10)).toBe(0);
    expect((await holds.release(alice, h.id)).status).toBe('released');
    expect(eventTypes()).toEqual(['hold.created', 'hold.released']);
    // Another user's hold is not even visible.
    const other = await holds.create(bob, { resourceIds: [ROOM], ...at(10), seats: 1 });
    expect((await refusal(holds.release(alice, other.id))).code).toBe('not-found');
  });

  it('confirms into a booking once; a retry returns the same booking', async () => {
    const h = await holds.create(alice, { resourceIds: [ROOM], ...at(11), seats: 1 });
    const customer = { name: 'Alice', email: 'alice@example.com' };
    const first = await holds.confirm(alice, h.id, { customer });
    const again = await holds.confirm(alice, h.id, { customer });
    expect(first.created).toBe(true);
    expect(again).toEqual({ booking: first.booking, created: false });
    expect(seatsTaken(ROOM, 11)).toBe(1);
    expect(store.state.bookings.size).toBe(1);
    expect(eventTypes()).toEqual(['hold.created', 'booking.confirmed']);
  });

  it('expires: a late confirm is 410 and frees the seats; the next hold reclaims an expired one on its slots', async () => {
    const h = await holds.create(alice, { resourceIds: [DESK], ...at(12), seats: 1 });
    now += 301_000;
    // The desk's only seat is still counted to the expired hold; a new hold reclaims it in its own transaction.
    const next = await holds.create(bob, { resourceIds: [DESK], ...at(12), seats: 1 });
    expect(next.status).toBe('held');
    expect(seatsTaken(DESK, 12)).toBe(1);
    expect(store.state.holds.get(h.id)!.status).toBe('expired');
    expect(eventTypes()).toEqual(['hold.created', 'hold.expired', 'hold.created']);
    expect((await refusal(holds.confirm(alice, h.id, { customer: { name: 'A', email: 'a@example.com' } }))).code).toBe('hold-expired');
  });

  it('extends within 30 minutes in total, not beyond', async () => {
    const h = await holds.create(alice, { resourceIds: [ROOM], ...at(13), seats: 1 });
    now += 4 * 60_000;
    expect(Date.parse((await holds.extend(alice, h.id, 900)).expiresAt)).toBe(now + 900_000);
    now += 14 * 60_000;
    expect(Date.parse((await holds.extend(alice, h.id, 720)).expiresAt)).toBe(T0 + 30 * 60_000);
    now += 60_000;
    expect((await refusal(holds.extend(alice, h.id, 720))).code).toBe('extend-limit');
    expect(eventTypes()).toEqual(['hold.created', 'hold.extended', 'hold.extended']);
  });
});

describe('command pipeline over in-memory ports', () => {
  it('parses, authorizes and runs a command; runs it once per key; refuses a key reused with another request', async () => {
    const pipeline = commandPipeline({ store, log: silent });
    const commands = holdCommands(holds);
    const input = { resourceIds: [ROOM], start: new Date(at(14).start).toISOString(), end: new Date(at(14).end).toISOString(), seats: 1 };

    // Validation names every path; the admin token may not hold seats.
    const invalid = await refusal(pipeline.run(commands.create, alice, { ...input, seats: 0, extra: 1 }, 'body'));
    expect(invalid.code).toBe('validation-failed');
    expect((invalid.extra.errors as { path: string }[]).map((e) => e.path).sort()).toEqual(['body.extra', 'body.seats']);
    expect((await refusal(pipeline.run(commands.create, { kind: 'admin' }, input, 'body'))).code).toBe('forbidden');
    expect((await refusal(pipeline.run(commands.create, null, input, 'body'))).code).toBe('unauthorized');

    const first = await pipeline.answer(alice, 'hold.create', 'key-1', input, () => pipeline.run(commands.create, alice, input, ''));
    const replay = await pipeline.answer(alice, 'hold.create', 'key-1', input, () => pipeline.run(commands.create, alice, input, ''));
    expect(first.ok).toBe(true);
    expect(replay).toEqual(first);
    expect(store.state.holds.size).toBe(1);
    expect(seatsTaken(ROOM, 14)).toBe(1);

    const reused = await pipeline.answer(alice, 'hold.create', 'key-1', { ...input, seats: 2 }, () => pipeline.run(commands.create, alice, { ...input, seats: 2 }, ''));
    expect(reused).toMatchObject({ ok: false, error: { code: 'idempotency-key-reuse', status: 422 } });
    // Another user's same key is another key.
    const bobs = await pipeline.answer(bob, 'hold.create', 'key-1', input, () => pipeline.run(commands.create, bob, input, ''));
    expect(bobs.ok).toBe(true);
    expect(seatsTaken(ROOM, 14)).toBe(2);
  });

  it('a failed command under a key leaves neither its change nor the key behind', async () => {
    const pipeline = commandPipeline({ store, log: silent });
    const commands = holdCommands(holds);
    const input = { resourceIds: [DESK], start: new Date(at(15).start).toISOString(), end: new Date(at(15).end).toISOString(), seats: 2 };
    const failed = await pipeline.answer(alice, 'hold.create', 'key-2', input, () => pipeline.run(commands.create, alice, input, ''));
    expect(failed).toMatchObject({ ok: false, error: { code: 'slot-unavailable', status: 409 } });
    expect(store.state.keys.size).toBe(0);
    // The same key with a request that fits now runs.
    const fits = { ...input, seats: 1 };
    expect((await pipeline.answer(alice, 'hold.create', 'key-2', fits, () => pipeline.run(commands.create, alice, fits, ''))).ok).toBe(true);
    expect(seatsTaken(DESK, 15)).toBe(1);
  });

  it('maps an unknown failure to a logged 500 and a store failure to what the store says', async () => {
    const logged: unknown[] = [];
    const pipeline = commandPipeline({ store: { ...store, explain: (err) => ((err as { code?: string }).code === 'X' ? { type: 'about:blank', title: 't', status: 503, detail: 'd', code: 'unavailable' } : null) }, log: { ...silent, error: (o: unknown) => logged.push(o) } });
    expect(pipeline.problem(Object.assign(new Error('x'), { code: 'X' })).code).toBe('unavailable');
    expect(logged).toHaveLength(0);
    expect(pipeline.problem(new Error('boom'))).toMatchObject({ status: 500, code: 'internal' });
    expect(logged).toHaveLength(1);
  });
});
