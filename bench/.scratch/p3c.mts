import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRedis, createDatabase, startNode, api, must, ADMIN_TOKEN } from '../lib/cluster';
import { stopAll, runWorker } from '../lib/proc';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-'));
const redis = await startRedis();
const db = await createDatabase();
try {
  const A = await startNode('A', { DATABASE_URL: db.url, REDIS_URL: redis.url }, tmp);
  const admin = api(A.url, ADMIN_TOKEN);
  const tenant = await must(admin('POST', '/v1/tenants', { name: 'bench' }), 201, 'tenant');
  const key = api(A.url, tenant.apiKey);
  const r = await must(key('POST', '/v1/resources', { name: 'r', capacity: 4, timezone: 'UTC', slotMinutes: 60 }), 201, 'res');
  await must(key('PUT', `/v1/resources/${r.id}/schedule`, { weekly: [{ days: ['mon','tue','wed','thu','fri','sat','sun'], start: '08:00', end: '20:00' }] }), 200, 'sched');
  const tok = await must(key('POST', '/v1/tokens', { userId: 'u1', name: 'u1', role: 'organizer' }), 201, 'tok');
  const base = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 3);
  const p = `/v1/availability?resourceIds=${r.id}&from=${new Date(base).toISOString()}&to=${new Date(base + 30 * 86400000).toISOString()}`;
  const res = await runWorker<any>('load', 'http-load.ts', { url: A.url, connections: 32, warmupS: 2, durationS: 8, kind: 'get', path: p, headers: { authorization: `Bearer ${tok.token}` } }, 60000);
  console.log('cached rps', res.okPerSecond, 'p99', res.latency.p99);
} finally {
  await stopAll();
  await db.drop();
}
