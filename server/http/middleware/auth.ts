/** Bearer authentication: resolves the credential to a principal; routes decide what it may do. */
import type { Context, MiddlewareHandler } from 'hono';
import { DomainError } from '../../core/errors';
import type { Principal, TenantPrincipal } from '../../core/types';
import type { TenantService } from '../../core/services/tenants';

export type AuthEnv = { Variables: { principal: Principal | null } };

/** Sets `principal` (null without a credential); an invalid credential is 401 at once. */
export function auth(tenants: TenantService): MiddlewareHandler<AuthEnv> {
  return async (c, next) => {
    const header = c.req.header('Authorization');
    if (!header) {
      c.set('principal', null);
      return next();
    }
    const m = /^Bearer\s+(\S+)$/i.exec(header);
    const principal = m ? await tenants.authenticate(m[1]!) : null;
    if (!principal) throw new DomainError('unauthorized', 'the credential is not valid or has expired');
    c.set('principal', principal);
    return next();
  };
}

function principalOf(c: Context<AuthEnv>): Principal {
  const p = c.get('principal');
  if (!p) throw new DomainError('unauthorized', 'send Authorization: Bearer <credential>');
  return p;
}

/** The admin token, or 401/403. */
export function requireAdmin(c: Context<AuthEnv>): void {
  if (principalOf(c).kind !== 'admin') throw new DomainError('forbidden', 'this route needs the admin token');
}

/** A tenant API key, or 401/403. */
export function requireTenantKey(c: Context<AuthEnv>): string {
  const p = principalOf(c);
  if (p.kind !== 'tenant') throw new DomainError('forbidden', 'this route needs a tenant API key');
  return p.tenantId;
}

/** A tenant key or a user token, or 401/403. */
export function requireTenantOrUser(c: Context<AuthEnv>): TenantPrincipal {
  const p = principalOf(c);
  if (p.kind === 'admin') throw new DomainError('forbidden', 'this route needs a tenant API key or a user token');
  return p;
}
