/**
 * The bounds the hostile-client suite does not reach, each gone past once:
 * the address budget of unauthenticated requests, a statement past
 * DB_STATEMENT_TIMEOUT_MS (nothing written), a read past REQUEST_DEADLINE_MS,
 * the live API keys of a tenant and the resources one socket may watch. Each
 * answers a 4xx or 503 problem naming its limit, never a stall or a 500.
 */
import pg from 'pg';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { futureWeekday, newTenant, startNode, type TestNode } from '../helpers/node';
import { liveClient, rawRequest } from '../helpers/process';

const nodes: TestNode[] = [];
const sockets: { socket: { disconnect(): void } }[] = [];
afterAll(async () => {
  for (const s of sockets) s.socket.disconnect();
  for (const n of nodes) await n.stop();
});

async function node(env: Record<string, string> = {}) {
  const t = await startNode(env);
  nodes.push(t);
  return t;
}

describe('bounds past which the answer is a problem naming the limit', () => {
  it('the address budget holds for requests without a credential too', async () => {
    // RATE_LIMIT_IP 60 a minute: 10 per 10-second window, from 127.0.0.5 alone.
    const t = await node({ RATE_LIMIT_IP: '60' });
    const tries = await Promise.all(Array.from({ length: 15 }, () => rawRequest(t.url, 'GET', '/v1/resources', { localAddress: '127.0.0.5' })));
    const statuses = tries.map((o) => (o.kind === 'response' ? o.status : o.code));
    expect(statuses.filter((s) => s === 401)).toHaveLength(10);
    const refused = tries.filter((o) => o.kind === 'response' && o.status === 429);
    expect(refused).toHaveLength(5);
    for (const o of refused) {
      if (o.kind !== 'response') continue;
      expect(o.body).toMatchObject({ code: 'rate-limited', limit: 'rate.api.ip', max: 10 });
      expect(Number(o.headers['retry-after'])).toBeGreaterThan(0);
    }
  });

  it('a statement past DB_STATEMENT_TIMEOUT_MS is cancelled: 503 deadline-exceeded, nothing written', async () => {
    const t = await node({ DB_STATEMENT_TIMEOUT_MS: '300' });
    const tenant = await newTenant(t);
    const room = await tenant.newResource();
    const day = futureWeekday(4);
    // Another session holds the slot's row lock: the hold waits for it past its statement deadline.
    const blocker = new pg.Client({ connectionString: inject('databaseUrl') });
    await blocker.connect();
    try {
      await blocker.query('BEGIN');
      await blocker.query('SELECT id FROM slots WHERE resource_id = $1 FOR UPDATE', [room.id]);
      const t0 = Date.now();
      const r = await tenant.api('POST', '/v1/holds', { resourceIds: [room.id], start: `${day}T10:00:00Z`, end: `${day}T11:00:00Z` });
      expect(Date.now() - t0).toBeLessThan(3_000);
      expect(r.status, r.text).toBe(503);
      expect(r.body).toMatchObject({ code: 'deadline-exceeded', limit: 'db.statement_timeout' });
      expect(r.headers.get('Retry-After')).toBe('1');
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
    const held = await t.pool.query(`SELECT count(*)::int AS n FROM holds h JOIN hold_resources hr ON hr.hold_id = h.id WHERE hr.resource_id = $1`, [room.id]);
    expect(held.rows[0].n).toBe(0);
  });

  it('a read past REQUEST_DEADLINE_MS is answered 503 deadline-exceeded at the deadline', async () => {
    const t = await node({ REQUEST_DEADLINE_MS: '300' });
    const tenant = await newTenant(t);
    const blocker = new pg.Client({ connectionString: inject('databaseUrl') });
    await blocker.connect();
    try {
      // Nobody may read resources while this lock is held: the read waits, the deadline answers.
      await blocker.query('BEGIN');
      await blocker.query('LOCK TABLE resources IN ACCESS EXCLUSIVE MODE');
      const t0 = Date.now();
      const r = await tenant.api('GET', '/v1/resources');
      expect(Date.now() - t0).toBeLessThan(2_000);
      expect(r.status, r.text).toBe(503);
      expect(r.body).toMatchObject({ code: 'deadline-exceeded', limit: 'request.deadline', max: 300 });
    } finally {
      await blocker.query('ROLLBACK');
      await blocker.end();
    }
  });

  it('a tenant keeps at most 100 live API keys', async () => {
    const t = await node();
    const tenant = await newTenant(t);
    for (let i = 0; i < 99; i++) expect((await tenant.api('POST', '/v1/api-keys', { name: `k${i}` })).status).toBe(201);
    const r = await tenant.api('POST', '/v1/api-keys', { name: 'one too many' });
    expect(r.status).toBe(422);
    expect(r.body).toMatchObject({ code: 'limit-exceeded', limit: 'api-keys.tenant', max: 100 });
  });

  it('one socket watches at most 100 resources, over all its subscriptions', async () => {
    const t = await node();
    const tenant = await newTenant(t);
    const ids: string[] = [];
    for (let i = 0; i < 101; i++) {
      const r = await tenant.api('POST', '/v1/resources', { name: `r${i}` });
      ids.push(r.body.id);
    }
    const live = await liveClient(t.url, tenant.key);
    sockets.push(live);
    const day = futureWeekday(4);
    const range = { from: `${day}T00:00:00Z`, to: `${day}T12:00:00Z` };
    expect((await live.call('subscribe', { resourceIds: ids.slice(0, 60), ...range })).ok).toBe(true);
    const over = await live.call('subscribe', { resourceIds: ids.slice(60), ...range });
    expect(over.ok).toBe(false);
    expect(over.error).toMatchObject({ status: 422, code: 'limit-exceeded', limit: 'subscriptions.socket', max: 100 });
    expect((await live.call('subscribe', { resourceIds: ids.slice(60, 100), ...range })).ok).toBe(true);
  });
});
