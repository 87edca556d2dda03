/**
 * Test helpers: a real Slotwise node on port 0 against the run's database,
 * an HTTP client, and data factories (`ctx.newTenant()`, `ctx.newResource()`).
 */
import { inject } from 'vitest';
import pg from 'pg';
import { loadConfig } from '../../server/config';
import type { Logger } from '../../server/core/ports';
import { dropDatabase, migrate } from '../../server/db/migrate';
import { createNode, type SlotwiseNode } from '../../server/node';
import type { YjsLimits } from '../../server/realtime/yjs/limits';
import { checkAnswer } from './contract';

export const ADMIN_TOKEN = 'test-admin-token-0123456789';

export interface Reply<T = any> {
  status: number;
  body: T;
  headers: Headers;
  text: string;
}

/** A minimal JSON client for one base URL; every answer is checked against the node's /openapi.json (helpers/contract.ts). */
export function client(base: string, credential?: string) {
  return async function call<T = any>(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Reply<T>> {
    const h: Record<string, string> = { ...headers };
    if (credential) h.Authorization = `Bearer ${credential}`;
    let payload: string | undefined;
    if (body !== undefined) {
      payload = typeof body === 'string' ? body : JSON.stringify(body);
      h['Content-Type'] ??= 'application/json';
    }
    const res = await fetch(base + path, { method, headers: h, body: payload });
    const text = await res.text();
    await checkAnswer(base, { method, path, status: res.status, contentType: res.headers.get('content-type'), text });
    let parsed: any = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON; leave as text
    }
    return { status: res.status, body: parsed, headers: res.headers, text };
  };
}

export type Call = ReturnType<typeof client>;

export interface TestNode {
  node: SlotwiseNode;
  url: string;
  admin: Call;
  pool: pg.Pool;
  stop(): Promise<void>;
}

/**
 * Limits high enough that functional tests (thousands of requests from one
 * address, one user and one tenant, at once) never meet them, while every
 * request still goes through the counters; the hostile-client suite
 * (test/security/hostile*.test.ts) runs with the production defaults.
 * Hold quotas are off here: with them, a user's holds take the general path.
 */
export const ROOMY_LIMITS: Record<string, string> = {
  RATE_LIMIT_IP: '10000000', RATE_LIMIT_USER: '10000000', RATE_LIMIT_API_KEY: '10000000',
  RATE_LIMIT_AVAILABILITY_IP: '10000000', RATE_LIMIT_AVAILABILITY_USER: '10000000', RATE_LIMIT_AVAILABILITY_API_KEY: '10000000',
  AUTH_FAILURES_PER_IP: '10000000', INFLIGHT_PER_SOCKET: '10000', INFLIGHT_PER_USER: '10000', INFLIGHT_PER_TENANT: '10000',
  CONNECTIONS_PER_IP: '1000000', SOCKETS_PER_USER: '1000000', USER_MAX_HOLDS: '0', USER_REHOLD_LIMIT: '0', DB_QUEUE_MAX: '0',
};

/** Starts a node with test settings (short minimum TTL, fast sweeper, roomy limits) on a free port. */
export async function startNode(
  env: Record<string, string> = {}, opts: { breakPublish?: boolean; fastPaths?: boolean; log?: Logger; yjsLimits?: Partial<YjsLimits>; feedMaxUnsent?: number; feedMaxHeads?: number; feedMaxAhead?: number } = {},
): Promise<TestNode> {
  const databaseUrl = env.DATABASE_URL ?? inject('databaseUrl');
  const config = loadConfig({
    ADMIN_TOKEN,
    JWT_SECRET: 'test-jwt-secret-0123456789-0123456789-abcdef',
    HOLD_MIN_TTL_SECONDS: '1',
    SWEEP_INTERVAL_MS: '100',
    // Test nodes look for new events to dispatch every second (tests of the integrations ask for less).
    INTEGRATION_POLL_MS: '1000',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    DATABASE_URL: databaseUrl,
    ...ROOMY_LIMITS,
    ...env,
  });
  const node = await createNode({ config: { ...config, databaseUrl }, breakPublish: opts.breakPublish, feedMaxUnsent: opts.feedMaxUnsent, feedMaxHeads: opts.feedMaxHeads, feedMaxAhead: opts.feedMaxAhead, fastPaths: opts.fastPaths, log: opts.log, yjsLimits: opts.yjsLimits });
  const port = await node.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${port}`;
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  return {
    node,
    url,
    admin: client(url, ADMIN_TOKEN),
    pool,
    async stop() {
      await node.stop();
      await pool.end();
    },
  };
}

/**
 * A database of its own, migrated, for tests that must not share background
 * workers with other test files (every node sweeps every tenant's holds).
 */
export async function isolatedDatabase(): Promise<{ url: string; drop(): Promise<void> }> {
  const base = new URL(inject('databaseUrl'));
  const name = `${base.pathname.slice(1)}_${Math.random().toString(36).slice(2, 8)}`;
  const adminUrl = new URL(base);
  adminUrl.pathname = '/postgres';
  const admin = new pg.Client({ connectionString: adminUrl.toString() });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  const pool = new pg.Pool({ connectionString: url.toString() });
  await migrate(pool);
  await pool.end();
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: adminUrl.toString() });
      await c.connect();
      // Pools that just ended may still be closing their connections: a forced drop would kill them mid-close
      // with a FATAL that their clients report as an uncaught error. Let them go first (FORCE only for stragglers).
      for (let i = 0; i < 100; i++) {
        const { rows } = await c.query('SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1', [name]);
        if (rows[0].n === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      await dropDatabase(c, name);
      await c.end();
    },
  };
}

/** Starts `n` nodes sharing a database of their own and the run's Redis: a cluster in one process. */
export async function startCluster(n: number, env: Record<string, string> = {}, opts: Parameters<typeof startNode>[1] = {}) {
  const db = await isolatedDatabase();
  const nodes: TestNode[] = [];
  for (let i = 0; i < n; i++) nodes.push(await startNode({ REDIS_URL: inject('redisUrl'), NODE_ID: `node-${i}`, DATABASE_URL: db.url, ...env }, opts));
  return {
    nodes,
    db,
    /** Adds a node to the cluster (e.g. one whose publishing is broken, or with other Yjs limits). */
    async add(opts: { breakPublish?: boolean; yjsLimits?: Partial<YjsLimits> } = {}, extra: Record<string, string> = {}) {
      const node = await startNode({ REDIS_URL: inject('redisUrl'), NODE_ID: `node-${nodes.length}`, DATABASE_URL: db.url, ...env, ...extra }, opts);
      nodes.push(node);
      return node;
    },
    async stop() {
      for (const node of nodes) await node.stop().catch(() => {});
      await db.drop();
    },
  };
}

/** Polls `cond` until it returns a truthy value or `ms` pass. */
export async function waitFor<T>(cond: () => T | Promise<T>, ms = 5_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const DAY = 86_400_000;

/** The next weekday (Mon–Fri) at least `daysAhead` days from now, as YYYY-MM-DD (UTC). */
export function futureWeekday(daysAhead = 7): string {
  let t = Date.now() + daysAhead * DAY;
  while ([0, 6].includes(new Date(t).getUTCDay())) t += DAY;
  return new Date(t).toISOString().slice(0, 10);
}

/** Per-test data factories on one node: each call makes a fresh tenant so tests never share data. */
export async function newTenant(t: TestNode, name = 'Test tenant') {
  const res = await t.admin('POST', '/v1/tenants', { name });
  if (res.status !== 201) throw new Error(`tenant: ${res.status} ${res.text}`);
  const key: string = res.body.apiKey;
  const api = client(t.url, key);
  return {
    id: res.body.id as string,
    key,
    api,
    /** A resource open 00:00–24:00 UTC every day (60-minute slots unless told otherwise). */
    async newResource(overrides: Record<string, unknown> = {}, weekly = [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], start: '00:00', end: '24:00' }]) {
      const r = await api('POST', '/v1/resources', { name: 'Room', capacity: 1, timezone: 'UTC', slotMinutes: 60, ...overrides });
      if (r.status !== 201) throw new Error(`resource: ${r.status} ${r.text}`);
      const s = await api('PUT', `/v1/resources/${r.body.id}/schedule`, { weekly });
      if (s.status !== 200) throw new Error(`schedule: ${s.status} ${s.text}`);
      return r.body as { id: string; capacity: number; version: number };
    },
    /** A user token of this tenant. */
    async userToken(userId: string, role: 'member' | 'organizer' = 'member') {
      const r = await api('POST', '/v1/tokens', { userId, name: userId, role });
      if (r.status !== 201) throw new Error(`token: ${r.status} ${r.text}`);
      return client(t.url, r.body.token);
    },
  };
}

/**
 * Recounts every slot of a tenant from the holds and bookings tables and
 * returns the slots where the counter, the recount and the capacity disagree.
 */
export async function invariantViolations(pool: pg.Pool, tenantId: string) {
  const { rows } = await pool.query(
    `SELECT s.id, s.resource_id, s.start_at, s.capacity, s.seats_taken,
       COALESCE((SELECT sum(h.seats) FROM holds h JOIN hold_resources hr ON hr.hold_id = h.id
                 WHERE hr.resource_id = s.resource_id AND h.status = 'held' AND h.start_at < s.end_at AND h.end_at > s.start_at), 0)
     + COALESCE((SELECT sum(b.seats) FROM bookings b JOIN booking_resources br ON br.booking_id = b.id
                 WHERE br.resource_id = s.resource_id AND b.status = 'confirmed' AND b.start_at < s.end_at AND b.end_at > s.start_at), 0) AS recount
     FROM slots s WHERE s.tenant_id = $1`,
    [tenantId],
  );
  return rows.filter((r) => Number(r.recount) !== r.seats_taken || Number(r.recount) > r.capacity);
}
