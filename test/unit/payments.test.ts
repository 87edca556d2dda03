/** The amount of a booking and the provider's idempotency key (server/core/services/payments.ts). */
import { describe, expect, it } from 'vitest';
import { DomainError } from '../../server/core/errors';
import { amountOf, providerKey } from '../../server/core/services/payments';

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
