/**
 * Fault: the node sending an e-mail is SIGKILLed while the SMTP server still
 * owes its answer to the message (as a real server does, it then discards
 * what it was given). Another node sends the message once the dead node's
 * lease runs out: the message is not lost, it arrives exactly once (with the
 * Message-ID of the first attempt), the booking's next message follows it in
 * order, and the dead node's job, expired and retried by the queue, sends
 * nothing again.
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
  MAIL_TIMEOUT_MS: '1000', MAIL_RETRY_BASE_MS: '100', INTEGRATION_POLL_MS: '50',
  JOB_EXPIRE_SECONDS: '3', JOB_MAINTENANCE_SECONDS: '1',
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

    // The dead node's job is taken back by the queue (expired, retried, done) and sends nothing again.
    await waitFor(async () => {
      const metrics = await (await fetch(`${b.url}/metrics`)).text();
      return !/slotwise_jobs\{queue="mail-send",state="(active|created|retry)"\} [1-9]/.test(metrics);
    }, 30_000, 'no mail job left to run');
    expect(sink.got).toHaveLength(2);
    // Node A's attempt was never recorded (it died before the answer): each message has the one attempt that was accepted.
    const pool = new pg.Pool({ connectionString: db!.url, max: 1 });
    const { rows } = await pool.query('SELECT kind, status, attempts FROM email_messages ORDER BY position');
    await pool.end();
    expect(rows).toEqual([{ kind: 'confirmation', status: 'sent', attempts: 1 }, { kind: 'cancellation', status: 'sent', attempts: 1 }]);
  }, 120_000);
});

