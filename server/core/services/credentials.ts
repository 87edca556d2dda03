/**
 * Credentials: authenticating bearer credentials, tenant API keys (create,
 * list, rotate with an overlap, revoke) and user tokens (issue, revoke one,
 * revoke all of a user's). A revocation reaches every node within a second
 * through the cluster channel (and within POLL_MS from Postgres when the
 * channel lost it), and live connections watching a credential (`watch`) are
 * told when it is revoked or expires, so nothing keeps working past its end.
 */
import type { ApiKeyRow, Unit } from '../store';
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import type { ApiKey } from '../../../shared/schemas';
import { DomainError, notFound } from '../errors';
import type { CoreDeps } from '../ports';
import type { Principal, TenantPrincipal } from '../types';
import { CredentialCache } from './credential-cache';
import { decodeCursor, encodeCursor } from './cursor';

export const KEY_PREFIX = 'sw_';
const CHANNEL = 'credentials';
const DEFAULT_TOKEN_TTL = 3600;
/** How long a key lookup is trusted while the cluster channel carries revocations, and while it does not. */
const KEY_CACHE_MS = 30_000;
const KEY_CACHE_UNSURE_MS = 1_000;
/**
 * How often Postgres is read for revocations the channel may have lost (a
 * publish that failed, a node whose subscriber was reconnecting), and how far
 * back each read looks: two indexed reads a second per node keep "revoked
 * everywhere within a second" true without the channel too.
 */
const POLL_MS = 1_000;
const POLL_OVERLAP_MS = 30_000;
const MAX_LIVE_KEYS = 100;
const DEFAULT_OVERLAP_SECONDS = 3_600;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** SHA-256 of a credential: what is stored and compared. */
export const hashKey = (key: string) => createHash('sha256').update(key).digest();
/** A fresh random secret of `bytes` bytes, URL-safe. */
export const randomSecret = (bytes = 32) => randomBytes(bytes).toString('base64url');

/** Why a watched credential stopped working. */
export type SessionEnd = 'expired' | 'revoked';

/** Told once when the credential it follows stops working (see `follow`). */
export interface CredentialWatcher {
  credentialEnded(why: SessionEnd): void;
}
type Listener = ((why: SessionEnd) => void) | CredentialWatcher;

interface Watched {
  endsAt: number | null;
  timer: NodeJS.Timeout | null;
  listeners: Set<Listener>;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
const keyView = (k: ApiKeyRow): ApiKey => ({ id: k.id, name: k.name, prefix: k.prefix, createdAt: iso(k.createdAt)!, expiresAt: iso(k.expiresAt), revokedAt: iso(k.revokedAt) });
const watchKey = (p: TenantPrincipal) => (p.kind === 'user' ? `t:${p.tokenId}` : `k:${p.keyId}`);

/** Builds the credential service. `adminToken` and `jwtSecret` come from config or the settings table. */
export function credentialService({ store, cluster, log }: CoreDeps, secrets: { adminToken: string; jwtSecret: string }) {
  const jwtKey = new TextEncoder().encode(secrets.jwtSecret);
  const adminHash = hashKey(secrets.adminToken);
  // Key lookups are on every request: a short cache spares the round trip. A verified token means the same
  // thing until it expires or is revoked: verifying an HMAC through WebCrypto on every request showed in profiles.
  const cache = new CredentialCache({ keyTtlMs: KEY_CACHE_MS });
  /** When each revoked or rotated key stops (or stopped) working. */
  const keyEnds = new Map<string, number>();
  /** Revoked tokens, with their own expiry (after which they need no remembering). */
  const revokedTokens = new Map<string, number>();
  const watched = new Map<string, Watched>();
  /** Listeners of credentials already ended when they were followed: told on the next turn unless they unfollow first. */
  const endingSoon = new Set<Listener>();
  let pollTimer: NodeJS.Timeout | null = null;
  let lastPoll: Date | null = null;
  let unsubscribe: (() => Promise<void>) | null = null;
  let offReconnect: (() => void) | null = null;

  const endOfKey = (p: Extract<Principal, { kind: 'tenant' }>) => {
    const ended = keyEnds.get(p.keyId);
    return ended === undefined ? p.expiresAt : p.expiresAt === null ? ended : Math.min(ended, p.expiresAt);
  };
  const endOf = (p: TenantPrincipal) => (p.kind === 'user' ? p.expiresAt : endOfKey(p));

  /** True while the principal's credential works: not expired, not revoked. */
  function isLive(p: Principal, now = Date.now()): boolean {
    if (p.kind === 'admin') return true;
    if (p.kind === 'user' && revokedTokens.has(p.tokenId)) return false;
    const end = endOf(p);
    return end === null || end > now;
  }

  function arm(k: string, w: Watched): void {
    if (w.timer) clearTimeout(w.timer);
    w.timer = null;
    if (w.endsAt === null) return;
    const delay = w.endsAt - Date.now();
    // Never synchronously: a watch being set up may still be adding its listener.
    if (delay <= 0) return void setImmediate(() => end(k, 'expired'));
    w.timer = setTimeout(() => arm(k, w), Math.min(delay, MAX_TIMER_MS));
    w.timer.unref();
  }

  function end(k: string, why: SessionEnd): void {
    const w = watched.get(k);
    if (!w) return;
    watched.delete(k);
    if (w.timer) clearTimeout(w.timer);
    for (const fn of w.listeners) tell(fn, why);
  }

  function tell(fn: Listener, why: SessionEnd): void {
    try {
      if (typeof fn === 'function') fn(why);
      else fn.credentialEnded(why);
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'ending a session failed');
    }
  }

  function follow(p: TenantPrincipal, l: Listener): void {
    if (!isLive(p)) {
      endingSoon.add(l);
      setImmediate(() => {
        if (endingSoon.delete(l)) tell(l, 'expired');
      });
      return;
    }
    const k = watchKey(p);
    let w = watched.get(k);
    if (!w) {
      w = { endsAt: endOf(p), timer: null, listeners: new Set() };
      watched.set(k, w);
      arm(k, w);
    }
    w.listeners.add(l);
  }

  function unfollow(p: TenantPrincipal, l: Listener): void {
    endingSoon.delete(l);
    const k = watchKey(p);
    const w = watched.get(k);
    // A listener of an entry that has ended (and perhaps been replaced) is in no entry any more.
    if (!w || !w.listeners.delete(l)) return;
    if (w.listeners.size === 0) {
      if (w.timer) clearTimeout(w.timer);
      watched.delete(k);
    }
  }

  /** A key stops working at `endsAt`: forget cached lookups and tell its sessions. */
  function keyEnded(keyId: string, endsAt: number): void {
    keyEnds.set(keyId, Math.min(endsAt, keyEnds.get(keyId) ?? Infinity));
    cache.forgetKey(keyId);
    const w = watched.get(`k:${keyId}`);
    if (!w) return;
    if (endsAt <= Date.now()) return end(`k:${keyId}`, 'revoked');
    w.endsAt = w.endsAt === null ? endsAt : Math.min(w.endsAt, endsAt);
    arm(`k:${keyId}`, w);
  }

  function tokensRevoked(tokens: { id: string; expiresAt: number }[]): void {
    for (const t of tokens) {
      revokedTokens.set(t.id, t.expiresAt);
      end(`t:${t.id}`, 'revoked');
    }
  }

  /** Applies a revocation here and tells the other nodes (they also find it in Postgres within POLL_MS). */
  async function announce(type: 'key-ended' | 'tokens-revoked', payload: unknown): Promise<void> {
    apply(type, payload);
    await cluster?.publish(CHANNEL, type, payload).catch((err) => log.warn({ err: (err as Error).message }, 'revocation not broadcast; other nodes read it from Postgres'));
  }

  function apply(type: string, payload: unknown): void {
    const p = payload as Record<string, unknown> | null;
    if (type === 'key-ended' && typeof p?.keyId === 'string' && typeof p.endsAt === 'number') keyEnded(p.keyId, p.endsAt);
    else if (type === 'tokens-revoked' && Array.isArray(p?.tokens)) tokensRevoked(p.tokens as { id: string; expiresAt: number }[]);
  }

  /** Reads what was revoked since the last poll (with an overlap for transactions that committed late). */
  async function poll(): Promise<void> {
    const now = await store.primary.userTokens.now();
    const since = lastPoll ? new Date(lastPoll.getTime() - POLL_OVERLAP_MS) : new Date(0);
    tokensRevoked(await store.primary.userTokens.revokedSince(since));
    for (const k of await store.primary.apiKeys.changedSince(lastPoll ? since : new Date(now.getTime() - POLL_OVERLAP_MS))) keyEnded(k.id, k.endsAt);
    lastPoll = now;
    const t = Date.now();
    for (const [id, exp] of revokedTokens) if (exp < t) revokedTokens.delete(id);
    for (const [id, at] of keyEnds) if (at < t - 86_400_000) keyEnds.delete(id);
  }

  async function lookupKey(hash: Buffer): Promise<Principal | null> {
    const cacheKey = hash.toString('hex');
    const hit = cache.key(cacheKey);
    if (hit !== undefined) return hit && isLive(hit) ? hit : null;
    const row = await store.primary.apiKeys.byHash(hash);
    const principal = row ? { kind: 'tenant' as const, tenantId: row.tenantId, keyId: row.id, expiresAt: row.expiresAt } : null;
    // While the cluster channel is down, revocations from other nodes arrive only through the poll: trust a lookup briefly.
    cache.rememberKey(cacheKey, principal, cluster && !cluster.healthy() ? KEY_CACHE_UNSURE_MS : KEY_CACHE_MS);
    return principal && isLive(principal) ? principal : null;
  }

  async function verifyToken(credential: string): Promise<Principal | null> {
    try {
      const { payload } = await jwtVerify(credential, jwtKey, { issuer: 'slotwise', algorithms: ['HS256'], requiredClaims: ['exp', 'jti', 'sub'] });
      if (typeof payload.tid !== 'string' || typeof payload.sub !== 'string' || typeof payload.jti !== 'string' || typeof payload.exp !== 'number') return null;
      const role: 'member' | 'organizer' = payload.role === 'organizer' ? 'organizer' : 'member';
      const principal = {
        kind: 'user' as const, tenantId: payload.tid, userId: payload.sub, name: String(payload.name ?? payload.sub), role, tokenId: payload.jti, expiresAt: payload.exp * 1000,
      };
      if (!isLive(principal)) return null;
      cache.rememberToken(credential, principal);
      return principal;
    } catch {
      return null;
    }
  }

  /** Creates a key inside the caller's transaction; the secret is returned only here. */
  async function createKeyIn(q: Unit, tenantId: string, name: string) {
    const apiKey = KEY_PREFIX + randomSecret();
    const row = await q.apiKeys.insert(tenantId, hashKey(apiKey), apiKey.slice(0, 7), name);
    return { row, apiKey };
  }

  return {
    isLive,

    /** Resolves a bearer credential to a principal, or null when it is not valid (unknown, expired or revoked). */
    async authenticate(credential: string): Promise<Principal | null> {
      if (!credential) return null;
      const known = cache.token(credential);
      if (known) return isLive(known) ? known : null;
      const hash = hashKey(credential);
      if (timingSafeEqual(hash, adminHash)) return { kind: 'admin' };
      if (credential.startsWith(KEY_PREFIX)) return lookupKey(hash);
      if (credential.split('.').length === 3) return verifyToken(credential);
      return null;
    },

    /**
     * Calls `onEnd` once when the principal's credential is revoked or expires
     * (at once, asynchronously, if it already has); returns how to stop watching.
     */
    watch(p: TenantPrincipal, onEnd: (why: SessionEnd) => void): () => void {
      follow(p, onEnd);
      return () => unfollow(p, onEnd);
    },

    /**
     * `watch` for a caller that keeps an object per connection: tells
     * `watcher.credentialEnded` once, until `unfollow(p, watcher)`. No closure
     * is kept per watcher (an idle connection's memory is the node's).
     */
    follow(p: TenantPrincipal, watcher: CredentialWatcher): void {
      follow(p, watcher);
    },
    unfollow(p: TenantPrincipal, watcher: CredentialWatcher): void {
      unfollow(p, watcher);
    },

    /** Signs a user token for browsers, recording its id so it can be revoked. */
    async issueToken(tenantId: string, user: { userId: string; name: string; role: 'member' | 'organizer'; ttlSeconds?: number }) {
      const id = randomUUID();
      const exp = Math.floor(Date.now() / 1000) + (user.ttlSeconds ?? DEFAULT_TOKEN_TTL);
      await store.tx(async (q) => {
        await q.userTokens.insert({ id, tenantId, userId: user.userId, expiresAt: exp * 1000 });
        await q.events.append(tenantId, 'token.issued', [], { token: { id, userId: user.userId, expiresAt: iso(exp * 1000) } });
      });
      const token = await new SignJWT({ tid: tenantId, name: user.name, role: user.role })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(user.userId)
        .setJti(id)
        .setIssuer('slotwise')
        .setIssuedAt()
        .setExpirationTime(exp)
        .sign(jwtKey);
      return { token, id, expiresAt: iso(exp * 1000)! };
    },

    /** Revokes one user token everywhere (idempotent); 404 when the tenant issued none with that id. */
    async revokeToken(tenantId: string, id: string) {
      const row = await store.tx(async (q) => {
        const r = await q.userTokens.revoke(tenantId, id);
        if (!r) throw notFound(`token ${id}`);
        if (r.fresh) await q.events.append(tenantId, 'token.revoked', [], { token: { id: r.id, userId: r.userId } });
        return r;
      });
      await announce('tokens-revoked', { tokens: [{ id: row.id, expiresAt: row.expiresAt }] });
      return { id: row.id, userId: row.userId, expiresAt: iso(row.expiresAt)!, revokedAt: iso(row.revokedAt)! };
    },

    /** Revokes every live token of a user everywhere, cutting off their live connections. */
    async revokeUserTokens(tenantId: string, userId: string) {
      const tokens = await store.tx(async (q) => {
        const ids = await q.userTokens.revokeUser(tenantId, userId);
        if (ids.length) await q.events.append(tenantId, 'token.revoked', [], { userId, tokenIds: ids.map((t) => t.id) });
        return ids;
      });
      if (tokens.length) await announce('tokens-revoked', { tokens });
      return { userId, revoked: tokens.map((t) => t.id) };
    },

    /** Creates another API key for the tenant (shown once). */
    async createKey(tenantId: string, name = 'default') {
      const { row, apiKey } = await store.tx(async (q) => {
        if ((await q.apiKeys.lastingCount(tenantId)) >= MAX_LIVE_KEYS) {
          throw new DomainError('limit-exceeded', `a tenant may have ${MAX_LIVE_KEYS} live API keys; revoke one first`, { limit: 'api-keys.tenant', max: MAX_LIVE_KEYS });
        }
        const made = await createKeyIn(q, tenantId, name);
        await q.events.append(tenantId, 'api-key.created', [], { apiKey: keyView(made.row) });
        return made;
      });
      return { ...keyView(row), apiKey };
    },

    /** A page of the tenant's keys (never the secrets). */
    async listKeys(tenantId: string, cursor: string | undefined, limit: number) {
      const rows = await store.primary.apiKeys.page(tenantId, decodeCursor(cursor), limit + 1);
      const items = rows.slice(0, limit);
      return { items: items.map(keyView), nextCursor: rows.length > limit ? encodeCursor(items[items.length - 1]!) : null };
    },

    /** Issues a replacement key; the old one keeps working for `overlapSeconds` (0: stops at once). */
    async rotateKey(tenantId: string, id: string, overlapSeconds = DEFAULT_OVERLAP_SECONDS) {
      const { old, made } = await store.tx(async (q) => {
        const current = await q.apiKeys.get(tenantId, id, true);
        if (!current) throw notFound(`API key ${id}`);
        if (current.revokedAt !== null || (current.expiresAt !== null && current.expiresAt <= Date.now())) {
          throw new DomainError('api-key-inactive', `API key ${id} is revoked or expired; rotate a live key`);
        }
        const next = await createKeyIn(q, tenantId, current.name);
        const ended = overlapSeconds === 0 ? await q.apiKeys.revoke(id) : await q.apiKeys.expireIn(id, overlapSeconds);
        await q.events.append(tenantId, 'api-key.rotated', [], { apiKey: keyView(ended), replacement: keyView(next.row) });
        return { old: ended, made: next };
      });
      await announce('key-ended', { keyId: old.id, endsAt: old.revokedAt ?? old.expiresAt });
      return { ...keyView(made.row), apiKey: made.apiKey };
    },

    /** Revokes a key at once, everywhere (idempotent); 409 when it is the tenant's last live key. */
    async revokeKey(tenantId: string, id: string) {
      const row = await store.tx(async (q) => {
        const current = await q.apiKeys.get(tenantId, id, true);
        if (!current) throw notFound(`API key ${id}`);
        if (current.revokedAt !== null) return current;
        // A key rotated away (expiring) does not count: after its overlap the tenant would have none.
        if ((await q.apiKeys.lastingCount(tenantId, id)) === 0) {
          throw new DomainError('last-api-key', 'this is the tenant\'s last lasting API key (the others are revoked or expiring): create or rotate to another one first');
        }
        const revoked = await q.apiKeys.revoke(id);
        await q.events.append(tenantId, 'api-key.revoked', [], { apiKey: keyView(revoked) });
        return revoked;
      });
      await announce('key-ended', { keyId: row.id, endsAt: row.revokedAt });
      return keyView(row);
    },

    /** Starts following revocations: the cluster channel, and Postgres every POLL_MS (and after the channel comes back). */
    async start(): Promise<void> {
      await poll();
      unsubscribe = (await cluster?.subscribe(CHANNEL, (env) => apply(env.type, env.payload))) ?? null;
      offReconnect = cluster?.onReconnect?.(() => {
        cache.forgetKeys();
        void poll().catch((err) => log.warn({ err: (err as Error).message }, 'revocation poll failed'));
      }) ?? null;
      pollTimer = setInterval(() => void poll().catch((err) => log.warn({ err: (err as Error).message }, 'revocation poll failed')), POLL_MS);
      pollTimer.unref();
    },

    /** Stops following revocations and every expiry timer. */
    async stop(): Promise<void> {
      if (pollTimer) clearInterval(pollTimer);
      offReconnect?.();
      await unsubscribe?.().catch(() => {});
      for (const w of watched.values()) if (w.timer) clearTimeout(w.timer);
      watched.clear();
    },
  };
}

export type CredentialService = ReturnType<typeof credentialService>;
