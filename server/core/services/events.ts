/**
 * The event feed and live resync. Both answers are bounded by bytes as well
 * as by count: an event's data may be tens of KiB (booking metadata), so a
 * thousand of them would be tens of MiB held and sent at once.
 */
import { RESYNC_LIMIT } from '../../../shared/live';
import type { Event } from '../../../shared/schemas';
import { eventRepository, type EventRow } from '../../db/repositories/events';
import type { CoreDeps } from '../ports';

export interface EventLimits {
  /** Bytes of event data one feed page may carry; past them the page ends early (resume from its lastSeq). */
  feedMaxBytes: number;
  /** Bytes of event data one resync may carry; past them the client is told to take a fresh snapshot. */
  resyncMaxBytes: number;
}

/** A feed page carries at most this much event data by default (at least one event, whatever its size). */
export const DEFAULT_FEED_MAX_BYTES = 4 * 1024 * 1024;
/** A resync carries at most this much event data by default; more missed means a snapshot. */
export const DEFAULT_RESYNC_MAX_BYTES = 2 * 1024 * 1024;

/** Builds the event feed service. */
export function eventService({ store }: Pick<CoreDeps, 'store'>, options: Partial<EventLimits> = {}) {
  const limits: EventLimits = { feedMaxBytes: DEFAULT_FEED_MAX_BYTES, resyncMaxBytes: DEFAULT_RESYNC_MAX_BYTES, ...options };
  return {
    limits,

    /** A tenant's events after `after`, oldest first: up to `limit`, fewer when their data passes the byte budget. */
    async feed(tenantId: string, after: number, limit: number): Promise<{ events: Event[]; lastSeq: number }> {
      const { rows } = await eventRepository.page(store.pool, tenantId, after, limit, limits.feedMaxBytes);
      return {
        events: rows.map((e) => ({ seq: e.seq, type: e.type, resourceIds: e.resourceIds, data: e.data, at: new Date(e.at).toISOString() })),
        // The last event sent, not the last that exists: the reader resumes right after what it got.
        lastSeq: rows.length ? rows[rows.length - 1]!.seq : after,
      };
    },

    /**
     * The events on these resources a live client missed after `afterSeq`,
     * oldest first, or null when there are more than RESYNC_LIMIT of them or
     * their data passes the resync byte budget (the client takes a snapshot).
     */
    async missed(tenantId: string, resourceIds: string[], afterSeq: number): Promise<EventRow[] | null> {
      const { rows, cut } = await eventRepository.page(store.pool, tenantId, afterSeq, RESYNC_LIMIT + 1, limits.resyncMaxBytes, resourceIds);
      return cut || rows.length > RESYNC_LIMIT ? null : rows;
    },
  };
}

export type EventService = ReturnType<typeof eventService>;
