/** Renders every error as RFC 9457 problem+json; client mistakes never become a 500. */
import type { Context } from 'hono';
import { HTTPException } from 'hono/http-exception';
import { problem, type ErrorCode, type Problem } from '../../shared/errors';
import type { Pipeline } from '../core/pipeline';

/** Sends a problem body with its status (and Retry-After when the problem says how long to wait). */
export function sendProblem(c: Context, body: Problem): Response {
  const headers: Record<string, string> = { 'Content-Type': 'application/problem+json' };
  if (typeof body.retryAfter === 'number') headers['Retry-After'] = String(Math.max(1, Math.ceil(body.retryAfter)));
  return c.body(JSON.stringify(body), body.status as 400, headers);
}

/** Maps any thrown value to a problem: Hono's own HTTP errors here, everything else as the pipeline does. */
export function toProblem(err: unknown, pipeline: Pipeline): Problem {
  if (err instanceof HTTPException) {
    const byStatus: Record<number, ErrorCode> = { 400: 'malformed-json', 401: 'unauthorized', 403: 'forbidden', 404: 'not-found', 413: 'payload-too-large', 415: 'unsupported-media-type' };
    const code = byStatus[err.status] ?? 'validation-failed';
    return problem(code, err.message || undefined);
  }
  return pipeline.problem(err);
}
