/** Payments (docs/integrations.md "Payments"): authorize → book → capture, or void; with the test provider over HTTP. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { WebsocketProvider } from 'y-websocket';
import * as Y from 'yjs';
import { providerKey } from '../../server/core/services/payments';
import { client, futureWeekday, newTenant, startNode, waitFor, type TestNode } from '../helpers/node';

let t: TestNode;
beforeAll(async () => {
  t = await startNode({ PAYMENT_PROVIDER: 'test', PAYMENT_CAPTURE_RETRY_MS: '1000' });
});
afterAll(async () => t.stop());

const PRICE = { amount: 2500, currency: 'EUR' };
const day = futureWeekday(3);
const range = (h: number) => ({ start: `${day}T${String(h).padStart(2, '0')}:00:00Z`, end: `${day}T${String(h + 1).padStart(2, '0')}:00:00Z` });
const customer = { name: 'Ada', email: 'ada@example.com' };

/** The test provider's ledger rows of one hold and card. */
const ledger = async (tenantId: string, holdId: string, token: string) =>
  // Every authorization of this hold and card (each request has its own: authorizationKey), oldest first.
  (await t.pool.query("SELECT * FROM payments WHERE idempotency_key LIKE $1 || '.%' ORDER BY created_at", [providerKey(tenantId, `hold:${holdId}`, token)])).rows;
const bookings = async (tenantId: string) =>
  (await t.pool.query('SELECT id, payment FROM bookings WHERE tenant_id = $1', [tenantId])).rows;
const seatsTaken = async (resourceId: string, start: string) =>
  (await t.pool.query('SELECT seats_taken FROM slots WHERE resource_id = $1 AND start_at = $2', [resourceId, start])).rows[0].seats_taken as number;

async function pricedHold(h = 9, price: object | null = PRICE) {
  const tenant = await newTenant(t);
  const room = await tenant.newResource({ price });
  const hold = await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], ...range(h) });
  expect(hold.status).toBe(201);
  return { tenant, room, hold: hold.body as { id: string } };
}

describe('prices', () => {
  it('a resource carries an optional price; bad prices are 400 and change nothing', async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource({ price: PRICE });
    expect((await tenant.api('GET', `/v1/resources/${room.id}`)).body.price).toEqual(PRICE);
    for (const price of [{ amount: -1, currency: 'EUR' }, { amount: 1.5, currency: 'EUR' }, { amount: 100, currency: 'eur' }, { amount: 100 }, { amount: 1e12, currency: 'EUR' }, '12']) {
      const bad = await tenant.api('POST', '/v1/resources', { name: 'X', price });
      expect(bad.status).toBe(400);
      expect(bad.body.code).toBe('validation-failed');
      const patch = await tenant.api('PATCH', `/v1/resources/${room.id}`, { price }, { 'If-Match': '"1"' });
      expect(patch.status).toBe(400);
    }
    expect((await tenant.api('GET', `/v1/resources/${room.id}`)).body.price).toEqual(PRICE);
    const repriced = await tenant.api('PATCH', `/v1/resources/${room.id}`, { price: { amount: 990, currency: 'USD' } });
    expect(repriced.status).toBe(200);
    expect(repriced.body.price).toEqual({ amount: 990, currency: 'USD' });
    const renamed = await tenant.api('PATCH', `/v1/resources/${room.id}`, { name: 'Renamed' });
    expect(renamed.body.price).toEqual({ amount: 990, currency: 'USD' });
    expect((await tenant.api('PATCH', `/v1/resources/${room.id}`, { price: null })).body.price).toBeNull();
    const free = await tenant.newResource();
    expect((await tenant.api('GET', `/v1/resources/${free.id}`)).body.price).toBeNull();
  });
});

describe('confirm with payment', () => {
  it('approve: the booking is made with a captured payment, captured once', async () => {
    const { tenant, hold } = await pricedHold(9);
    const r = await tenant.api('POST', `/v1/holds/${hold.id}/confirm`, { customer, payment: { token: 'tok_approve' } });
    expect(r.status).toBe(201);
    expect(r.body.payment).toMatchObject({ status: 'captured', amount: 2500, currency: 'EUR' });
    const rows = await ledger(tenant.id, hold.id, 'tok_approve');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'captured', captures: 1, void_calls: 0, amount: 2500 });
    expect(r.body.payment.reference).toBe(`test_${rows[0].id}`);
    expect((await tenant.api('GET', `/v1/bookings/${r.body.id}`)).body.payment.status).toBe('captured');
  });

  it('the amount is the sum of the resources\' prices', async () => {
    const tenant = await newTenant(t);
    const a = await tenant.newResource({ price: { amount: 1000, currency: 'EUR' } });
    const b = await tenant.newResource({ price: { amount: 250, currency: 'EUR' } });
    const c = await tenant.newResource();
    const hold = await tenant.api('POST', '/v1/holds', { resourceIds: [a.id, b.id, c.id], ...range(10) });
    const r = await tenant.api('POST', `/v1/holds/${hold.body.id}/confirm`, { customer, payment: { token: 'tok_approve' } });
    expect(r.status).toBe(201);
    expect(r.body.payment).toMatchObject({ status: 'captured', amount: 1250, currency: 'EUR' });
  });

  it('missing or bad payment input is a 4xx problem and changes nothing', async () => {
    const { tenant, room, hold } = await pricedHold(11);
    const none = await tenant.api('POST', `/v1/holds/${hold.id}/confirm`, { customer });
    expect(none.status).toBe(422);
    expect(none.body.code).toBe('payment-required');
    expect(none.headers.get('content-type')).toContain('application/problem+json');
    expect(none.body.errors[0].path).toBe('body.payment');
    for (const payment of [{ token: '' }, { token: 5 }, { token: 'tok_approve', extra: 1 }, { token: 'a b' }, { token: 'x'.repeat(256) }, 'tok_approve']) {
      const bad = await tenant.api('POST', `/v1/holds/${hold.id}/confirm`, { customer, payment });
      expect(bad.status).toBe(400);
      expect(bad.body.code).toBe('validation-failed');
    }
    expect((await tenant.api('GET', `/v1/holds/${hold.id}`)).body.status).toBe('held');
    expect(await bookings(tenant.id)).toHaveLength(0);
    expect(await seatsTaken(room.id, range(11).start)).toBe(1);
  });

  it('decline: 402 payment-declined, no booking, the hold stays active, nothing captured; another card then works', async () => {
    const { tenant, hold } = await pricedHold(12);
    const r = await tenant.api('POST', `/v1/holds/${hold.id}/confirm`, { customer, payment: { token: 'tok_decline' } });
    expect(r.status).toBe(402);
    expect(r.body.code).toBe('payment-declined');
    expect(r.headers.get('content-type')).toContain('application/problem+json');
    expect((await tenant.api('GET', `/v1/holds/${hold.id}`)).body.status).toBe('held');
    expect(await bookings(tenant.id)).toHaveLength(0);
    expect((await ledger(tenant.id, hold.id, 'tok_decline'))[0]).toMatchObject({ status: 'declined', captures: 0 });
    const again = await tenant.api('POST', `/v1/holds/${hold.id}/confirm`, { customer, payment: { token: 'tok_approve' } }, { 'Idempotency-Key': 'after-decline' });
    expect(again.status).toBe(201);
    // With a key the answer is built before the key's transaction commits: `authorized`, captured right after the commit.
    expect(['authorized', 'captured']).toContain(again.body.payment.status);
    await waitFor(async () => (await tenant.api('GET', `/v1/bookings/${again.body.id}`)).body.payment.status === 'captured', 5_000, 'capture');
    expect(await bookings(tenant.id)).toHaveLength(1);
  });

  it('provider failure: 502 payment-failed, no booking, no capture', async () => {
    const { tenant, hold } = await pricedHold(13);
    const r = await tenant.api('POST', `/v1/holds/${hold.id}/confirm`, { customer, payment: { token: 'tok_fail' } });
    expect(r.status).toBe(502);
    expect(r.body.code).toBe('payment-failed');
    expect(await bookings(tenant.id)).toHaveLength(0);
    expect(await ledger(tenant.id, hold.id, 'tok_fail')).toHaveLength(0);
    expect((await tenant.api('GET', `/v1/holds/${hold.id}`)).body.status).toBe('held');
  });

  it('the hold expiring between authorization and commit: 410, the authorization is voided, no booking', async () => {
    const { tenant, hold } = await pricedHold(14);
    // Lock the hold so the confirm authorizes and then waits; expire the hold meanwhile.
    const c = await t.pool.connect();
    try {
      await c.query('BEGIN');
      await c.query('SELECT 1 FROM holds WHERE id = $1 FOR UPDATE', [hold.id]);
      const pending = tenant.api('POST', `/v1/holds/${hold.id}/confirm`, { customer, payment: { token: 'tok_approve' } });
      await waitFor(async () => (await ledger(tenant.id, hold.id, 'tok_approve')).length === 1, 5_000, 'authorization');
      await c.query("UPDATE holds SET expires_at = now() - interval '1 second' WHERE id = $1", [hold.id]);
      await c.query('COMMIT');
      const r = await pending;
      expect(r.status).toBe(410);
      expect(r.body.code).toBe('hold-expired');
    } finally {
      c.release();
    }
    const [row] = await ledger(tenant.id, hold.id, 'tok_approve');
    expect(row).toMatchObject({ status: 'voided', captures: 0, void_calls: 1 });
    expect(await bookings(tenant.id)).toHaveLength(0);
  });

  it('a released hold is refused before any authorization', async () => {
    const { tenant, hold } = await pricedHold(15);
    expect((await tenant.api('DELETE', `/v1/holds/${hold.id}`)).status).toBe(200);
    const r = await tenant.api('POST', `/v1/holds/${hold.id}/confirm`, { customer, payment: { token: 'tok_approve' } });
    expect(r.status).toBe(409);
    expect(await ledger(tenant.id, hold.id, 'tok_approve')).toHaveLength(0);
  });

  it('10 concurrent retries with one Idempotency-Key: one booking, one authorization captured once', async () => {
    const { tenant, hold } = await pricedHold(16);
    const body = { customer, payment: { token: 'tok_approve' } };
    const replies = await Promise.all(Array.from({ length: 10 }, () => tenant.api('POST', `/v1/holds/${hold.id}/confirm`, body, { 'Idempotency-Key': 'pay-once' })));
    expect(replies.map((r) => r.status)).toEqual(Array(10).fill(201));
    expect(new Set(replies.map((r) => r.body.id)).size).toBe(1);
    expect(await bookings(tenant.id)).toHaveLength(1);
    const rows = await ledger(tenant.id, hold.id, 'tok_approve');
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ captures: 1, void_calls: 0 });
    // With a key, the answer may show `authorized` (captured once the key's transaction commits); the booking is captured.
    await waitFor(async () => (await tenant.api('GET', `/v1/bookings/${replies[0]!.body.id}`)).body.payment.status === 'captured', 5_000, 'capture');
    const later = await tenant.api('POST', `/v1/holds/${hold.id}/confirm`, body, { 'Idempotency-Key': 'pay-once' });
    expect(later.headers.get('idempotent-replayed')).toBe('true');
    expect((await ledger(tenant.id, hold.id, 'tok_approve'))[0].captures).toBe(1);
  });

  it('10 concurrent confirms without a key (same card): one booking, captured once', async () => {
    const { tenant, hold } = await pricedHold(17);
    const replies = await Promise.all(Array.from({ length: 10 }, () => tenant.api('POST', `/v1/holds/${hold.id}/confirm`, { customer, payment: { token: 'tok_approve' } })));
    expect(replies.map((r) => r.status).sort()).toEqual([...Array(9).fill(200), 201]);
    expect(new Set(replies.map((r) => r.body.id)).size).toBe(1);
    // Each request authorized on its own; exactly one was captured (the booking's), every other one voided.
    const rows = await ledger(tenant.id, hold.id, 'tok_approve');
    expect(rows.filter((r) => r.status === 'captured').map((r) => r.captures)).toEqual([1]);
    expect(rows.filter((r) => r.status !== 'captured').every((r) => r.status === 'voided' && r.captures === 0)).toBe(true);
    const [booking] = await bookings(tenant.id);
    expect(`test_${rows.find((r) => r.status === 'captured')!.id}`).toBe(booking.payment.reference);
  });

  it('a confirmed hold confirmed again with another card: the same booking, the card is not even authorized', async () => {
    const { tenant, hold } = await pricedHold(18);
    const first = await tenant.api('POST', `/v1/holds/${hold.id}/confirm`, { customer, payment: { token: 'tok_approve' } });
    expect(first.status).toBe(201);
    const second = await tenant.api('POST', `/v1/holds/${hold.id}/confirm`, { customer, payment: { token: 'tok_capture_fail' } });
    expect(second.status).toBe(200);
    expect(second.body.id).toBe(first.body.id);
    expect(await ledger(tenant.id, hold.id, 'tok_capture_fail')).toHaveLength(0);
    expect((await ledger(tenant.id, hold.id, 'tok_approve'))[0]).toMatchObject({ status: 'captured', captures: 1 });
  });

  it('a failed capture keeps the booking as capture_pending; the sweep captures it once', async () => {
    const { tenant, hold } = await pricedHold(19);
    const r = await tenant.api('POST', `/v1/holds/${hold.id}/confirm`, { customer, payment: { token: 'tok_capture_fail_once' } });
    expect(r.status).toBe(201);
    expect(r.body.payment.status).toBe('capture_pending');
    await waitFor(async () => (await tenant.api('GET', `/v1/bookings/${r.body.id}`)).body.payment.status === 'captured', 10_000, 'sweep capture');
    const [row] = await ledger(tenant.id, hold.id, 'tok_capture_fail_once');
    expect(row).toMatchObject({ status: 'captured', captures: 1 });
    expect(row.capture_calls).toBeGreaterThanOrEqual(2);
  });

  it('a capture that keeps failing is backed off per booking: no retry before its next try is due', async () => {
    const { tenant, hold } = await pricedHold(21);
    const r = await tenant.api('POST', `/v1/holds/${hold.id}/confirm`, { customer, payment: { token: 'tok_capture_fail' } });
    expect(r.status).toBe(201);
    const stored = async () => (await t.pool.query('SELECT payment FROM bookings WHERE id = $1', [r.body.id])).rows[0].payment;
    // The first try (after commit) and one by the sweep, a base (1 s, ±25 %) later.
    await waitFor(async () => (await stored()).captureAttempts >= 2, 15_000, 'a retry by the sweep');
    const second = await stored();
    const calls = (await ledger(tenant.id, hold.id, 'tok_capture_fail'))[0].capture_calls;
    expect(calls).toBe(second.captureAttempts);
    // The next is due two bases (±25 %, so at least 1.5 s) after the second: none comes before it, though the sweep
    // runs every 0.5 s.
    expect(second.nextCaptureAt - Date.now()).toBeGreaterThan(0);
    await new Promise((res) => setTimeout(res, Math.max(0, second.nextCaptureAt - Date.now() - 200)));
    expect((await ledger(tenant.id, hold.id, 'tok_capture_fail'))[0].capture_calls).toBe(calls);
    // The API shows the payment, not the sweep's bookkeeping.
    expect(Object.keys((await tenant.api('GET', `/v1/bookings/${r.body.id}`)).body.payment).sort()).toEqual(['amount', 'currency', 'reference', 'status']);
  });

  it('a booking cancelled before its capture is voided by the sweep, never captured', async () => {
    const { tenant, hold } = await pricedHold(20);
    const r = await tenant.api('POST', `/v1/holds/${hold.id}/confirm`, { customer, payment: { token: 'tok_capture_fail' } });
    expect(r.status).toBe(201);
    expect(r.body.payment.status).toBe('capture_pending');
    const cancelled = await tenant.api('POST', `/v1/bookings/${r.body.id}/cancel`, {});
    expect(cancelled.status).toBe(200);
    await waitFor(async () => (await tenant.api('GET', `/v1/bookings/${r.body.id}`)).body.payment.status === 'voided', 15_000, 'the sweep voids it');
    const [row] = await ledger(tenant.id, hold.id, 'tok_capture_fail');
    expect(row).toMatchObject({ status: 'voided', captures: 0 });
    expect(row.void_calls).toBeGreaterThanOrEqual(1);
  });

  it('resources priced in different currencies cannot be paid together: 422, nothing authorized', async () => {
    const tenant = await newTenant(t);
    const a = await tenant.newResource({ price: { amount: 1000, currency: 'EUR' } });
    const b = await tenant.newResource({ price: { amount: 1000, currency: 'USD' } });
    const hold = await tenant.api('POST', '/v1/holds', { resourceIds: [a.id, b.id], ...range(21) });
    const r = await tenant.api('POST', `/v1/holds/${hold.body.id}/confirm`, { customer, payment: { token: 'tok_approve' } });
    expect(r.status).toBe(422);
    expect(r.body.code).toBe('payment-required');
    expect(await ledger(tenant.id, hold.body.id, 'tok_approve')).toHaveLength(0);
    expect(await bookings(tenant.id)).toHaveLength(0);
  });

  it('a free resource needs no payment (the token is ignored)', async () => {
    const { tenant, hold } = await pricedHold(20, null);
    const r = await tenant.api('POST', `/v1/holds/${hold.id}/confirm`, { customer, payment: { token: 'tok_decline' } });
    expect(r.status).toBe(201);
    expect(r.body.payment).toBeNull();
  });
});

describe('direct booking with payment', () => {
  it('a priced direct booking needs a token, takes the general path and is captured; a decline books nothing', async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource({ price: PRICE });
    const body = { resourceIds: [room.id], ...range(9), customer };
    const none = await tenant.api('POST', '/v1/bookings', body);
    expect(none.status).toBe(422);
    expect(none.body.code).toBe('payment-required');
    const declined = await tenant.api('POST', '/v1/bookings', { ...body, payment: { token: 'tok_decline' } });
    expect(declined.status).toBe(402);
    expect(declined.body.code).toBe('payment-declined');
    const failed = await tenant.api('POST', '/v1/bookings', { ...body, payment: { token: 'tok_fail' } });
    expect(failed.status).toBe(502);
    expect(await bookings(tenant.id)).toHaveLength(0);
    expect(await seatsTaken(room.id, range(9).start)).toBe(0);
    const ok = await tenant.api('POST', '/v1/bookings', { ...body, payment: { token: 'tok_approve' } });
    expect(ok.status).toBe(201);
    expect(ok.body.payment).toMatchObject({ status: 'captured', amount: 2500, currency: 'EUR' });
    expect(await seatsTaken(room.id, range(9).start)).toBe(1);
  });

  it('a priced direct booking that conflicts is voided', async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource({ price: PRICE });
    const body = { resourceIds: [room.id], ...range(10), customer, payment: { token: 'tok_approve' } };
    expect((await tenant.api('POST', '/v1/bookings', body, { 'Idempotency-Key': 'd-1' })).status).toBe(201);
    const clash = await tenant.api('POST', '/v1/bookings', body, { 'Idempotency-Key': 'd-2' });
    expect(clash.status).toBe(409);
    const key = providerKey(tenant.id, 'booking:d-2', 'tok_approve');
    const { rows } = await t.pool.query("SELECT status, captures FROM payments WHERE idempotency_key LIKE $1 || '.%'", [key]);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({ status: 'voided', captures: 0 });
  });

  it('a free direct booking is unchanged (payment null)', async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource();
    const r = await tenant.api('POST', '/v1/bookings', { resourceIds: [room.id], ...range(11), customer });
    expect(r.status).toBe(201);
    expect(r.body.payment).toBeNull();
  });
});

describe('group bookings', () => {
  it('a group confirm of priced resources is refused with 422 payment-required; the hold stays', async () => {
    const tenant = await newTenant(t);
    const room = await tenant.newResource({ capacity: 5, price: PRICE });
    const alice = await tenant.api('POST', '/v1/tokens', { userId: 'alice', name: 'Alice', role: 'organizer' });
    const asAlice = client(t.url, alice.body.token);
    const group = await asAlice('POST', '/v1/group-bookings', { title: 'Paid offsite', resourceIds: [room.id], members: [] });
    expect(group.status).toBe(201);
    const doc = new Y.Doc();
    const provider = new WebsocketProvider(t.url.replace('http', 'ws') + '/yjs', group.body.docName, doc, {
      params: { token: alice.body.token }, WebSocketPolyfill: WebSocket as unknown as typeof globalThis.WebSocket, disableBc: true,
    });
    try {
      await waitFor(() => provider.synced, 5_000, 'sync');
      doc.transact(() => {
        doc.getMap('draft').set('start', range(15).start);
        doc.getMap('draft').set('end', range(15).end);
        const m = new Y.Map();
        m.set('name', 'p1');
        doc.getMap('participants').set('p1', m);
      });
      await waitFor(async () => (await asAlice('GET', `/v1/group-bookings/${group.body.id}`)).body.document?.participants?.p1 !== undefined, 5_000, 'draft');
      const held = await asAlice('POST', `/v1/group-bookings/${group.body.id}/hold`);
      expect(held.status).toBe(200);
      const conf = await asAlice('POST', `/v1/group-bookings/${group.body.id}/confirm`);
      expect(conf.status).toBe(422);
      expect(conf.body.code).toBe('payment-required');
      expect(await bookings(tenant.id)).toHaveLength(0);
      expect((await tenant.api('GET', `/v1/holds/${held.body.holdId}`)).body.status).toBe('held');
    } finally {
      provider.destroy();
    }
  });
});

describe('PAYMENT_PROVIDER=none', () => {
  it('prices are shown but nothing is charged: no payment step', async () => {
    const plain = await startNode();
    try {
      const tenant = await newTenant(plain);
      const room = await tenant.newResource({ price: PRICE });
      const r = await tenant.api('POST', '/v1/bookings', { resourceIds: [room.id], ...range(12), customer });
      expect(r.status).toBe(201);
      expect(r.body.payment).toBeNull();
      const hold = await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], ...range(13) });
      const c = await tenant.api('POST', `/v1/holds/${hold.body.id}/confirm`, { customer });
      expect(c.status).toBe(201);
      expect(c.body.payment).toBeNull();
    } finally {
      await plain.stop();
    }
  });
});
