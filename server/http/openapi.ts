/**
 * Declaring and validating routes. Each route registers its OpenAPI entry
 * from the same zod schemas its handler validates with, so /openapi.json and
 * the server cannot drift apart.
 */
import type { OpenAPIHono } from '@hono/zod-openapi';
import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { LRUCache } from 'lru-cache';
import { ProblemSchema } from '../../shared/schemas';
import { DomainError } from '../core/errors';
import { parseInput, validationError } from '../core/pipeline';

const problemContent = { 'application/problem+json': { schema: ProblemSchema } };

export interface RouteDoc {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Hono-style path (`/v1/holds/:id`). */
  path: string;
  tag: string;
  summary: string;
  body?: z.ZodType;
  bodyRequired?: boolean;
  query?: z.ZodType;
  idempotent?: boolean;
  ifMatch?: boolean;
  ok: { status: number; schema?: z.ZodType; description: string };
  errors?: Record<number, string>;
  auth?: string;
  /** True for the one route no limit applies to (/healthz). */
  unlimited?: boolean;
}

const retryHeaders = {
  'Retry-After': { description: 'Seconds to wait before retrying', schema: { type: 'integer' as const } },
  RateLimit: { description: 'The tightest budget: `"<policy>";r=<remaining>;t=<seconds to reset>`', schema: { type: 'string' as const } },
  'RateLimit-Policy': { description: 'That budget: `"<policy>";q=<requests>;w=<window seconds>`', schema: { type: 'string' as const } },
};

const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i;

/** Registers one route's OpenAPI description. */
export function describe(registry: OpenAPIHono['openAPIRegistry'], d: RouteDoc): void {
  const params = [...d.path.matchAll(/:(\w+)/g)].map((m) => m[1]!);
  const headers: Record<string, z.ZodType> = {};
  if (d.idempotent) headers['Idempotency-Key'] = z.string().max(255).optional().openapi({ description: 'Retries with the same key and body replay the first response (kept 24 h).' });
  if (d.ifMatch) headers['If-Match'] = z.string().openapi({ description: 'The ETag (version) you last read' });
  registry.registerPath({
    method: d.method,
    path: d.path.replace(/:(\w+)/g, '{$1}'),
    tags: [d.tag],
    summary: d.summary,
    description: d.auth ? `Credential: ${d.auth}.` : undefined,
    security: d.auth === 'none' ? [] : [{ bearer: [] }],
    request: {
      // Ids are UUIDs; user ids are the tenant's own strings.
      ...(params.length ? { params: z.object(Object.fromEntries(params.map((p) => [p, p === 'userId' ? z.string().min(1).max(200) : z.uuid()]))) } : {}),
      ...(d.query ? { query: d.query as z.ZodObject } : {}),
      ...(Object.keys(headers).length ? { headers: z.object(headers) } : {}),
      ...(d.body ? { body: { required: d.bodyRequired ?? true, content: { 'application/json': { schema: d.body } } } } : {}),
    },
    responses: {
      [d.ok.status]: d.ok.schema ? { description: d.ok.description, content: { 'application/json': { schema: d.ok.schema } } } : { description: d.ok.description },
      400: { description: 'Invalid request', content: problemContent },
      ...(d.auth === 'none' ? {} : { 401: { description: 'Missing or invalid credential', content: problemContent }, 403: { description: 'The credential may not do this', content: problemContent } }),
      ...Object.fromEntries(Object.entries(d.errors ?? {}).map(([s, description]) => [s, { description, content: problemContent }])),
      // Every route but /healthz is behind the protection limits (docs/security.md).
      ...(d.unlimited ? {} : { 429: { description: 'A rate, concurrency or quota limit was hit (the problem names it in `limit`; Retry-After says when to retry)', headers: retryHeaders, content: problemContent },
      503: { description: 'Overloaded, past a deadline, or the database is unreachable (Retry-After)', headers: retryHeaders, content: problemContent } }),
    },
  });
}

/** Parses and validates the JSON body; an absent body counts as `{}` only when `optional`. */
export async function body<T extends z.ZodType>(c: Context, schema: T, optional = false): Promise<z.output<T>> {
  return parseInput(schema, await json(c, optional), 'body');
}

/** The JSON body, not yet validated (415 unless it is JSON, 400 when malformed); an absent body is `{}` only when `optional`. */
export async function json(c: Context, optional = false): Promise<unknown> {
  const text = await c.req.text();
  let value: unknown = {};
  if (text.trim() !== '' || !optional) {
    const type = (c.req.header('Content-Type') ?? '').split(';')[0]!.trim();
    if (!JSON_TYPE.test(type)) throw new DomainError('unsupported-media-type', 'send the body as application/json');
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new DomainError('malformed-json', `the body is not valid JSON: ${(err as Error).message}`);
    }
  }
  return value;
}

// Valid query strings already parsed, per schema: clients poll the same query (availability), and zod was
// a twentieth of a cached availability answer's CPU. Parsing depends on the string alone; results are frozen.
// An LRU by count and bytes, so a stream of distinct query strings (up to 16 KiB each) costs a bounded
// amount and evicts the least used, instead of emptying the memo.
const parsedQueries = new WeakMap<z.ZodType, LRUCache<string, object>>();
const MAX_PARSED_QUERIES = 1_000;
const MAX_PARSED_QUERY_BYTES = 2 * 1024 * 1024;
// A parsed query holds about what its string says (ids, instants), twice for the key and the value, plus its objects.
const parsedSize = (raw: string) => 2 * raw.length + 200;

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

/** Validates the query string (the result is frozen: copy before changing it). */
export function query<T extends z.ZodType>(c: Context, schema: T): z.output<T> {
  const url = c.req.url;
  const at = url.indexOf('?');
  const raw = at < 0 ? '' : url.slice(at);
  let memo = parsedQueries.get(schema);
  if (!memo) {
    memo = new LRUCache<string, object>({ max: MAX_PARSED_QUERIES, maxSize: MAX_PARSED_QUERY_BYTES, sizeCalculation: (_, key) => parsedSize(key) });
    parsedQueries.set(schema, memo);
  }
  const hit = memo.get(raw);
  if (hit !== undefined) return hit as z.output<T>;
  const parsed = schema.safeParse(c.req.query());
  if (!parsed.success) throw validationError(parsed.error, 'query');
  if (parsed.data !== null && typeof parsed.data === 'object') memo.set(raw, deepFreeze(parsed.data));
  return parsed.data;
}

const UUID = z.uuid();
/** A path parameter that must be a UUID. */
export function idParam(c: Context, name = 'id'): string {
  const v = c.req.param(name) ?? '';
  if (!UUID.safeParse(v).success) {
    throw new DomainError('validation-failed', `${name} must be a UUID`, { errors: [{ path: `path.${name}`, message: 'must be a UUID' }] });
  }
  return v;
}
