/** Idempotency-Key for POST and PATCH: the request runs through the pipeline's `once` (core/pipeline.ts has the guarantees). */
import type { MiddlewareHandler } from 'hono';
import { checkKey, fingerprintOf, type Pipeline } from '../../core/pipeline';
import type { AuthEnv } from './auth';

const KEPT_HEADERS = ['content-type', 'etag', 'location'];

/**
 * An API key is shown once and stored only as a hash, so a stored response
 * that carries one (POST /v1/tenants, /v1/api-keys, /v1/api-keys/:id/rotate)
 * keeps `apiKey: null`: a retry still makes no second key, and no key sits in
 * plain text in the table. A webhook's signing secret (POST /v1/webhooks,
 * …/rotate-secret) is shown once too: the stored copy keeps `secret: null`.
 * So is a calendar feed's token (POST /v1/calendar-feeds): `token` and the
 * `url` that carries it are kept as null, on that path only (other answers
 * have a `url` or `token` that is not a secret).
 */
const SHOWN_ONCE = ['apiKey', 'secret'];
const SHOWN_ONCE_AT: Record<string, string[]> = { '/v1/calendar-feeds': ['token', 'url'] };
function withoutSecrets(body: string, path: string): string {
  const keys = [...SHOWN_ONCE, ...(SHOWN_ONCE_AT[path] ?? [])];
  if (!keys.some((k) => body.includes(`"${k}"`))) return body;
  const parsed = JSON.parse(body) as Record<string, unknown>;
  for (const k of keys) if (k in parsed) parsed[k] = null;
  return JSON.stringify(parsed);
}

/** Wraps POST/PATCH requests that carry Idempotency-Key in one transaction with their stored response. */
export function idempotency(pipeline: Pipeline): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const key = c.req.header('Idempotency-Key');
    if (key === undefined || (c.req.method !== 'POST' && c.req.method !== 'PATCH')) return next();
    checkKey(key, 'header.Idempotency-Key');
    const fingerprint = fingerprintOf(c.req.method, c.req.path, await c.req.text());
    const { outcome, replayed } = await pipeline.once(c.get('principal'), key, fingerprint, async () => {
      await next();
      const headers: Record<string, string> = {};
      for (const h of KEPT_HEADERS) {
        const v = c.res.headers.get(h);
        if (v) headers[h] = v;
      }
      const body = c.res.status < 400 ? await c.res.clone().text() : '';
      return { status: c.res.status, headers, body: withoutSecrets(body, c.req.path) };
    });
    if (replayed) c.res = new Response(outcome.body, { status: outcome.status, headers: { ...outcome.headers, 'Idempotent-Replayed': 'true' } });
  };
}
