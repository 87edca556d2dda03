/**
 * Serves the browser demo (client-demo/, built into client-demo/dist by
 * `npm start`) at / and its hashed files under /assets/. Not part of the
 * API: no credential, not in /openapi.json.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Env, Hono } from 'hono';

const DIST = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../client-demo/dist');
const TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.woff2': 'font/woff2',
};
// The page talks to its own origin only (REST, Socket.IO and Yjs WebSockets).
const CSP = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const MISSING = `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Slotwise</title></head>
<body style="font-family: system-ui, sans-serif; max-width: 40rem; margin: 4rem auto; line-height: 1.5">
<h1>Slotwise is running</h1><p>The browser demo has not been built. <code>npm start</code> builds it when it can;
run <code>npm run demo:build</code> to see why it could not, then reload. The API is at <a href="/docs">/docs</a>.</p></body></html>`;

/** Registers GET / and GET /assets/:file, serving the build in `dist` (client-demo/dist unless told). */
export function demoPage<E extends Env>(app: Hono<E>, dist = DIST): void {
  app.get('/', async (c) => {
    const html = await readFile(path.join(dist, 'index.html'), 'utf8').catch(() => null);
    if (html === null) return c.html(MISSING, 200, { 'Cache-Control': 'no-store' });
    return c.html(html, 200, { 'Cache-Control': 'no-cache', 'Content-Security-Policy': CSP });
  });
  app.get('/assets/:file', async (c) => {
    const file = c.req.param('file');
    // One plain file name of the build: nothing that climbs out of the folder.
    if (!/^[\w.-]+$/.test(file) || file.startsWith('.')) return c.notFound();
    const type = TYPES[path.extname(file)];
    if (!type) return c.notFound();
    const body = await readFile(path.join(dist, 'assets', file)).catch(() => null);
    if (body === null) return c.notFound();
    return c.body(body, 200, { 'Content-Type': type, 'Cache-Control': 'public, max-age=31536000, immutable' });
  });
}
