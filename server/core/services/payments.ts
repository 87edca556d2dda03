/**
 * Payments around a booking (docs/integrations.md "Payments"): the amount of a
 * booking is the sum of its resources' prices; a booking with amount 0, or a
 * node without a provider, has no payment step. The flow: authorize (outside
 * any transaction) → the booking transaction records the authorization →
 * capture after commit; a failed transaction voids the authorization; a failed
 * capture leaves the booking with `capture_pending` for the sweep to retry,
 * with backoff; a booking cancelled before its capture is voided instead.
 */
import { createHash, randomUUID } from 'node:crypto';
import { DomainError } from '../errors';
import type { CoreConfig, Logger, PaymentProvider } from '../ports';
import type { Store, Unit } from '../store';
import type { BookingPaymentState, BookingRow, ResourceRow } from '../types';
import { retryDelay } from './webhooks';

/** How the capture sweep backs off a payment whose capture (or void) keeps failing. */
export interface CaptureRetry {
  /** The first retry's delay (each next one doubles, ±25 % jitter). */
  baseMs: number;
  maxMs: number;
  now: () => number;
}
const DEFAULT_CAPTURE_RETRY: CaptureRetry = { baseMs: 5_000, maxMs: 3_600_000, now: Date.now };

/** The capture backoff of a node: PAYMENT_CAPTURE_RETRY_MS doubling up to an hour, on the core's clock. */
export const captureRetryOf = (config: CoreConfig, clock: { now(): number }): CaptureRetry =>
  ({ baseMs: config.paymentCaptureRetryMs ?? DEFAULT_CAPTURE_RETRY.baseMs, maxMs: DEFAULT_CAPTURE_RETRY.maxMs, now: () => clock.now() });

/** What a booking costs: null when nothing (free resources). Mixed currencies are refused. */
export function amountOf(resources: Pick<ResourceRow, 'price'>[]): { amount: number; currency: string } | null {
  let amount = 0;
  let currency: string | null = null;
  for (const r of resources) {
    if (!r.price || r.price.amount === 0) continue;
    if (currency !== null && currency !== r.price.currency) {
      throw new DomainError('payment-required', 'the resources are priced in different currencies; book them separately', {
        errors: [{ path: 'body.resourceIds', message: 'resources priced in different currencies' }],
      });
    }
    currency = r.price.currency;
    amount += r.price.amount;
  }
  return currency === null || amount === 0 ? null : { amount, currency };
}

/** What the provider idempotency keys of one tenant, subject (hold or request key) and card start with. */
export const providerKey = (tenantId: string, subject: string, token: string) =>
  createHash('sha256').update(`${tenantId}\n${subject}\n${token}`).digest('base64url');

/**
 * The provider idempotency key of one authorization: the tenant, subject and
 * card (providerKey), the amount, and a nonce of the request. Requests never
 * share an authorization: one that fails voids only its own, never one that
 * a concurrent request's booking holds, and a retry after a price change
 * authorizes the new amount. Retries of one request with one Idempotency-Key
 * do not authorize again: the key replays the first answer without running
 * the request.
 */
export const authorizationKey = (tenantId: string, subject: string, token: string, due: { amount: number; currency: string }) =>
  `${providerKey(tenantId, subject, token)}.${due.amount}${due.currency}.${randomUUID()}`;

export interface PaymentFlow {
  /** True when this node takes payments at all. */
  enabled: boolean;
  /** Authorizes `due`; throws 422 payment-required (no token), 402 payment-declined or 502 payment-failed. */
  authorize(due: { amount: number; currency: string }, token: string | undefined, key: string): Promise<BookingPaymentState>;
  /** Inside the booking transaction: the amount must still be what was authorized (a price changed meanwhile: 409-like refusal). */
  check(authorized: BookingPaymentState | null, resources: ResourceRow[]): void;
  /** Voids an authorization the booking did not use (logged, never throws). */
  release(state: BookingPaymentState | null): Promise<void>;
  /**
   * Captures a committed booking's payment and records the outcome on it
   * (captured, or capture_pending with the next try backed off); a booking
   * cancelled meanwhile is voided instead (voided, or its try backed off).
   */
  capture(store: Store, b: BookingRow): Promise<BookingRow>;
  /**
   * Runs a booking transaction around an authorization (null: none). Once it
   * commits, the booking `run` made (`created`) is captured (a failed capture
   * is left to the sweep) and returned as captured; when the transaction
   * fails before committing, the authorization is voided and the error
   * rethrown.
   */
  book<T extends { booking: BookingRow; created: boolean }>(store: Store, authorized: BookingPaymentState | null, run: (q: Unit) => Promise<T>): Promise<T>;
}

/** Builds the flow over the provider (absent: no payment step). */
export function paymentFlow(provider: PaymentProvider | undefined, log: Logger, retry: CaptureRetry = DEFAULT_CAPTURE_RETRY): PaymentFlow {
  const flow: PaymentFlow = {
    enabled: provider !== undefined,
    async authorize(due, token, key) {
      if (!provider) throw new Error('no payment provider');
      if (token === undefined) {
        throw new DomainError('payment-required', `this booking costs ${due.amount} ${due.currency} (minor units): send payment.token`, {
          amount: due.amount, currency: due.currency, errors: [{ path: 'body.payment', message: 'required: the booking has a price' }],
        });
      }
      let r;
      try {
        r = await provider.authorize(due.amount, due.currency, token, key);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'payment provider failed on authorize');
        r = { outcome: 'failed' as const, reason: 'the provider did not answer' };
      }
      if (r.outcome === 'declined') throw new DomainError('payment-declined', `the card was declined (${r.reason}); the hold stays until it expires: retry with another card`);
      if (r.outcome === 'failed') throw new DomainError('payment-failed', `the payment provider failed (${r.reason}); nothing was booked or charged`);
      return { status: 'authorized', amount: due.amount, currency: due.currency, reference: r.reference };
    },
    check(authorized, resources) {
      const now = amountOf(resources);
      const same = now === null ? authorized === null : authorized !== null && authorized.amount === now.amount && authorized.currency === now.currency;
      if (!same) {
        throw new DomainError('payment-required', 'the price of a resource changed while paying; retry the request', {
          errors: [{ path: 'body.payment', message: 'the price changed' }],
        });
      }
    },
    async release(state) {
      if (!provider || !state) return;
      try {
        await provider.void(state.reference);
      } catch (err) {
        // An authorization nobody captures lapses at the provider; logged for the operator.
        log.warn({ err: (err as Error).message, reference: state.reference }, 'payment void failed');
      }
    },
    async capture(store, seen) {
      const pending = (x: BookingRow | null): x is BookingRow & { payment: BookingPaymentState } =>
        !!x?.payment && (x.payment.status === 'authorized' || x.payment.status === 'capture_pending');
      if (!provider || !pending(seen)) return seen;
      // The booking is read again and locked while the provider is called: a cancel waits for a capture under way
      // (and then refunds nothing), and a capture never goes ahead on a booking cancelled since it was first read.
      return store.tx(async (q) => {
        const b = await q.bookings.get(seen.tenantId, seen.id, true);
        if (!pending(b)) return b ?? seen;
        return settle(provider, q, b);
      });
    },
    async book<T extends { booking: BookingRow; created: boolean }>(store: Store, authorized: BookingPaymentState | null, run: (q: Unit) => Promise<T>): Promise<T> {
      let result: T | null = null;
      let captured: BookingRow | null = null;
      let committed = false;
      try {
        await store.tx(async (q) => (result = await run(q)), async () => {
          committed = true;
          const made = result!.created ? result!.booking : null;
          if (made?.payment) captured = await flow.capture(store, made).catch(() => made);
        });
      } catch (err) {
        if (!committed) await flow.release(authorized);
        throw err;
      }
      return captured ? { ...result!, booking: captured } : result!;
    },
  };
  return flow;

  async function settle(provider: PaymentProvider, q: Unit, b: BookingRow & { payment: BookingPaymentState }): Promise<BookingRow> {
    const { status: was, amount, currency, reference } = b.payment;
    // Cancelled before its capture: nothing is owed, the authorization is released.
    const cancelled = b.status === 'cancelled';
    let payment: BookingPaymentState;
    try {
      if (cancelled) await provider.void(reference);
      else await provider.capture(reference);
      payment = { status: cancelled ? 'voided' : 'captured', amount, currency, reference };
    } catch (err) {
      // Backed off per booking, so payments that keep failing never hold back the others.
      const attempts = (b.payment.captureAttempts ?? 0) + 1;
      const nextCaptureAt = retry.now() + retryDelay(attempts, { retryBaseMs: retry.baseMs, retryMaxMs: retry.maxMs });
      log.warn({ err: (err as Error).message, booking: b.id, attempts }, cancelled ? 'payment void failed; the sweep retries it' : 'payment capture failed; the sweep retries it');
      payment = { status: cancelled ? was : 'capture_pending', amount, currency, reference, captureAttempts: attempts, nextCaptureAt };
    }
    await q.bookings.setPayment(b.id, payment);
    return { ...b, payment };
  }
}

/**
 * The capture sweep (server/workers.ts): retries the capture of bookings whose
 * payment is still `authorized` or `capture_pending` after `olderThanMs`
 * (a failed capture, or a node that died between commit and capture), due
 * ones first (each failure backs its booking off), and voids those of
 * bookings cancelled before their capture.
 * Captures are idempotent at the provider, so nodes sweeping at once capture
 * nothing twice. Returns how many bookings it tried.
 */
export async function capturePending(store: Store, flow: PaymentFlow, olderThanMs: number, limit = 100): Promise<number> {
  if (!flow.enabled) return 0;
  const due = await store.primary.bookings.pendingCaptures(olderThanMs, limit);
  for (const b of due) await flow.capture(store, b);
  return due.length;
}
