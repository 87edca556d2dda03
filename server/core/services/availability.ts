/**
 * Availability: free slots, or bookable options of a duration across
 * resources. Every answer's work is bounded here, so REST and live
 * subscriptions share the bounds: distinct resources, the range, and the slot
 * rows an answer may read (which also bounds its size and CPU: the rules are
 * n log n in the slots read).
 */
import { MAX_AVAILABILITY_DAYS, MAX_AVAILABILITY_RESOURCES } from '../../../shared/limits';
import { slotRepository } from '../../db/repositories/slots';
import type { AvailabilityCache } from './availability-cache';
import { DomainError } from '../errors';
import type { CoreDeps } from '../ports';
import { bookableRanges, bufferPadMs, combineOptions, freeSlots, type Range } from '../rules';
import type { SlotRow } from '../types';
import { liveResources } from './seats';

export interface AvailabilityQuery {
  resourceIds: string[];
  from: number;
  to: number;
  seats: number;
  duration?: number;
  mode: 'all' | 'any';
}

export interface AvailabilityLimits {
  /** Distinct resources one query may name. */
  maxResources: number;
  /** The longest range (`to - from`), in days. */
  maxRangeDays: number;
  /** Slot rows one answer may read: every named resource over the range, plus the duration and buffers read past it. */
  maxSlots: number;
}

/**
 * Slot rows one answer may read by default. 62 days of 5-minute slots on one
 * resource (17,856) fit, as do 100 resources × 1 day of 15-minute slots; the
 * largest answer is then about 2 MB of JSON and about 20 ms of the rules.
 */
export const DEFAULT_MAX_SLOTS = 20_000;

export const DEFAULT_AVAILABILITY_LIMITS: Readonly<AvailabilityLimits> = {
  maxResources: MAX_AVAILABILITY_RESOURCES,
  maxRangeDays: MAX_AVAILABILITY_DAYS,
  maxSlots: DEFAULT_MAX_SLOTS,
};

const DAY = 86_400_000;
const iso = (ms: number) => new Date(ms).toISOString();
const limitExceeded = (limit: string, max: number, detail: string) => new DomainError('limit-exceeded', detail, { limit, max });

/** The query with its resource ids deduplicated (first occurrence kept); throws `limit-exceeded` past the id or range bound. */
export function boundedQuery(query: AvailabilityQuery, limits: AvailabilityLimits): AvailabilityQuery {
  const resourceIds = [...new Set(query.resourceIds)];
  if (resourceIds.length > limits.maxResources) {
    throw limitExceeded('availability.resources', limits.maxResources,
      `availability may name at most ${limits.maxResources} distinct resources at once (this query names ${resourceIds.length}); split it into several queries`);
  }
  if (query.to - query.from > limits.maxRangeDays * DAY) {
    throw limitExceeded('availability.range', limits.maxRangeDays, `availability may span at most ${limits.maxRangeDays} days (to - from); ask for a shorter range`);
  }
  return resourceIds.length === query.resourceIds.length ? query : { ...query, resourceIds };
}

/** Builds the availability service; reads go to the read pool (a replica when configured). */
export function availabilityService({ store, clock }: CoreDeps, cache?: AvailabilityCache, options: Partial<AvailabilityLimits> = {}) {
  const limits: AvailabilityLimits = { ...DEFAULT_AVAILABILITY_LIMITS, ...options };

  /** Without duration: free slots per resource. With duration: options where the seats fit for that long. */
  async function answer(tenantId: string, query: AvailabilityQuery, onRead?: (slots: number) => void) {
    const resources = await liveResources(store.readPool, tenantId, query.resourceIds);
    const duration = query.duration;
    if (duration !== undefined) {
      const off = resources.find((r) => duration % r.slotMinutes !== 0);
      if (off) throw new DomainError('grid-misaligned', `duration must be a multiple of ${off.slotMinutes} minutes for resource ${off.id}`);
    }
    const now = clock.now();
    const pad = Math.max(0, ...resources.map((r) => bufferPadMs(r.rules)));
    const durationMs = (duration ?? 0) * 60_000;
    const from = query.from - pad;
    const to = query.to + durationMs + pad;
    const tooMany = () => limitExceeded('availability.slots', limits.maxSlots,
      `this answer would read more than ${limits.maxSlots} slots (its ${resources.length} resources' slots from \`from\` to \`to\`, plus the duration and buffers past \`to\`); ` +
        `keep resources × range ÷ slot length under ${limits.maxSlots}: ask for fewer resources or a shorter range`);
    // When the grid alone allows more slots than an answer may read, Postgres counts them first: refusing
    // then costs an index scan, not 20,000 rows sent and parsed (which is ~100 ms of this node's CPU).
    const gridBound = resources.reduce((n, r) => n + (to - from) / (r.slotMinutes * 60_000) + 1, 0);
    if (gridBound > limits.maxSlots && (await slotRepository.count(store.readPool, tenantId, query.resourceIds, from, to, limits.maxSlots + 1)) > limits.maxSlots) throw tooMany();
    // One row more than allowed tells an oversized query apart before any rule runs on it.
    const rows = await slotRepository.read(store.readPool, tenantId, query.resourceIds, from, to, limits.maxSlots + 1);
    if (rows.length > limits.maxSlots) throw tooMany();
    onRead?.(rows.length);
    const byResource = new Map<string, SlotRow[]>(resources.map((r) => [r.id, []]));
    for (const s of rows) byResource.get(s.resourceId)?.push(s);
    // The rules need each resource's slots by start (linear on rows that already are).
    for (const slots of byResource.values()) slots.sort((a, b) => a.start - b.start);

    if (duration === undefined) {
      return {
        resources: resources.map((r) => ({
          resourceId: r.id,
          slots: freeSlots(r, byResource.get(r.id)!, { ...query, now }).map((s) => ({ ...s, start: iso(s.start), end: iso(s.end) })),
        })),
      };
    }
    const perResource = new Map<string, Range[]>();
    for (const r of resources) perResource.set(r.id, bookableRanges(r, byResource.get(r.id)!, { ...query, now, durationMs }));
    return { options: combineOptions(perResource, query.mode).map((o) => ({ ...o, start: iso(o.start), end: iso(o.end) })) };
  }

  return {
    limits,

    /**
     * The answer to a query, never cached (live snapshots must be consistent
     * with the seq they carry). `onRead` learns how many slot rows it read
     * (what the answer cost), so the edge can charge its budget for it.
     */
    query: (tenantId: string, query: AvailabilityQuery, onRead?: (slots: number) => void) => answer(tenantId, boundedQuery(query, limits), onRead),

    /**
     * `render(query(...))`, served from the node's cache while nothing it read
     * has changed (REST answers). The rendered text's length is what the
     * cache counts against its byte bound. `onRead` is called only when this
     * request computed the answer (a cached one cost nothing).
     */
    async rendered<T extends { text: string }>(tenantId: string, query: AvailabilityQuery, render: (result: Awaited<ReturnType<typeof answer>>) => T, onRead?: (slots: number) => void): Promise<T> {
      const q = boundedQuery(query, limits);
      const compute = async () => render(await answer(tenantId, q, onRead));
      if (!cache) return compute();
      const key = [tenantId, q.resourceIds.join(','), q.from, q.to, q.duration ?? '', q.seats, q.mode].join('|');
      return cache.through(key, tenantId, q.resourceIds, compute, (value) => value.text.length);
    },
  };
}

export type AvailabilityService = ReturnType<typeof availabilityService>;
