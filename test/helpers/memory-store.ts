/**
 * An in-memory Store (server/core/store.ts) for unit tests of the core
 * services: resources, slots, holds, bookings, events and idempotency records
 * in plain maps. A transaction works on a copy of the state and installs it at
 * commit, so a thrown error leaves nothing behind, as Postgres does. Only
 * what the services under test use is here; other repositories throw.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomUUID } from 'node:crypto';
import type { DomainEvent, EventData, EventType } from '../../server/core/events';
import type { EventRow, FastResult, Store, StoredResponse, Unit } from '../../server/core/store';
import type { BookingRow, Clock, HoldRow, ResourceRow, SlotRow } from '../../server/core/types';

interface State {
  resources: Map<string, ResourceRow>;
  slots: Map<number, SlotRow>;
  holds: Map<string, HoldRow>;
  bookings: Map<string, BookingRow>;
  events: EventRow[];
  keys: Map<string, StoredResponse>;
}

const copy = (s: State): State => ({
  resources: new Map(s.resources),
  slots: new Map([...s.slots].map(([id, slot]) => [id, { ...slot }])),
  holds: new Map([...s.holds].map(([id, h]) => [id, { ...h }])),
  bookings: new Map(s.bookings),
  events: [...s.events],
  keys: new Map(s.keys),
});

const overlapping = (s: { start: number; end: number }, w: { start: number; end: number }) => s.start < w.end && w.start < s.end;

/** A repository with only `methods`; any other method throws, naming itself. */
const partial = <R>(name: string, methods: Partial<Record<keyof R, unknown>> = {}): R => new Proxy(methods, {
  get: (target, method) => (target as Record<PropertyKey, unknown>)[method] ?? (() => {
    throw new Error(`the in-memory store has no ${name}.${String(method)}`);
  }),
}) as R;
const absent = (name: string) => partial<never>(name);

/** The unit of work over one state (a transaction's copy, or the committed state for plain reads). */
function unitOver(state: () => State, clock: Clock): Unit {
  const s = state;
  return {
    tenants: absent('tenants'),
    settings: absent('settings'),
    apiKeys: absent('apiKeys'),
    userTokens: absent('userTokens'),
    schedules: absent('schedules'),
    blocks: absent('blocks'),
    groups: absent('groups'),
    webhooks: absent('webhooks'),
    calendarFeeds: absent('calendarFeeds'),
    mail: absent('mail'),
    resources: partial<Unit['resources']>('resources', {
      async byIds(tenantId: string, ids: string[]) {
        return ids.map((id) => s().resources.get(id)).filter((r): r is ResourceRow => r?.tenantId === tenantId);
      },
    }),
    slots: partial<Unit['slots']>('slots', {
      async lock(_tenantId: string, windows: { resourceId: string; start: number; end: number }[]) {
        const hit = [...s().slots.values()].filter((slot) => windows.some((w) => w.resourceId === slot.resourceId && overlapping(slot, w)));
        return hit.sort((a, b) => a.resourceId.localeCompare(b.resourceId) || a.start - b.start).map((slot) => ({ ...slot }));
      },
      async addSeats(deltas: Map<number, number>) {
        for (const [id, d] of deltas) {
          const slot = s().slots.get(id)!;
          // The table's CHECK: never oversold, never negative.
          if (slot.seatsTaken + d > slot.capacity || slot.seatsTaken + d < 0) throw Object.assign(new Error('slot_no_oversell'), { code: '23514' });
          slot.seatsTaken += d;
        }
      },
    }),
    holds: partial<Unit['holds']>('holds', {
      async insert(tenantId: string, ownerId: string | null, req: { resourceIds: string[]; start: number; end: number; seats: number }, ttlSeconds: number) {
        const now = clock.now();
        const h: HoldRow = { id: randomUUID(), tenantId, ownerId, resourceIds: [...req.resourceIds].sort(), start: req.start, end: req.end, seats: req.seats,
          status: 'held', expiresAt: now + ttlSeconds * 1000, bookingId: null, createdAt: now };
        s().holds.set(h.id, h);
        return { ...h };
      },
      async createFast(): Promise<FastResult<HoldRow>> {
        return { status: 'fallback' };
      },
      async get(tenantId: string, id: string) {
        const h = s().holds.get(id);
        return h && h.tenantId === tenantId ? { ...h } : null;
      },
      async setStatus(id: string, status: HoldRow['status'], bookingId?: string | null) {
        const h = s().holds.get(id)!;
        h.status = status;
        if (bookingId !== undefined) h.bookingId = bookingId;
      },
      async setExpiry(id: string, expiresAt: number) {
        s().holds.get(id)!.expiresAt = expiresAt;
        return expiresAt;
      },
      async anyDueNear(resourceIds: string[], start: number, end: number) {
        const now = clock.now();
        return [...s().holds.values()].some((h) => h.status === 'held' && h.expiresAt <= now && h.resourceIds.some((r) => resourceIds.includes(r)) && overlapping(h, { start, end }));
      },
      async lockDue(limit: number, near?: { tenantId: string; resourceIds: string[]; start: number; end: number }) {
        const now = clock.now();
        return [...s().holds.values()]
          .filter((h) => h.status === 'held' && h.expiresAt <= now)
          .filter((h) => !near || (h.tenantId === near.tenantId && h.resourceIds.some((r) => near.resourceIds.includes(r)) && overlapping(h, near)))
          .slice(0, limit)
          .map((h) => ({ ...h }));
      },
    }),
    bookings: partial<Unit['bookings']>('bookings', {
      async insert(tenantId: string, b: Omit<BookingRow, 'id' | 'tenantId' | 'status' | 'version' | 'cancelReason' | 'createdAt' | 'updatedAt'>) {
        const now = clock.now();
        const row: BookingRow = { ...b, id: randomUUID(), tenantId, resourceIds: [...b.resourceIds].sort(), status: 'confirmed', version: 1, cancelReason: null, createdAt: now, updatedAt: now };
        s().bookings.set(row.id, row);
        return row;
      },
      async byHold(holdId: string) {
        return [...s().bookings.values()].find((b) => b.holdId === holdId) ?? null;
      },
    }),
    events: partial<Unit['events']>('events', {
      async append<T extends EventType>(tenantId: string, type: T, resourceIds: string[], data: EventData[T]) {
        const events = s().events;
        const event = { tenantId, type, resourceIds: [...resourceIds].sort(), data } as DomainEvent;
        events.push({ ...event, seq: events.length + 1, slots: [], prevSeqs: [], at: clock.now() } as EventRow);
      },
    }),
    idempotency: partial<Unit['idempotency']>('idempotency', {
      async claim(scope: string, key: string, fingerprint: string) {
        const existing = s().keys.get(`${scope}\n${key}`);
        if (existing) return existing;
        s().keys.set(`${scope}\n${key}`, { fingerprint, status: null, headers: null, body: null });
        return null;
      },
      async complete(scope: string, key: string, status: number, headers: Record<string, string>, body: string) {
        s().keys.set(`${scope}\n${key}`, { ...s().keys.get(`${scope}\n${key}`)!, status, headers, body });
      },
    }),
  };
}

export interface MemoryStore extends Store {
  /** The committed state, to arrange a test and to check what it left. */
  readonly state: State;
  /** Transactions that committed. */
  commits: number;
}

/**
 * A Store over plain maps. Transactions run one at a time (as if each locked
 * everything), each on a copy that replaces the committed state only when it
 * returns; `ambient` nests the transactions inside it.
 */
export function memoryStore(clock: Clock): MemoryStore {
  let committed: State = { resources: new Map(), slots: new Map(), holds: new Map(), bookings: new Map(), events: [], keys: new Map() };
  // The transaction the calling code runs in, if any (what `ambient` opened, or a plain one).
  const inside = new AsyncLocalStorage<State>();
  let queue: Promise<unknown> = Promise.resolve();
  const current = () => inside.getStore() ?? committed;

  async function run<T>(fn: (t: Unit) => Promise<T>, keep: (value: T) => boolean): Promise<T> {
    // Inside an open transaction (the ambient one): join it.
    if (inside.getStore()) return fn(unitOver(current, clock));
    const turn = queue.then(async () => {
      const work = copy(committed);
      const value = await inside.run(work, () => fn(unitOver(current, clock)));
      if (keep(value)) {
        committed = work;
        store.commits++;
      }
      return value;
    });
    queue = turn.catch(() => {});
    return turn;
  }

  const store: MemoryStore = {
    get state() {
      return committed;
    },
    commits: 0,
    primary: unitOver(current, clock),
    replica: unitOver(current, clock),
    async tx(fn, afterCommit) {
      const value = await run(fn, () => true);
      await afterCommit?.();
      return value;
    },
    async autocommit(fn, afterCommit) {
      const value = await run(fn, (v) => v !== null);
      if (value !== null) await afterCommit?.();
      return value;
    },
    async ambient(fn) {
      const { value } = await run(fn, (r) => r.commit);
      return value;
    },
    explain: () => null,
  };
  return store;
}
