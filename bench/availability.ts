/**
 * P3: availability for 1 resource × 30 days and 100 resources × 1 day —
 * latency of answers computed from Postgres, and the rate of cached answers
 * beside a bare Hono route sending the same bytes, in the same run.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { must } from './lib/cluster';
import type { Ctx } from './lib/context';
import { runWorker, startWorker } from './lib/proc';
import { ms, num } from './lib/stats';

const DAY = 86_400_000;
const OPEN = [{ days: ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'], start: '08:00', end: '20:00' }];
const CONNECTIONS = 32;

export interface AvailabilitySeeds {
  month: string;
  hundred: string[];
}

/** One resource for the 30-day query and 100 for the 1-day one: hourly slots, 08:00–20:00 UTC. */
export async function seedAvailability(ctx: Ctx): Promise<AvailabilitySeeds> {
  const make = async (name: string, capacity: number) => {
    const r = await must(ctx.key('POST', '/v1/resources', { name, capacity, timezone: 'UTC', slotMinutes: 60 }), 201, 'resource');
    await must(ctx.key('PUT', `/v1/resources/${r.id}/schedule`, { weekly: OPEN }), 200, 'schedule');
    return r.id as string;
  };
  const month = await make('p3-month', 4);
  const hundred: string[] = [];
  for (let i = 0; i < 100; i += 10) hundred.push(...(await Promise.all(Array.from({ length: 10 }, (_, j) => make(`p3-day-${i + j}`, 2)))));
  return { month, hundred };
}

const url = (ids: string[], from: number, to: number) =>
  `/v1/availability?resourceIds=${ids.join(',')}&from=${new Date(from).toISOString()}&to=${new Date(to).toISOString()}`;

export async function runP3(ctx: Ctx, seeds: AvailabilitySeeds): Promise<void> {
  ctx.log('P3: availability (an open loop of distinct queries for latency; autocannon on one repeated query for the cached rate)');
  const from = ctx.baseMs + 2 * DAY;
  const monthUrl = url([seeds.month], from, from + 30 * DAY);
  const dayUrl = url(seeds.hundred, from, from + DAY);
  const auth = { authorization: `Bearer ${ctx.userToken}` };
  // Distinct queries (each `from` a minute later) so every answer is computed from Postgres.
  const distinct = (ids: string[], span: number) => Array.from({ length: 20_000 }, (_, i) => url(ids, from + i * 60_000, from + i * 60_000 + span));

  const sample = await fetch(ctx.A.url + monthUrl, { headers: auth });
  const body = await sample.text();
  if (sample.status !== 200) throw new Error(`availability: ${sample.status} ${body.slice(0, 300)}`);
  const slotsShown = (JSON.parse(body).resources[0].slots as unknown[]).length;

  // An open loop: request i is sent at t0 + i / rate whatever came before (autocannon's overallRate sends each
  // connection's quota for a second in one burst at the start of the second, so its latencies were mostly the
  // wait behind that burst). Latency counts from each request's scheduled time.
  const latency = async (name: string, paths: string[], rate: number) =>
    runWorker<any>(name, 'open-loop.ts', {
      url: ctx.A.url, path: paths[0], paths, rate, warmupS: 1, durationS: 6, drainS: 10, headers: auth,
      resourceIds: [], baseMs: 0, slotMs: 0, slotOffset: 0, keyPrefix: '',
    }, 40_000);
  const month = await latency('p3-month', distinct([seeds.month], 30 * DAY), 200);
  // Every timed answer must be a 200: a quick refusal (429) would flatter the latency.
  const others = (r: { statuses: Record<string, number> }) => Object.entries(r.statuses).filter(([s]) => s !== '200').map(([s, n]) => `${n} × ${s}`).join(', ');
  ctx.log(`  1 × 30 days (${slotsShown} slots, ${num(body.length / 1024)} KB), uncached at 200/s: p50 ${ms(month.latency.p50)}, p99 ${ms(month.latency.p99)}${others(month) ? `; not 200: ${others(month)}` : ''}`);
  const hundred = await latency('p3-hundred', distinct(seeds.hundred, DAY), 100);
  ctx.log(`  100 × 1 day, uncached at 100/s: p50 ${ms(hundred.latency.p50)}, p99 ${ms(hundred.latency.p99)}${others(hundred) ? `; not 200: ${others(hundred)}` : ''}`);

  // The peer: a bare Hono route sending the very bytes of the 30-day answer.
  const bodyFile = path.join(ctx.tmp, 'availability.json');
  writeFileSync(bodyFile, body);
  const bare = startWorker('bare-hono', 'bare-hono.ts', { bodyFile });
  try {
    const { port } = await bare.line<{ port: number }>('READY', 20_000);
    const closedLoop = (name: string, base: string, p: string, headers: Record<string, string>) =>
      runWorker<any>(name, 'http-load.ts', { url: base, connections: CONNECTIONS, warmupS: 2, durationS: 8, kind: 'get', path: p, headers }, 40_000);
    const peer = await closedLoop('p3-bare', `http://127.0.0.1:${port}`, '/bare', {});
    const cached = await closedLoop('p3-cached', ctx.A.url, monthUrl, auth);
    ctx.log(`  cached: ${num(cached.okPerSecond)}/s (p99 ${ms(cached.latency.p99)}); bare Hono: ${num(peer.okPerSecond)}/s`);
    const ratio = cached.okPerSecond / peer.okPerSecond;
    ctx.rows.push({
      id: 'P3', what: `availability 1 resource × 30 days (${slotsShown} slots), computed, 200/s`, figure: `p99 ${ms(month.latency.p99)}`, peer: `p50 ${ms(month.latency.p50)}`,
      ratio: '', target: 'p99 ≤ 5 ms', met: month.latency.p99 <= 5 && !others(month), note: others(month) ? `not 200: ${others(month)}` : undefined,
    });
    ctx.rows.push({
      id: 'P3', what: 'availability 100 resources × 1 day, computed, 100/s', figure: `p99 ${ms(hundred.latency.p99)}`, peer: `p50 ${ms(hundred.latency.p50)}`,
      ratio: '', target: 'p99 ≤ 20 ms', met: hundred.latency.p99 <= 20 && !others(hundred), note: others(hundred) ? `not 200: ${others(hundred)}` : undefined,
    });
    ctx.rows.push({
      id: 'P3', what: `cached availability requests/s (${CONNECTIONS} connections)`, figure: `${num(cached.okPerSecond)}/s`, peer: `bare Hono ${num(peer.okPerSecond)}/s, same ${num(body.length / 1024)} KB body`,
      ratio: `${ratio.toFixed(2)}×`, target: '≥ 0.5× bare Hono', met: ratio >= 0.5,
    });
  } finally {
    await bare.stop();
  }
}
