/**
 * Availability: free slots, or bookable options of a duration across
 * resources. Every answer's work is bounded here, so REST and live
 * subscriptions share the bounds: distinct resources, the range, and the slot
 * rows an answer may read (which also bounds its size and CPU: the rules are
 * n log n in the slots read).
 */
import { MAX_AVAILABILITY_DAYS, MAX_AVAILABILITY_RESOURCES } from '../../../shared/limits';
import type { AvailabilityCache } from './availability-cache';
import type { SlotMemory } from './slot-memory';
import { DomainError, notFound } from '../errors';
import type { CoreDeps } from '../ports';
import { bookableRanges, combineOptions, freeSlots, type Range } from '../rules';

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

type FreeSlot = ReturnType<typeof freeSlots>[number];
type Option = ReturnType<typeof combineOptions>[number];
/** An answer before rendering: times in epoch ms. */
type Answer = { kind: 'slots'; resources: { resourceId: string; slots: FreeSlot[] }[] } | { kind: 'options'; options: Option[] };

const iso = (ms: number) => new Date(ms).toISOString();

/** The answer as the API shapes it (ISO times): what `query` returns and `toJson` writes. */
function toResult(a: Answer) {
  if (a.kind === 'options') return { options: a.options.map((o) => ({ ...o, start: iso(o.start), end: iso(o.end) })) };
  return { resources: a.resources.map(({ resourceId, slots }) => ({ resourceId, slots: slots.map((s) => ({ ...s, start: iso(s.start), end: iso(s.end) })) })) };
}

const PAD2 = Array.from({ length: 60 }, (_, i) => String(i).padStart(2, '0'));
const PAD3 = Array.from({ length: 1000 }, (_, i) => String(i).padStart(3, '0'));
const DAY_MS = 86_400_000;

/**
 * `new Date(ms).toISOString()`, for one answer's times: each day's date is
 * formatted once and the time of day is written from tables. An answer for
 * 100 resources formats the same times 100 times over, and `toISOString`
 * was the largest single cost of such an answer in the bench's profile.
 */
export function isoFormatter(): (ms: number) => string {
  const days = new Map<number, string>();
  return (ms: number) => {
    const day = Math.floor(ms / DAY_MS);
    let prefix = days.get(day);
    if (prefix === undefined) {
      // 'YYYY-MM-DDT' (or '+YYYYYY-MM-DDT' outside years 0–9999, as toISOString writes it).
      const whole = new Date(day * DAY_MS).toISOString();
      prefix = whole.slice(0, whole.indexOf('T') + 1);
      days.set(day, prefix);
    }
    let t = ms - day * DAY_MS;
    const h = Math.floor(t / 3_600_000);
    t -= h * 3_600_000;
    const m = Math.floor(t / 60_000);
    t -= m * 60_000;
    const sec = Math.floor(t / 1000);
    return `${prefix}${PAD2[h]}:${PAD2[m]}:${PAD2[sec]}.${PAD3[t - sec * 1000]}Z`;
  };
}

/**
 * `JSON.stringify(toResult(a))`, byte for byte. Free slots (the big
 * answers) are written straight into the text: no object per slot, and each
 * time formatted once (a slot usually starts where the previous one ended).
 */
function toJson(a: Answer): string {
  if (a.kind === 'options') return JSON.stringify(toResult(a));
  let lastMs = NaN;
  let lastIso = '';
  const format = isoFormatter();
  const time = (ms: number) => (ms === lastMs ? lastIso : ((lastMs = ms), (lastIso = format(ms))));
  let out = '{"resources":[';
  for (let i = 0; i < a.resources.length; i++) {
    const { resourceId, slots } = a.resources[i]!;
    out += `${i ? ',' : ''}{"resourceId":${JSON.stringify(resourceId)},"slots":[`;
    for (let j = 0; j < slots.length; j++) {
      const s = slots[j]!;
      out += `${j ? ',' : ''}{"start":"${time(s.start)}","end":"${time(s.end)}","capacity":${s.capacity},"remaining":${s.remaining}}`;
    }
    out += ']}';
  }
  return out + ']}';
}

/**
 * Builds the availability service; reads go to the read pool (a replica when
 * configured). REST answers come from `cache` when the same query was answered
 * since the last change, and are computed from the slots `memory` holds when
 * it holds them (slot-memory.ts); live snapshots read Postgres.
 */
export function availabilityService({ store, clock }: CoreDeps, cache?: AvailabilityCache, options: Partial<AvailabilityLimits> = {}, memory?: SlotMemory) {
  const limits: AvailabilityLimits = { ...DEFAULT_AVAILABILITY_LIMITS, ...options };

  /**
   * Without duration: free slots per resource. With duration: options where the seats fit for that long.
   * Times stay epoch ms here; `toResult` and `toJson` render them.
   */
  async function answer(tenantId: string, query: AvailabilityQuery, onRead?: (slots: number) => void, fromMemory = false): Promise<Answer> {
    const duration = query.duration;
    const durationMs = (duration ?? 0) * 60_000;
    // One statement reads the resources and their slots (or the node's slot memory gives exactly what it would);
    // the resources' checks then run in the order they always did (missing or archived, grid, slot bound). It
    // reads at most maxSlots + 1 rows and sends none past maxSlots.
    const load = (ids: string[], from: number, to: number, limit: number) => store.replica.slots.availability(tenantId, ids, from, to, limit);
    const read = fromMemory && memory
      ? await memory.read(tenantId, query.resourceIds, query.from, query.to + durationMs, limits.maxSlots, load)
      : await load(query.resourceIds, query.from, query.to + durationMs, limits.maxSlots);
    const found = new Map(read.resources.map((r) => [r.id, r]));
    const resources = query.resourceIds.map((id) => {
      const r = found.get(id);
      if (!r || r.archived) throw notFound(`resource ${id}`);
      return r;
    });
    if (duration !== undefined) {
      const off = resources.find((r) => duration % r.slotMinutes !== 0);
      if (off) throw new DomainError('grid-misaligned', `duration must be a multiple of ${off.slotMinutes} minutes for resource ${off.id}`);
    }
    if (read.slots === null) {
      throw limitExceeded('availability.slots', limits.maxSlots,
        `this answer would read more than ${limits.maxSlots} slots (its ${resources.length} resources' slots from \`from\` to \`to\`, plus the duration and buffers past \`to\`); ` +
          `keep resources × range ÷ slot length under ${limits.maxSlots}: ask for fewer resources or a shorter range`);
    }
    onRead?.(read.total);
    const now = clock.now();
    const byResource = read.slots;
    if (duration === undefined) {
      return { kind: 'slots', resources: resources.map((r) => ({ resourceId: r.id, slots: freeSlots(r, byResource.get(r.id)!, { ...query, now }) })) };
    }
    const perResource = new Map<string, Range[]>();
    for (const r of resources) perResource.set(r.id, bookableRanges(r, byResource.get(r.id)!, { ...query, now, durationMs }));
    return { kind: 'options', options: combineOptions(perResource, query.mode) };
  }

  return {
    limits,

    /**
     * The answer to a query, never cached (live snapshots must be consistent
     * with the seq they carry). `onRead` learns how many slot rows it read
     * (what the answer cost), so the edge can charge its budget for it.
     */
    query: async (tenantId: string, query: AvailabilityQuery, onRead?: (slots: number) => void) => toResult(await answer(tenantId, boundedQuery(query, limits), onRead)),

    /**
     * `render` of the answer's JSON text (`JSON.stringify(query(...))`),
     * served from the node's cache while nothing it read has changed (REST
     * answers). `bytes` of the rendered value is what the cache counts against
     * its byte bound. `onRead` is called only when this request computed the
     * answer (a cached one cost nothing).
     */
    async rendered<T extends { bytes: number }>(tenantId: string, query: AvailabilityQuery, render: (json: string) => T, onRead?: (slots: number) => void): Promise<T> {
      const q = boundedQuery(query, limits);
      const compute = async () => render(toJson(await answer(tenantId, q, onRead, true)));
      if (!cache) return compute();
      const key = [tenantId, q.resourceIds.join(','), q.from, q.to, q.duration ?? '', q.seats, q.mode].join('|');
      return cache.through(key, tenantId, q.resourceIds, compute, (value) => value.bytes);
    },
  };
}

export type AvailabilityService = ReturnType<typeof availabilityService>;
