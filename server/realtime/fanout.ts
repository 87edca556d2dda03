/**
 * From the feed to every subscriber on every node. The feed decoder hands
 * each numbered batch here, in seq order; the bus carries it to the other
 * nodes (one message per batch, in the order sent) and each node emits it to
 * its own Socket.IO subscribers,
 * with one `availability.changed` per resource whose slots the event changed,
 * built from the seats the event carries (nothing is read again). Each live
 * event names, per resource, the seq of the resource's previous event
 * (`prevSeqs`, and `prevSeq` on `availability.changed`): a subscriber that
 * finds one newer than the last it saw for that resource missed an event and
 * resyncs.
 */
import type { AvailabilityChanged } from '../../shared/live';
import type { Bus } from '../bus/bus';
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

/** The bus channel the decoder's batches travel on to the other nodes. */
export const FEED_CHANNEL = 'feed:events';
/** Events per bus message: a large batch goes out as several messages, in order. */
const EVENTS_PER_MESSAGE = 200;

/**
 * Builds the emitter over a Socket.IO server. The decoding node sends each
 * batch to the other nodes as one bus message (in order: the bus publishes
 * on one connection), and every node emits it to its own sockets
 * (`io.local`). Through the Redis adapter each event cost three broadcasts,
 * each a Redis PUBLISH with its own encoding: a quarter of the decoding
 * node's CPU at 500 bookings a second (docs/benchmarks.md).
 */
export function createFanout(io: LiveServer, bus: Bus, log: Logger, onBatch?: (events: FeedEvent[]) => void): Fanout & { close(): Promise<void> } {
  const emitLocally = (events: FeedEvent[]) => {
    onBatch?.(events);
    for (const e of events) {
      if (e.resourceIds.length === 0) continue;
      const prevSeqs = Object.fromEntries(e.resourceIds.map((id, i) => [id, e.prevSeqs[i] ?? 0]));
      const full = e.resourceIds.map((id) => roomOf(e.tenantId, id, 'tenant'));
      const open = e.resourceIds.map((id) => roomOf(e.tenantId, id, 'public'));
      io.local.to(full).emit(e.type as 'hold.created', { seq: e.seq, resourceIds: e.resourceIds, prevSeqs, ...e.data });
      io.local.to(open).emit(e.type as 'hold.created', { seq: e.seq, resourceIds: e.resourceIds, prevSeqs, ...publicData(e.data) });
      for (const change of availabilityChanges(e)) {
        io.local.to([roomOf(e.tenantId, change.resourceId, 'tenant'), roomOf(e.tenantId, change.resourceId, 'public')]).emit('availability.changed', change);
      }
    }
  };
  let closed = false;
  let wake: (() => void) | null = null;
  // Until it succeeds: a node that never subscribed would get no other node's events.
  const subscribed = (async (): Promise<(() => Promise<void>) | null> => {
    for (;;) {
      try {
        return await bus.subscribe(FEED_CHANNEL, (env) => {
          if (env.type === 'events' && Array.isArray(env.payload)) emitLocally(env.payload as FeedEvent[]);
        });
      } catch (err) {
        if (closed) return null;
        log.warn({ err: (err as Error).message }, 'live fan-out: could not subscribe to the feed channel; retrying in 1 s');
        await new Promise<void>((resolve) => {
          wake = resolve;
          setTimeout(resolve, 1_000).unref();
        });
        wake = null;
        if (closed) return null;
      }
    }
  })();
  return {
    async emit(events) {
      // To the other nodes first: a batch that cannot reach them is retried whole, and this node's sockets then
      // see it once, after it went out (the publish resolves once Redis has it).
      for (let i = 0; i < events.length; i += EVENTS_PER_MESSAGE) await bus.publish(FEED_CHANNEL, 'events', events.slice(i, i + EVENTS_PER_MESSAGE));
      emitLocally(events);
      if (events.length) log.debug({ count: events.length, last: events[events.length - 1]!.seq }, 'events published');
    },
    async close() {
      closed = true;
      (wake as (() => void) | null)?.();
      await (await subscribed)?.();
    },
  };
}
