/** Renders every error as RFC 9457 problem+json; client mistakes never become a 500. */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ZodError } from 'zod';
import { problem, type ErrorCode, type Problem } from '../../shared/errors';
import { DomainError } from '../core/errors';
import type { Logger } from '../core/ports';
import { lostRace } from '../db/pool';

/** Sends a problem body with its status (and Retry-After when the problem says how long to wait). */
export function sendProblem(c: Context, body: Problem): Response {
  const headers: Record<string, string> = { 'Content-Type': 'application/problem+json' };
  if (typeof body.retryAfter === 'number') headers['Retry-After'] = String(Math.max(1, Math.ceil(body.retryAfter)));
  return c.body(JSON.stringify(body), body.status as 400, headers);
}

/** Zod issues → the `errors` list of a validation problem. */
export function validationProblem(err: ZodError, where?: string): Problem {
  const at = (path: PropertyKey[]) => [where, ...path.map(String)].filter(Boolean).join('.') || '(root)';
  // An unknown field gets an entry of its own, at its own path.
  const errors = err.issues.flatMap((i) =>
    i.code === 'unrecognized_keys' ? i.keys.map((k) => ({ path: at([...i.path, k]), message: 'unknown field' })) : [{ path: at(i.path), message: i.message }],
  );
  return problem('validation-failed', errors.map((e) => `${e.path}: ${e.message}`).join('; '), { errors });
}

/** How deeply request JSON (bodies, socket payloads) may nest. */
export const MAX_JSON_DEPTH = 32;
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
const unstorable = (s: string) => s.includes('\u0000') || LONE_SURROGATE.test(s);

/**
 * What Postgres cannot store verbatim, caught before any query: NUL characters
 * (text and jsonb refuse them), unpaired UTF-16 surrogates (jsonb refuses them,
 * text would silently store U+FFFD instead) and nesting deeper than
 * MAX_JSON_DEPTH (serializing it for jsonb can exhaust the stack). Returns the
 * validation problem, or null when the value is clean.
 */
export function jsonInputProblem(value: unknown, where: string): Problem | null {
  const errors: { path: string; message: string }[] = [];
  const pending: { v: unknown; path: string[] }[] = [{ v: value, path: where ? [where] : [] }];
  while (pending.length && errors.length < 10) {
    const { v, path } = pending.pop()!;
    const at = path.join('.') || '(root)';
    if (typeof v === 'string') {
      if (unstorable(v)) errors.push({ path: at, message: 'must not contain NUL characters or unpaired surrogates' });
    } else if (typeof v === 'object' && v !== null) {
      if (path.length - (where ? 1 : 0) >= MAX_JSON_DEPTH) {
        errors.push({ path: at, message: `nests deeper than ${MAX_JSON_DEPTH} levels` });
        continue;
      }
      for (const [k, child] of Object.entries(v)) {
        if (unstorable(k)) errors.push({ path: at, message: 'keys must not contain NUL characters or unpaired surrogates' });
        else pending.push({ v: child, path: [...path, k] });
      }
    }
  }
  return errors.length ? problem('validation-failed', errors.map((e) => `${e.path}: ${e.message}`).join('; '), { errors }) : null;
}

// Postgres failures that mean "the database is not reachable right now".
const UNAVAILABLE = /^(08|57P0|53)/;
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND']);

/** Maps any thrown value to a problem; logs what is ours to fix. */
export function toProblem(err: unknown, log: Logger): Problem {
  if (err instanceof DomainError) return err.toProblem();
  if (err instanceof ZodError) return validationProblem(err);
  if (err instanceof HTTPException) {
    const byStatus: Record<number, ErrorCode> = { 400: 'malformed-json', 401: 'unauthorized', 403: 'forbidden', 404: 'not-found', 413: 'payload-too-large', 415: 'unsupported-media-type' };
    const code = byStatus[err.status] ?? 'validation-failed';
    return problem(code, err.message || undefined);
  }
  const e = err as { code?: string; message?: string; constraint?: string };
  if (e.code === '23514' && e.constraint === 'slot_no_oversell') return problem('slot-unavailable', 'the seats were taken concurrently');
  // Text the database cannot store (a NUL that came in through a path parameter or a document): the client's input.
  if (e.code === '22021' || e.code === '22P05') return problem('validation-failed', 'a text value contains a character that cannot be stored (such as NUL)');
  // A value of the wrong form or out of range that got past the schemas (an id, a time): still the client's input.
  if (e.code === '22P02' || e.code === '22007' || e.code === '22008' || e.code === '22003') {
    log.warn({ err: e.message }, 'input the schemas let through was refused by Postgres');
    return problem('validation-failed', 'a value in the request is not valid');
  }
  // A statement past statement_timeout was cancelled (its transaction with it): nothing was written.
  if (e.code === '57014') {
    log.warn({ err: e.message }, 'statement cancelled at its deadline');
    return problem('deadline-exceeded', 'the database did not finish the request in time; nothing was changed. Retry, or ask for less', { limit: 'db.statement_timeout', retryAfter: 1 });
  }
  // Lost a deadlock or serialization race after the retries (or inside an Idempotency-Key request, which is
  // not retried): nothing was written, and the same request is expected to succeed when sent again.
  if (lostRace(err)) {
    log.warn({ err: e.message }, 'transaction lost a concurrency race');
    return problem('unavailable', 'the request collided with a concurrent change and was not applied; retry it');
  }
  if ((e.code && (UNAVAILABLE.test(e.code) || NETWORK.has(e.code))) || /timeout exceeded when trying to connect|Connection terminated|not queryable/i.test(e.message ?? '')) {
    log.warn({ err: e.message }, 'database unavailable');
    return problem('unavailable', 'the database is not reachable; retry shortly');
  }
  log.error({ err }, 'unhandled error');
  return problem('internal', 'an unexpected error occurred; it has been logged');
}
