/**
 * P2's load: `count` POST /v1/holds on one slot, all in flight at once over
 * `count` keep-alive connections that were opened (and used once) before the
 * clock starts, so the figure is the server's, not TCP's. Prints
 * `RESULT {seconds, statuses, latency}`.
 */
import http from 'node:http';
import { percentiles } from '../lib/stats';
import { workerConfig } from '../lib/config';

const cfg = workerConfig<{ url: string; token: string; count: number; body: unknown; timeoutMs: number }>();
const agent = new http.Agent({ keepAlive: true, maxSockets: cfg.count, maxFreeSockets: cfg.count });
const { hostname, port } = new URL(cfg.url);

function request(method: string, path: string, body?: string): Promise<{ status: number; ms: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const req = http.request(
      { host: hostname, port, method, path, agent, timeout: cfg.timeoutMs, headers: { Authorization: `Bearer ${cfg.token}`, 'Content-Type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () => resolve({ status: res.statusCode ?? 0, ms: performance.now() - t0 }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

async function main() {
  // Open every connection first: `count` concurrent requests need `count` sockets.
  await Promise.all(Array.from({ length: cfg.count }, () => request('GET', '/healthz')));
  const body = JSON.stringify(cfg.body);
  const t0 = performance.now();
  const replies = await Promise.all(Array.from({ length: cfg.count }, () => request('POST', '/v1/holds', body).catch(() => ({ status: 0, ms: NaN }))));
  const seconds = (performance.now() - t0) / 1000;
  const statuses: Record<string, number> = {};
  for (const r of replies) statuses[r.status] = (statuses[r.status] ?? 0) + 1;
  console.log('RESULT ' + JSON.stringify({ seconds, statuses, latency: percentiles(replies.map((r) => r.ms).filter(Number.isFinite)) }));
  agent.destroy();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
