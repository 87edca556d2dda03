/** The event feed. */
import { eventRepository } from '../../db/repositories/events';
import type { Event } from '../../../shared/schemas';
import type { CoreDeps } from '../ports';

/** Builds the event feed service. */
export function eventService({ store }: CoreDeps) {
  return {
    /** A tenant's events after `after`, oldest first. */
    async feed(tenantId: string, after: number, limit: number): Promise<{ events: Event[]; lastSeq: number }> {
      const rows = await eventRepository.feed(store.pool, tenantId, after, limit);
      return {
        events: rows.map((e) => ({ seq: e.seq, type: e.type, resourceIds: e.resourceIds, data: e.data, at: new Date(e.at).toISOString() })),
        lastSeq: rows.length ? rows[rows.length - 1]!.seq : after,
      };
    },
  };
}
