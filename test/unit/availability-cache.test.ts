/** The availability cache: bounded by bytes and by time, invalidation by resource and tenant, shared computations, bounded change marks. */
import { describe, expect, it } from 'vitest';
import { AvailabilityCache, invalidationsOf } from '../../server/core/services/availability-cache';

/** A clock the test moves by hand. */
function manualClock(start = 1_000_000) {
  let now = start;
  return { now: () => now, advance: (ms: number) => (now += ms) };
}

const text = (n: number, fill = 'x') => fill.repeat(n);
const size = (v: string) => v.length;

describe('AvailabilityCache', () => {
  it('serves an answer until something it read changes, by resource or by tenant', async () => {
    const cache = new AvailabilityCache(manualClock());
    let computed = 0;
    const get = (key: string, ids: string[], tenant = 't1') => cache.through(key, tenant, ids, async () => `${key}#${++computed}`, size);

    expect(await get('a', ['r1'])).toBe('a#1');
    expect(await get('a', ['r1'])).toBe('a#1');
    expect(await get('b', ['r2'])).toBe('b#2');
    cache.invalidate([['t1', ['r1']]]);
    expect(await get('a', ['r1'])).toBe('a#3');
    expect(await get('b', ['r2'])).toBe('b#2'); // another resource: still served
    cache.invalidate([['t2', null]]);
    expect(await get('b', ['r2'])).toBe('b#2'); // another tenant: still served
    cache.invalidate([['t1', null]]);
    expect(await get('b', ['r2'])).toBe('b#4');
    expect(invalidationsOf([
      { tenantId: 't1', type: 'hold.created', resourceIds: ['r1'] },
      { tenantId: 't1', type: 'group.updated', resourceIds: [] },
      { tenantId: 't1', type: 'schedule.updated', resourceIds: ['r1'] },
    ])).toEqual([['t1', ['r1']], ['t1', null]]);
  });

  it('does not keep an answer whose resources changed while it was computed, and shares running computations', async () => {
    const cache = new AvailabilityCache(manualClock());
    let release!: (v: string) => void;
    let runs = 0;
    const slow = () => {
      runs++;
      return new Promise<string>((r) => (release = r));
    };
    const first = cache.through('k', 't1', ['r1'], slow, size);
    const joined = cache.through('k', 't1', ['r1'], slow, size);
    expect(runs).toBe(1);
    cache.invalidate([['t1', ['r1']]]);
    // After the change a new request must not join the old computation.
    const after = cache.through('k', 't1', ['r1'], async () => 'fresh', size);
    release('old');
    expect(await first).toBe('old');
    expect(await joined).toBe('old');
    expect(await after).toBe('fresh');
    expect(await cache.through('k', 't1', ['r1'], async () => 'newer', size)).toBe('fresh');
  });

  it('expires answers after the TTL, counted from when their computation started, and frees them', async () => {
    const clock = manualClock();
    const cache = new AvailabilityCache(clock, { ttlMs: 500 });
    let n = 0;
    const get = () => cache.through('k', 't1', ['r1'], async () => `v${++n}`, size);
    expect(await get()).toBe('v1');
    clock.advance(500);
    expect(await get()).toBe('v1');
    clock.advance(1);
    expect(await get()).toBe('v2');
    // An answer that took 300 ms to compute is that old when stored.
    expect(await cache.through('slow', 't1', ['r1'], async () => (clock.advance(300), 'slow'), size)).toBe('slow');
    clock.advance(200);
    expect(await cache.through('slow', 't1', ['r1'], async () => 'x', size)).toBe('slow');
    clock.advance(1);
    expect(await cache.through('slow', 't1', ['r1'], async () => 'recomputed', size)).toBe('recomputed');
    // An expired entry is dropped by lru-cache's own timer, without being read again.
    clock.advance(10_000);
    await new Promise((r) => setTimeout(r, 600));
    expect(cache.stats().entries).toBe(0);
    expect(cache.stats().bytes).toBe(0);
  });

  it('stays within its byte bound, evicting the least recently used, and never stores an answer larger than the bound', async () => {
    const maxBytes = 64 * 1024;
    const cache = new AvailabilityCache(manualClock(), { maxBytes });
    for (let i = 0; i < 200; i++) {
      await cache.through(`key-${i}`, 't1', ['r1'], async () => text(4_000), size);
      expect(cache.stats().bytes).toBeLessThanOrEqual(maxBytes);
    }
    // 4,000 bytes of text plus key and overhead each: about 15 fit.
    expect(cache.stats().entries).toBeGreaterThan(10);
    expect(cache.stats().entries).toBeLessThan(17);
    // The most recent are the ones kept.
    let recomputed = false;
    await cache.through('key-199', 't1', ['r1'], async () => ((recomputed = true), 'again'), size);
    expect(recomputed).toBe(false);
    await cache.through('key-0', 't1', ['r1'], async () => ((recomputed = true), 'again'), size);
    expect(recomputed).toBe(true);

    // Too large to keep: answered, not stored, and it evicts nothing.
    const before = cache.stats();
    expect(await cache.through('huge', 't1', ['r1'], async () => text(maxBytes + 1), size)).toHaveLength(maxBytes + 1);
    expect(cache.stats()).toEqual(before);

    // Invalidation still works on what is kept.
    cache.invalidate([['t1', ['r1']]]);
    expect(await cache.through('key-199', 't1', ['r1'], async () => 'changed', size)).toBe('changed');
  });

  it('bounds its change marks: forgetting the oldest ones costs misses, never a stale answer', async () => {
    const cache = new AvailabilityCache(manualClock(), { maxMarks: 100 });
    let n = 0;
    const get = (ids: string[]) => cache.through(`k:${ids.join(',')}`, 't1', ids, async () => `v${++n}`, size);
    expect(await get(['old'])).toBe('v1');
    expect(await get(['other'])).toBe('v2');
    cache.invalidate([['t1', ['old']]]);
    // Changes to 1,000 other resources push the mark of `old` out.
    for (let i = 0; i < 1_000; i++) cache.invalidate([['t1', [`r${i}`]]]);
    expect(cache.stats().marks).toBeLessThanOrEqual(100);
    // `old` changed after its answer: still refused. `other` did not, but its answer predates forgotten marks: a miss.
    expect(await get(['old'])).toBe('v3');
    expect(await get(['other'])).toBe('v4');
    // Answers computed after the forgotten marks are served again.
    expect(await get(['other'])).toBe('v4');
  });
});
