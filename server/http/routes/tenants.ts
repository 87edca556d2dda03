/** POST /v1/tenants, POST /v1/tokens. */
import { Tenant, TenantCreate, Token, TokenCreate } from '../../../shared/schemas';
import { requireAdmin, requireTenantKey } from '../middleware/auth';
import { body, route } from '../openapi';
import type { App, Services } from './types';

/** Registers tenant and token routes. */
export function tenantRoutes(app: App, s: Services): void {
  route(app, {
    method: 'post', path: '/v1/tenants', tag: 'Tenants', summary: 'Create a tenant and its first API key (shown once)', auth: 'admin token',
    body: TenantCreate, answers: { 201: { schema: Tenant, description: 'The tenant with its API key (null in an idempotent replay)' } },
  }, async (c) => {
    requireAdmin(c);
    const cmd = await body(c, TenantCreate);
    return c.json(await s.tenants.createTenant(cmd.name), 201);
  });

  route(app, {
    method: 'post', path: '/v1/tokens', tag: 'Tenants', summary: 'Sign a user token for a browser', auth: 'tenant API key',
    body: TokenCreate, answers: { 201: { schema: Token, description: 'A signed user token' } },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    const cmd = await body(c, TokenCreate);
    return c.json(await s.credentials.issueToken(tenantId, cmd), 201);
  });
}
