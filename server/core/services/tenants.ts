/** Tenants and credentials: admin token, hashed tenant API keys, signed user tokens. */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { jwtVerify, SignJWT } from 'jose';
import { eventRepository } from '../../db/repositories/events';
import { settingsRepository, tenantRepository } from '../../db/repositories/tenants';
import type { CoreDeps } from '../ports';
import type { Principal } from '../types';
import { CredentialCache } from './credential-cache';

const KEY_PREFIX = 'sw_';
const DEFAULT_TOKEN_TTL = 3600;

const hashKey = (key: string) => createHash('sha256').update(key).digest();

/** A fresh random secret of `bytes` bytes, URL-safe. */
export const randomSecret = (bytes = 32) => randomBytes(bytes).toString('base64url');

/** Builds the credential service. `adminToken` and `jwtSecret` come from config or the settings table. */
export function tenantService({ store, outbox }: CoreDeps, secrets: { adminToken: string; jwtSecret: string }) {
  const jwtKey = new TextEncoder().encode(secrets.jwtSecret);
  const adminHash = hashKey(secrets.adminToken);
  // Key lookups are on every request; a short cache spares the round trip. A user token means the same
  // thing until it expires (tokens are not revocable), so its checked signature is remembered: verifying
  // an HMAC through WebCrypto on every request showed in profiles. Both bounded (credential-cache.ts).
  const cache = new CredentialCache();

  return {
    /** Creates a tenant and its first API key (shown only here). */
    async createTenant(name: string) {
      const apiKey = KEY_PREFIX + randomSecret();
      const tenant = await store.tx(async (q) => {
        const t = await tenantRepository.create(q, name);
        await tenantRepository.addKey(q, t.id, hashKey(apiKey), apiKey.slice(0, 7));
        await eventRepository.append(q, t.id, 'tenant.created', [], { tenant: { id: t.id, name: t.name } });
        return t;
      }, () => outbox.flush());
      return { id: tenant.id, name: tenant.name, apiKey, createdAt: new Date(tenant.createdAt).toISOString() };
    },

    /** Signs a user token for browsers. */
    async issueToken(tenantId: string, user: { userId: string; name: string; role: 'member' | 'organizer'; ttlSeconds?: number }) {
      const exp = Math.floor(Date.now() / 1000) + (user.ttlSeconds ?? DEFAULT_TOKEN_TTL);
      const token = await new SignJWT({ tid: tenantId, name: user.name, role: user.role })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setSubject(user.userId)
        .setIssuer('slotwise')
        .setIssuedAt()
        .setExpirationTime(exp)
        .sign(jwtKey);
      return { token, expiresAt: new Date(exp * 1000).toISOString() };
    },

    /** Resolves a bearer credential to a principal, or null when it is not valid. */
    async authenticate(credential: string): Promise<Principal | null> {
      if (!credential) return null;
      // A user token verified before (and found not to be the admin token then) needs no hashing again.
      const known = cache.token(credential);
      if (known) return known;
      const hash = hashKey(credential);
      if (timingSafeEqual(hash, adminHash)) return { kind: 'admin' };
      if (credential.startsWith(KEY_PREFIX)) {
        const cacheKey = hash.toString('hex');
        let tenantId = cache.keyTenant(cacheKey);
        if (tenantId === undefined) {
          tenantId = await tenantRepository.tenantForKey(store.pool, hash);
          cache.rememberKey(cacheKey, tenantId);
        }
        return tenantId ? { kind: 'tenant', tenantId } : null;
      }
      if (credential.split('.').length === 3) {
        try {
          const { payload } = await jwtVerify(credential, jwtKey, { issuer: 'slotwise', algorithms: ['HS256'] });
          const role = payload.role === 'organizer' ? 'organizer' : 'member';
          if (typeof payload.tid !== 'string' || typeof payload.sub !== 'string') return null;
          const principal: Principal = { kind: 'user', tenantId: payload.tid, userId: payload.sub, name: String(payload.name ?? payload.sub), role };
          if (typeof payload.exp === 'number') cache.rememberToken(credential, principal, payload.exp * 1000);
          return principal;
        } catch {
          return null;
        }
      }
      return null;
    },
  };
}

/**
 * Secrets every node must agree on. From the environment when set; otherwise
 * generated once and kept in the settings table (development). In development
 * also makes a dev tenant and key, returned so start-up can print them.
 */
export async function resolveSecrets(
  deps: CoreDeps,
  env: { adminToken?: string; jwtSecret?: string },
): Promise<{ adminToken: string; jwtSecret: string; dev?: { adminToken: string; tenantId: string; apiKey: string } }> {
  const jwtSecret = env.jwtSecret ?? (await settingsRepository.getOrInit(deps.store.pool, 'jwt_secret', randomSecret(48)));
  if (env.adminToken) return { adminToken: env.adminToken, jwtSecret };
  const existing = await settingsRepository.get<{ adminToken: string; tenantId: string; apiKey: string }>(deps.store.pool, 'dev_credentials');
  if (existing) return { adminToken: existing.adminToken, jwtSecret, dev: existing };
  const adminToken = 'adm_' + randomSecret();
  const tenant = await tenantService(deps, { adminToken, jwtSecret }).createTenant('Dev tenant');
  const dev = await settingsRepository.getOrInit(deps.store.pool, 'dev_credentials', { adminToken, tenantId: tenant.id, apiKey: tenant.apiKey });
  return { adminToken: dev.adminToken, jwtSecret, dev };
}

export type TenantService = ReturnType<typeof tenantService>;
