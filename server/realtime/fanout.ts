/**
 * From the feed to every subscriber on every node. The feed decoder hands
 * each stored batch here, in seq order; it is emitted through Socket.IO (the
 * Redis adapter carries it to the other nodes, in the order it was sent),
 * with one `availability.changed` per resource whose slots the event changed,
 * built from the seats the event carries (nothing is read again). Each live
 * event names, per resource, the seq of the resource's previous event
 * (`prevSeqs`, and `prevSeq` on `availability.changed`): a subscriber that
 * finds one newer than the last it saw for that resource missed an event and
 * resyncs.
 */
import type { AvailabilityChanged } from '../../shared/live';
import type { FeedEvent } from '../core/events';
import type { Logger } from '../core/ports';
import { publicData } from './public-view';
import { roomOf, type LiveServer } from './socket';

const iso = (ms: number) => new Date(ms).toISOString();

export interface Fanout {
  /** Emits a batch of stored events; returns once it is handed to the adapter. */
  emit(events: FeedEvent[]): Promise<void>;
}

/** The `availability.changed` messages of one event, one per resource whose slots it changed. */
export function availabilityChanges(e: FeedEvent): AvailabilityChanged[] {
  const byResource = new Map<string, AvailabilityChanged['slots']>();
  for (const [resourceId, start, end, capacity, remaining] of e.slots) {
    let list = byResource.get(resourceId);
    if (!list) byResource.set(resourceId, (list = []));
    list.push({ start: iso(start), end: iso(end), capacity, remaining });
  }
  return [...byResource].map(([resourceId, slots]) => ({
    seq: e.seq,
    resourceId,
    prevSeq: e.prevSeqs[e.resourceIds.indexOf(resourceId)] ?? 0,
    slots: slots.sort((a, b) => a.start.localeCompare(b.start)),
  }));
}

/** Builds the emitter over a Socket.IO server. */
export function createFanout(io: LiveServer, log: Logger): Fanout {
  return {
    async emit(events) {
      for (const e of events) {
        if (e.resourceIds.length === 0) continue;
        const prevSeqs = Object.fromEntries(e.resourceIds.map((id, i) => [id, e.prevSeqs[i] ?? 0]));
        const full = e.resourceIds.map((id) => roomOf(e.tenantId, id, 'tenant'));
        const open = e.resourceIds.map((id) => roomOf(e.tenantId, id, 'public'));
        io.to(full).emit(e.type as 'hold.created', { seq: e.seq, resourceIds: e.resourceIds, prevSeqs, ...e.data });
        io.to(open).emit(e.type as 'hold.created', { seq: e.seq, resourceIds: e.resourceIds, prevSeqs, ...publicData(e.data) });
        for (const change of availabilityChanges(e)) {
          io.to([roomOf(e.tenantId, change.resourceId, 'tenant'), roomOf(e.tenantId, change.resourceId, 'public')]).emit('availability.changed', change);
        }
      }
      if (events.length) log.debug({ count: events.length, last: events[events.length - 1]!.seq }, 'events published');
    },
  };
}
