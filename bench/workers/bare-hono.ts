/**
 * Baselines served the way Slotwise serves its app (node:http +
 * @hono/node-server's request listener), so a comparison isolates what
 * Slotwise adds per request:
 *
 * - with `bodyFile` (P3): GET /bare answers a fixed JSON body read from it
 *   (the same bytes an availability response carries);
 * - with `pgUrl` (P1's CPU per hold): POST /bare-pg reads the JSON body it is
 *   sent (the same hold bodies as the P1 load), runs one query (`SELECT 1`)
 *   through a pg Pool of `poolSize` connections and answers 201 with a small
 *   JSON body.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import pg from 'pg';
import { workerConfig } from '../lib/config';

const cfg = workerConfig<{ bodyFile?: string; pgUrl?: string; poolSize?: number }>();
const body = cfg.bodyFile ? readFileSync(cfg.bodyFile, 'utf8') : '';
const pool = cfg.pgUrl ? new pg.Pool({ connectionString: cfg.pgUrl, max: cfg.poolSize ?? 20 }) : null;
const app = new Hono();
app.get('/bare', (c) => c.body(body, 200, { 'Content-Type': 'application/json' }));
app.post('/bare-pg', async (c) => {
  const input = await c.req.json<{ start?: string }>();
  const { rows } = await pool!.query<{ one: number }>('SELECT 1 AS one');
  return c.json({ one: rows[0]!.one, start: input.start ?? null }, 201);
});
const server = createServer(getRequestListener(app.fetch));
server.listen(0, '127.0.0.1', () => {
  console.log('READY ' + JSON.stringify({ port: (server.address() as AddressInfo).port, bytes: Buffer.byteLength(body) }));
});
process.on('SIGTERM', () => server.close(() => void (pool?.end() ?? Promise.resolve()).finally(() => process.exit(0))));
