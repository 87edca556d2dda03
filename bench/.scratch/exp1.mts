import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRedis, createDatabase, startNode, api, must, ADMIN_TOKEN } from '/work/main/bench/lib/cluster';
import { stopAll, sleep } from '/work/main/bench/lib/proc';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-'));
const redis = await startRedis();
const db = await createDatabase();
try {
  const t0 = Date.now();
  const A = await startNode('A', { DATABASE_URL: db.url, REDIS_URL: redis.url }, tmp);
  console.log('A up', Date.now() - t0);
  const admin = api(A.url, ADMIN_TOKEN);
  const tenant = await must(admin('POST', '/v1/tenants', { name: 'bench' }), 201, 'tenant');
  const key = api(A.url, tenant.apiKey);
  const r = await must(key('POST', '/v1/resources', { name: 'r', capacity: 1, timezone: 'UTC', slotMinutes: 5 }), 201, 'res');
  let t1 = Date.now();
  const s = await must(key('PUT', `/v1/resources/${r.id}/schedule`, { weekly: [{ days: ['mon','tue','wed','thu','fri','sat','sun'], start: '00:00', end: '24:00' }] }), 200, 'sched');
  console.log('schedule', Date.now() - t1, s.slots, s.horizon);
  const tok = await must(key('POST', '/v1/tokens', { userId: 'u1', name: 'u1', role: 'organizer' }), 201, 'tok');
  const user = api(A.url, tok.token);
  const base = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1);
  for (let i = 0; i < 3; i++) {
    const h = await user('POST', '/v1/holds', { resourceIds: [r.id], start: new Date(base + i * 300000).toISOString(), end: new Date(base + (i + 1) * 300000).toISOString() });
    console.log(h.status);
  }
  await sleep(300);
  A.proc.child.kill('SIGUSR2');
  await sleep(300);
  const tr = JSON.parse(readFileSync(A.traceFile, 'utf8'));
  console.log(JSON.stringify(tr.transactions.slice(-2), null, 1));
  console.log(tr.outside.filter(([t]: [string]) => !t.includes('schema_migrations')).slice(-12));
} finally {
  await stopAll();
  await db.drop();
}
