import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { startRedis, createDatabase, startNode, api, must, ADMIN_TOKEN } from '../lib/cluster';
import { stopAll } from '../lib/proc';
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
  for (const p of ['/healthz', '/v1/resources/' + r.id]) {
    const times: number[] = [];
    for (let i = 0; i < 30; i++) { const t0 = performance.now(); const res = await fetch(A.url + p, { headers: { authorization: `Bearer ${tenant.apiKey}` } }); await res.text(); times.push(performance.now() - t0); }
    times.sort((a, b) => a - b);
    console.log(p.slice(0, 14), 'median', times[15].toFixed(2), 'max', times[29].toFixed(2));
  }
  for (const cred of [tenant.apiKey, tok.token]) {
    for (let k = 0; k < 2; k++) {
      const times: number[] = [];
      for (let i = 0; i < 30; i++) {
        const from = base + (k === 0 ? i * 60000 : 0);
        const u = `${A.url}/v1/availability?resourceIds=${r.id}&from=${new Date(from).toISOString()}&to=${new Date(from + 30 * 86400000).toISOString()}`;
        const t0 = performance.now();
        const res = await fetch(u, { headers: { authorization: `Bearer ${cred}` } });
        await res.text();
        times.push(performance.now() - t0);
      }
      times.sort((a, b) => a - b);
      console.log(cred.slice(0, 4), k === 0 ? 'uncached' : 'cached', 'median', times[15].toFixed(2), 'max', times[29].toFixed(2));
    }
  }
} finally {
  await stopAll();
  await db.drop();
}
