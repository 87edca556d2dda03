/**
 * From the outbox to every subscriber on every node. The node whose relay
 * numbered a batch emits it through Socket.IO (the Redis adapter carries it to
 * the other nodes), with one `availability.changed` per affected resource, and
 * then marks the batch published. Events a dead node numbered but never
 * published are claimed by a survivor and emitted late: delivery is at least
 * once, and clients dedupe by seq.
 */
import type { AvailabilityChanged } from '../../shared/live';
import type { Logger } from '../core/ports';
import type { Db } from '../db/pool';
import { eventRepository, type EventRow } from '../db/repositories/events';
import { slotRepository, type SlotWindow } from '../db/repositories/slots';
import { publicData } from './public-view';
import { roomOf, type LiveServer } from './socket';

const iso = (ms: number) => new Date(ms).toISOString();

/** The ranges an event changed seats in, per resource. */
export function windowsOf(e: EventRow): SlotWindow[] {
  const d = e.data as Record<string, any>;
  const ranges: { resourceIds: string[]; start: string; end: string }[] = [];
  for (const key of ['hold', 'booking', 'block', 'previous'] as const) {
    const x = d[key];
    if (x && typeof x.start === 'string' && typeof x.end === 'string') {
      ranges.push({ resourceIds: Array.isArray(x.resourceIds) ? x.resourceIds : x.resourceId ? [x.resourceId] : e.resourceIds, start: x.start, end: x.end });
    }
  }
  return ranges.flatMap((r) => r.resourceIds.map((resourceId) => ({ resourceId, start: Date.parse(r.start), end: Date.parse(r.end) })));
}

export interface Fanout {
  /** Emits a batch of numbered events; returns once it is handed to the adapter. */
  emit(events: EventRow[]): Promise<void>;
}

/** Builds the emitter over a Socket.IO server. */
export function createFanout(io: LiveServer, db: Db, log: Logger): Fanout {
  return {
    async emit(events) {
      if (events.length === 0) return;
      const windows = events.flatMap((e) => windowsOf(e).map((w) => ({ ...w, tenantId: e.tenantId })));
      const slots = await slotRepository.readWindows(db.relayPool, windows);
      for (const e of events) {
        if (e.resourceIds.length === 0) continue;
        const full = e.resourceIds.map((id) => roomOf(e.tenantId, id, 'tenant'));
        const open = e.resourceIds.map((id) => roomOf(e.tenantId, id, 'public'));
        io.to(full).emit(e.type as 'hold.created', { seq: e.seq, resourceIds: e.resourceIds, ...e.data });
        io.to(open).emit(e.type as 'hold.created', { seq: e.seq, resourceIds: e.resourceIds, ...publicData(e.data) });
        const byResource = new Map<string, AvailabilityChanged['slots']>();
        for (const w of windowsOf(e)) {
          const list = byResource.get(w.resourceId) ?? [];
          for (const s of slots) {
            if (s.resourceId === w.resourceId && s.start < w.end && s.end > w.start && !list.some((x) => x.start === iso(s.start))) {
              list.push({ start: iso(s.start), end: iso(s.end), capacity: s.capacity, remaining: s.blocked ? 0 : s.capacity - s.seatsTaken });
            }
          }
          byResource.set(w.resourceId, list);
        }
        for (const [resourceId, list] of byResource) {
          io.to([roomOf(e.tenantId, resourceId, 'tenant'), roomOf(e.tenantId, resourceId, 'public')]).emit('availability.changed', { seq: e.seq, resourceId, slots: list.sort((a, b) => a.start.localeCompare(b.start)) });
        }
      }
      log.debug({ count: events.length, last: events[events.length - 1]!.seq }, 'events published');
    },
  };
}

/** Marks emitted events published, so survivors do not claim them. */
export async function markPublished(db: Db, events: EventRow[]): Promise<void> {
  await eventRepository.markPublished(db.pool, events.map((e) => e.seq));
}
