/**
 * Fault: the node sending an e-mail is SIGKILLed while the SMTP server still
 * owes its answer to the message (as a real server does, it then discards
 * what it was given). Another node sends the message once the dead node's
 * lease runs out: the message is not lost, it arrives exactly once, the
 * booking's next message follows it in order, and nothing is sent again.
 */
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { futureWeekday, isolatedDatabase, newTenant, waitFor, type TestNode } from '../helpers/node';
import { killAll, spawnNode, type NodeProcess } from '../helpers/process';
import { smtpSink, type SmtpSink } from '../helpers/smtp';

let db: Awaited<ReturnType<typeof isolatedDatabase>> | null = null;
let sink: SmtpSink | null = null;
const env = (smtpUrl: string) => ({
  DATABASE_URL: db!.url, REDIS_URL: inject('redisUrl'), SMTP_URL: smtpUrl,
  // Node A waits for the held answer far longer than the test takes to kill it; its lease is short, so node B takes
  // over soon after A stops renewing it.
  MAIL_TIMEOUT_MS: '60000', MAIL_LEASE_MS: '3000', MAIL_RETRY_BASE_MS: '100', INTEGRATION_POLL_MS: '50',
});

beforeAll(async () => {
  db = await isolatedDatabase();
}, 60_000);

afterAll(async () => {
  await killAll();
  await sink?.close();
  await db?.drop();
});

describe('a node killed while sending an e-mail', () => {
  it('loses no message and sends none twice: another node sends it after the lease runs out', async () => {
    // The server holds its answer to the first message (the node dies meanwhile) and accepts the rest.
    sink = await smtpSink(({ n }) => (n === 0 ? 'hold' : 'accept'));
    const a: NodeProcess = await spawnNode('mail-a', env(sink.url));
    const tenant = await newTenant(a as unknown as TestNode, 'email-kill');
    const room = await tenant.newResource({ capacity: 10 });
    const day = futureWeekday(5);
    const hold = await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T09:00:00Z`, end: `${day}T10:00:00Z` });
    expect(hold.status).toBe(201);
    const booking = await tenant.api('POST', `/v1/holds/${hold.body.id}/confirm`, { customer: { name: 'Kim', email: 'kim@example.com' } });
    expect(booking.status).toBe(201);

    // Node A has given the server the confirmation and waits for its answer: kill it there.
    await waitFor(() => sink!.held() === 1, 15_000, 'the confirmation held at the server');
    await a.kill('SIGKILL');
    await waitFor(() => sink!.refused.some((r) => r.why === 'discarded'), 5_000, 'the held message discarded once node A is gone');
    // The booking is cancelled on node B while the confirmation still waits for A's lease to run out: the cancellation
    // must follow the confirmation, not overtake it.
    const b = await spawnNode('mail-b', env(sink.url));
    const cancelled = await fetch(`${b.url}/v1/bookings/${booking.body.id}/cancel`, {
      method: 'POST', headers: { Authorization: `Bearer ${tenant.key}`, 'Content-Type': 'application/json' }, body: '{}',
    });
    expect(cancelled.status).toBe(200);

    await waitFor(() => sink!.got.length === 2, 30_000, 'the confirmation and the cancellation sent by node B');
    expect(sink.got.map((r) => r.mail.subject?.split(':')[0])).toEqual(['Booking confirmed', 'Booking cancelled']);
    expect(sink.refused.map((r) => [r.why, r.subject.split(':')[0]])).toEqual([['discarded', 'Booking confirmed']]);

    // Both recorded as sent (node A's attempt never was: it died before the answer); nothing is left to send, and more
    // rounds of node B's sender send nothing again.
    await waitFor(async () => /slotwise_emails\{status="sent"\} 2/.test(await (await fetch(`${b.url}/metrics`)).text()), 10_000, 'both recorded');
    await new Promise((r) => setTimeout(r, 1_000));
    expect(sink.got).toHaveLength(2);
    expect(sink.got[0]!.mail.messageId).not.toBe(sink.got[1]!.mail.messageId);
    const pool = new pg.Pool({ connectionString: db!.url, max: 1 });
    const { rows } = await pool.query('SELECT kind, status, attempts FROM email_messages ORDER BY position');
    await pool.end();
    expect(rows).toEqual([{ kind: 'confirmation', status: 'sent', attempts: 1 }, { kind: 'cancellation', status: 'sent', attempts: 1 }]);
  }, 120_000);
});

