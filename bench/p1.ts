/**
 * P1: holds created over HTTP on distinct slots at 64 connections, beside
 * three figures from the same run:
 *
 * - the SQL limit: pgbench running the minimal hold transaction
 *   (bench/sql/hold-minimal.sql) at the same concurrency on the same database;
 * - the design overhead: pgbench running the server's own statements for a
 *   hold (bench/sql/hold-create.sql, checked against a capture first), shown
 *   beside the limit, never as the limit;
 * - the node's CPU time per hold, beside a bare Hono route that runs one pg
 *   query, driven by the same load tool at the same concurrency.
 */
import type { Node } from './lib/cluster';
import { ranBetween, readTrace, type Ctx } from './lib/context';
import { capturedHold, commonVars, type CapturedHold } from './lib/hold-data';
import { compareWithServer, pgbench, type PgbenchResult } from './lib/pgbench';
import { runWorker, startWorker } from './lib/proc';
import { copyTables, dropCopies } from './lib/scratch';
import { ms, num } from './lib/stats';

export const P1_CONNECTIONS = 64;
const FIVE_MIN = 300_000;
const WARMUP_S = 3;
const DURATION_S = 10;
/** The minimal transaction's tables: scratch copies of these, named bench_min_<table>. */
const SCRATCH = ['slots', 'holds', 'hold_resources', 'events'];
const PREFIX = 'bench_min_';
/** Fresh slots for the minimal transaction: more than pgbench can take in 10 s here (one per transaction). */
const POOL_SLOTS = 200_000;

export interface P1Seeds {
  /** Resources the server's load holds on. */
  serverIds: string[];
  /** Resources whose slots pgbench uses (the design-overhead script; the minimal transaction's pool). */
  pgbenchIds: string[];
}

/** The node's group-commit counters (`slotwise_write_batch` in /metrics). */
async function holdBatches(url: string): Promise<Record<'batches' | 'items' | 'largest' | 'wait_ms' | 'run_ms', number>> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const read = (what: string) => Number(new RegExp(`^slotwise_write_batch\\{what="${what}"\\} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
  return { batches: read('batches'), items: read('items'), largest: read('largest'), wait_ms: read('wait_ms'), run_ms: read('run_ms') };
}

/** The load the server and the bare route both get: autocannon, 64 connections, POST bodies on distinct slots. */
function holdLoad(ctx: Ctx, seeds: P1Seeds, url: string, path: string, cpuPid: number) {
  return {
    url, connections: P1_CONNECTIONS, warmupS: WARMUP_S, durationS: DURATION_S, kind: 'holds', path, cpuPid,
    headers: { authorization: `Bearer ${ctx.userToken}` }, resourceIds: seeds.serverIds, baseMs: ctx.baseMs, slotMs: FIVE_MIN, slotOffset: 0,
  };
}

export interface P1Server {
  result: any;
  passPpm: number;
  /** The server's statements for one hold, or why they could not be captured. */
  captured: CapturedHold | Error;
}

/** The server's part: holds over HTTP against `node` (its pool as large as the load), and its CPU time meanwhile. */
export async function p1Server(ctx: Ctx, node: Node, seeds: P1Seeds): Promise<P1Server> {
  ctx.log(`P1: holds on distinct slots over HTTP (autocannon, ${P1_CONNECTIONS} connections)`);
  const before = await readTrace(node);
  const batchBefore = await holdBatches(node.url);
  const server = await runWorker<any>('p1-load', 'http-load.ts', holdLoad(ctx, seeds, node.url, '/v1/holds', node.proc.pid), 60_000);
  const batchAfter = await holdBatches(node.url);
  const after = await readTrace(node);
  const passes = ranBetween(before, after, 'UPDATE feed_cursor SET lsn');
  const passPpm = Math.round((1e6 * passes) / Math.max(1, server.used));
  ctx.log(`  server: ${num(server.okPerSecond)} holds/s, p99 ${ms(server.latency.p99)}, statuses ${JSON.stringify(server.statuses)}; feed decoder batches per hold ${(passPpm / 1e6).toFixed(3)}`);
  const statements = batchAfter.batches - batchBefore.batches;
  const batched = batchAfter.items - batchBefore.items;
  ctx.log(`  group commit: ${num(batched)} holds in ${num(statements)} statements (${(batched / Math.max(1, statements)).toFixed(1)} per statement; largest ${batchAfter.largest}); ` +
    `a hold waited ${ms((batchAfter.wait_ms - batchBefore.wait_ms) / Math.max(1, batched))} for its batch, a batch took ${ms((batchAfter.run_ms - batchBefore.run_ms) / Math.max(1, statements))}`);
  ctx.log(`  node CPU: ${ms(server.cpuMs / Math.max(1, server.ok))} per hold (${num((100 * server.cpuMs) / (server.seconds * 1000))}% of a core)`);
  return { result: server, passPpm, captured: await capturedHold(node).catch((err: Error) => err) };
}

/** Everything P1 compares the server with (run once no Slotwise node is under load), and P1's rows. */
export async function p1Limits(ctx: Ctx, seeds: P1Seeds, server: P1Server): Promise<void> {
  const bare = await p1Bare(ctx, seeds);
  ctx.checkDeadline();
  const limit = await p1Minimal(ctx, seeds);
  ctx.checkDeadline();
  const design = await p1Design(ctx, seeds, server);

  const s = server.result;
  const ratio = s.okPerSecond / limit.tps;
  const ok = s.statuses['201'] === s.requests;
  const designText = design instanceof Error ? 'n/a (see the log)' : `${num(design.tps)} tps`;
  ctx.rows.push({
    id: 'P1', what: 'holds/s, distinct slots, 64 connections', figure: `${num(s.okPerSecond)}/s`,
    peer: `minimal hold transaction ${num(limit.tps)} tps; design overhead (server's statements) ${designText}`,
    ratio: `${ratio.toFixed(2)}×`, target: '≥ 0.5× SQL limit', met: ratio >= 0.5 && ok,
    note: ok ? undefined : `non-201 answers: ${JSON.stringify(s.statuses)}`,
  });
  ctx.rows.push({
    id: 'P1', what: 'hold latency at 64 connections (p50 / p99)', figure: `${ms(s.latency.p50)} / ${ms(s.latency.p99)}`, peer: `minimal hold transaction avg ${ms(limit.latencyAvgMs)}`,
    ratio: '', target: 'p99 ≤ 40 ms', met: s.latency.p99 <= 40,
  });
  const perHold = s.cpuMs / Math.max(1, s.ok);
  const perBare = bare.cpuMs / Math.max(1, bare.ok);
  const cpuRatio = perHold / perBare;
  const bareOk = bare.statuses['201'] === bare.requests;
  ctx.rows.push({
    id: 'P1', what: 'node CPU per hold during the P1 load', figure: ms(perHold),
    peer: `bare Hono route + 1 pg query ${ms(perBare)} per request (${num(bare.okPerSecond)}/s)`,
    ratio: `${cpuRatio.toFixed(2)}×`, target: '≤ 4× bare Hono + 1 pg query', met: cpuRatio <= 4 && bareOk,
    note: bareOk ? undefined : `the bare route answered ${JSON.stringify(bare.statuses)}`,
  });
}

/** The bare route (bench/workers/bare-hono.ts, POST /bare-pg) under the P1 load: its CPU time per request. */
async function p1Bare(ctx: Ctx, seeds: P1Seeds): Promise<any> {
  ctx.log(`P1: bare Hono route + one pg query (SELECT 1) under the same load (autocannon, ${P1_CONNECTIONS} connections)`);
  const bare = startWorker('bare-hono-pg', 'bare-hono.ts', { pgUrl: ctx.db.url, poolSize: P1_CONNECTIONS });
  try {
    const { port } = await bare.line<{ port: number }>('READY', 20_000);
    const r = await runWorker<any>('p1-bare-load', 'http-load.ts', holdLoad(ctx, seeds, `http://127.0.0.1:${port}`, '/bare-pg', bare.pid), 60_000);
    ctx.log(`  bare: ${num(r.okPerSecond)}/s, ${ms(r.cpuMs / Math.max(1, r.ok))} CPU per request (${num((100 * r.cpuMs) / (r.seconds * 1000))}% of a core), statuses ${JSON.stringify(r.statuses)}`);
    return r;
  } finally {
    await bare.stop();
  }
}

/**
 * The SQL limit: pgbench running bench/sql/hold-minimal.sql on scratch copies
 * of the tables (the running nodes never see their events), each transaction
 * on a distinct fresh slot of a pool of POOL_SLOTS made for it.
 */
async function p1Minimal(ctx: Ctx, seeds: P1Seeds): Promise<PgbenchResult> {
  ctx.log(`P1: the minimal hold transaction (pgbench -c ${P1_CONNECTIONS}, scratch tables ${PREFIX}*, ${num(POOL_SLOTS)} fresh slots)`);
  await copyTables(ctx.pool, SCRATCH, PREFIX);
  try {
    await ctx.pool.query(
      `INSERT INTO ${PREFIX}slots (tenant_id, resource_id, start_at, end_at, capacity)
       SELECT $1, ($2::uuid[])[1 + n % cardinality($2::uuid[])],
         $3::timestamptz + (n / cardinality($2::uuid[])) * interval '5 minutes',
         $3::timestamptz + (n / cardinality($2::uuid[]) + 1) * interval '5 minutes', 1
       FROM generate_series(0, $4::int - 1) AS n`,
      [ctx.tenantId, seeds.pgbenchIds, new Date(ctx.baseMs), POOL_SLOTS],
    );
    const { rows } = await ctx.pool.query(`SELECT min(id)::text AS first, max(id)::text AS last, count(*)::int AS n FROM ${PREFIX}slots`);
    const { first, last, n } = rows[0] as { first: string; last: string; n: number };
    // The script addresses slots as first + permute(i, pool): their ids must be one run.
    if (Number(last) - Number(first) + 1 !== n) throw new Error(`${PREFIX}slots ids are not contiguous (${first}…${last} for ${n} rows)`);
    await ctx.pool.query(`VACUUM ANALYZE ${SCRATCH.map((t) => PREFIX + t).join(', ')}`);
    const limit = await pgbench(ctx.db.url, 'hold-minimal.sql', ['-c', String(P1_CONNECTIONS), '-j', '2', '-T', String(DURATION_S)],
      { k: 0, clients: P1_CONNECTIONS, first, pool: n, ...commonVars(ctx, seeds.pgbenchIds[0]!, 0) }, 40_000);
    if (limit.aborted || limit.failed) throw new Error(`pgbench hold-minimal aborted (was the pool of slots too small?):\n${limit.output}`);
    ctx.log(`  minimal hold transaction: ${num(limit.tps)} tps, latency avg ${ms(limit.latencyAvgMs)}`);
    return limit;
  } finally {
    if (!process.env.BENCH_KEEP_DB) await dropCopies(ctx.pool, SCRATCH, PREFIX);
  }
}

/**
 * The design overhead: pgbench running the server's own statements for a hold
 * (bench/sql/hold-create.sql), once the script is checked against the capture.
 * Not the limit, so a script that no longer matches the server (or fails)
 * leaves this figure out instead of failing P1; the log says why.
 */
async function p1Design(ctx: Ctx, seeds: P1Seeds, { captured: cap, passPpm }: P1Server): Promise<PgbenchResult | Error> {
  ctx.log(`P1: design overhead, the server's own statements (pgbench -c ${P1_CONNECTIONS}, bench/sql/hold-create.sql)`);
  try {
    if (cap instanceof Error) throw cap;
    const problems = compareWithServer('hold-create.sql', [cap.tx], cap.outside);
    if (problems.length) throw new Error(`bench/sql/hold-create.sql no longer matches the server:\n${problems.join('\n')}`);
    // pgbench's inputs: every slot of its resources, interleaved so neighbours in n are on different resources.
    await ctx.pool.query('DROP TABLE IF EXISTS bench_input');
    await ctx.pool.query(
      `CREATE TABLE bench_input AS
       SELECT (row_number() OVER (ORDER BY start_at, resource_id))::int AS n, '{' || resource_id || '}' AS rids,
         '{"' || start_at || '"}' AS froms, '{"' || end_at || '"}' AS tos, start_at::text AS start_at, end_at::text AS end_at, '{' || id || '}' AS slot_ids,
         '{' || (SELECT r.version FROM resources r WHERE r.id = resource_id) || '}' AS versions
       FROM slots WHERE resource_id = ANY($1::uuid[]) AND start_at >= $2`,
      [seeds.pgbenchIds, new Date(ctx.baseMs)],
    );
    await ctx.pool.query('ALTER TABLE bench_input ADD PRIMARY KEY (n)');
    await ctx.pool.query('VACUUM ANALYZE bench_input');
    const sql = await pgbench(ctx.db.url, 'hold-create.sql', ['-c', String(P1_CONNECTIONS), '-j', '2', '-T', String(DURATION_S)],
      { k: 0, clients: P1_CONNECTIONS, ...commonVars(ctx, seeds.pgbenchIds[0]!, passPpm) }, 40_000);
    if (sql.aborted || sql.failed) throw new Error(`pgbench hold-create aborted:\n${sql.output}`);
    ctx.log(`  design overhead: ${num(sql.tps)} tps, latency avg ${ms(sql.latencyAvgMs)}`);
    return sql;
  } catch (err) {
    ctx.log(`  design overhead left out: ${(err as Error).message}`);
    return err as Error;
  }
}
