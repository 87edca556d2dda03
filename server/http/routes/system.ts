/** Health, readiness, metrics, the OpenAPI document and its interactive docs. */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { z } from '@hono/zod-openapi';
import type { Registry } from 'prom-client';
import { route } from '../openapi';
import type { App } from './types';

const require = createRequire(import.meta.url);
const SWAGGER_DIR = path.dirname(require.resolve('swagger-ui-dist/package.json'));
const ASSETS: Record<string, string> = {
  'swagger-ui.css': 'text/css; charset=utf-8',
  'swagger-ui-bundle.js': 'text/javascript; charset=utf-8',
  'swagger-ui-standalone-preset.js': 'text/javascript; charset=utf-8',
};

const DOCS_HTML = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Slotwise API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/docs/assets/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script>window.ui = SwaggerUIBundle({ url: '/openapi.json', dom_id: '#swagger-ui', deepLinking: true, persistAuthorization: true });</script>
</body></html>`;

export interface Readiness {
  /** Resolves when Postgres (and Redis, when configured) answer. */
  check(): Promise<Record<string, 'ok' | string>>;
}

/** Registers /healthz, /readyz, /metrics, /openapi.json and /docs. */
export function systemRoutes(app: App, opts: { registry: Registry; readiness: Readiness; version: string }): void {
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'The admin token, a tenant API key (sw_...), or a user token (JWT) from POST /v1/tokens',
  });
  // Operators' routes belong in the API description too; only /openapi.json and /docs (the description itself) stay out.
  route(app, {
    method: 'get', path: '/healthz', tag: 'Operations', auth: 'none', unlimited: true, summary: 'Liveness: the process answers (never rate limited)',
    answers: { 200: { schema: z.object({ status: z.literal('ok') }), description: 'Alive' } },
  }, (c) => c.json({ status: 'ok' }));
  const Readiness = z.object({ status: z.enum(['ok', 'unavailable']), checks: z.record(z.string(), z.string()) }).openapi('Readiness');
  route(app, {
    method: 'get', path: '/readyz', tag: 'Operations', auth: 'none', summary: 'Readiness: 200 when every dependency answers, else 503 with the same body',
    answers: {
      200: { schema: Readiness, description: 'Ready, with each check' },
      503: { schema: Readiness, description: 'Not ready: the checks that failed say why' },
    },
  }, async (c) => {
    const checks = await opts.readiness.check();
    const ok = Object.values(checks).every((v) => v === 'ok');
    return c.json({ status: ok ? 'ok' : 'unavailable', checks }, ok ? 200 : 503);
  });
  route(app, {
    method: 'get', path: '/metrics', tag: 'Operations', auth: 'none', summary: 'Prometheus metrics (text exposition format)',
    answers: { 200: { schema: z.string(), mediaType: 'text/plain', description: 'Metrics' } },
  }, async (c) => c.body(await opts.registry.metrics(), 200, { 'Content-Type': opts.registry.contentType }));
  app.doc31('/openapi.json', {
    openapi: '3.1.0',
    info: {
      title: 'Slotwise API',
      version: opts.version,
      description: 'Holds, bookings and live availability that never oversell. Errors are RFC 9457 problem+json.',
    },
    servers: [{ url: '/' }],
  });
  app.get('/docs', (c) => c.html(DOCS_HTML));
  const cache = new Map<string, string>();
  app.get('/docs/assets/:file', (c) => {
    const file = c.req.param('file');
    // Own keys only: `__proto__` or `constructor` must not reach the file system.
    const type = Object.hasOwn(ASSETS, file) ? ASSETS[file] : undefined;
    if (!type) return c.notFound();
    let text = cache.get(file);
    if (text === undefined) {
      text = readFileSync(path.join(SWAGGER_DIR, file), 'utf8');
      cache.set(file, text);
    }
    return c.body(text, 200, { 'Content-Type': type, 'Cache-Control': 'public, max-age=86400' });
  });
}
