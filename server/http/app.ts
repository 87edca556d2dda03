/** The Hono app factory: middleware, routes, problem+json errors. */
import { OpenAPIHono } from '@hono/zod-openapi';
import { bodyLimit } from 'hono/body-limit';
import { cors } from 'hono/cors';
import type { Registry } from 'prom-client';
import { problem } from '../../shared/errors';
import type { Limits } from '../core/limits';
import type { Logger } from '../core/ports';
import { demoPage } from './demo-page';
import { API_EXPOSED_HEADERS } from './fixed-headers';
import { auth, deadline, requestAddress, type AuthEnv } from './middleware/auth';
import { idempotency } from './middleware/idempotency';
import { httpMetrics } from './middleware/metrics';
import { sendProblem, toProblem } from './problem';
import { bookingRoutes } from './routes/booking';
import { calendarRoutes } from './routes/calendar';
import { credentialRoutes } from './routes/credentials';
import { webhookRoutes } from './routes/webhooks';
import { devRoutes } from './routes/dev';
import { eventRoutes } from './routes/events';
import { groupRoutes } from './routes/groups';
import { resourceRoutes } from './routes/resources';
import { systemRoutes, type Readiness } from './routes/system';
import { tenantRoutes } from './routes/tenants';
import type { Services } from './routes/types';

export const MAX_BODY_BYTES = 64 * 1024;

export interface HttpDeps {
  services: Services;
  registry: Registry;
  readiness: Readiness;
  log: Logger;
  version: string;
  limits: Limits;
}

/** Builds the HTTP app; nothing global, so a test can run several in one process. */
export function createHttpApp(deps: HttpDeps) {
  const app = new OpenAPIHono<AuthEnv>();
  // Security headers, X-Request-Id and the CORS pair of non-preflight answers are set by the node:http
  // listener (fixed-headers.ts); only preflights need Hono: they are answered here, by hono's cors.
  const preflight = cors({ origin: '*', allowHeaders: ['Authorization', 'Content-Type', 'Idempotency-Key', 'If-Match', 'If-None-Match'], exposeHeaders: API_EXPOSED_HEADERS });
  app.use('/v1/*', (c, next) => (c.req.method === 'OPTIONS' ? preflight(c, next) : next()));
  app.use('*', httpMetrics(deps.registry));
  const limitBody = bodyLimit({ maxSize: MAX_BODY_BYTES, onError: (c) => sendProblem(c, problem('payload-too-large', `request bodies are limited to ${MAX_BODY_BYTES} bytes`)) });
  // Only where a body can be: bodyLimit reads c.req.raw.body, which makes @hono/node-server build a full
  // WHATWG Request (headers, AbortSignal, a web stream over the body) even for a GET, a tenth of a cached
  // availability answer's CPU, and a tenth of a hold's. A body with a Content-Length (and no
  // Transfer-Encoding) is judged by that header, read from node's request, as bodyLimit itself does; the
  // handler then reads it through @hono/node-server's direct path. Chunked bodies, and requests that do not
  // come through node:http, still go through bodyLimit, which counts the bytes as they arrive.
  app.use('/v1/*', (c, next) => {
    const method = c.req.method;
    if (method === 'GET' || method === 'HEAD') return next();
    const headers = c.env?.incoming?.headers;
    if (!headers || headers['transfer-encoding'] !== undefined) return limitBody(c, next);
    const length = headers['content-length'];
    // No Content-Length and no Transfer-Encoding: HTTP/1.1 says there is no body.
    if (length === undefined) return next();
    return Number.parseInt(length, 10) > MAX_BODY_BYTES ? limitBody(c, next) : next();
  });
  app.use('/v1/*', deadline(deps.limits.http.deadlineMs));
  app.use('/v1/*', auth(deps.services.credentials, deps.services.protection, deps.limits));
  // Operators' routes count against the address's budget too; /healthz never does (it must always answer).
  for (const path of ['/readyz', '/metrics', '/openapi.json', '/docs', '/docs/*']) {
    app.use(path, async (c, next) => {
      await deps.services.protection.admitAddress(requestAddress(c, deps.limits), 'api');
      return next();
    });
  }
  app.use('/v1/*', idempotency(deps.services.pipeline));

  tenantRoutes(app, deps.services);
  resourceRoutes(app, deps.services);
  bookingRoutes(app, deps.services);
  credentialRoutes(app, deps.services);
  eventRoutes(app, deps.services);
  groupRoutes(app, deps.services);
  webhookRoutes(app, deps.services);
  calendarRoutes(app, deps.services);
  devRoutes(app, deps.services);
  systemRoutes(app, deps);
  demoPage(app);

  app.notFound((c) => sendProblem(c, problem('not-found', `no route for ${c.req.method} ${c.req.path}`)));
  app.onError((err, c) => {
    const body = toProblem(err, deps.services.pipeline);
    if (body.status === 401) c.header('WWW-Authenticate', 'Bearer');
    return sendProblem(c, body);
  });
  return app;
}
