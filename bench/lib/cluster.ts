/**
 * The system under test: a private Redis, a fresh Postgres database (dropped
 * at the end), Slotwise nodes as child processes, and a small REST client to
 * seed data.
 */
import { createServer } from 'node:net';
import path from 'node:path';
import pg from 'pg';
import { dropDatabase } from '../../server/db/migrate';
import { start, sleep, type Proc } from './proc';

export const ADMIN_TOKEN = 'bench-admin-token-0123456789abcdef';
export const JWT_SECRET = 'bench-jwt-secret-0123456789-0123456789-0123456789';

/** A free TCP port on loopback. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** A Redis of the bench's own (no other session's pub/sub traffic), or BENCH_REDIS_URL. */
export async function startRedis(): Promise<{ url: string; proc?: Proc }> {
  if (process.env.BENCH_REDIS_URL) return { url: process.env.BENCH_REDIS_URL };
  const port = await freePort();
  const proc = start('redis', 'redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxclients', '20000']);
  const url = `redis://127.0.0.1:${port}`;
  const { Redis } = await import('ioredis');
  const deadline = Date.now() + 10_000;
  for (;;) {
    const r = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
    const ok = await r.connect().then(() => r.ping()).then(() => true, () => false);
    r.disconnect();
    if (ok) return { url, proc };
    if (Date.now() > deadline) throw new Error(`redis-server did not answer on ${port}:\n${proc.tail()}`);
    await sleep(100);
  }
}

export interface BenchDb {
  name: string;
  url: string;
  admin: string;
  drop(): Promise<void>;
}

/** Creates `slotwise_bench_<pid>` on the server of BENCH_PG_URL (default: local postgres, user postgres). */
export async function createDatabase(): Promise<BenchDb> {
  const admin = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
  const name = `slotwise_bench_${process.pid}`;
  const c = new pg.Client({ connectionString: admin });
  await c.connect();
  try {
    await dropDatabase(c, name);
    await c.query(`CREATE DATABASE ${name}`);
  } finally {
    await c.end();
  }
  const url = new URL(admin);
  url.pathname = `/${name}`;
  let dropped = false;
  return {
    name,
    url: url.toString(),
    admin,
    async drop() {
      if (dropped) return;
      dropped = true;
      const d = new pg.Client({ connectionString: admin });
      await d.connect();
      try {
        await dropDatabase(d, name);
      } finally {
        await d.end();
      }
    },
  };
}

export interface Node {
  name: string;
  port: number;
  url: string;
  proc: Proc;
  traceFile: string;
}

/**
 * The protection limits for a load test. One bench user token stands for
 * every client of a load (64 connections holding, 20,000 idle sockets, all
 * from 127.0.0.1), so budgets, caps and quotas are raised far above what the
 * load needs: every request still passes through the rate counters (their
 * cost is in the figures), but none is refused. Hold quotas are off (with
 * them, a user's hold takes the general path and its lock per user), as
 * docs/benchmarks.md says.
 */
export const BENCH_LIMITS: Record<string, string> = {
  RATE_LIMIT_IP: '100000000', RATE_LIMIT_USER: '100000000', RATE_LIMIT_API_KEY: '100000000',
  RATE_LIMIT_AVAILABILITY_IP: '100000000', RATE_LIMIT_AVAILABILITY_USER: '100000000', RATE_LIMIT_AVAILABILITY_API_KEY: '100000000',
  INFLIGHT_PER_SOCKET: '10000', INFLIGHT_PER_USER: '10000', INFLIGHT_PER_TENANT: '10000',
  CONNECTIONS_PER_IP: '1000000', SOCKETS_PER_USER: '1000000', USER_MAX_HOLDS: '0', USER_REHOLD_LIMIT: '0',
  // P2 sends 500 holds at once to a node with 20 connections: they queue for the pool, as the load means them to.
  DB_QUEUE_MAX: '0',
  // autocannon keeps sending on a connection the server closes after its 1,000th answer (Connection: close),
  // and Node answers what arrives after that 503: no cap on requests per connection for the load generators.
  HTTP_KEEPALIVE_MAX_REQUESTS: '0',
  // P5's writer sends up to 24,000 edits a second over one connection.
  YJS_MESSAGES_PER_SECOND: '10000000', YJS_UPDATE_KB_PER_MINUTE: '100000000',
};

/** Starts one Slotwise node (`node --import tsx server/main.ts`) with the SQL trace preloaded. */
export async function startNode(name: string, env: Record<string, string>, tmpDir: string, nofile?: number): Promise<Node> {
  const port = await freePort();
  const traceFile = path.join(tmpDir, `${name}-trace.json`);
  // BENCH_CPU_PROF=<dir>: every node writes a V8 CPU profile there when it stops (see bench/profile.ts).
  const prof = process.env.BENCH_CPU_PROF ? ['--cpu-prof', '--cpu-prof-dir', path.resolve(process.env.BENCH_CPU_PROF)] : [];
  const proc = start(name, process.execPath, [...prof, '--import', 'tsx', '--import', './bench/lib/pg-trace.ts', 'server/main.ts'], {
    nofile,
    env: {
      PORT: String(port),
      NODE_ID: name,
      ADMIN_TOKEN,
      JWT_SECRET,
      LOG_LEVEL: 'warn',
      BENCH_TRACE_FILE: traceFile,
      ...BENCH_LIMITS,
      ...env,
    },
  });
  await waitForBanner(proc, 60_000);
  return { name, port, url: `http://127.0.0.1:${port}`, proc, traceFile };
}

async function waitForBanner(proc: Proc, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!proc.tail().includes('Slotwise is running')) {
    if (proc.child.exitCode !== null) throw new Error(`${proc.name} exited:\n${proc.tail()}`);
    if (Date.now() > deadline) throw new Error(`${proc.name} did not start:\n${proc.tail()}`);
    await sleep(50);
  }
}

/** A JSON REST client. */
export function api(base: string, credential: string) {
  return async function call<T = any>(method: string, p: string, body?: unknown): Promise<{ status: number; body: T }> {
    const res = await fetch(base + p, {
      method,
      headers: { Authorization: `Bearer ${credential}`, ...(body === undefined ? {} : { 'Content-Type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    let parsed: any = text;
    try {
      parsed = text ? JSON.parse(text) : null;
    } catch {
      // not JSON
    }
    return { status: res.status, body: parsed };
  };
}

export type Api = ReturnType<typeof api>;

/** Calls and insists on the status. */
export async function must<T = any>(call: Promise<{ status: number; body: T }>, status: number, what: string): Promise<T> {
  const r = await call;
  if (r.status !== status) throw new Error(`${what}: expected ${status}, got ${r.status} ${JSON.stringify(r.body).slice(0, 400)}`);
  return r.body;
}
