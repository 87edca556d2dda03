/**
 * The in-process test payment provider (PAYMENT_PROVIDER=test; docs/integrations.md
 * "Payments"). Its card tokens decide what happens:
 *   tok_approve            authorized; capture and void succeed
 *   tok_decline            declined (402 payment-declined)
 *   tok_fail               the provider fails (502 payment-failed); nothing is recorded
 *   tok_capture_fail       authorized; every capture fails (the booking stays capture_pending)
 *   tok_capture_fail_once  authorized; the first capture fails, the sweep's retry succeeds
 * any other token is declined. It keeps a ledger in the `payments` table
 * (migration 010): one row per idempotency key, with every authorize, capture
 * and void call counted, so tests can check that nothing was captured twice.
 */
import type pg from 'pg';
import type { AuthorizeResult, PaymentProvider } from '../core/ports';

const APPROVING = new Set(['tok_approve', 'tok_capture_fail', 'tok_capture_fail_once']);

export class TestPaymentProvider implements PaymentProvider {
  readonly name = 'test';
  constructor(private readonly pool: pg.Pool) {}

  async authorize(amount: number, currency: string, token: string, idempotencyKey: string): Promise<AuthorizeResult> {
    if (token === 'tok_fail') return { outcome: 'failed', reason: 'test provider error (tok_fail)' };
    const status = APPROVING.has(token) ? 'authorized' : 'declined';
    // One statement per key: concurrent calls with one key answer one authorization. A voided one is authorized again
    // (a retry after a failed booking); a live or captured one is answered as it is.
    const { rows } = await this.pool.query(
      `INSERT INTO payments (idempotency_key, amount, currency, token, status) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (idempotency_key) DO UPDATE SET authorize_calls = payments.authorize_calls + 1, updated_at = now(),
         status = CASE WHEN payments.status = 'voided' THEN EXCLUDED.status ELSE payments.status END
       RETURNING id, status`,
      [idempotencyKey, amount, currency, token, status],
    );
    const row = rows[0] as { id: string; status: string };
    if (row.status === 'declined') return { outcome: 'declined', reason: token === 'tok_decline' ? 'tok_decline' : 'unknown test card' };
    return { outcome: 'authorized', reference: `test_${row.id}` };
  }

  async capture(reference: string): Promise<void> {
    const id = idOf(reference);
    const { rows } = await this.pool.query(
      `UPDATE payments SET capture_calls = capture_calls + 1, updated_at = now() WHERE id = $1 RETURNING token, status, capture_calls`,
      [id],
    );
    const row = rows[0] as { token: string; status: string; capture_calls: number } | undefined;
    if (!row) throw new Error(`unknown authorization ${reference}`);
    if (row.token === 'tok_capture_fail' || (row.token === 'tok_capture_fail_once' && row.capture_calls === 1)) {
      throw new Error(`test provider capture error (${row.token})`);
    }
    if (row.status === 'captured') return; // idempotent
    if (row.status !== 'authorized') throw new Error(`authorization ${reference} is ${row.status}`);
    // Only an authorized row is captured: a second capture (a racing sweep) changes nothing.
    await this.pool.query(
      `UPDATE payments SET status = 'captured', captures = captures + 1, updated_at = now() WHERE id = $1 AND status = 'authorized'`, [id],
    );
  }

  async void(reference: string): Promise<void> {
    const { rows } = await this.pool.query(
      `UPDATE payments SET void_calls = void_calls + 1, updated_at = now(),
         status = CASE WHEN status = 'authorized' THEN 'voided' ELSE status END
       WHERE id = $1 RETURNING status`,
      [idOf(reference)],
    );
    if (!rows[0]) throw new Error(`unknown authorization ${reference}`);
    if (rows[0].status === 'captured') throw new Error(`authorization ${reference} is captured; refund it instead`);
  }
}

const UUID = /^test_([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$/;
function idOf(reference: string): string {
  const m = UUID.exec(reference);
  if (!m) throw new Error(`not a test provider reference: ${reference}`);
  return m[1]!;
}
