/** Availability: free slots, or bookable options of a duration across resources. */
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

const iso = (ms: number) => new Date(ms).toISOString();

/** Builds the availability service; reads go to the read pool (a replica when configured). */
export function availabilityService({ store, clock }: CoreDeps, cache?: AvailabilityCache) {
  /** Without duration: free slots per resource. With duration: options where the seats fit for that long. */
  async function answer(tenantId: string, query: AvailabilityQuery) {
    const resources = await liveResources(store.readPool, tenantId, query.resourceIds);
    const now = clock.now();
    const pad = Math.max(0, ...resources.map((r) => bufferPadMs(r.rules)));
    const durationMs = (query.duration ?? 0) * 60_000;
    const rows = await slotRepository.read(store.readPool, tenantId, query.resourceIds, query.from - pad, query.to + durationMs + pad);
    const byResource = new Map<string, SlotRow[]>(resources.map((r) => [r.id, []]));
    for (const s of rows) byResource.get(s.resourceId)?.push(s);

    if (query.duration === undefined) {
      return {
        resources: resources.map((r) => ({
          resourceId: r.id,
          slots: freeSlots(r, byResource.get(r.id)!, { ...query, now }).map((s) => ({ ...s, start: iso(s.start), end: iso(s.end) })),
        })),
      };
    }
    const perResource = new Map<string, Range[]>();
    for (const r of resources) {
      if (query.duration % r.slotMinutes !== 0) {
        throw new DomainError('grid-misaligned', `duration must be a multiple of ${r.slotMinutes} minutes for resource ${r.id}`);
      }
      perResource.set(r.id, bookableRanges(r, byResource.get(r.id)!, { ...query, now, durationMs }));
    }
    return { options: combineOptions(perResource, query.mode).map((o) => ({ ...o, start: iso(o.start), end: iso(o.end) })) };
  }

  return {
    query: answer,

    /**
     * `render(query(...))`, served from the node's cache while nothing it read
     * has changed (REST answers; live snapshots use `query`, which is never
     * cached, because they must be consistent with the seq they carry). The
     * rendered text's length is what the cache counts against its byte bound.
     */
    async rendered<T extends { text: string }>(tenantId: string, query: AvailabilityQuery, render: (result: Awaited<ReturnType<typeof answer>>) => T): Promise<T> {
      const compute = async () => render(await answer(tenantId, query));
      if (!cache) return compute();
      const key = [tenantId, query.resourceIds.join(','), query.from, query.to, query.duration ?? '', query.seats, query.mode].join('|');
      return cache.through(key, tenantId, query.resourceIds, compute, (value) => value.text.length);
    },
  };
}

export type AvailabilityService = ReturnType<typeof availabilityService>;
