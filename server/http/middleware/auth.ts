/**
 * Bearer authentication with the protection checks around it: the client's
 * address and its budgets, failed authentications throttled per address,
 * the credential's budget, and admission into the work in progress of its
 * user and tenant. Routes then decide what the principal may do.
 */
import type { HttpBindings } from '@hono/node-server';
import type { Context, MiddlewareHandler } from 'hono';
import { DomainError } from '../../core/errors';
import type { Limits } from '../../core/limits';
import { authorize } from '../../core/pipeline';
import type { CredentialService } from '../../core/services/credentials';
import { clientAddress, RATE_WINDOW_SEC, type ProtectionService, type RequestClass, type Standing } from '../../core/services/protection';
import type { Principal, TenantPrincipal } from '../../core/types';

export type AuthEnv = { Variables: { principal: Principal | null; ip: string }; Bindings: Partial<HttpBindings> };

// The normalized peer address of each connection (IPv4-mapped IPv6 unwrapped and the like), worked out once per
// connection rather than on each of its requests.
const peerAddresses = new WeakMap<object, string>();

/** The address a request counts against (see clientAddress for proxies). */
export function requestAddress(c: Context<AuthEnv>, limits: Limits): string {
  const incoming = c.env?.incoming;
  const forwarded = incoming?.headers['x-forwarded-for'];
  const socket = incoming?.socket;
  // Without a trusted proxy's header the address is the peer's, the same for every request of the connection.
  if (socket && (limits.trustProxy === 0 || forwarded === undefined)) {
    const known = peerAddresses.get(socket);
    if (known !== undefined) return known;
    const peer = socket.remoteAddress;
    const ip = clientAddress(peer, undefined, 0);
    if (peer !== undefined) peerAddresses.set(socket, ip);
    return ip;
  }
  return clientAddress(socket?.remoteAddress, forwarded, limits.trustProxy);
}

/** Writes the RateLimit headers (draft-ietf-httpapi-ratelimit-headers) of the tightest budget on node's response. */
function rateHeaders(c: Context<AuthEnv>, standings: (Standing | null)[]): void {
  const out = c.env?.outgoing;
  let tightest: Standing | null = null;
  for (const s of standings) if (s && (!tightest || s.remaining < tightest.remaining)) tightest = s;
  if (!out || !tightest || out.headersSent) return;
  out.setHeader('RateLimit-Policy', `"${tightest.policy}";q=${tightest.limit};w=${tightest.windowSec}`);
  out.setHeader('RateLimit', `"${tightest.policy}";r=${tightest.remaining};t=${Math.ceil(tightest.resetMs / 1000)}`);
}

/** On a 429 for a budget, the headers say which one is spent. */
function spentHeaders(c: Context<AuthEnv>, err: unknown): void {
  if (!(err instanceof DomainError) || err.code !== 'rate-limited') return;
  const { limit, max, retryAfter } = err.extra as { limit?: string; max?: number; retryAfter?: number };
  if (typeof limit === 'string' && typeof max === 'number') {
    rateHeaders(c, [{ policy: limit.replace(/^rate\./, ''), limit: max, remaining: 0, resetMs: (retryAfter ?? 1) * 1000, windowSec: limit === 'auth-failures.ip' ? 60 : RATE_WINDOW_SEC }]);
  }
}

/**
 * Sets `principal` (null without a credential). An invalid credential is 401
 * at once and counts as a failed authentication of the address; an address
 * past its failures, or any budget spent, is 429; a full node is 503.
 */
export function auth(credentials: CredentialService, protection: ProtectionService, limits: Limits): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const ip = requestAddress(c, limits);
    c.set('ip', ip);
    const cls: RequestClass = c.req.path === '/v1/availability' ? 'availability' : 'api';
    const header = c.req.header('Authorization');
    let release = () => {};
    try {
      // An address past its failed authentications is refused first, from memory, without spending its budget.
      if (header) protection.checkAuthAllowed(ip);
      const m = header ? /^Bearer\s+(\S+)$/i.exec(header) : null;
      const principal = m ? await credentials.authenticate(m[1]!) : null;
      if (header && !principal) {
        await Promise.all([protection.authFailed(ip), protection.admitAddress(ip, cls)]);
        throw new DomainError('unauthorized', 'the credential is not valid, has expired or was revoked');
      }
      c.set('principal', principal);
      // The address's budget and the credential's, counted at once (the rate counters pipeline them to Redis).
      const standings = await protection.admit(ip, principal, cls);
      if (principal) {
        const turn = protection.enter(principal);
        release = turn instanceof Promise ? await turn : turn;
      }
      rateHeaders(c, standings);
    } catch (err) {
      spentHeaders(c, err);
      throw err;
    }
    try {
      await next();
    } finally {
      release();
    }
  };
}

/** Reads (GET, HEAD) that take longer than `ms` are answered 503 deadline-exceeded; writes end with their transaction. */
export function deadline(ms: number): MiddlewareHandler {
  return async (c, next) => {
    if (c.req.method !== 'GET' && c.req.method !== 'HEAD') return next();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DomainError('deadline-exceeded', `the answer took longer than ${ms} ms; retry, or ask for less`, { limit: 'request.deadline', max: ms, retryAfter: 1 })), ms);
    });
    try {
      await Promise.race([next(), late]);
    } finally {
      clearTimeout(timer);
    }
  };
}

/** The admin token, or 401/403. */
export function requireAdmin(c: Context<AuthEnv>): void {
  authorize(c.get('principal'), 'admin');
}

/** A tenant API key, or 401/403. */
export function requireTenantKey(c: Context<AuthEnv>): string {
  return authorize(c.get('principal'), 'tenant').tenantId;
}

/** A tenant key or a user token, or 401/403. */
export function requireTenantOrUser(c: Context<AuthEnv>): TenantPrincipal {
  return authorize(c.get('principal'), 'tenant-or-user');
}
