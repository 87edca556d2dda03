/**
 * A node-local cache of rendered availability answers. An entry is served only
 * while nothing it was computed from has changed: every committed change
 * yields an event, and each batch of numbered events invalidates the resources
 * it names (here, and on every other node through the bus) before it is
 * published, so a request that got its answer after a commit never reads an
 * older one from here. A short TTL bounds what invalidation cannot see: the
 * minimum notice moving with the clock, and a node that numbered events
 * dying before it told the others.
 */
import type { EventRow } from '../../db/repositories/events';
import type { Clock } from '../types';

/** What one event changes: the named resources of a tenant, or (null) anything of it. */
export type Invalidation = [tenantId: string, resourceIds: string[] | null];

interface Entry {
  value: unknown;
  at: number;
  epoch: number;
  tenantId: string;
  resourceIds: string[];
}

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

export class AvailabilityCache {
  private epoch = 0;
  /** `tenant` or `tenant/resource` → the epoch of its last change. */
  private readonly changed = new Map<string, number>();
  private readonly entries = new Map<string, Entry>();
  /** Computations running, so concurrent misses of one key share one (no stampede when an entry lapses). */
  private readonly running = new Map<string, { epoch: number; value: Promise<unknown> }>();

  constructor(
    private readonly clock: Clock,
    private readonly ttlMs = 500,
    private readonly maxEntries = 5_000,
  ) {}

  /**
   * The cached value for `key`, or `compute()`'s, which is kept only if none
   * of the tenant's `resourceIds` changed while it ran. A miss joins a
   * computation of the same key already running, unless a change came after
   * that one started.
   */
  async through<T>(key: string, tenantId: string, resourceIds: string[], compute: () => Promise<T>): Promise<T> {
    const hit = this.entries.get(key);
    if (hit && this.clock.now() - hit.at < this.ttlMs && this.unchangedSince(hit.tenantId, hit.resourceIds, hit.epoch)) return hit.value as T;
    const run = this.running.get(key);
    if (run && this.unchangedSince(tenantId, resourceIds, run.epoch)) return run.value as Promise<T>;
    const epoch = this.epoch;
    const at = this.clock.now();
    const value = compute();
    const mine = { epoch, value };
    this.running.set(key, mine);
    try {
      const result = await value;
      if (this.unchangedSince(tenantId, resourceIds, epoch)) {
        this.entries.delete(key);
        this.entries.set(key, { value: result, at, epoch, tenantId, resourceIds });
        // Oldest first: Map iteration follows insertion order.
        if (this.entries.size > this.maxEntries) this.entries.delete(this.entries.keys().next().value!);
      }
      return result;
    } finally {
      if (this.running.get(key) === mine) this.running.delete(key);
    }
  }

  /** Forgets answers that read any of these resources (null: any of the tenant's). */
  invalidate(invalidations: Invalidation[]): void {
    if (invalidations.length === 0) return;
    const epoch = ++this.epoch;
    if (this.changed.size > 100_000) {
      // Old marks could only be dropped together with every entry that predates them.
      this.changed.clear();
      this.entries.clear();
    }
    for (const [tenantId, ids] of invalidations) {
      if (ids === null) this.changed.set(tenantId, epoch);
      else for (const id of ids) this.changed.set(`${tenantId}/${id}`, epoch);
    }
  }

  private unchangedSince(tenantId: string, resourceIds: string[], epoch: number): boolean {
    if ((this.changed.get(tenantId) ?? 0) > epoch) return false;
    for (const id of resourceIds) if ((this.changed.get(`${tenantId}/${id}`) ?? 0) > epoch) return false;
    return true;
  }
}
