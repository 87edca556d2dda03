/**
 * P3's baseline: a bare Hono route served the way Slotwise serves its app
 * (node:http + @hono/node-server's request listener), answering GET /bare
 * with a fixed JSON body read from `bodyFile` (the same bytes an availability
 * response carries), so the comparison isolates what Slotwise adds per request.
 */
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { workerConfig } from '../lib/config';

const cfg = workerConfig<{ bodyFile: string }>();
const body = readFileSync(cfg.bodyFile, 'utf8');
const app = new Hono();
app.get('/bare', (c) => c.body(body, 200, { 'Content-Type': 'application/json' }));
const server = createServer(getRequestListener(app.fetch));
server.listen(0, '127.0.0.1', () => {
  console.log('READY ' + JSON.stringify({ port: (server.address() as AddressInfo).port, bytes: Buffer.byteLength(body) }));
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
