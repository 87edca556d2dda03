/**
 * What one client may ask of the cluster: request budgets per address, user
 * token and API key (shared by every node), failed authentications per
 * address, work in progress per user and tenant, and live connections per
 * user. HTTP and both live gateways call the same checks, so a limit cannot
 * be dodged by switching transport. docs/security.md lists the defaults.
 */
import { isIPv4, isIPv6 } from 'node:net';
import { LRUCache } from 'lru-cache';
import { DomainError } from '../errors';
import { KeyedLimiter, type Release } from '../admission';
import type { Limits, RateBudget } from '../limits';
import type { RateCounter, RateVerdict } from '../ports';
import type { Principal, TenantPrincipal } from '../types';

/** Availability reads have a budget of their own; everything else is `api`. */
export type RequestClass = 'api' | 'availability';

/** The budget that decided a request, for the RateLimit headers. */
export interface Standing {
  policy: string;
  limit: number;
  remaining: number;
  resetMs: number;
  windowSec: number;
}

/**
 * Budgets are set per minute and counted in windows of RATE_WINDOW_SEC with
 * the matching share (a sixth), so no client can spend a minute's budget in
 * its first second. Failed authentications are counted over a whole minute.
 */
export const RATE_WINDOW_SEC = 10;
/** Slots an availability answer may read for the price of one request; each further thousand costs one more. */
export const SLOTS_PER_REQUEST = 1_000;
const AUTH_WINDOW_SEC = 60;
const AUTH_BUCKET = 'auth-failures';
const bucketOf = (cls: RequestClass, who: keyof RateBudget) => `${cls}.${who}`;
const perWindow = (perMinute: number) => (perMinute <= 0 ? 0 : Math.max(1, Math.ceil((perMinute * RATE_WINDOW_SEC) / 60)));

/** The rate buckets to create for `limits` (name → requests per window). */
export function rateBuckets(limits: Limits): Record<string, { points: number; durationSec: number }> {
  const out: Record<string, { points: number; durationSec: number }> = {};
  for (const cls of ['api', 'availability'] as const) {
    for (const who of ['ip', 'user', 'key'] as const) out[bucketOf(cls, who)] = { points: perWindow(limits.rates[cls][who]), durationSec: RATE_WINDOW_SEC };
  }
  out[AUTH_BUCKET] = { points: limits.rates.authFailuresPerIp, durationSec: AUTH_WINDOW_SEC };
  return out;
}

/**
 * The client's address: the TCP peer, or with `trustProxy` hops of proxies in
 * front, the address the outermost trusted proxy saw (read from the right of
 * X-Forwarded-For, so a client cannot pick its own). IPv4-mapped IPv6 is
 * unwrapped; IPv6 counts per /64, the block one subscriber usually has.
 */
export function clientAddress(peer: string | undefined, forwardedFor: string | string[] | undefined, trustProxy: number): string {
  let ip = peer ?? 'unknown';
  if (trustProxy > 0 && forwardedFor) {
    const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(',') : forwardedFor).split(',').map((s) => s.trim()).filter(Boolean);
    const pick = hops[hops.length - trustProxy];
    if (pick) ip = pick;
  }
  return normalizeAddress(ip);
}

/**
 * One spelling per counted address: brackets, ports and zone ids dropped,
 * IPv4-mapped IPv6 unwrapped, and IPv6 cut to its /64 (expanded first, so
 * `2001:db8::a:b:c:d` and `2001:db8:0:0:a::` are one block).
 */
export function normalizeAddress(raw: string): string {
  let ip = raw.trim().toLowerCase();
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(ip);
  if (bracketed) ip = bracketed[1]!;
  else if (/^\d{1,3}(\.\d{1,3}){3}:\d+$/.test(ip)) ip = ip.slice(0, ip.lastIndexOf(':'));
  ip = ip.split('%')[0]!;
  if (isIPv4(ip)) return ip;
  if (!isIPv6(ip)) return ip.slice(0, 64);
  const groups = expandIPv6(ip);
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`;
  return `${groups.slice(0, 4).map((g) => g.toString(16)).join(':')}::/64`;
}

/** The eight 16-bit groups of a valid IPv6 address (`::` expanded, a trailing dotted quad folded in). */
function expandIPv6(ip: string): number[] {
  const parts = (s: string) => (s === '' ? [] : s.split(':'));
  const [head, tail] = ip.includes('::') ? (ip.split('::') as [string, string]) : [ip, null];
  const h = parts(head);
  const t = tail === null ? [] : parts(tail);
  const last = tail === null ? h : t;
  const quad = last[last.length - 1];
  if (quad?.includes('.')) {
    const [a, b, c, d] = quad.split('.').map(Number) as [number, number, number, number];
    last.splice(last.length - 1, 1, ((a << 8) | b).toString(16), ((c << 8) | d).toString(16));
  }
  const middle = tail === null ? [] : Array<string>(8 - h.length - t.length).fill('0');
  return [...h, ...middle, ...t].map((g) => parseInt(g, 16));
}

/** Who a credential is, as counted by the rate and connection limits. */
function subjectOf(p: TenantPrincipal): { who: 'user' | 'key'; key: string; label: string } {
  return p.kind === 'user'
    ? { who: 'user', key: `${p.tenantId}:${p.userId}`, label: 'user token' }
    : { who: 'key', key: p.keyId, label: 'API key' };
}

const retryAfterOf = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** Builds the protection service. `saturated` tells when the node's database pool queue is past its bound. */
export function protectionService(limits: Limits, counter: RateCounter, saturated: () => boolean = () => false) {
  // Requests of one user or tenant wait at most a second for a turn, and no more of them wait than may run.
  const users = new KeyedLimiter(limits.inflight.user, limits.inflight.user, 1_000);
  const tenants = new KeyedLimiter(limits.inflight.tenant, limits.inflight.tenant, 1_000);
  const sockets = new KeyedLimiter(limits.inflight.socket);
  const sessions = new KeyedLimiter(limits.connections.socketsPerUser);
  /** With the user's turn (or null: refused) in hand, the tenant's; one release for both. */
  function tenantTurn(tenantId: string, user: Release | null): Release | Promise<Release> {
    if (!user) throw tooMany('user', limits.inflight.user);
    const tenant = tenants.acquire(tenantId);
    const joined = (t: Release | null): Release => {
      if (!t) {
        user!();
        throw tooMany('tenant', limits.inflight.tenant);
      }
      return user === NOTHING ? t : () => {
        user!();
        t();
      };
    };
    return tenant instanceof Promise ? tenant.then(joined) : joined(tenant);
  }

  // Addresses past their failed authentications, until when (bounded: one entry an address that failed 30 times).
  const blockedAddresses = new LRUCache<string, number>({ max: 100_000 });

  function refuse(v: RateVerdict, policy: string, what: string): never {
    const retryAfter = retryAfterOf(v.resetMs);
    throw new DomainError('rate-limited', `the ${what} budget of ${v.limit} requests per ${RATE_WINDOW_SEC} s is used up; retry in ${retryAfter} s`, {
      limit: `rate.${policy}`, max: v.limit, retryAfter,
    });
  }

  /** A budget's verdict on a request: throws 429 rate-limited past it, else says how the budget stands. */
  function judged(cls: RequestClass, policy: string, label: string, v: RateVerdict): Standing | null {
    if (!v.allowed) refuse(v, policy, `${cls === 'availability' ? 'availability ' : ''}${label}`);
    return v.limit > 0 ? { policy, limit: v.limit, remaining: v.remaining, resetMs: v.resetMs, windowSec: RATE_WINDOW_SEC } : null;
  }

  /** Takes one request from a budget; throws 429 rate-limited past it, else says how the budget stands. */
  async function spend(cls: RequestClass, who: keyof RateBudget, key: string, label: string): Promise<Standing | null> {
    const policy = bucketOf(cls, who);
    return judged(cls, policy, label, await counter.take(policy, key));
  }

  /** Takes one request of class `cls` from the address's budget; throws 429 rate-limited past it. */
  const admitAddress = (ip: string, cls: RequestClass) => spend(cls, 'ip', ip, 'address');

  /** Takes one request of class `cls` from the credential's budget; throws 429 rate-limited past it. */
  async function admitCredential(p: Principal, cls: RequestClass): Promise<Standing | null> {
    if (p.kind === 'admin') return null;
    const s = subjectOf(p);
    return spend(cls, s.who, s.key, s.label);
  }

  function enterSession(p: TenantPrincipal): void {
    if (p.kind !== 'user') return;
    if (!sessions.tryTake(sessionKey(p))) {
      throw new DomainError('too-many-connections', `a user token may keep ${limits.connections.socketsPerUser} live connections open on one node`, {
        limit: 'sockets.user', max: limits.connections.socketsPerUser, retryAfter: 5,
      });
    }
  }

  function closeSession(p: TenantPrincipal): void {
    if (p.kind === 'user') sessions.give(sessionKey(p));
  }

  return {
    /**
     * Refuses a credential from an address that failed authentication too
     * often (429, before any lookup). Answered from this node's memory: the
     * failures are counted cluster-wide (authFailed), and a node blocks an
     * address once a count it took says so, so the path every request takes
     * costs no Redis call.
     */
    checkAuthAllowed(ip: string): void {
      const until = blockedAddresses.get(ip);
      if (until === undefined) return;
      const wait = until - Date.now();
      if (wait <= 0) return void blockedAddresses.delete(ip);
      const retryAfter = retryAfterOf(wait);
      throw new DomainError('rate-limited', `too many failed authentications from this address (${limits.rates.authFailuresPerIp} per minute); retry in ${retryAfter} s`, {
        limit: 'auth-failures.ip', max: limits.rates.authFailuresPerIp, retryAfter,
      });
    },

    /** Counts a failed authentication from `ip` (in every node's count); past the budget, this node refuses the address until the window ends. */
    async authFailed(ip: string): Promise<void> {
      const v = await counter.take(AUTH_BUCKET, ip);
      if (!v.allowed) blockedAddresses.set(ip, Date.now() + v.resetMs);
    },

    admitAddress,
    admitCredential,

    /**
     * Takes one request of class `cls` from the address's budget and the
     * credential's (if any) in one count (one Redis call); throws 429 past
     * either, the address's first. Says how both stand (null: no budget).
     */
    async admit(ip: string, p: Principal | null, cls: RequestClass): Promise<(Standing | null)[]> {
      const s = p && p.kind !== 'admin' ? subjectOf(p) : null;
      const takes = [{ bucket: bucketOf(cls, 'ip'), key: ip, label: 'address' }];
      if (s) takes.push({ bucket: bucketOf(cls, s.who), key: s.key, label: s.label });
      const verdicts = await counter.takeMany(takes);
      const standings = takes.map((t, i) => judged(cls, t.bucket, t.label, verdicts[i]!));
      return [standings[0]!, standings[1] ?? null];
    },

    /**
     * Charges work already done to the budgets of the address and the
     * credential: `points` more requests' worth (an availability answer costs
     * one more per 1,000 slots it read). Never refuses; the next request does.
     */
    async charge(ip: string, p: Principal, cls: RequestClass, points: number): Promise<void> {
      if (points < 1) return;
      const n = Math.floor(points);
      const s = p.kind === 'admin' ? null : subjectOf(p);
      await counter.takeMany([{ bucket: bucketOf(cls, 'ip'), key: ip, points: n }, ...(s ? [{ bucket: bucketOf(cls, s.who), key: s.key, points: n }] : [])]);
    },

    /**
     * Admits one request into the work in progress of its user and tenant on
     * this node (waiting up to a second for a turn); throws 429
     * too-many-concurrent, or 503 overloaded when the database queue is full.
     */
    enter(p: Principal): Release | Promise<Release> {
      if (saturated()) throw new DomainError('overloaded', 'the server is at capacity; retry shortly', { limit: 'db.queue', retryAfter: 1 });
      if (p.kind === 'admin') return NOTHING;
      // The user's turn first, then the tenant's: a request never holds a tenant slot while it waits for its
      // user's, so one user firing many requests cannot starve the rest of the tenant.
      const user = p.kind === 'user' ? users.acquire(`${p.tenantId}:${p.userId}`) : NOTHING;
      // Usually both are free at once: no promise, no await on the path every request takes.
      if (!(user instanceof Promise)) return tenantTurn(p.tenantId, user);
      return user.then((u) => tenantTurn(p.tenantId, u));
    },

    /** A turn for one command of a live connection (no queue: the client is firing without waiting); throws 429. */
    enterSocket(socketId: string): Release {
      const r = sockets.acquire(socketId) as Release | null;
      if (!r) throw tooMany('socket', limits.inflight.socket);
      return r;
    },

    /** Registers a live connection (Socket.IO or Yjs) of `p` on this node; throws 429 too-many-connections past the per-user cap. */
    openSession(p: TenantPrincipal): Release {
      if (p.kind !== 'user') return NOTHING;
      enterSession(p);
      let left = false;
      return () => {
        if (left) return;
        left = true;
        closeSession(p);
      };
    },

    /** `openSession` for a caller that ends it with `closeSession(p)`, once (no release closure kept per connection). */
    enterSession,
    /** Ends a live connection counted by `enterSession`. */
    closeSession,
  };
}

const sessionKey = (p: Extract<TenantPrincipal, { kind: 'user' }>) => `${p.tenantId}:${p.userId}`;

const NOTHING: Release = () => {};

function tooMany(scope: 'user' | 'tenant' | 'socket', max: number): DomainError {
  const whose = scope === 'socket' ? 'one connection' : scope === 'user' ? 'one user token' : 'one tenant';
  return new DomainError('too-many-concurrent', `${whose} may have ${max} requests in progress at once on a node; wait for an answer before sending more`, {
    limit: `inflight.${scope}`, max, retryAfter: 1,
  });
}

export type ProtectionService = ReturnType<typeof protectionService>;
