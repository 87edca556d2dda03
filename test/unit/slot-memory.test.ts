/**
 * The node's slot memory: answers from memory what the one-statement read
 * would send, reads again after a change or when too old, never keeps what a
 * change overtook, and stays within its row bound.
 */
import { describe, expect, it } from 'vitest';
import { ChangeMarks } from '../../server/core/services/availability-cache';
import { SlotMemory, type SlotLoader } from '../../server/core/services/slot-memory';
import type { AvailabilityRead, AvailabilityResource } from '../../server/core/store';
import type { SlotRow } from '../../server/core/types';

const DAY = 86_400_000;
const HOUR = 3_600_000;
const T = 't1';
const day0 = Date.UTC(2030, 0, 7);

function resource(id: string, before = 0, after = 0): AvailabilityResource {
  return { id, slotMinutes: 60, archived: false, rules: { minNoticeMinutes: 0, maxAdvanceDays: 365, bufferBeforeMinutes: before, bufferAfterMinutes: after } };
}

/** A table of hourly slots over 30 days per resource, and a loader with `slots.availability`'s semantics. */
function database(resources: AvailabilityResource[]) {
  let nextId = 1;
  const slots: SlotRow[] = [];
  for (const r of resources) {
    for (let t = day0; t < day0 + 30 * DAY; t += HOUR) slots.push({ id: nextId++, resourceId: r.id, start: t, end: t + HOUR, capacity: 2, seatsTaken: 0, blocked: false });
  }
  const calls: { ids: string[]; from: number; to: number }[] = [];
  let gate: Promise<void> | null = null;
  /** The read itself; `load` is the same, counted (what the memory asks for). */
  const direct: SlotLoader = async (ids, from, to, limit) => {
    const res = resources.filter((r) => ids.includes(r.id));
    const pad = Math.max(0, ...res.map((r) => (r.rules.bufferBeforeMinutes + r.rules.bufferAfterMinutes) * 60_000));
    // What the read sees is taken when it runs; a gate lets a test change the table while a read is on its way.
    const byResource = new Map<string, SlotRow[]>();
    let total = 0;
    for (const r of res) {
      const mine = slots.filter((s) => s.resourceId === r.id && s.start < to + pad && s.end > from - pad && s.start > from - pad - DAY).map((s) => ({ ...s }));
      total += mine.length;
      byResource.set(r.id, mine);
    }
    if (gate) await gate;
    const read: AvailabilityRead = { resources: res.map((r) => ({ ...r })), total: Math.min(total, limit + 1), slots: total > limit ? null : byResource };
    return read;
  };
  const load: SlotLoader = (ids, from, to, limit) => {
    calls.push({ ids, from, to });
    return direct(ids, from, to, limit);
  };
  return {
    slots,
    calls,
    load,
    direct,
    hold: (gateUntil: Promise<void> | null) => (gate = gateUntil),
    take(resourceId: string, start: number) {
      const s = slots.find((x) => x.resourceId === resourceId && x.start === start)!;
      s.seatsTaken++;
    },
  };
}

function setup(resources = [resource('a'), resource('b')], options = {}) {
  let now = day0;
  const clock = { now: () => now };
  const marks = new ChangeMarks();
  const memory = new SlotMemory(clock, marks, { refreshMs: 250, maxAgeMs: 1_000, ...options });
  const db = database(resources);
  return { memory, marks, db, advance: (ms: number) => (now += ms) };
}

/** A read as the service uses it: resources by id, slots by resource (the statement's row order is no promise). */
const norm = (r: AvailabilityRead) => ({
  resources: [...r.resources].sort((x, y) => x.id.localeCompare(y.id)),
  total: r.total,
  slots: r.slots && Object.fromEntries([...r.slots].sort(([x], [y]) => x.localeCompare(y))),
});

const flush = () => new Promise((r) => setTimeout(r, 0));

describe('slot memory', () => {
  it('answers a second window of a held resource from memory, with exactly the slots the read sends', async () => {
    const { memory, db } = setup();
    const windows = [[day0 + 2 * DAY + 30 * 60_000, day0 + 3 * DAY], [day0 + 2 * DAY + 7 * HOUR, day0 + 2 * DAY + 9 * HOUR], [day0 + 2 * DAY, day0 + 3 * DAY - 1]];
    for (const [from, to] of windows) {
      const got = await memory.read(T, ['a'], from!, to!, 10_000, db.load);
      const direct = await db.direct(['a'], from!, to!, 10_000);
      expect(norm(got)).toEqual(norm(direct));
    }
    // The first read took the whole day around the window; the two after it were answered from memory.
    expect(db.calls).toEqual([{ ids: ['a'], from: day0 + 2 * DAY, to: day0 + 3 * DAY }]);
    expect(memory.stats()).toMatchObject({ entries: 1, rows: 24, hits: 2, misses: 1 });
  });

  it('reads a resource again once a change names it, and the answer shows the change', async () => {
    const { memory, marks, db } = setup();
    const [from, to] = [day0 + DAY, day0 + 2 * DAY];
    await memory.read(T, ['a', 'b'], from, to, 10_000, db.load);
    db.take('a', from + 3 * HOUR);
    marks.invalidate([[T, ['a']]]);
    const before = db.calls.length;
    const got = await memory.read(T, ['a', 'b'], from, to, 10_000, db.load);
    expect(db.calls.slice(before).map((c) => c.ids)).toEqual([['a']]); // b is still held
    expect(got.slots!.get('a')!.find((s) => s.start === from + 3 * HOUR)!.seatsTaken).toBe(1);
    expect(norm(got)).toEqual(norm(await db.direct(['a', 'b'], from, to, 10_000)));
    // A change to the whole tenant (a schedule, a block) drops both.
    marks.invalidate([[T, null]]);
    const again = db.calls.length;
    await memory.read(T, ['a', 'b'], from, to, 10_000, db.load);
    expect(db.calls.slice(again).map((c) => c.ids)).toEqual([['a', 'b']]);
  });

  it('does not keep a read that a change overtook', async () => {
    const { memory, marks, db } = setup();
    const [from, to] = [day0 + DAY, day0 + 2 * DAY];
    let open!: () => void;
    db.hold(new Promise<void>((r) => (open = r)));
    const first = memory.read(T, ['a'], from, to, 10_000, db.load);
    await flush();
    // The read has taken its rows; a change commits and is marked before the read returns.
    db.take('a', from + HOUR);
    marks.invalidate([[T, ['a']]]);
    open();
    db.hold(null);
    expect((await first).slots!.get('a')!.find((s) => s.start === from + HOUR)!.seatsTaken).toBe(0); // it was read before
    const got = await memory.read(T, ['a'], from, to, 10_000, db.load);
    expect(got.slots!.get('a')!.find((s) => s.start === from + HOUR)!.seatsTaken).toBe(1);
  });

  it('serves an entry past refreshMs while one background read renews it, and reads first past maxAgeMs', async () => {
    const { memory, db, advance } = setup();
    const [from, to] = [day0 + DAY, day0 + 2 * DAY];
    await memory.read(T, ['a'], from, to, 10_000, db.load);
    expect(db.calls).toHaveLength(1);
    advance(300);
    db.take('a', from); // a change no mark announced (a node that died before telling the others)
    const stale = await Promise.all([1, 2, 3].map(() => memory.read(T, ['a'], from, to, 10_000, db.load)));
    for (const r of stale) expect(r.slots!.get('a')![0]!.seatsTaken).toBe(0);
    expect(db.calls).toHaveLength(2); // one background read for the three
    await flush();
    expect((await memory.read(T, ['a'], from, to, 10_000, db.load)).slots!.get('a')![0]!.seatsTaken).toBe(1);
    db.take('a', from);
    advance(1_001);
    expect((await memory.read(T, ['a'], from, to, 10_000, db.load)).slots!.get('a')![0]!.seatsTaken).toBe(2);
  });

  it('past the answer bound over whole days, reads only the window asked, and keeps nothing', async () => {
    const { memory, db } = setup();
    const [from, to] = [day0 + DAY + 10 * HOUR, day0 + DAY + 14 * HOUR];
    const got = await memory.read(T, ['a'], from, to, 10, db.load); // the whole day (24 slots) passes 10
    expect(norm(got)).toEqual(norm(await db.direct(['a'], from, to, 10)));
    expect(got.slots!.get('a')).toHaveLength(4);
    expect(memory.stats().entries).toBe(0);
    expect(db.calls).toHaveLength(2); // the whole day, then the window
    // The same question again reads its own window at once: one statement, not two.
    expect(norm(await memory.read(T, ['a'], from + HOUR, to, 10, db.load))).toEqual(norm(await db.direct(['a'], from + HOUR, to, 10)));
    expect(db.calls).toHaveLength(3);
    const over = await memory.read(T, ['a'], day0 + DAY, day0 + 2 * DAY, 10, db.load);
    expect(over.slots).toBeNull();
  });

  it('covers a larger buffer brought by another resource, reading the held one again over the padded window', async () => {
    const { memory, db } = setup([resource('plain'), resource('padded', 90, 30)]);
    const [from, to] = [day0 + DAY, day0 + 2 * DAY]; // day-aligned: the plain one's entry ends exactly at `to`
    await memory.read(T, ['plain'], from, to, 10_000, db.load);
    const got = await memory.read(T, ['padded', 'plain'], from, to, 10_000, db.load);
    expect(norm(got)).toEqual(norm(await db.direct(['padded', 'plain'], from, to, 10_000)));
    expect(got.slots!.get('plain')![0]!.start).toBe(from - 2 * HOUR); // the two hours of padding
    const calls = db.calls.length;
    expect(norm(await memory.read(T, ['plain', 'padded'], from, to, 10_000, db.load))).toEqual(norm(await db.direct(['plain', 'padded'], from, to, 10_000)));
    expect(db.calls.length).toBe(calls); // both from memory now
  });

  it('says nothing of a resource that does not exist, and asks for it once per answer', async () => {
    const { memory, db } = setup();
    const got = await memory.read(T, ['a', 'ghost'], day0 + DAY, day0 + 2 * DAY, 10_000, db.load);
    expect(got.resources.map((r) => r.id)).toEqual(['a']);
    expect(db.calls).toHaveLength(1);
  });

  it('holds at most maxRows slot rows, dropping the least recently used resource', async () => {
    const { memory, db } = setup([resource('a'), resource('b'), resource('c')], { maxRows: 60 });
    const [from, to] = [day0 + DAY, day0 + 2 * DAY]; // 24 slots + 1 per entry
    await memory.read(T, ['a'], from, to, 10_000, db.load);
    await memory.read(T, ['b'], from, to, 10_000, db.load);
    await memory.read(T, ['a'], from, to, 10_000, db.load); // a is now the most recently used
    await memory.read(T, ['c'], from, to, 10_000, db.load);
    expect(memory.stats().entries).toBe(2);
    expect(memory.stats().rows).toBeLessThanOrEqual(60);
    const calls = db.calls.length;
    await memory.read(T, ['a'], from, to, 10_000, db.load);
    expect(db.calls.length).toBe(calls); // a stayed
    await memory.read(T, ['b'], from, to, 10_000, db.load);
    expect(db.calls.length).toBe(calls + 1); // b was dropped, and is read again
  });
});
