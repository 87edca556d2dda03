/**
 * HTTP load from its own process, with autocannon. Config (argv[2], JSON):
 * url, connections, durationS, optional overallRate (requests/s), headers,
 * and `kind`: `get` (fixed path), `holds` or `bookings` (POST bodies on
 * distinct slots: request i takes slot `slotOffset + ⌊i / resources⌋` of
 * resource `i mod resources`). Prints `RESULT {...}` with the request rate,
 * status counts and latency percentiles from every response's own timing
 * (autocannon's histogram keeps whole milliseconds only). With `cpuPid`, also
 * the CPU time that process used during the measured part (`cpuMs`).
 */
import autocannon from 'autocannon';
import { cpuMsOf } from '../lib/proc';
import { percentiles } from '../lib/stats';
import { workerConfig } from '../lib/config';

interface Config {
  url: string;
  connections: number;
  durationS: number;
  overallRate?: number;
  headers: Record<string, string>;
  kind: 'get' | 'holds' | 'bookings';
  path: string;
  /** For `get`: cycle through these paths instead of one (distinct requests, e.g. past any cache). */
  paths?: string[];
  resourceIds?: string[];
  baseMs?: number;
  slotMs?: number;
  slotOffset?: number;
  warmupS?: number;
  /** A process (the server under load) whose CPU time over the measured part is reported. */
  cpuPid?: number;
}

const cfg = workerConfig<Config>();

function bodyFor(i: number): string {
  const ids = cfg.resourceIds!;
  const r = ids[i % ids.length]!;
  const slot = cfg.slotOffset! + Math.floor(i / ids.length);
  const start = new Date(cfg.baseMs! + slot * cfg.slotMs!).toISOString();
  const end = new Date(cfg.baseMs! + (slot + 1) * cfg.slotMs!).toISOString();
  if (cfg.kind === 'holds') return JSON.stringify({ resourceIds: [r], start, end });
  return JSON.stringify({ resourceIds: [r], start, end, customer: { name: 'Bench', email: 'bench@example.com' }, metadata: { benchKey: `k${i}` } });
}

async function run(durationS: number, record: boolean, counter: { i: number }) {
  const samples: number[] = [];
  const statuses: Record<string, number> = {};
  const requests =
    cfg.kind === 'get'
      ? cfg.paths
        ? [{ method: 'GET' as const, path: cfg.path, setupRequest: (req: any) => ({ ...req, path: cfg.paths![counter.i++ % cfg.paths!.length] }) }]
        : [{ method: 'GET' as const, path: cfg.path }]
      : [{ method: 'POST' as const, path: cfg.path, setupRequest: (req: any) => ({ ...req, body: bodyFor(counter.i++) }) }];
  const instance = autocannon({
    url: cfg.url,
    connections: cfg.connections,
    duration: durationS,
    overallRate: cfg.overallRate,
    headers: { 'content-type': 'application/json', ...cfg.headers },
    requests,
  });
  instance.on('response', (_client: unknown, status: number, _bytes: number, responseTime: number) => {
    statuses[status] = (statuses[status] ?? 0) + 1;
    if (record) samples.push(responseTime);
  });
  const result = await instance;
  return { result, samples, statuses };
}

async function main() {
  const counter = { i: 0 };
  if (cfg.warmupS) await run(cfg.warmupS, false, counter);
  const firstMeasured = counter.i;
  const cpuBefore = cfg.cpuPid ? await cpuMsOf(cfg.cpuPid) : 0;
  const started = performance.now();
  const { result, samples, statuses } = await run(cfg.durationS, true, counter);
  const seconds = (performance.now() - started) / 1000;
  const cpuMs = cfg.cpuPid ? (await cpuMsOf(cfg.cpuPid)) - cpuBefore : undefined;
  const ok = Object.entries(statuses).filter(([s]) => s.startsWith('2')).reduce((n, [, c]) => n + c, 0);
  console.log(
    'RESULT ' +
      JSON.stringify({
        seconds,
        requests: samples.length,
        ok,
        okPerSecond: ok / result.duration,
        cpuMs,
        requestsPerSecond: samples.length / result.duration,
        statuses,
        errors: result.errors,
        timeouts: result.timeouts,
        latency: percentiles(samples),
        autocannon: { average: result.requests.average, p99: result.latency.p99 },
        used: counter.i,
        firstMeasured,
      }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
