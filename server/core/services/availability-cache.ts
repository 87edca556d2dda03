/**
 * A node-local cache of rendered availability answers. An entry is served only
 * while nothing it was computed from has changed: every committed change
 * yields an event, and each batch of numbered events invalidates the resources
 * it names (here, and on every other node through the bus) before it is
 * published, so a request that got its answer after a commit never reads an
 * older one from here. A short TTL bounds what invalidation cannot see: the
 * minimum notice moving with the clock, and a node that numbered events
 * dying before it told the others. Memory is bounded by bytes (LRU), and so
 * is the bookkeeping of changes.
 */
import type { EventRow } from '../store';
import { LRUCache } from 'lru-cache';
import type { Clock } from '../types';

/** What one event changes: the named resources of a tenant, or (null) anything of it. */
export type Invalidation = [tenantId: string, resourceIds: string[] | null];

interface Entry {
  value: unknown;
  epoch: number;
  tenantId: string;
  resourceIds: string[];
}

export interface AvailabilityCacheOptions {
  /** How long an answer may be served (from when its computation started; stale once older than this). */
  ttlMs?: number;
  /** Bytes all entries may take: each counts its rendered size, its key and a fixed overhead. */
  maxBytes?: number;
  maxEntries?: number;
  /** Change marks kept (see `invalidate`). */
  maxMarks?: number;
}

/** Bytes the node's availability answers may take by default (the largest answer is about 2 MB). */
export const DEFAULT_AVAILABILITY_CACHE_BYTES = 32 * 1024 * 1024;
/** What an entry costs besides its value and key: the entry, its id list, the cache's bookkeeping. */
const ENTRY_OVERHEAD = 200;
/** What each event type can change in availability (see docs/architecture.md, events). */
export function invalidationsOf(events: Pick<EventRow, 'tenantId' | 'type' | 'resourceIds'>[]): Invalidation[] {
  const out: Invalidation[] = [];
  for (const e of events) {
    // Holds and bookings move seats on the resources they name, nothing else.
    if (e.type.startsWith('hold.') || e.type.startsWith('booking.')) out.push([e.tenantId, e.resourceIds]);
    // Group and tenant bookkeeping changes no slot (a group's hold is a hold.* event).
    else if (e.type.startsWith('group.') || e.type.startsWith('tenant.')) continue;
    // Resources, schedules and blocks regenerate whole subtrees: drop the tenant's answers.
    else out.push([e.tenantId, null]);
  }
  return out;
}

/**
 * Which answers a change makes stale. Every invalidation gets the next
 * epoch and marks the tenant (all of its answers) or each named resource;
 * a value computed at epoch E is unchanged while no mark it depends on is
 * newer than E. Shared by the node's answer cache and its slot memory.
 */
export class ChangeMarks {
  private epoch = 0;
  /**
   * `tenant` or `tenant/resource` → the epoch of its last change, oldest
   * first (a mark moves to the end when set again). Bounded: forgetting the
   * oldest mark raises `floor` to its epoch, and anything computed before
   * `floor` counts as changed, so a forgotten mark costs misses, never a
   * stale answer.
   */
  private readonly changed = new Map<string, number>();
  private floor = 0;

  constructor(private readonly maxMarks = 50_000) {}

  /** The epoch a computation starting now reads at. */
  now(): number {
    return this.epoch;
  }

  /** Marks these resources (null: any of the tenant's) changed, at a new epoch. */
  invalidate(invalidations: Invalidation[]): void {
    if (invalidations.length === 0) return;
    const epoch = ++this.epoch;
    for (const [tenantId, ids] of invalidations) {
      if (ids === null) this.mark(tenantId, epoch);
      else for (const id of ids) this.mark(`${tenantId}/${id}`, epoch);
    }
  }

  /** True while neither the tenant nor any of these resources changed after `epoch`. */
  unchangedSince(tenantId: string, resourceIds: Iterable<string>, epoch: number): boolean {
    if (epoch < this.floor) return false;
    if ((this.changed.get(tenantId) ?? 0) > epoch) return false;
    for (const id of resourceIds) if ((this.changed.get(`${tenantId}/${id}`) ?? 0) > epoch) return false;
    return true;
  }

  /** Marks held. */
  get size(): number {
    return this.changed.size;
  }

  private mark(key: string, epoch: number): void {
    this.changed.delete(key);
    this.changed.set(key, epoch);
    if (this.changed.size > this.maxMarks) {
      const [oldest, oldestEpoch] = this.changed.entries().next().value!;
      this.changed.delete(oldest);
      this.floor = Math.max(this.floor, oldestEpoch);
    }
  }
}

export class AvailabilityCache {
  /** The change marks this cache checks its entries against (the node's slot memory shares them). */
  readonly marks: ChangeMarks;
  /** LRU by bytes; lru-cache drops expired entries on its own timers (ttlAutopurge), so they hold no memory past the TTL. */
  private readonly entries: LRUCache<string, Entry>;
  /** Computations running, so concurrent misses of one key share one (no stampede when an entry lapses). */
  private readonly running = new Map<string, { epoch: number; value: Promise<unknown> }>();

  constructor(
    private readonly clock: Clock,
    options: AvailabilityCacheOptions = {},
  ) {
    const { ttlMs = 500, maxBytes = DEFAULT_AVAILABILITY_CACHE_BYTES, maxEntries = 5_000, maxMarks = 50_000 } = options;
    this.marks = new ChangeMarks(maxMarks);
    this.entries = new LRUCache<string, Entry>({
      max: maxEntries,
      maxSize: maxBytes,
      ttl: ttlMs,
      ttlAutopurge: true,
      // The node's clock, so the TTL follows the same time as the rest of the core, read on every check
      // (lru-cache would otherwise reuse a reading for a millisecond of real time).
      perf: { now: () => clock.now() },
      ttlResolution: 0,
    });
  }

  /**
   * The cached value for `key`, or `compute()`'s, which is kept only if none
   * of the tenant's `resourceIds` changed while it ran. A miss joins a
   * computation of the same key already running, unless a change came after
   * that one started. `sizeOf` is the value's size in bytes.
   */
  async through<T>(key: string, tenantId: string, resourceIds: string[], compute: () => Promise<T>, sizeOf: (value: T) => number): Promise<T> {
    const hit = this.entries.get(key);
    if (hit) {
      if (this.marks.unchangedSince(hit.tenantId, hit.resourceIds, hit.epoch)) return hit.value as T;
      this.entries.delete(key); // stale for good: free it now rather than at its TTL
    }
    const run = this.running.get(key);
    if (run && this.marks.unchangedSince(tenantId, resourceIds, run.epoch)) return run.value as Promise<T>;
    const epoch = this.marks.now();
    const at = this.clock.now();
    const value = compute();
    const mine = { epoch, value };
    this.running.set(key, mine);
    try {
      const result = await value;
      if (this.marks.unchangedSince(tenantId, resourceIds, epoch)) {
        // The TTL runs from when the computation started: what it read is that old. lru-cache does not
        // store an entry larger than maxBytes (and drops an older one under the key).
        this.entries.set(key, { value: result, epoch, tenantId, resourceIds }, { size: sizeOf(result) + key.length + ENTRY_OVERHEAD, start: at });
      }
      return result;
    } finally {
      if (this.running.get(key) === mine) this.running.delete(key);
    }
  }

  /** Forgets answers that read any of these resources (null: any of the tenant's). */
  invalidate(invalidations: Invalidation[]): void {
    this.marks.invalidate(invalidations);
  }

  /** Entries, their bytes and the change marks held (for tests and metrics). */
  stats(): { entries: number; bytes: number; marks: number } {
    return { entries: this.entries.size, bytes: this.entries.calculatedSize, marks: this.marks.size };
  }
}
