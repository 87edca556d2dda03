/** Request metrics for /metrics (Prometheus, via prom-client). */
import type { MiddlewareHandler } from 'hono';
import { routePath } from 'hono/route';
import { Histogram, type Registry } from 'prom-client';

/** Observes every request's duration by method, route pattern and status. */
export function httpMetrics(registry: Registry): MiddlewareHandler {
  const histogram = new Histogram({
    name: 'slotwise_http_request_duration_seconds',
    help: 'HTTP request duration by route and status',
    labelNames: ['method', 'route', 'status'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  // One child per method, route pattern and status, kept: observing through labels() validates and hashes the
  // label set on every request (prom-client's labels and observe were a few percent of a hold's CPU).
  const children = new Map<string, ReturnType<typeof histogram.labels>>();
  return async (c, next) => {
    const start = performance.now();
    await next();
    const method = c.req.method;
    const route = routePath(c) || 'unmatched';
    const status = c.res.status;
    const key = `${method} ${status} ${route}`;
    let child = children.get(key);
    if (!child) children.set(key, (child = histogram.labels({ method, route, status: String(status) })));
    child.observe((performance.now() - start) / 1000);
  };
}
