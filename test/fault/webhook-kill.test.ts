/**
 * Fault: the node delivering a webhook is SIGKILLed while its request is at
 * the receiver (unanswered). Another node takes the endpoint over once the
 * dead node's lease runs out and delivers everything, in order: nothing is
 * lost, the interrupted event is sent again with the same webhook-id (so a
 * receiver drops the repeat), no answered event is sent twice, and the dead
 * node's job does not stay active in the queue.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { client, futureWeekday, isolatedDatabase, newTenant, waitFor, type TestNode } from '../helpers/node';
import { killAll, spawnNode, type NodeProcess } from '../helpers/process';

let db: Awaited<ReturnType<typeof isolatedDatabase>> | null = null;
let server: http.Server | null = null;
const env = () => ({
  DATABASE_URL: db!.url, REDIS_URL: inject('redisUrl'),
  WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_TIMEOUT_MS: '2000', WEBHOOK_RETRY_BASE_MS: '100', INTEGRATION_POLL_MS: '50',
  JOB_EXPIRE_SECONDS: '4', JOB_MAINTENANCE_SECONDS: '1',
});

beforeAll(async () => {
  db = await isolatedDatabase();
}, 60_000);

afterAll(async () => {
  await killAll();
  server?.closeAllConnections();
  server?.close();
  await db?.drop();
});

describe('a node killed while delivering a webhook', () => {
  it('loses no event: another node delivers everything in order after the lease runs out', async () => {
    // The receiver leaves its first request unanswered (the node dies meanwhile) and answers the rest.
    const got: { id: string; seq: number; answered: boolean }[] = [];
    server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        const first = got.length === 0;
        got.push({ id: String(req.headers['webhook-id']), seq: JSON.parse(body).data.seq, answered: !first });
        if (!first) res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;

    const a: NodeProcess = await spawnNode('webhook-a', env());
    const tenant = await newTenant(a as unknown as TestNode, 'webhook-kill');
    const room = await tenant.newResource({ capacity: 10 });
    const made = await tenant.api('POST', '/v1/webhooks', { url });
    expect(made.status).toBe(201);
    const day = futureWeekday(5);
    for (let h = 8; h < 13; h++) {
      const r = await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T${String(h).padStart(2, '0')}:00:00Z`, end: `${day}T${String(h + 1).padStart(2, '0')}:00:00Z` });
      expect(r.status).toBe(201);
    }
    await waitFor(() => got.length === 1, 10_000, 'the first request at the receiver');
    await a.kill('SIGKILL');

    const b = await spawnNode('webhook-b', env());
    const api = client(b.url, tenant.key);
    await waitFor(async () => (await api('GET', `/v1/webhooks/${made.body.id}`)).body.pending === 0, 30_000, 'every delivery made by node B');

    const answered = got.filter((g) => g.answered);
    expect(answered.map((g) => g.seq)).toEqual([...answered.map((g) => g.seq)].sort((x, y) => x - y));
    expect(new Set(answered.map((g) => g.seq)).size).toBe(5);
    expect(answered).toHaveLength(5);
    // The interrupted request was the first event, sent again (same webhook-id) and answered then.
    expect(answered[0]!.id).toBe(got[0]!.id);
    const log = (await api('GET', `/v1/webhooks/${made.body.id}/deliveries`)).body.items;
    expect(log.map((d: any) => d.status)).toEqual(['delivered', 'delivered', 'delivered', 'delivered', 'delivered']);

    // The dead node's job is taken back by the queue's maintenance (expired, retried) rather than left active.
    await waitFor(async () => {
      const metrics = await (await fetch(`${b.url}/metrics`)).text();
      return !/slotwise_jobs\{queue="webhook-deliver",state="active"\} [1-9]/.test(metrics);
    }, 30_000, 'no webhook job left active');
  }, 120_000);
});
