import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRedis, createDatabase, startNode, api, must, ADMIN_TOKEN } from '../lib/cluster';
import { stopAll, runWorker, sleep } from '../lib/proc';
const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-'));
const redis = await startRedis();
const db = await createDatabase();
try {
  const A = await startNode('A', { DATABASE_URL: db.url, REDIS_URL: redis.url, DB_POOL_SIZE: '64' }, tmp);
  const admin = api(A.url, ADMIN_TOKEN);
  const tenant = await must(admin('POST', '/v1/tenants', { name: 'bench' }), 201, 'tenant');
  const key = api(A.url, tenant.apiKey);
  const ids: string[] = [];
  for (let i = 0; i < 2; i++) {
    const r = await must(key('POST', '/v1/resources', { name: 'r', capacity: 1, timezone: 'UTC', slotMinutes: 5 }), 201, 'res');
    await must(key('PUT', `/v1/resources/${r.id}/schedule`, { weekly: [{ days: ['mon','tue','wed','thu','fri','sat','sun'], start: '00:00', end: '24:00' }] }), 200, 'sched');
    ids.push(r.id);
  }
  const tok = await must(key('POST', '/v1/tokens', { userId: 'u1', name: 'u1', role: 'organizer' }), 201, 'tok');
  const base = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1);
  const r = await runWorker<any>('load', 'http-load.ts', { url: A.url, connections: 64, durationS: 8, kind: 'holds', path: '/v1/holds', headers: { authorization: `Bearer ${tok.token}` }, resourceIds: ids, baseMs: base, slotMs: 300000, slotOffset: 0 }, 60000);
  console.log('rate', r.okPerSecond, 'p50', r.latency.p50, 'p99', r.latency.p99, JSON.stringify(r.statuses));
  A.proc.child.kill('SIGUSR2');
  await sleep(500);
  console.log(A.proc.tail().split('\n').filter((l) => l.startsWith('AGG')).join('\n'));
} finally {
  await stopAll();
  await db.drop();
}
