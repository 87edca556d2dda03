import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRedis, createDatabase, startNode, api, must, ADMIN_TOKEN } from '../lib/cluster';
import { stopAll } from '../lib/proc';
let go = false;
const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-'));
const redis = await startRedis();
const db = await createDatabase();
try {
  const A = await startNode('A', { DATABASE_URL: db.url, REDIS_URL: redis.url }, tmp);
  A.proc.child.stderr!.on('data', (d) => { if (go) process.stdout.write(d); });
  const B = await startNode('B', { DATABASE_URL: db.url, REDIS_URL: redis.url }, tmp);
  const admin = api(A.url, ADMIN_TOKEN);
  const tenant = await must(admin('POST', '/v1/tenants', { name: 'bench' }), 201, 'tenant');
  const key = api(A.url, tenant.apiKey);
  const r = await must(key('POST', '/v1/resources', { name: 'r', capacity: 1, timezone: 'UTC', slotMinutes: 5 }), 201, 'res');
  await must(key('PUT', `/v1/resources/${r.id}/schedule`, { weekly: [{ days: ['mon','tue','wed','thu','fri','sat','sun'], start: '00:00', end: '24:00' }] }), 200, 'sched');
  const base = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1);
  let i = 0;
  const one = async () => {
    const k = i++;
    const t0 = performance.now();
    const res = await key('POST', '/v1/bookings', { resourceIds: [r.id], start: new Date(base + k * 300000).toISOString(), end: new Date(base + (k + 1) * 300000).toISOString(), customer: { name: 'a', email: 'a@example.com' } });
    if (res.status !== 201) console.log(res.status, res.body);
    return performance.now() - t0;
  };
  go = true;
  for (const conc of [1]) {
    const lat: number[] = [];
    const t0 = performance.now();
    await Promise.all(Array.from({ length: conc }, async () => { for (let j = 0; j < 10; j++) lat.push(await one()); }));
    lat.sort((a, b) => a - b);
    console.log(`conc ${conc}: ${(lat.length / ((performance.now() - t0) / 1000)).toFixed(0)}/s p50 ${lat[lat.length >> 1].toFixed(1)} p99 ${lat[Math.floor(lat.length * 0.99)].toFixed(1)}`);
  }
} finally {
  await stopAll();
  await db.drop();
}
