/**
 * Headers every HTTP answer carries, written once per request on node's
 * ServerResponse instead of by Hono middleware. Middleware sets them on the
 * answer's WHATWG Headers, where every set runs undici's validation: with a
 * dozen security headers that was the largest item of a cached availability
 * answer's profile after the socket writes themselves (docs/benchmarks.md).
 * Node merges these with the headers Hono writes; Hono's win on a clash.
 */
import { randomUUID } from 'node:crypto';
import type { RequestListener } from 'node:http';
import { Hono } from 'hono';
import { secureHeaders } from 'hono/secure-headers';

/** Response headers a browser on another origin may read from the API. */
export const API_EXPOSED_HEADERS = ['ETag', 'Location', 'Idempotent-Replayed', 'Retry-After', 'RateLimit', 'RateLimit-Policy'];

// The request id a client sent is echoed when it is short and plain (as hono's requestId middleware does).
const CLIENT_REQUEST_ID = /^[\w\-=]{1,255}$/;

/** hono's secureHeaders with the API's options, read once from a probe answer. */
async function securityHeaders(): Promise<[string, string][]> {
  const probe = new Hono().use(secureHeaders({ crossOriginResourcePolicy: 'cross-origin' })).get('/', (c) => c.body(null, 204));
  return [...(await probe.request('/')).headers];
}

/**
 * Wraps the HTTP listener: every answer gets the security headers and an
 * X-Request-Id; non-preflight answers under /v1/ get the CORS pair
 * (preflights are answered by hono's cors in the app).
 */
export async function withFixedHeaders(listener: RequestListener): Promise<RequestListener> {
  const security = await securityHeaders();
  const exposed = API_EXPOSED_HEADERS.join(',');
  return (req, res) => {
    for (const [name, value] of security) res.setHeader(name, value);
    const sent = req.headers['x-request-id'];
    res.setHeader('X-Request-Id', typeof sent === 'string' && CLIENT_REQUEST_ID.test(sent) ? sent : randomUUID());
    if (req.method !== 'OPTIONS' && req.url?.startsWith('/v1/')) {
      res.setHeader('Access-Control-Allow-Origin', '*');
      res.setHeader('Access-Control-Expose-Headers', exposed);
    }
    listener(req, res);
  };
}
