/** Renders every error as RFC 9457 problem+json; client mistakes never become a 500. */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { ZodError } from 'zod';
import { problem, type ErrorCode, type Problem } from '../../shared/errors';
import { DomainError } from '../core/errors';
import type { Logger } from '../core/ports';

/** Sends a problem body with its status. */
export function sendProblem(c: Context, body: Problem): Response {
  return c.body(JSON.stringify(body), body.status as 400, { 'Content-Type': 'application/problem+json' });
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
  if ((e.code && (UNAVAILABLE.test(e.code) || NETWORK.has(e.code))) || /timeout exceeded when trying to connect|Connection terminated/i.test(e.message ?? '')) {
    log.warn({ err: e.message }, 'database unavailable');
    return problem('unavailable', 'the database is not reachable; retry shortly');
  }
  log.error({ err }, 'unhandled error');
  return problem('internal', 'an unexpected error occurred; it has been logged');
}
