/**
 * The event feed and live resync. Both answers are bounded by bytes as well
 * as by count: an event's data may be tens of KiB (booking metadata), so a
 * thousand of them would be tens of MiB held and sent at once.
 */
import type { EventRow } from '../store';
import { RESYNC_LIMIT } from '../../../shared/live';
import type { Event } from '../../../shared/schemas';
import { DomainError } from '../errors';
import type { CoreDeps } from '../ports';

export interface EventLimits {
  /** Bytes of event data one feed page may carry; past them the page ends early (resume from its lastSeq). */
  feedMaxBytes: number;
  /** Bytes of event data one resync may carry; past them the client is told to take a fresh snapshot. */
  resyncMaxBytes: number;
  /** How long a feed read waits for the decoder to store what committed before it; past it, 503 `feed.wait`. */
  feedWaitMs: number;
}

/** A feed page carries at most this much event data by default (at least one event, whatever its size). */
export const DEFAULT_FEED_MAX_BYTES = 4 * 1024 * 1024;
/** A resync carries at most this much event data by default; more missed means a snapshot. */
export const DEFAULT_RESYNC_MAX_BYTES = 2 * 1024 * 1024;

/** Builds the event feed service. */
export function eventService({ store }: Pick<CoreDeps, 'store'>, options: Partial<EventLimits> = {}) {
  const limits: EventLimits = { feedMaxBytes: DEFAULT_FEED_MAX_BYTES, resyncMaxBytes: DEFAULT_RESYNC_MAX_BYTES, feedWaitMs: 5_000, ...options };

  /**
   * Waits until the feed holds every change committed before the call; past
   * `feedWaitMs` (no decoder running, or one far behind) it throws a 503
   * naming the bound rather than let a read answer without them. Callers of
   * the same event-loop turn share one mark (it is written after each of
   * them arrived), so a burst of reads writes one mark, not one each.
   */
  let joinable: Promise<void> | null = null;
  function caughtUp(): Promise<void> {
    if (joinable) return joinable;
    const batch = { done: null as Promise<void> | null };
    batch.done = (async () => {
      await new Promise((r) => setImmediate(r));
      // From here on the mark may already be written: later callers need a newer one.
      if (joinable === batch.done) joinable = null;
      const lsn = await store.primary.events.mark();
      const deadline = Date.now() + limits.feedWaitMs;
      for (let pause = 1; !(await store.primary.events.storedUpTo(lsn)); pause = Math.min(pause * 2, 25)) {
        if (Date.now() > deadline) {
          throw new DomainError('unavailable', `the event feed has not stored the changes committed before this read within ${limits.feedWaitMs} ms (no feed decoder is keeping up); retry shortly`, {
            limit: 'feed.wait', max: limits.feedWaitMs, retryAfter: 1,
          });
        }
        await new Promise((r) => setTimeout(r, pause));
      }
    })();
    joinable = batch.done;
    return batch.done;
  }

  return {
    limits,

    /**
     * A tenant's events after `after`, oldest first: up to `limit`, fewer when
     * their data passes the byte budget. Every change committed before the
     * call is in it: the read waits (up to `feedWaitMs`) for the feed decoder
     * to pass a mark written now; past that (no decoder running) it answers
     * 503 `feed.wait` rather than a page that lacks them.
     */
    async feed(tenantId: string, after: number, limit: number): Promise<{ events: Event[]; lastSeq: number }> {
      await caughtUp();
      const { rows } = await store.primary.events.page(tenantId, after, limit, limits.feedMaxBytes);
      return {
        events: rows.map((e) => ({ seq: e.seq, type: e.type, resourceIds: e.resourceIds, data: e.data, at: new Date(e.at).toISOString() })),
        // The last event sent, not the last that exists: the reader resumes right after what it got.
        lastSeq: rows.length ? rows[rows.length - 1]!.seq : after,
      };
    },

    /**
     * The last seq stored once every change committed before the call is
     * stored: a subscriber's starting point (its snapshot, read after this,
     * shows at least everything up to it).
     */
    async head(): Promise<number> {
      await caughtUp();
      return store.primary.events.lastSeq();
    },

    /**
     * The events on these resources a live client missed after `afterSeq`,
     * oldest first, or null when there are more than RESYNC_LIMIT of them or
     * their data passes the resync byte budget (the client takes a snapshot).
     * Like the feed, it includes every change committed before the call.
     */
    async missed(tenantId: string, resourceIds: string[], afterSeq: number): Promise<EventRow[] | null> {
      await caughtUp();
      const { rows, cut } = await store.primary.events.page(tenantId, afterSeq, RESYNC_LIMIT + 1, limits.resyncMaxBytes, resourceIds);
      return cut || rows.length > RESYNC_LIMIT ? null : rows;
    },
  };
}

export type EventService = ReturnType<typeof eventService>;
