/**
 * Declaring and validating routes. Each route is declared once, with route():
 * its path, inputs and every answer it can give become the OpenAPI entry
 * (through @hono/zod-openapi's createRoute and the app's registry) and the
 * same declaration registers the handler, so /openapi.json and the server
 * cannot drift apart. The answers every route shares (bad input, credentials,
 * body limits, idempotency keys, protection limits) are added here from what
 * the route is (its method, parameters, body), the same facts the middleware
 * in app.ts acts on.
 */
import { createRoute, type RouteConfig, z } from '@hono/zod-openapi';
import type { Context, Handler } from 'hono';
import { LRUCache } from 'lru-cache';
import { ProblemSchema } from '../../shared/schemas';
import { DomainError } from '../core/errors';
import { parseInput, validationError } from '../core/pipeline';
import type { AuthEnv } from './middleware/auth';
import type { App } from './routes/types';

const problemContent = { 'application/problem+json': { schema: ProblemSchema } };

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

/** A response header, as OpenAPI describes it. */
interface HeaderDoc {
  description: string;
  schema: { type: 'string' | 'integer' };
}

/** One answer a route gives besides the shared problems. */
export interface Answer {
  description: string;
  /** The JSON body's schema; left out, the answer has no body (304). */
  schema?: z.ZodType;
  /** The body's media type when it is not application/json (its schema is then a string). */
  mediaType?: string;
  headers?: Record<string, HeaderDoc>;
}

export interface RouteSpec {
  method: Method;
  /** OpenAPI-style path (`/v1/holds/{id}`); Hono's (`/v1/holds/:id`) is derived from it. */
  path: string;
  tag: string;
  summary: string;
  /** Which credential the route takes, for the description; 'none' for the operators' routes outside /v1. */
  auth: string;
  body?: z.ZodType;
  bodyRequired?: boolean;
  query?: z.ZodType;
  /** Path parameters that are not UUIDs (every other `{name}` is one, checked by idParam). */
  params?: Record<string, z.ZodType>;
  ifMatch?: boolean;
  ifNoneMatch?: boolean;
  /** The route's own answers by status: its successes, and any answer that is not a problem. */
  answers: Record<number, Answer>;
  /** The route's own problem answers by status (merged with the shared ones of the same status). */
  errors?: Record<number, string>;
  /** True for the one route no limit applies to (/healthz). */
  unlimited?: boolean;
}

export const header = (description: string, type: 'string' | 'integer' = 'string'): HeaderDoc => ({ description, schema: { type } });
export const ETAG = header('The version: send it back in If-Match (bookings) or If-None-Match (availability)');
export const LOCATION = header('Where the created object can be read');
const REPLAYED = header('`true` when this is the stored answer of an earlier request with the same Idempotency-Key');
const retryHeaders = {
  'Retry-After': header('Seconds to wait before retrying', 'integer'),
  RateLimit: header('The tightest budget: `"<policy>";r=<remaining>;t=<seconds to reset>`'),
  'RateLimit-Policy': header('That budget: `"<policy>";q=<requests>;w=<window seconds>`'),
};

/** A user id in a path: the tenant's own string. */
export const UserIdParam = z.string().min(1).max(200);
const UuidParam = z.uuid();

/** The problem answers a route can give because of what it is, whatever its handler does. */
function sharedProblems(spec: RouteSpec, params: string[]): Record<number, string> {
  const v1 = spec.path.startsWith('/v1/');
  const out: Record<number, string> = {};
  // node:http answers these before any route (connections.ts), whatever the path.
  out[408] = 'request-timeout: the request head or body was not received in time';
  out[431] = 'headers-too-large: the request line and headers are larger than 16 KiB';
  if (v1) {
    out[400] = 'Invalid request: a path, query, header or body value fails validation, or the body is not valid JSON (`errors` lists each)';
    out[401] = 'Missing, invalid, expired or revoked credential';
    out[403] = 'The credential may not do this';
  }
  // An object's id in the path names something that may not exist (or not for this credential).
  if (params.some((p) => !spec.params?.[p])) out[404] = 'Not found';
  // app.ts: the body limit applies to every /v1 request but GET and HEAD, whether the route reads a body or not.
  if (v1 && spec.method !== 'get') out[413] = 'The request body is larger than 64 KiB';
  if (spec.body) out[415] = 'The body is not application/json';
  // The idempotency middleware takes Idempotency-Key on every /v1 POST and PATCH.
  if (v1 && (spec.method === 'post' || spec.method === 'patch')) out[422] = 'idempotency-key-reuse: the Idempotency-Key was used with another request';
  if (!spec.unlimited) {
    out[429] = 'A rate, concurrency or quota limit was hit (the problem names it in `limit`; Retry-After says when to retry)';
    out[503] = 'Overloaded, past a deadline, or the database is unreachable (Retry-After)';
  }
  return out;
}

/** Whether POST/PATCH requests of this route take an Idempotency-Key (app.ts mounts the middleware on /v1/*). */
const takesIdempotencyKey = (spec: RouteSpec) => spec.path.startsWith('/v1/') && (spec.method === 'post' || spec.method === 'patch');

/** Declares a route once: its OpenAPI entry and its handler. */
export function route(app: App, spec: RouteSpec, handler: Handler<AuthEnv>): void {
  const params = [...spec.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  const headers: Record<string, z.ZodType> = {};
  const idempotent = takesIdempotencyKey(spec);
  if (idempotent) headers['Idempotency-Key'] = z.string().max(255).optional().openapi({ description: 'Retries with the same key and body replay the first answer (kept 24 h); another body with the same key is 422.' });
  if (spec.ifMatch) headers['If-Match'] = z.string().openapi({ description: 'The ETag (version) you last read' });
  if (spec.ifNoneMatch) headers['If-None-Match'] = z.string().optional().openapi({ description: 'The ETag of the answer you hold: 304 when it is still current' });

  const responses: Record<string, { description: string; headers?: Record<string, HeaderDoc>; content?: Record<string, { schema: z.ZodType }> }> = {};
  for (const [status, a] of Object.entries(spec.answers)) {
    const ok = Number(status) < 300;
    const h = { ...a.headers, ...(idempotent && ok ? { 'Idempotent-Replayed': REPLAYED } : {}) };
    responses[status] = {
      description: a.description,
      ...(Object.keys(h).length ? { headers: h } : {}),
      ...(a.schema ? { content: { [a.mediaType ?? 'application/json']: { schema: a.schema } } } : {}),
    };
  }
  const shared = sharedProblems(spec, params);
  for (const status of new Set([...Object.keys(shared), ...Object.keys(spec.errors ?? {})].map(Number))) {
    const own = spec.errors?.[status];
    const common = shared[status];
    const description = own && common && own !== common ? `${own}; or ${common}` : (own ?? common)!;
    const retry = status === 429 || status === 503 ? { headers: retryHeaders } : {};
    const existing = responses[status];
    // A status the route also answers without a problem (readiness' 503) lists both media types.
    responses[status] = existing
      ? { ...existing, description: `${existing.description}; or ${description}`, ...retry, content: { ...existing.content, ...problemContent } }
      : { description, ...retry, content: problemContent };
  }

  const config = createRoute({
    method: spec.method,
    path: spec.path,
    tags: [spec.tag],
    summary: spec.summary,
    description: spec.auth === 'none' ? undefined : `Credential: ${spec.auth}.`,
    security: spec.auth === 'none' ? [] : [{ bearer: [] }],
    request: {
      ...(params.length ? { params: z.object(Object.fromEntries(params.map((p) => [p, spec.params?.[p] ?? UuidParam]))) } : {}),
      ...(spec.query ? { query: spec.query as z.ZodObject } : {}),
      ...(Object.keys(headers).length ? { headers: z.object(headers) } : {}),
      ...(spec.body ? { body: { required: spec.bodyRequired ?? true, content: { 'application/json': { schema: spec.body } } } } : {}),
    },
    responses: responses as RouteConfig['responses'],
  });
  app.openAPIRegistry.registerPath(config);
  app.on(spec.method.toUpperCase(), config.getRoutingPath(), handler);
}

const JSON_TYPE = /^application\/([\w.-]+\+)?json$/i;

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

/** A path parameter that must be a UUID (as every `{name}` but the ones a route declares in `params` is documented). */
export function idParam(c: Context, name = 'id'): string {
  const v = c.req.param(name) ?? '';
  if (!UuidParam.safeParse(v).success) {
    throw new DomainError('validation-failed', `${name} must be a UUID`, { errors: [{ path: `path.${name}`, message: 'must be a UUID' }] });
  }
  return v;
}

/** A path parameter that is a user id (1 to 200 characters, as UserIdParam documents). */
export function userIdParam(c: Context, name = 'userId'): string {
  const v = c.req.param(name) ?? '';
  if (!UserIdParam.safeParse(v).success) {
    throw new DomainError('validation-failed', `${name} must be 1 to 200 characters`, { errors: [{ path: `path.${name}`, message: 'must be 1 to 200 characters' }] });
  }
  return v;
}
