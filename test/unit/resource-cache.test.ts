/**
 * The resource rows a node remembers for the fast paths
 * (server/core/services/resource-cache.ts) are bounded by count: past the
 * bound the least recently used go, and a request for a forgotten resource
 * reads it again. Over the in-memory store (test/helpers/memory-store.ts),
 * with its reads counted.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import type { Unit } from '../../server/core/store';
import { DEFAULT_RESOURCE_CACHE_ROWS, ResourceCache } from '../../server/core/services/resource-cache';
import type { ResourceRow } from '../../server/core/types';
import { memoryStore, type MemoryStore } from '../helpers/memory-store';

const HOUR = 3_600_000;
const T0 = Date.UTC(2030, 0, 7, 0, 0);
const TENANT = '00000000-0000-4000-8000-000000000001';
const OTHER = '00000000-0000-4000-8000-000000000002';
const range = { start: T0 + 10 * HOUR, end: T0 + 11 * HOUR };
const idOf = (n: number) => `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`;

function resource(n: number, tenantId = TENANT): ResourceRow {
  return { id: idOf(n), tenantId, parentId: null, name: `r${n}`, kind: 'room', capacity: 1, timezone: 'UTC', slotMinutes: 60,
    rules: { minNoticeMinutes: 0, maxAdvanceDays: 365, bufferBeforeMinutes: 0, bufferAfterMinutes: 0 },
    metadata: {}, version: 1, archivedAt: null, createdAt: T0, updatedAt: T0 };
}

let store: MemoryStore;
/** The resource ids each read of the store asked for. */
let reads: string[][];
let q: Unit;

beforeEach(() => {
  store = memoryStore({ now: () => T0 });
  for (let n = 1; n <= 20; n++) store.state.resources.set(idOf(n), resource(n));
  store.state.resources.set(idOf(99), resource(99, OTHER));
  reads = [];
  const inner = store.primary;
  q = { ...inner, resources: { ...inner.resources, byIds: async (tenantId: string, ids: string[]) => {
    reads.push(ids);
    return inner.resources.byIds(tenantId, ids);
  } } } as Unit;
});

/** The rows the cache answers for `ns` of `tenantId`, and whether it read the store for them. */
async function ask(cache: ResourceCache, ns: number[], tenantId = TENANT) {
  const before = reads.length;
  const rows = await cache.fastPathResources(q, tenantId, ns.map(idOf), range, T0);
  return { rows, read: reads.length > before };
}

describe('ResourceCache bound', () => {
  it('remembers 10,000 rows unless told otherwise', () => {
    expect(DEFAULT_RESOURCE_CACHE_ROWS).toBe(10_000);
    const cache = new ResourceCache();
    expect(cache.size).toBe(0);
  });

  it('keeps at most its bound, dropping the least recently used', async () => {
    const cache = new ResourceCache(3);
    for (const n of [1, 2, 3]) expect((await ask(cache, [n])).read).toBe(true);
    expect(cache.size).toBe(3);
    // 1 is used again: 2 is now the least recently used.
    expect((await ask(cache, [1])).read).toBe(false);
    for (const n of [4, 5, 6, 7, 8]) {
      expect((await ask(cache, [n])).read).toBe(true);
      expect(cache.size).toBe(3);
      // 1 in steady use never goes, though it was remembered first.
      expect((await ask(cache, [1])).read).toBe(false);
    }
    // 2 to 6 were dropped, oldest first; 1, 7 and 8 (the most recently used) are remembered.
    expect(cache.size).toBe(3);
    for (const n of [7, 8, 1]) expect((await ask(cache, [n])).read, `resource ${n}`).toBe(false);
    expect(reads.flat().filter((id) => id === idOf(1))).toHaveLength(1);
    expect((await ask(cache, [6])).read).toBe(true);
  });

  it('counts the rows of every tenant together, and a request of many resources whole', async () => {
    const cache = new ResourceCache(4);
    await ask(cache, [1, 2, 3]);
    await ask(cache, [99], OTHER);
    expect(cache.size).toBe(4);
    // Two more rows: the two least recently used (1 and 2, of the first request) go.
    await ask(cache, [4, 5]);
    expect(cache.size).toBe(4);
    expect((await ask(cache, [99], OTHER)).read).toBe(false);
    expect((await ask(cache, [3, 4, 5])).read).toBe(false);
    expect((await ask(cache, [1])).read).toBe(true);
    // A request larger than the bound is answered from what it read; the most recent rows stay.
    const big = await ask(cache, [10, 11, 12, 13, 14, 15]);
    expect(big.rows?.map((r) => r.id)).toEqual([10, 11, 12, 13, 14, 15].map(idOf));
    expect(cache.size).toBe(4);
    expect((await ask(cache, [12, 13, 14, 15])).read).toBe(false);
  });

  it('answers a dropped resource from the store as it is now', async () => {
    const cache = new ResourceCache(2);
    const first = await ask(cache, [1]);
    expect(first.rows?.[0]?.version).toBe(1);
    await ask(cache, [2]);
    await ask(cache, [3]); // 1 is dropped
    // The row changes meanwhile (the node has not heard of it): the dropped entry is read again, as it is now.
    store.state.resources.set(idOf(1), { ...resource(1), version: 2, capacity: 5 });
    const again = await ask(cache, [1]);
    expect(again.read).toBe(true);
    expect(again.rows).toEqual([{ ...resource(1), version: 2, capacity: 5 }]);
    // …and remembered again: the next request needs no read.
    expect((await ask(cache, [1])).read).toBe(false);
    // An archived (or missing) resource read again is refused as before, never answered from memory.
    store.state.resources.set(idOf(2), { ...resource(2), archivedAt: T0 });
    await ask(cache, [4]);
    await ask(cache, [5]); // 2 was dropped long ago; 1 is dropped now
    await expect(cache.fastPathResources(q, TENANT, [idOf(2)], range, T0)).rejects.toMatchObject({ code: 'not-found' });
    expect(cache.size).toBe(2);
  });

  it('forgets a tenant or some resources without losing count', async () => {
    const cache = new ResourceCache(3);
    await ask(cache, [1, 2]);
    await ask(cache, [99], OTHER);
    cache.forgetTenant(TENANT);
    expect(cache.size).toBe(1);
    cache.forget(OTHER, [idOf(99), idOf(1)]);
    expect(cache.size).toBe(0);
    for (const n of [1, 2, 3, 4]) await ask(cache, [n]);
    expect(cache.size).toBe(3);
    expect((await ask(cache, [1])).read).toBe(true);
  });
});
