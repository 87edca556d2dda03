/**
 * The Socket.IO contract shared by the server and browser clients: command
 * payloads (validated with these schemas), acknowledgements and the typed
 * event maps.
 */
import { z } from 'zod';
import type { Problem } from './errors';
import { MAX_AVAILABILITY_DAYS, MAX_AVAILABILITY_RESOURCES } from './limits';

const Id = z.uuid({ message: 'must be a UUID' });
const Instant = z.iso.datetime({ offset: true, message: 'must be an RFC 3339 time with Z or an offset' });

export const SubscribeInput = z
  .strictObject({
    resourceIds: z.array(Id).min(1).max(MAX_AVAILABILITY_RESOURCES),
    from: Instant,
    to: Instant,
  })
  .superRefine((v, ctx) => {
    // The same range rule as REST availability (its snapshot is the same answer).
    const span = Date.parse(v.to) - Date.parse(v.from);
    if (!(span > 0)) ctx.addIssue({ code: 'custom', path: ['to'], message: 'to must be after from' });
    else if (span > MAX_AVAILABILITY_DAYS * 86_400_000) ctx.addIssue({ code: 'custom', path: ['to'], message: `the range may span at most ${MAX_AVAILABILITY_DAYS} days` });
  });
export const UnsubscribeInput = z.strictObject({ resourceIds: z.array(Id).min(1).max(100) });
export const ResyncInput = z.strictObject({ afterSeq: z.number().int().min(0) });
/** Commands carry the REST body plus an optional idempotencyKey; hold id commands name the hold. */
export const HoldIdInput = z.object({ holdId: Id });

/** How many missed events resync returns before it asks for a fresh snapshot instead. */
export const RESYNC_LIMIT = 1000;

export type Ack<T = unknown> = { ok: true; data?: T; [k: string]: unknown } | { ok: false; error: Problem };

/** A domain event as delivered live: its type plus `{seq, resourceIds, ...data}`. */
export interface LiveEvent {
  seq: number;
  resourceIds: string[];
  /** Per resource, the seq of its previous event (0: none): newer than the last one seen for it means one was missed (resync). */
  prevSeqs: Record<string, number>;
  [key: string]: unknown;
}

export interface AvailabilityChanged {
  seq: number;
  resourceId: string;
  /** The seq of the resource's previous event (0: none): newer than the last one seen for it means one was missed (resync). */
  prevSeq: number;
  slots: { start: string; end: string; capacity: number; remaining: number }[];
}

export interface ServerToClientEvents {
  'availability.changed': (e: AvailabilityChanged) => void;
  'hold.created': (e: LiveEvent) => void;
  'hold.extended': (e: LiveEvent) => void;
  'hold.released': (e: LiveEvent) => void;
  'hold.expired': (e: LiveEvent) => void;
  'booking.confirmed': (e: LiveEvent) => void;
  'booking.cancelled': (e: LiveEvent) => void;
  'booking.rescheduled': (e: LiveEvent) => void;
  'booking.updated': (e: LiveEvent) => void;
}

type Cb<T = unknown> = (ack: Ack<T>) => void;
export interface ClientToServerEvents {
  subscribe: (p: z.input<typeof SubscribeInput>, cb: Cb) => void;
  unsubscribe: (p: z.input<typeof UnsubscribeInput>, cb: Cb) => void;
  resync: (p: z.input<typeof ResyncInput>, cb: Cb) => void;
  'hold.create': (p: Record<string, unknown>, cb: Cb) => void;
  'hold.extend': (p: Record<string, unknown>, cb: Cb) => void;
  'hold.release': (p: Record<string, unknown>, cb: Cb) => void;
  'hold.confirm': (p: Record<string, unknown>, cb: Cb) => void;
}
