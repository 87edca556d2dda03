/**
 * The one way a command goes through the server, whichever edge carries it
 * (REST or Socket.IO): parse → authorize → run at most once per
 * Idempotency-Key → a result, or a problem. The edges only translate: HTTP
 * bodies and status codes, socket payloads and acks.
 */
import { createHash } from 'node:crypto';
import type { z } from 'zod';
import { ZodError } from 'zod';
import { problem, type Problem } from '../../shared/errors';
import type { Command } from './commands';
import { DomainError } from './errors';
import type { Logger } from './ports';
import type { Store } from './store';
import type { Principal, TenantPrincipal } from './types';

// ---- parse

/** Zod issues → the `errors` list of a validation problem (paths prefixed by `where`: body, query, …). */
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
 * What the store cannot keep verbatim, caught before any query: NUL characters
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

const invalid = (p: Problem) => new DomainError('validation-failed', p.detail, { errors: p.errors });

/** A validation problem as the error the pipeline throws. */
export const validationError = (err: ZodError, where?: string) => invalid(validationProblem(err, where));

/** Checks what the store cannot keep, then the schema; throws 400 validation-failed with every path (under `where`). */
export function parseInput<T extends z.ZodType>(schema: T, value: unknown, where = ''): z.output<T> {
  const unstorableInput = jsonInputProblem(value, where);
  if (unstorableInput) throw invalid(unstorableInput);
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw validationError(parsed.error, where);
  return parsed.data;
}

// ---- authorize

/** Who may run a command. */
export type Audience = 'admin' | 'tenant' | 'tenant-or-user';

/** The principal when it is of the audience, else 401 (no credential) or 403. */
export function authorize(p: Principal | null | undefined, audience: 'admin'): Principal;
export function authorize(p: Principal | null | undefined, audience: 'tenant'): Extract<Principal, { kind: 'tenant' }>;
export function authorize(p: Principal | null | undefined, audience: 'tenant-or-user'): TenantPrincipal;
export function authorize(p: Principal | null | undefined, audience: Audience): Principal {
  if (!p) throw new DomainError('unauthorized', 'send Authorization: Bearer <credential>');
  if (audience === 'admin' && p.kind !== 'admin') throw new DomainError('forbidden', 'this route needs the admin token');
  if (audience === 'tenant' && p.kind !== 'tenant') throw new DomainError('forbidden', 'this route needs a tenant API key');
  if (audience === 'tenant-or-user' && p.kind === 'admin') throw new DomainError('forbidden', 'this route needs a tenant API key or a user token');
  return p;
}

// ---- run once per Idempotency-Key

/** What a command answered, as the edge stores and replays it. */
export interface Outcome {
  status: number;
  headers: Record<string, string>;
  body: string;
}

const KEY = /^[\x21-\x7e]{1,255}$/;

/** The scope keys live in: one credential's keys never collide with another's. */
export const idempotencyScope = (p: Principal | null | undefined) =>
  !p ? 'anonymous' : p.kind === 'admin' ? 'admin' : p.kind === 'tenant' ? `tenant:${p.tenantId}` : `user:${p.tenantId}:${p.userId}`;

/** A fingerprint of what was asked, so a reused key with another request is caught. */
export const fingerprintOf = (...parts: string[]) => createHash('sha256').update(parts.join('\n')).digest('hex');

/** Throws a 400 unless the key is 1–255 visible ASCII characters (`path`: where the client sent it). */
export function checkKey(key: string, path: string): void {
  if (!KEY.test(key)) {
    throw new DomainError('validation-failed', 'Idempotency-Key must be 1 to 255 visible ASCII characters', {
      errors: [{ path, message: 'must be 1 to 255 visible ASCII characters' }],
    });
  }
}

// ---- the pipeline

export interface Pipeline {
  /** Authorizes, parses (`where`: where the input came from, for error paths) and runs a command. */
  run<S extends z.ZodType, O>(cmd: Command<S, O>, p: Principal | null | undefined, input: unknown, where: string, target?: string): Promise<O>;
  /** Parses `value` with the schema (see parseInput). */
  parse: typeof parseInput;
  /** The principal when it is of the audience, else 401/403. */
  authorize: typeof authorize;
  /**
   * Runs `work` at most once per (credential, key). The key is claimed inside
   * the same transaction as the work (every store transaction inside `work`
   * joins it), so the stored outcome and the change commit together: a
   * concurrent duplicate waits on the key and then replays, and a failed
   * attempt (status ≥ 400) leaves nothing behind.
   */
  once(p: Principal | null | undefined, key: string, fingerprint: string, work: () => Promise<Outcome>): Promise<{ outcome: Outcome; replayed: boolean }>;
  /** Any thrown value as the problem a client gets; what is ours to fix is logged. */
  problem(err: unknown): Problem;
  /**
   * A command from an edge that answers `{ok, data}` / `{ok: false, error}`
   * (Socket.IO acks): runs `run` once per `key` when one is given, and never
   * throws.
   */
  answer(p: Principal, name: string, key: string | undefined, input: unknown, run: () => Promise<unknown>): Promise<Answer>;
}

/** What an acknowledging edge sends back. */
export type Answer = { ok: true; data: unknown } | { ok: false; error: Problem };

/** Builds the pipeline over the store (idempotency records, and what its failures mean). */
export function commandPipeline({ store, log }: { store: Store; log: Logger }): Pipeline {
  function toProblem(err: unknown): Problem {
    if (err instanceof DomainError) return err.toProblem();
    if (err instanceof ZodError) return validationProblem(err);
    const stored = store.explain(err, log);
    if (stored) return stored;
    log.error({ err }, 'unhandled error');
    return problem('internal', 'an unexpected error occurred; it has been logged');
  }

  async function once(p: Principal | null | undefined, key: string, fingerprint: string, work: () => Promise<Outcome>) {
    const scope = idempotencyScope(p);
    return store.ambient<{ outcome: Outcome; replayed: boolean }>(async (t) => {
      const existing = await t.idempotency.claim(scope, key, fingerprint);
      if (existing) {
        if (existing.fingerprint !== fingerprint) throw new DomainError('idempotency-key-reuse', 'this Idempotency-Key was used with a different request');
        const outcome = { status: existing.status ?? 200, headers: existing.headers ?? {}, body: existing.body ?? '' };
        return { commit: false, value: { outcome, replayed: true } };
      }
      const outcome = await work();
      if (outcome.status >= 400) return { commit: false, value: { outcome, replayed: false } };
      await t.idempotency.complete(scope, key, outcome.status, outcome.headers, outcome.body);
      return { commit: true, value: { outcome, replayed: false } };
    });
  }

  return {
    async run(cmd, p, input, where, target = '') {
      const principal = authorize(p, cmd.audience);
      return cmd.run(principal, parseInput(cmd.input, input, where), target);
    },
    parse: parseInput,
    authorize,
    once,
    problem: toProblem,
    async answer(p, name, key, input, run) {
      try {
        if (key === undefined) return { ok: true, data: await run() };
        const { outcome } = await once(p, key, fingerprintOf(name, JSON.stringify(input)), async () => {
          try {
            return { status: 200, headers: {}, body: JSON.stringify({ ok: true, data: await run() }) };
          } catch (err) {
            const error = toProblem(err);
            return { status: error.status, headers: {}, body: JSON.stringify({ ok: false, error }) };
          }
        });
        return JSON.parse(outcome.body) as Answer;
      } catch (err) {
        return { ok: false, error: toProblem(err) };
      }
    },
  };
}
