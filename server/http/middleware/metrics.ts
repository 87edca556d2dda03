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
  return async (c, next) => {
    const end = histogram.startTimer();
    await next();
    end({ method: c.req.method, route: routePath(c) || 'unmatched', status: String(c.res.status) });
  };
}
