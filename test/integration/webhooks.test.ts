/**
 * Webhooks against real local receivers (node:http servers): every event of
 * the feed reaches each endpoint that wants it, in order, signed per Standard
 * Webhooks (verified with the `standardwebhooks` package); a receiver that
 * fails for a while gets everything afterwards, in order; one that keeps
 * failing is disabled (a `webhook.disabled` event says so) and, re-enabled,
 * gets everything it missed; one that never answers slows no other endpoint;
 * redelivery, secret rotation, the delivery log, /metrics and bad input.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook as Verifier } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookRepository } from '../../server/db/repositories/webhooks';
import { client, futureWeekday, newTenant, startCluster, waitFor, type TestNode } from '../helpers/node';

interface Received {
  headers: http.IncomingHttpHeaders;
  body: string;
  json: { type: string; timestamp: string; data: { seq: number; type: string; resourceIds: string[]; data: any; at: string } };
}

/** A receiver: answers with `answer(n)` (the n-th request, from 0): a status, or 'hang' (never answers). */
async function receiver(answer: (n: number, r: Received) => number | 'hang' = () => 204) {
  const got: Received[] = [];
  const open = new Set<http.ServerResponse>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const r = { headers: req.headers, body, json: JSON.parse(body) } as Received;
      const a = answer(got.length, r);
      got.push(r);
      if (a === 'hang') {
        open.add(res);
        return;
      }
      res.writeHead(a).end('ok');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    got,
    /** Requests answered 2xx, by seq, first arrival each. */
    close: async () => {
      for (const res of open) res.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

const receivers: { close(): Promise<void> }[] = [];
async function newReceiver(answer?: (n: number, r: Received) => number | 'hang') {
  const r = await receiver(answer);
  receivers.push(r);
  return r;
}

let cluster: Awaited<ReturnType<typeof startCluster>>;
let a: TestNode;
let b: TestNode;
const DISABLE_AFTER_MS = 2_000;

beforeAll(async () => {
  // Loopback receivers are allowed here (never by default); retries and disabling are fast.
  cluster = await startCluster(2, {
    WEBHOOK_ALLOW_PRIVATE: '1', WEBHOOK_RETRY_BASE_MS: '100', WEBHOOK_RETRY_MAX_MS: '400', WEBHOOK_DISABLE_AFTER_MS: String(DISABLE_AFTER_MS),
    WEBHOOK_TIMEOUT_MS: '3000', INTEGRATION_POLL_MS: '50',
  });
  [a, b] = cluster.nodes as [TestNode, TestNode];
}, 60_000);

afterAll(async () => {
  for (const r of receivers) await r.close();
  await cluster?.stop();
});

const pad = (n: number) => String(n).padStart(2, '0');

/** A tenant with one room and a helper that holds hour h of the day (and confirms it when asked). */
async function setUp(node: TestNode) {
  const t = await newTenant(node, 'webhooks');
  const room = await t.newResource({ capacity: 100 });
  const day = futureWeekday(10);
  const hold = async (h: number, via = node) => {
    const r = await client(via.url, t.key)('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T${pad(h)}:00:00Z`, end: `${day}T${pad(h + 1)}:00:00Z` });
    expect(r.status, r.text).toBe(201);
    return r.body;
  };
  return { ...t, room, day, hold };
}

/** Checks a request's signature with the secret(s), as a receiver would. */
const verify = (secret: string, r: Received) => new Verifier(secret).verify(r.body, r.headers as Record<string, string>);

describe('webhooks', () => {
  it('delivers every event of the tenant, signed, in feed order, from whichever node committed it; filters by type', async () => {
    const t = await setUp(a);
    const all = await newReceiver();
    const onlyBookings = await newReceiver();
    const made = await t.api('POST', '/v1/webhooks', { url: all.url, description: 'everything' });
    expect(made.status, made.text).toBe(201);
    expect(made.body.secret).toMatch(/^whsec_/);
    expect(made.headers.get('location')).toBe(`/v1/webhooks/${made.body.id}`);
    const filtered = await t.api('POST', '/v1/webhooks', { url: onlyBookings.url, eventTypes: ['booking.confirmed'] });
    expect(filtered.status).toBe(201);

    const holds = [];
    for (let h = 8; h < 14; h++) holds.push(await t.hold(h, h % 2 ? a : b));
    const confirmed = await t.api('POST', `/v1/holds/${holds[0].id}/confirm`, { customer: { name: 'Ada', email: 'ada@example.com' } });
    expect(confirmed.status).toBe(201);
    const released = await t.api('DELETE', `/v1/holds/${holds[1].id}`);
    expect(released.status).toBe(200);

    // Only what happened after the endpoint was made (not the set-up's resource and schedule events).
    await waitFor(() => all.got.length >= 8, 10_000, 'eight deliveries');
    await waitFor(() => onlyBookings.got.length >= 1, 10_000, 'the booking delivery');
    for (const r of all.got) expect(() => verify(made.body.secret, r)).not.toThrow();
    for (const r of onlyBookings.got) expect(() => verify(filtered.body.secret, r)).not.toThrow();
    // A signature made with another secret is refused: the check above can fail.
    expect(() => verify(filtered.body.secret, all.got[0]!)).toThrow();

    const seqs = all.got.map((r) => r.json.data.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(all.got.map((r) => r.json.type)).toEqual([
      'hold.created', 'hold.created', 'hold.created', 'hold.created', 'hold.created', 'hold.created', 'booking.confirmed', 'hold.released',
    ]);
    expect(all.got.map((r) => r.headers['webhook-id'])).toEqual(seqs.map((s) => `evt_${s}`));
    expect(all.got[6]!.json.data.data.booking.holdId ?? all.got[6]!.json.data.data.holdId).toBe(holds[0].id);
    expect(onlyBookings.got.map((r) => r.json.type)).toEqual(['booking.confirmed']);

    // The same events as the feed: same seqs, types and data.
    const feed = await t.api('GET', `/v1/events?after=${seqs[0]! - 1}&limit=50`);
    expect(feed.status).toBe(200);
    const fromFeed = feed.body.events.filter((e: any) => seqs.includes(e.seq));
    expect(fromFeed.map((e: any) => [e.seq, e.type])).toEqual(all.got.map((r) => [r.json.data.seq, r.json.type]));
    expect(fromFeed[0].data).toEqual(all.got[0]!.json.data.data);

    // The delivery log.
    await waitFor(async () => (await t.api('GET', `/v1/webhooks/${made.body.id}`)).body.pending === 0, 5_000, 'nothing pending');
    const log = await t.api('GET', `/v1/webhooks/${made.body.id}/deliveries?limit=3`);
    expect(log.status).toBe(200);
    expect(log.body.items.map((d: any) => d.seq)).toEqual([...seqs].reverse().slice(0, 3));
    expect(log.body.items.every((d: any) => d.status === 'delivered' && d.attempts === 1 && d.lastStatus === 204)).toBe(true);
    const next = await t.api('GET', `/v1/webhooks/${made.body.id}/deliveries?limit=3&cursor=${log.body.nextCursor}`);
    expect(next.body.items.map((d: any) => d.seq)).toEqual([...seqs].reverse().slice(3, 6));

    // The hourly purge forgets deliveries delivered more than 30 days ago, with their attempts; the rest stay.
    const old = seqs.slice(0, 3);
    await a.pool.query("UPDATE webhook_deliveries SET delivered_at = now() - interval '31 days' WHERE endpoint_id = $1 AND seq = ANY($2)", [made.body.id, old]);
    expect(await webhookRepository.purge(a.pool, 30 * 24 * 3_600_000)).toBe(3);
    const kept = await t.api('GET', `/v1/webhooks/${made.body.id}/deliveries?limit=50`);
    expect(kept.body.items.map((d: any) => d.seq)).toEqual([...seqs].reverse().slice(0, 5));
    const { rows: orphans } = await a.pool.query('SELECT count(*)::int AS n FROM webhook_attempts a LEFT JOIN webhook_deliveries d ON d.id = a.delivery_id WHERE d.id IS NULL');
    expect(orphans[0].n).toBe(0);
  });

  it('a receiver that fails for a while gets every event afterwards, in order per resource, each signature valid', async () => {
    const t = await setUp(a);
    const other = await t.newResource({ capacity: 100 });
    let failing = true;
    const flaky = await newReceiver(() => (failing ? 503 : 200));
    const made = await t.api('POST', '/v1/webhooks', { url: flaky.url });
    const holds = [];
    for (let h = 8; h < 12; h++) {
      holds.push(await t.hold(h));
      const r = await t.api('POST', '/v1/holds', { resourceIds: [other.id], start: `${t.day}T${pad(h)}:00:00Z`, end: `${t.day}T${pad(h + 1)}:00:00Z` });
      expect(r.status).toBe(201);
    }
    // It fails a few times (retried with backoff), then recovers.
    await waitFor(() => flaky.got.length >= 3, 10_000, 'three failed attempts');
    const failedAttempts = flaky.got.length;
    failing = false;
    await waitFor(async () => (await t.api('GET', `/v1/webhooks/${made.body.id}`)).body.pending === 0, 15_000, 'everything delivered');

    const okOnes = flaky.got.slice(failedAttempts);
    for (const r of flaky.got) expect(() => verify(made.body.secret, r)).not.toThrow();
    // The failed attempts were all of the first event (nothing overtook it), and every event came after, once, in order.
    expect(new Set(flaky.got.slice(0, failedAttempts).map((r) => r.headers['webhook-id'])).size).toBe(1);
    const seqs = okOnes.map((r) => r.json.data.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(okOnes.filter((r) => r.json.type === 'hold.created')).toHaveLength(8);
    for (const room of [t.room.id, other.id]) {
      const mine = okOnes.filter((r) => r.json.data.resourceIds.includes(room)).map((r) => r.json.data.seq);
      expect(mine).toEqual([...mine].sort((x, y) => x - y));
    }
    const firstLog = (await t.api('GET', `/v1/webhooks/${made.body.id}/deliveries?status=delivered&limit=200`)).body.items.at(-1);
    expect(firstLog.attempts).toBe(failedAttempts + 1);
    const detail = await t.api('GET', `/v1/webhooks/${made.body.id}/deliveries/${firstLog.id}`);
    expect(detail.status).toBe(200);
    expect(detail.body.attemptLog.map((x: any) => x.status)).toEqual([200, ...Array(failedAttempts).fill(503)]);
    const endpoint = (await t.api('GET', `/v1/webhooks/${made.body.id}`)).body;
    expect([endpoint.failures, endpoint.failingSince, endpoint.enabled]).toEqual([0, null, true]);
  });

  it('an endpoint failing for longer than the bound is disabled, announced as an event; re-enabled, it gets everything it missed in order', async () => {
    const t = await setUp(a);
    let up = false;
    const down = await newReceiver(() => (up ? 200 : 500));
    const watcher = await newReceiver();
    const made = await t.api('POST', '/v1/webhooks', { url: down.url });
    const watch = await t.api('POST', '/v1/webhooks', { url: watcher.url, eventTypes: ['webhook.disabled'] });
    expect(watch.status).toBe(201);
    await t.hold(8);
    await waitFor(async () => !(await t.api('GET', `/v1/webhooks/${made.body.id}`)).body.enabled, DISABLE_AFTER_MS + 10_000, 'the endpoint disabled');
    const disabled = (await t.api('GET', `/v1/webhooks/${made.body.id}`)).body;
    expect(disabled.disabledReason).toContain('500');
    expect(disabled.failingSince).not.toBeNull();
    // The event, in the feed and to the other endpoint.
    await waitFor(() => watcher.got.length === 1, 5_000, 'webhook.disabled delivered');
    expect(watcher.got[0]!.json.type).toBe('webhook.disabled');
    expect(watcher.got[0]!.json.data.data.webhook.id).toBe(made.body.id);

    // While disabled: nothing is sent to it, events pile up for it.
    const attemptsWhenDisabled = down.got.length;
    await t.hold(9);
    await t.hold(10);
    // The first hold's event (never delivered), the endpoint's own webhook.disabled and the two new holds.
    await waitFor(async () => (await t.api('GET', `/v1/webhooks/${made.body.id}`)).body.pending === 4, 5_000, 'four pending');
    expect(down.got.length).toBe(attemptsWhenDisabled);

    up = true;
    const enabled = await t.api('PATCH', `/v1/webhooks/${made.body.id}`, { enabled: true });
    expect(enabled.status).toBe(200);
    expect([enabled.body.enabled, enabled.body.failures, enabled.body.disabledReason]).toEqual([true, 0, null]);
    await waitFor(async () => (await t.api('GET', `/v1/webhooks/${made.body.id}`)).body.pending === 0, 10_000, 'the backlog delivered');
    const after = down.got.slice(attemptsWhenDisabled);
    expect(after.map((r) => r.json.type)).toEqual(['hold.created', 'webhook.disabled', 'hold.created', 'hold.created']);
    const seqs = after.map((r) => r.json.data.seq);
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
  });

  it('a receiver that never answers slows no other endpoint', async () => {
    const t = await setUp(b);
    const silent = await newReceiver(() => 'hang');
    const good = await newReceiver();
    const s = await t.api('POST', '/v1/webhooks', { url: silent.url });
    const g = await t.api('POST', '/v1/webhooks', { url: good.url });
    expect([s.status, g.status]).toEqual([201, 201]);
    for (let h = 8; h < 16; h++) await t.hold(h);
    await waitFor(() => good.got.length === 8, 10_000, 'all eight at the good receiver');
    // Meanwhile the silent one has its first request still open (or timed out and retried): none answered.
    expect(silent.got.length).toBeGreaterThanOrEqual(1);
    expect(new Set(silent.got.map((r) => r.headers['webhook-id'])).size).toBe(1);
    const stuck = (await t.api('GET', `/v1/webhooks/${s.body.id}`)).body;
    expect(stuck.pending).toBe(8);
  });

  it('redelivers on request with the same webhook-id; a rotated secret signs beside the old one during the overlap', async () => {
    const t = await setUp(a);
    const r = await newReceiver();
    const made = await t.api('POST', '/v1/webhooks', { url: r.url }, { 'Idempotency-Key': 'webhook-create-1' });
    expect(made.status).toBe(201);
    // An idempotent replay makes no second endpoint and does not show the secret again.
    const replay = await t.api('POST', '/v1/webhooks', { url: r.url }, { 'Idempotency-Key': 'webhook-create-1' });
    expect([replay.status, replay.headers.get('idempotent-replayed'), replay.body.id, replay.body.secret]).toEqual([201, 'true', made.body.id, null]);
    expect((await t.api('GET', '/v1/webhooks')).body.items).toHaveLength(1);

    await t.hold(8);
    await waitFor(() => r.got.length === 1, 10_000, 'first delivery');
    const [first] = (await t.api('GET', `/v1/webhooks/${made.body.id}/deliveries`)).body.items;
    const again = await t.api('POST', `/v1/webhooks/${made.body.id}/deliveries/${first.id}/redeliver`);
    expect(again.status).toBe(202);
    expect(again.body.redeliveryOf).toBe(first.id);
    await waitFor(() => r.got.length === 2, 10_000, 'the redelivery');
    expect(r.got[1]!.headers['webhook-id']).toBe(r.got[0]!.headers['webhook-id']);
    expect(r.got[1]!.body).not.toBe('');

    const rotated = await t.api('POST', `/v1/webhooks/${made.body.id}/rotate-secret`, { overlapSeconds: 600 });
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(made.body.secret);
    await t.hold(9);
    await waitFor(() => r.got.length === 3, 10_000, 'a delivery after the rotation');
    const signed = r.got[2]!;
    expect(String(signed.headers['webhook-signature']).split(' ')).toHaveLength(2);
    expect(() => verify(rotated.body.secret, signed)).not.toThrow();
    expect(() => verify(made.body.secret, signed)).not.toThrow();
    // Without an overlap the old secret stops at once.
    const cut = await t.api('POST', `/v1/webhooks/${made.body.id}/rotate-secret`, { overlapSeconds: 0 });
    await t.hold(10);
    await waitFor(() => r.got.length === 4, 10_000, 'a delivery after the second rotation');
    expect(() => verify(cut.body.secret, r.got[3]!)).not.toThrow();
    expect(() => verify(rotated.body.secret, r.got[3]!)).toThrow();

    // Deleted: nothing more.
    expect((await t.api('DELETE', `/v1/webhooks/${made.body.id}`)).status).toBe(204);
    expect((await t.api('GET', `/v1/webhooks/${made.body.id}`)).status).toBe(404);
  });

  it('refuses bad input with 4xx problems and changes nothing; other tenants and user tokens see nothing', async () => {
    const t = await setUp(a);
    const other = await newTenant(a, 'other');
    const made = await t.api('POST', '/v1/webhooks', { url: 'http://127.0.0.1:9/x' });
    expect(made.status).toBe(201);
    const bad: [unknown, number, string][] = [
      [{ url: 'ftp://example.com/x' }, 422, 'webhook-url-refused'],
      [{ url: 'http://user:pw@example.com/x' }, 422, 'webhook-url-refused'],
      [{ url: 'not a url' }, 422, 'webhook-url-refused'],
      [{ url: `http://example.com/${'x'.repeat(2100)}` }, 400, 'validation-failed'],
      [{ url: 'http://127.0.0.1/x', eventTypes: ['hold.exploded'] }, 400, 'validation-failed'],
      [{ url: 'http://127.0.0.1/x', extra: true }, 400, 'validation-failed'],
      [{}, 400, 'validation-failed'],
    ];
    for (const [body, status, code] of bad) {
      const r = await t.api('POST', '/v1/webhooks', body);
      expect([r.status, r.body.code], JSON.stringify(body)).toEqual([status, code]);
    }
    expect((await t.api('GET', '/v1/webhooks')).body.items).toHaveLength(1);
    expect((await t.api('PATCH', `/v1/webhooks/${made.body.id}`, { url: 'gopher://x' })).body.code).toBe('webhook-url-refused');
    expect((await t.api('GET', `/v1/webhooks/${made.body.id}`)).body.url).toBe('http://127.0.0.1:9/x');
    expect((await t.api('GET', `/v1/webhooks/${made.body.id}/deliveries?cursor=abc`)).status).toBe(400);
    // Past the bounds: 51 event types, an overlap outside 0..7 days, a page over 200, the 21st endpoint of a tenant.
    const many = await t.api('POST', '/v1/webhooks', { url: 'http://127.0.0.1/x', eventTypes: Array(51).fill('hold.created') });
    expect([many.status, many.body.errors?.[0]?.path]).toEqual([400, 'body.eventTypes']);
    for (const overlapSeconds of [-1, 604_801]) {
      expect((await t.api('POST', `/v1/webhooks/${made.body.id}/rotate-secret`, { overlapSeconds })).body.code, String(overlapSeconds)).toBe('validation-failed');
    }
    expect((await t.api('GET', `/v1/webhooks/${made.body.id}/deliveries?limit=201`)).status).toBe(400);
    for (let i = 1; i < 20; i++) expect((await t.api('POST', '/v1/webhooks', { url: `http://127.0.0.1:9/${i}` })).status).toBe(201);
    const over = await t.api('POST', '/v1/webhooks', { url: 'http://127.0.0.1:9/21' });
    expect([over.status, over.body.code, over.body.limit, over.body.max]).toEqual([422, 'limit-exceeded', 'webhooks.tenant', 20]);
    // Creates racing for the last places: the limit holds (concurrent creates of a tenant are counted one after another).
    const racing = await newTenant(a, 'webhooks-race');
    const answers = await Promise.all(Array.from({ length: 30 }, (_, i) => racing.api('POST', '/v1/webhooks', { url: `http://127.0.0.1:9/r${i}` })));
    expect(answers.filter((r) => r.status === 201)).toHaveLength(20);
    expect(answers.filter((r) => r.status === 422 && r.body.code === 'limit-exceeded')).toHaveLength(10);
    expect((await racing.api('GET', '/v1/webhooks?limit=200')).body.items).toHaveLength(20);
    expect((await t.api('GET', '/v1/webhooks?limit=200')).body.items).toHaveLength(20);
    expect((await t.api('GET', `/v1/webhooks/${made.body.id}`)).body.previousSecret).toBeUndefined();

    // Another tenant: not found; a user token: forbidden.
    for (const [method, path] of [['GET', ''], ['PATCH', ''], ['DELETE', ''], ['GET', '/deliveries'], ['POST', '/rotate-secret']] as const) {
      const r = await other.api(method, `/v1/webhooks/${made.body.id}${path}`, method === 'PATCH' ? { description: 'x' } : undefined);
      expect(r.status, `${method} ${path}`).toBe(404);
    }
    const user = await t.userToken('u-1');
    expect((await user('GET', '/v1/webhooks')).status).toBe(403);
    expect((await user('POST', '/v1/webhooks', { url: 'http://127.0.0.1/x' })).status).toBe(403);
    // The owner's own read works (the refusals above are not a missing route).
    expect((await t.api('GET', `/v1/webhooks/${made.body.id}`)).status).toBe(200);
  });

  it('by default refuses endpoints on private and loopback addresses (422 webhook-url-refused) and stores nothing', async () => {
    const strict = await startCluster(1);
    try {
      const t = await newTenant(strict.nodes[0]!, 'strict');
      for (const url of ['http://127.0.0.1:8080/hook', 'http://localhost/hook', 'http://[::1]/hook', 'http://169.254.169.254/latest', 'http://10.0.0.5/hook']) {
        const r = await t.api('POST', '/v1/webhooks', { url });
        expect([r.status, r.body.code], url).toEqual([422, 'webhook-url-refused']);
      }
      expect((await t.api('GET', '/v1/webhooks')).body.items).toEqual([]);
      // A public address is taken (the owner's request works: the refusals above are the address check).
      expect((await t.api('POST', '/v1/webhooks', { url: 'https://93.184.215.14/hook' })).status).toBe(201);
    } finally {
      await strict.stop();
    }
  });

  it('shows the job queue and the webhooks in /metrics', async () => {
    const res = await fetch(`${a.url}/metrics`);
    const text = await res.text();
    expect(text).toMatch(/slotwise_jobs\{queue="webhook-deliver",state="completed"\} \d+/);
    expect(text).toMatch(/slotwise_webhooks\{what="pending"\} \d+/);
    expect(text).toMatch(/slotwise_webhooks\{what="endpoints_disabled"\} \d+/);
  });
});
