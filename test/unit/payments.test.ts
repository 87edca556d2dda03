/** The amount of a booking and the provider's idempotency key (server/core/services/payments.ts). */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../server/core/errors';
import { amountOf, paymentFlow, providerKey } from '../../server/core/services/payments';

describe('amountOf', () => {
  it('sums the prices; free, absent and zero prices add nothing', () => {
    expect(amountOf([{ price: { amount: 1000, currency: 'EUR' } }, { price: null }, {}, { price: { amount: 0, currency: 'USD' } }, { price: { amount: 5, currency: 'EUR' } }]))
      .toEqual({ amount: 1005, currency: 'EUR' });
  });
  it('is null when nothing costs anything', () => {
    expect(amountOf([])).toBeNull();
    expect(amountOf([{ price: null }, { price: { amount: 0, currency: 'EUR' } }])).toBeNull();
  });
  it('refuses mixed currencies with payment-required', () => {
    const mixed = () => amountOf([{ price: { amount: 1, currency: 'EUR' } }, { price: { amount: 1, currency: 'USD' } }]);
    expect(mixed).toThrow(DomainError);
    try {
      mixed();
    } catch (err) {
      expect((err as DomainError).code).toBe('payment-required');
      expect((err as DomainError).status).toBe(422);
    }
  });
});

describe('providerKey', () => {
  it('is one per tenant, subject and card', () => {
    const k = providerKey('t1', 'hold:h1', 'tok_approve');
    expect(providerKey('t1', 'hold:h1', 'tok_approve')).toBe(k);
    expect(providerKey('t2', 'hold:h1', 'tok_approve')).not.toBe(k);
    expect(providerKey('t1', 'hold:h2', 'tok_approve')).not.toBe(k);
    expect(providerKey('t1', 'hold:h1', 'tok_decline')).not.toBe(k);
  });
});

describe('the capture step', () => {
  const base = { id: 'b1', tenantId: 't1', holdId: null, ownerId: null, resourceIds: ['r1'], start: 0, end: 1, seats: 1, customer: { name: 'Ada' }, attendees: [], metadata: {}, version: 1, cancelReason: null, createdAt: 0, updatedAt: 0 };
  const authorized = { status: 'authorized' as const, amount: 100, currency: 'EUR', reference: 'ref-1' };
  /** A provider whose capture and void fail while `failing` is set, counting calls; a unit that records what is written. */
  function harness() {
    const calls: string[] = [];
    const state = { failing: true };
    const provider = {
      name: 'fake',
      authorize: async () => ({ outcome: 'authorized' as const, reference: 'ref-1' }),
      capture: async (ref: string) => { calls.push(`capture ${ref}`); if (state.failing) throw new Error('down'); },
      void: async (ref: string) => { calls.push(`void ${ref}`); if (state.failing) throw new Error('down'); },
    };
    const written: unknown[] = [];
    // The booking as stored: capture reads it again (locked) before calling the provider.
    let stored: any = null;
    const unit = {
      bookings: {
        get: async () => stored,
        setPayment: async (_id: string, p: unknown) => {
          written.push(p);
          stored = { ...stored, payment: p };
        },
      },
    };
    const store = { tx: async (fn: (u: typeof unit) => unknown) => fn(unit) } as never;
    let now = 1_000_000;
    const log = { info() {}, warn() {}, error() {}, debug() {} };
    const flow = paymentFlow(provider, log, { baseMs: 1_000, maxMs: 8_000, now: () => now });
    return { calls, state, written, store, flow, put: (b: any) => (stored = b), advance: (ms: number) => (now += ms), now: () => now };
  }

  it('backs a failing capture off per booking: doubling from the base, ±25 %, up to the cap; then captures', async () => {
    const h = harness();
    let b: any = h.put({ ...base, status: 'confirmed', payment: authorized });
    const gaps: number[] = [];
    for (let i = 1; i <= 6; i++) {
      b = await h.flow.capture(h.store, b);
      expect(b.payment).toMatchObject({ status: 'capture_pending', captureAttempts: i });
      gaps.push(b.payment.nextCaptureAt - h.now());
      h.advance(b.payment.nextCaptureAt - h.now());
    }
    const plain = [1_000, 2_000, 4_000, 8_000, 8_000, 8_000];
    gaps.forEach((g, i) => {
      expect(g).toBeGreaterThanOrEqual(plain[i]! * 0.75);
      expect(g).toBeLessThanOrEqual(plain[i]! * 1.25);
    });
    h.state.failing = false;
    b = await h.flow.capture(h.store, b);
    // Captured: the sweep's own fields are gone, and clients never see them (dto picks the four fields).
    expect(b.payment).toEqual({ ...authorized, status: 'captured' });
    expect(h.calls).toEqual(Array(7).fill('capture ref-1'));
  });

  it('voids, never captures, a booking cancelled before its capture; a failing void is backed off and retried', async () => {
    const h = harness();
    let b: any = h.put({ ...base, status: 'cancelled', payment: { ...authorized, status: 'capture_pending', captureAttempts: 2, nextCaptureAt: 0 } });
    b = await h.flow.capture(h.store, b);
    expect(b.payment).toMatchObject({ status: 'capture_pending', captureAttempts: 3 });
    h.state.failing = false;
    b = await h.flow.capture(h.store, b);
    expect(b.payment).toEqual({ ...authorized, status: 'voided' });
    expect(h.calls).toEqual(['void ref-1', 'void ref-1']);
    expect(h.written).toHaveLength(2);
  });

  it('decides on the booking as it is when the provider is called, not as the caller read it', async () => {
    const h = harness();
    h.state.failing = false;
    // The caller read it confirmed and authorized; it was cancelled since: voided, never captured.
    h.put({ ...base, status: 'cancelled', payment: authorized });
    const b = await h.flow.capture(h.store, { ...base, status: 'confirmed', payment: authorized } as any);
    expect(b.payment).toEqual({ ...authorized, status: 'voided' });
    // Captured since (another node's sweep): nothing is called, nothing written.
    h.put({ ...base, status: 'cancelled', payment: { ...authorized, status: 'captured' } });
    const again = await h.flow.capture(h.store, { ...base, status: 'cancelled', payment: authorized } as any);
    expect(again.payment).toEqual({ ...authorized, status: 'captured' });
    expect(h.calls).toEqual(['void ref-1']);
    expect(h.written).toHaveLength(1);
  });
});
