/**
 * `npm run bench`: measures the targets P1–P6 of PRODUCT.md §7 in one run on
 * this machine, prints one table (each figure beside its limit or peer
 * measured in the same run), and writes it with machine, date and commit into
 * docs/benchmarks.md. Bounded (every wait has a deadline, the whole run has
 * one) and self-cleaning (children stopped, database dropped) even on failure.
 *
 * BENCH_ONLY=P1,P3 runs a subset (the table then says so; docs are not written).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ADMIN_TOKEN, api, createDatabase, must, startNode, startRedis, type BenchDb } from './lib/cluster';
import type { Ctx, Row } from './lib/context';
import { stopAll } from './lib/proc';
import { printTable, writeDocs } from './lib/report';
import { runHolds, seedHolds } from './holds';
import { runP3, seedAvailability } from './availability';
import { runP5 } from './yjs';
import { runP4, seedLive } from './live';
import { runP6 } from './idle';

const RUN_LIMIT_MS = Number(process.env.BENCH_TIME_LIMIT_MS ?? 14 * 60_000);
const only = process.env.BENCH_ONLY ? new Set(process.env.BENCH_ONLY.split(',').map((s) => s.trim().toUpperCase())) : null;
const wants = (id: string) => !only || only.has(id);

async function main(): Promise<void> {
  const started = Date.now();
  const log = (msg: string) => process.stderr.write(`[bench ${((Date.now() - started) / 1000).toFixed(0).padStart(3)}s] ${msg}\n`);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'slotwise-bench-'));
  let db: BenchDb | null = null;
  let pool: pg.Pool | null = null;
  let cleaning = false;
  const cleanup = async () => {
    if (cleaning) return;
    cleaning = true;
    await stopAll().catch(() => {});
    await pool?.end().catch(() => {});
    if (process.env.BENCH_KEEP_DB) log(`kept database ${db?.name} (BENCH_KEEP_DB)`);
    else await db?.drop().catch((err) => log(`could not drop ${db?.name}: ${err.message}`));
    rmSync(tmp, { recursive: true, force: true });
  };
  const abort = async (why: string) => {
    log(why);
    await cleanup();
    process.exit(1);
  };
  process.on('SIGINT', () => void abort('interrupted: cleaning up'));
  process.on('SIGTERM', () => void abort('terminated: cleaning up'));
  const hardStop = setTimeout(() => void abort(`the run passed its ${RUN_LIMIT_MS / 60_000} minute limit: cleaning up`), RUN_LIMIT_MS + 60_000);
  hardStop.unref();

  const rows: Row[] = [];
  const load = { start: await quietMachine(log), end: 0 };
  try {
    log('starting Redis, a fresh database and two Slotwise nodes');
    const redis = await startRedis();
    db = await createDatabase();
    pool = new pg.Pool({ connectionString: db.url, max: 4 });
    const nodeEnv = { DATABASE_URL: db.url, REDIS_URL: redis.url, DB_POOL_SIZE: process.env.BENCH_DB_POOL_SIZE ?? '20' };
    const A = await startNode('node-A', nodeEnv, tmp);
    const B = await startNode('node-B', nodeEnv, tmp);
    const admin = api(A.url, ADMIN_TOKEN);
    const tenant = await must(admin('POST', '/v1/tenants', { name: 'bench' }), 201, 'tenant');
    const key = api(A.url, tenant.apiKey);
    const userId = 'bench-user';
    const token = await must(key('POST', '/v1/tokens', { userId, name: 'Bench user', role: 'organizer', ttlSeconds: 86_400 }), 201, 'user token');
    const now = new Date();
    const ctx: Ctx = {
      tmp, db, pool, redisUrl: redis.url, A, B, tenantId: tenant.id, apiKey: tenant.apiKey, userToken: token.token, userId, key,
      baseMs: Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() + 1),
      rows, log, nodeEnv,
      checkDeadline() {
        if (Date.now() - started > RUN_LIMIT_MS) throw new Error(`the run passed its ${RUN_LIMIT_MS / 60_000} minute limit`);
      },
    };

    log('seeding resources and slots');
    const holdSeeds = wants('P1') || wants('P2') ? await seedHolds(ctx) : null;
    const availabilitySeeds = wants('P3') ? await seedAvailability(ctx) : null;
    const liveSeeds = wants('P4') ? await seedLive(ctx) : null;
    await pool.query('VACUUM ANALYZE');
    log(`seeded in ${((Date.now() - started) / 1000).toFixed(0)} s`);

    if (wants('P1') || wants('P2')) await runHolds(ctx, holdSeeds!, { p1: wants('P1'), p2: wants('P2') });
    if (wants('P3')) await runP3(ctx, availabilitySeeds!);
    if (wants('P4')) await runP4(ctx, liveSeeds!);
    if (wants('P5')) await runP5(ctx);
    if (wants('P6')) await runP6(ctx);

    load.end = os.loadavg()[0]!;
    const table = printTable(rows, { partial: !!only });
    process.stdout.write(table + '\n');
    log(`load average (1 min) at start ${load.start.toFixed(2)}, at end ${load.end.toFixed(2)} on ${os.cpus().length} cores`);
    if (!only) await writeDocs(rows, { seconds: (Date.now() - started) / 1000, load });
  } catch (err) {
    log(`FAILED: ${(err as Error).stack ?? err}`);
    if (rows.length) process.stdout.write(printTable(rows, { partial: true }) + '\n');
    process.exitCode = 1;
  } finally {
    log('cleaning up');
    await cleanup();
    clearTimeout(hardStop);
  }
}

/**
 * Other work on the machine skews every figure (the ratios less, since limit
 * and figure share the run). Waits, up to BENCH_QUIET_WAIT_S (default 120 s),
 * for the 1-minute load average to fall under 1; returns it either way.
 */
async function quietMachine(log: (msg: string) => void): Promise<number> {
  const deadline = Date.now() + Number(process.env.BENCH_QUIET_WAIT_S ?? 60) * 1000;
  let announced = false;
  while (os.loadavg()[0]! >= 1 && Date.now() < deadline) {
    if (!announced) log(`load average ${os.loadavg()[0]!.toFixed(2)}: waiting up to ${process.env.BENCH_QUIET_WAIT_S ?? 60} s for a quieter machine`);
    announced = true;
    await new Promise((r) => setTimeout(r, 5_000));
  }
  return os.loadavg()[0]!;
}

void main();
