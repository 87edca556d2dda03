/** Tenants and the secrets every node shares (admin token, JWT secret). Credentials live in credentials.ts. */
import { randomUUID } from 'node:crypto';
import type { CoreDeps } from '../ports';
import { hashKey, KEY_PREFIX, randomSecret } from './credentials';

export { randomSecret } from './credentials';

/** Builds the tenant service. */
export function tenantService({ store }: CoreDeps) {
  return {
    /** Creates a tenant and its first API key (shown only here). */
    async createTenant(name: string) {
      const apiKey = KEY_PREFIX + randomSecret();
      const tenant = await store.tx(async (q) => {
        const t = await q.tenants.create(name);
        await q.apiKeys.insert(t.id, hashKey(apiKey), apiKey.slice(0, 7), 'default');
        await q.events.append(t.id, 'tenant.created', [], { tenant: { id: t.id, name: t.name } });
        return t;
      });
      return { id: tenant.id, name: tenant.name, apiKey, createdAt: new Date(tenant.createdAt).toISOString() };
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
): Promise<{ adminToken: string; jwtSecret: string; clusterId: string; dev?: { adminToken: string; tenantId: string; apiKey: string } }> {
  const jwtSecret = env.jwtSecret ?? (await deps.store.primary.settings.getOrInit('jwt_secret', randomSecret(48)));
  // Names what the nodes of one database share in Redis (rate counters), apart from other deployments on the same Redis.
  const clusterId = await deps.store.primary.settings.getOrInit('cluster_id', randomUUID());
  if (env.adminToken) return { adminToken: env.adminToken, jwtSecret, clusterId };
  const existing = await deps.store.primary.settings.get<{ adminToken: string; tenantId: string; apiKey: string }>('dev_credentials');
  if (existing) return { adminToken: existing.adminToken, jwtSecret, clusterId, dev: existing };
  const adminToken = 'adm_' + randomSecret();
  const tenant = await tenantService(deps).createTenant('Dev tenant');
  const dev = await deps.store.primary.settings.getOrInit('dev_credentials', { adminToken, tenantId: tenant.id, apiKey: tenant.apiKey });
  return { adminToken: dev.adminToken, jwtSecret, clusterId, dev };
}

export type TenantService = ReturnType<typeof tenantService>;
