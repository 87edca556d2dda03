/** Holds: take seats for a while, extend, release, confirm into a booking. */
import type { MarkedEvent, Unit } from '../store';
import type { Booking, Hold, HoldConfirm } from '../../../shared/schemas';
import { bookingDto, holdDto } from '../dto';
import { DomainError, notFound } from '../errors';
import type { CoreConfig, CoreDeps } from '../ports';
import { extendedExpiry, holdDecision } from '../rules';
import type { BookingPaymentState, BookingRow, HoldRow, TenantPrincipal } from '../types';
import { amountOf, authorizationKey, paymentFlow, captureRetryOf } from './payments';
import { ResourceCache } from './resource-cache';
import { changeSeats, checkRequestTiming, liveResources, returnSeats, takeSeatsFast } from './seats';

export interface CreateHold {
  resourceIds: string[];
  start: number;
  end: number;
  seats: number;
  ttlSeconds?: number;
}

/** The owner recorded on holds and bookings: the user, or null for the tenant's own key. */
export const ownerOf = (p: TenantPrincipal) => (p.kind === 'user' ? p.userId : null);

/** True when the principal may act on something owned by ownerId. */
export const mayAccess = (p: TenantPrincipal, ownerId: string | null) => p.kind === 'tenant' || ownerId === p.userId;

export type HoldQuota = NonNullable<CoreConfig['holdQuota']>;

/** True when holds of `p` are subject to the per-user quotas. */
const quotaApplies = (p: TenantPrincipal, quota?: HoldQuota): quota is HoldQuota =>
  p.kind === 'user' && quota !== undefined && (quota.perUser > 0 || quota.reholdLimit > 0);

/**
 * The per-user hold quotas, checked inside the hold's transaction (which this
 * serializes per user): live holds at once, and holds of the same slot within
 * the re-hold window. Throws 429 hold-quota naming the limit.
 */
async function checkQuota(q: Unit, p: TenantPrincipal, cmd: CreateHold, quota: HoldQuota): Promise<void> {
  if (p.kind !== 'user') return;
  const seen = await q.holds.quotaOf(p.tenantId, p.userId, cmd, quota.reholdWindowSeconds);
  const wait = (at: number | null) => (at === null ? undefined : Math.max(1, Math.ceil((at - seen.now) / 1000)));
  if (quota.perUser > 0 && seen.live >= quota.perUser) {
    throw new DomainError('hold-quota', `a user may have ${quota.perUser} live holds at once; confirm or release one first`, {
      limit: 'holds.user', max: quota.perUser, retryAfter: wait(seen.nextExpiry),
    });
  }
  if (quota.reholdLimit > 0 && seen.again >= quota.reholdLimit) {
    throw new DomainError('hold-quota', `a user may hold the same slot ${quota.reholdLimit} times within ${quota.reholdWindowSeconds} s`, {
      limit: 'holds.rehold', max: quota.reholdLimit, retryAfter: wait(seen.againClears),
    });
  }
}

/** Creates a hold inside the caller's transaction (shared by holds and group bookings); `quota` applies to user tokens. */
export async function createHoldIn(q: Unit, p: TenantPrincipal, cmd: CreateHold, ttlSeconds: number, now: number, extra: Record<string, unknown> = {}, quota?: HoldQuota): Promise<HoldRow> {
  if (quotaApplies(p, quota)) await checkQuota(q, p, cmd, quota);
  const resources = await liveResources(q, p.tenantId, cmd.resourceIds);
  checkRequestTiming(resources, cmd, now);
  await changeSeats(q, p.tenantId, resources, cmd);
  const h = await q.holds.insert(p.tenantId, ownerOf(p), cmd, ttlSeconds);
  await q.events.append(p.tenantId, 'hold.created', h.resourceIds, { hold: holdDto(h), ...extra });
  return h;
}

/** Confirms a locked, live hold into a booking inside the caller's transaction. */
export async function confirmHoldIn(q: Unit, h: HoldRow, cmd: Omit<HoldConfirm, 'customer' | 'payment'> & { customer: BookingRow['customer'] }, extra: Record<string, unknown> = {},
  payment: BookingPaymentState | null = null): Promise<BookingRow> {
  // The seats stay taken: they move from the hold to the booking.
  const b = await q.bookings.insert(h.tenantId, {
    holdId: h.id,
    ownerId: h.ownerId,
    resourceIds: h.resourceIds,
    start: h.start,
    end: h.end,
    seats: h.seats,
    customer: cmd.customer,
    attendees: cmd.attendees ?? [],
    metadata: cmd.metadata ?? {},
    payment,
  });
  await q.holds.setStatus(h.id, 'confirmed', b.id);
  await q.events.append(h.tenantId, 'booking.confirmed', b.resourceIds, { booking: bookingDto(b), holdId: h.id, ...extra });
  return b;
}

/** Releases a locked, live hold inside the caller's transaction. */
export async function releaseHoldIn(q: Unit, h: HoldRow, extra: Record<string, unknown> = {}): Promise<HoldRow> {
  await returnSeats(q, h.tenantId, h);
  await q.holds.setStatus(h.id, 'released');
  const next: HoldRow = { ...h, status: 'released' };
  await q.events.append(h.tenantId, 'hold.released', h.resourceIds, { hold: holdDto(next), ...extra });
  return next;
}

/** Builds the hold service over the core's ports. */
export function holdService({ store, clock, config, log, payments: provider, resourceCache = new ResourceCache() }: CoreDeps) {
  const payments = paymentFlow(provider, log, captureRetryOf(config, clock));

  /** Reads a hold the principal may see, optionally locked. */
  async function visibleHold(q: Unit, p: TenantPrincipal, id: string, lock: boolean): Promise<HoldRow> {
    const hold = await q.holds.get(p.tenantId, id, lock);
    if (!hold || !mayAccess(p, hold.ownerId)) throw notFound(`hold ${id}`);
    return hold;
  }

  /** The TTL to use: the default, within [HOLD_MIN_TTL_SECONDS, 900]. */
  function ttlOf(ttlSeconds: number | undefined): number {
    const ttl = ttlSeconds ?? config.holdTtlSeconds;
    if (ttl < config.holdMinTtlSeconds || ttl > 900) {
      throw new DomainError('validation-failed', `ttlSeconds must be between ${config.holdMinTtlSeconds} and 900`, {
        errors: [{ path: 'body.ttlSeconds', message: `must be between ${config.holdMinTtlSeconds} and 900` }],
      });
    }
    return ttl;
  }

  return {
    ttlOf,
    /** Takes seats on every resource for the range until the hold expires. */
    async create(p: TenantPrincipal, cmd: CreateHold): Promise<Hold> {
      const ttl = ttlOf(cmd.ttlSeconds);
      const now = clock.now();
      // The event, with the places of what only the database knows (id, createdAt, expiresAt, the slots' seats) marked for it.
      const event: MarkedEvent = { names: ['id', 'expiresAt', 'createdAt'], build: (mark) => ({ tenantId: p.tenantId, type: 'hold.created', resourceIds: [...cmd.resourceIds].sort(), data: {
        hold: { ...holdDto({ id: '', tenantId: p.tenantId, ownerId: ownerOf(p), resourceIds: [...cmd.resourceIds].sort(), start: cmd.start,
          end: cmd.end, seats: cmd.seats, status: 'held', expiresAt: 0, bookingId: null, createdAt: 0 }), id: mark('id'), createdAt: mark('createdAt'), expiresAt: mark('expiresAt') },
      } }) };
      // A user's holds under quotas take the general path: the quota check and the hold are one transaction.
      const fast = config.fastPaths === false || quotaApplies(p, config.holdQuota) ? null : await store.autocommit(
        (q) => takeSeatsFast(q, resourceCache, p.tenantId, cmd, now, (versions) => q.holds.createFast(p.tenantId, ownerOf(p), cmd, ttl, event, versions)),
      );
      const hold = fast ?? (await store.tx((q) => createHoldIn(q, p, cmd, ttl, now, {}, config.holdQuota)));
      return holdDto(hold);
    },

    /** Reads a hold. */
    async get(p: TenantPrincipal, id: string): Promise<Hold> {
      return holdDto(await visibleHold(store.primary, p, id, false));
    },

    /** Moves the expiry to ttlSeconds from now, within the 30-minute lifetime. */
    async extend(p: TenantPrincipal, id: string, ttlSeconds: number): Promise<Hold> {
      const ttl = ttlOf(ttlSeconds);
      const hold = await store.tx(async (q) => {
        const h = await visibleHold(q, p, id, true);
        holdDecision(h, 'extend', clock.now());
        const expiresAt = await q.holds.setExpiry(h.id, extendedExpiry(h.createdAt, clock.now(), ttl));
        const next = { ...h, expiresAt };
        await q.events.append(p.tenantId, 'hold.extended', h.resourceIds, { hold: holdDto(next) });
        return next;
      });
      return holdDto(hold);
    },

    /** Gives the seats back; releasing again (or after expiry) returns the hold as it is. */
    async release(p: TenantPrincipal, id: string): Promise<Hold> {
      const hold = await store.tx(async (q) => {
        const h = await visibleHold(q, p, id, true);
        if (holdDecision(h, 'release', clock.now()) === 'replay') return h;
        return releaseHoldIn(q, h);
      });
      return holdDto(hold);
    },

    /**
     * Converts a live hold into a booking atomically; a retry returns the same booking.
     * A priced hold (payments) is authorized first, outside the transaction; the
     * booking records the authorization, which is captured once the booking is
     * committed, or voided when the transaction fails (docs/integrations.md "Payments").
     */
    async confirm(p: TenantPrincipal, id: string, cmd: HoldConfirm): Promise<{ booking: Booking; created: boolean }> {
      const { payment: paymentInput, ...fields } = cmd;
      let authorized: BookingPaymentState | null = null;
      if (payments.enabled) {
        // Outside any transaction: a slow provider holds no row lock. A hold that cannot be confirmed is refused before charging.
        const h0 = await visibleHold(store.primary, p, id, false);
        if (holdDecision(h0, 'confirm', clock.now()) !== 'replay') {
          const due = amountOf(await store.primary.resources.byIds(p.tenantId, h0.resourceIds));
          if (due) authorized = await payments.authorize(due, paymentInput?.token, authorizationKey(p.tenantId, `hold:${h0.id}`, paymentInput?.token ?? '', due));
        }
      }
      // Committed: captured now (a failure leaves capture_pending, or authorized, for the sweep); failed: voided.
      const answer = await payments.book(store, authorized, async (q) => {
        const h = await visibleHold(q, p, id, true);
        if (holdDecision(h, 'confirm', clock.now()) === 'replay') {
          const existing = await q.bookings.byHold(h.id);
          if (!existing) throw new DomainError('hold-not-active', 'the hold is confirmed but its booking is gone');
          return { booking: existing, created: false };
        }
        if (payments.enabled) payments.check(authorized, await q.resources.byIds(p.tenantId, h.resourceIds));
        return { booking: await confirmHoldIn(q, h, fields, {}, authorized), created: true };
      });
      // An authorization a replay did not use (another card, or a retry that lost the race) is voided.
      if (!answer.created && authorized && answer.booking.payment?.reference !== authorized.reference) await payments.release(authorized);
      return { booking: bookingDto(answer.booking), created: answer.created };
    },
  };
}

export type HoldService = ReturnType<typeof holdService>;
