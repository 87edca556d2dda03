import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { startRedis, createDatabase, startNode, api, must, ADMIN_TOKEN } from '../lib/cluster';
import { stopAll } from '../lib/proc';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-'));
const redis = await startRedis();
const db = await createDatabase();
console.log(db.url);
const A = await startNode('A', { DATABASE_URL: db.url, REDIS_URL: redis.url }, tmp);
const admin = api(A.url, ADMIN_TOKEN);
const tenant = await must(admin('POST', '/v1/tenants', { name: 'bench' }), 201, 'tenant');
const key = api(A.url, tenant.apiKey);
const ids: string[] = [];
for (let i = 0; i < 4; i++) {
  const r = await must(key('POST', '/v1/resources', { name: 'r', capacity: 1, timezone: 'UTC', slotMinutes: 5 }), 201, 'res');
  await must(key('PUT', `/v1/resources/${r.id}/schedule`, { weekly: [{ days: ['mon','tue','wed','thu','fri','sat','sun'], start: '00:00', end: '24:00' }] }), 200, 'sched');
  ids.push(r.id);
}
const base = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate() + 1);
for (let i = 0; i < 400; i++) {
  const h = await key('POST', '/v1/holds', { resourceIds: [ids[i % 4]], start: new Date(base + i * 300000).toISOString(), end: new Date(base + (i + 1) * 300000).toISOString() });
  if (h.status !== 201) console.log(h.status, h.body);
}
const pool = new pg.Pool({ connectionString: db.url });
await pool.query('VACUUM ANALYZE');
const from = new Date(base + 20000 * 300000), to = new Date(base + 20001 * 300000);
const q = async (sql: string, params: unknown[]) => {
  const { rows } = await pool.query('EXPLAIN (ANALYZE, BUFFERS) ' + sql, params);
  console.log(rows.map((r) => r['QUERY PLAN']).join('\n') + '\n');
};
await q(`SELECT s.id FROM slots s JOIN unnest($2::uuid[], $3::timestamptz[], $4::timestamptz[]) AS w(resource_id, from_at, to_at)
         ON s.resource_id = w.resource_id AND s.start_at < w.to_at AND s.end_at > w.from_at
       WHERE s.tenant_id = $1 ORDER BY s.resource_id, s.start_at FOR UPDATE OF s`, [tenant.id, [ids[0]], [from], [to]]);
await q(`SELECT 1 FROM holds h JOIN hold_resources hr ON hr.hold_id = h.id
       WHERE h.status = 'held' AND h.expires_at <= now() AND hr.resource_id = ANY($1::uuid[])
         AND h.start_at < $3 AND h.end_at > $2 LIMIT 1`, [[ids[0]], from, to]);
await q(`SELECT DISTINCT s.id, s.resource_id, s.start_at, s.end_at, s.capacity, s.seats_taken, s.blocked
       FROM slots s JOIN unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) AS w(resource_id, from_at, to_at)
         ON s.resource_id = w.resource_id AND s.start_at < w.to_at AND s.end_at > w.from_at
       ORDER BY s.resource_id, s.start_at`, [[ids[0]], [from], [to]]);
await pool.end();
await stopAll();
console.log('kept', db.name);
