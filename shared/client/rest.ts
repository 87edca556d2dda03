/**
 * REST over the types generated from /openapi.json (`npm run client:types`):
 * openapi-fetch with the bearer credential, and every answer's Date header
 * read into the client's ServerClock.
 */
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { Problem } from '../errors';
import type { ServerClock } from './clock';
import type { components, paths } from './openapi';

export type { components, paths } from './openapi';
/** The API's named schemas (`Schemas['Hold']`, `Schemas['Booking']`, …). */
export type Schemas = components['schemas'];
export type RestClient = Client<paths>;

export interface RestOptions {
  /** The server's origin, e.g. http://localhost:3000 ('' in a browser page served by the server). */
  baseUrl: string;
  /** The credential: an API key, a user token or the admin token; a function is asked on every request. */
  token?: string | (() => string | null | undefined);
  clock?: ServerClock;
  fetch?: typeof globalThis.fetch;
}

const sentAt = new WeakMap<Request, number>();

/** A typed REST client: `rest.POST('/v1/holds', { body })` answers `{ data, error, response }`. */
export function createRestClient(opts: RestOptions): RestClient {
  const rest = createClient<paths>({ baseUrl: opts.baseUrl, fetch: opts.fetch });
  const middleware: Middleware = {
    onRequest({ request }) {
      const token = typeof opts.token === 'function' ? opts.token() : opts.token;
      if (token) request.headers.set('Authorization', `Bearer ${token}`);
      sentAt.set(request, Date.now());
      return request;
    },
    onResponse({ request, response }) {
      const sent = sentAt.get(request);
      if (sent !== undefined) opts.clock?.sampleDateHeader(response.headers.get('Date'), sent, Date.now());
      return response;
    },
  };
  rest.use(middleware);
  return rest;
}

/** The problem+json of a failed call, or a generic one when the answer had none (a network error, a proxy's page). */
export function problemOf(error: unknown, status = 0): Problem {
  if (error && typeof error === 'object' && typeof (error as Problem).code === 'string') return error as Problem;
  return { type: 'about:blank', title: 'Request failed', status, detail: status ? `the server answered ${status}` : 'the server could not be reached', code: status ? 'internal' : 'unavailable' };
}

/** The data of a call, or throws an ApiError carrying the problem. */
export async function must<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await call;
  if (response.ok && data !== undefined) return data;
  throw new ApiError(problemOf(error, response.status));
}

/** A refused call: `problem` is the server's problem+json. */
export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(`${problem.status} ${problem.code}: ${problem.detail}`);
    this.name = 'ApiError';
  }
}
