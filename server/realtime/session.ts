/**
 * What a live connection (Socket.IO or Yjs) passes before it is accepted,
 * the same for both gateways: the address's failed authentications (and,
 * where no earlier step charged it, its budget), the credential, the
 * credential's budget, and its user's cap on live connections.
 */
import type { Release } from '../core/admission';
import { DomainError } from '../core/errors';
import type { CredentialService } from '../core/services/credentials';
import type { ProtectionService } from '../core/services/protection';
import type { TenantPrincipal } from '../core/types';

/**
 * Admits a live connection from `ip` presenting `token` (null: none
 * presented, which is not counted as a failed authentication). Throws
 * `unauthorized` for a credential that does not resolve (or the admin
 * token), 429 problems past a limit. `leave` gives the connection's slot back.
 */
export async function admitLiveCredential(
  credentials: CredentialService,
  protection: ProtectionService,
  ip: string,
  token: string | null,
  opts: { chargeAddress: boolean },
): Promise<{ principal: TenantPrincipal; leave: Release }> {
  const principal = await checkLiveCredential(credentials, protection, ip, token, opts);
  return { principal, leave: protection.openSession(principal) };
}

/**
 * The same admission for a caller that keeps one object per connection and
 * gives the slot back itself, once, with `protection.closeSession(principal)`
 * (no release closure is kept per connection).
 */
export async function admitLiveSession(
  credentials: CredentialService,
  protection: ProtectionService,
  ip: string,
  token: string | null,
  opts: { chargeAddress: boolean },
): Promise<TenantPrincipal> {
  const principal = await checkLiveCredential(credentials, protection, ip, token, opts);
  protection.enterSession(principal);
  return principal;
}

async function checkLiveCredential(
  credentials: CredentialService,
  protection: ProtectionService,
  ip: string,
  token: string | null,
  opts: { chargeAddress: boolean },
): Promise<TenantPrincipal> {
  if (token !== null) protection.checkAuthAllowed(ip);
  if (opts.chargeAddress) await protection.admitAddress(ip, 'api');
  const principal = token !== null ? await credentials.authenticate(token) : null;
  if (!principal || principal.kind === 'admin') {
    if (token !== null) await protection.authFailed(ip);
    throw new DomainError('unauthorized', 'the credential is not valid, has expired or was revoked');
  }
  await protection.admitCredential(principal, 'api');
  return principal;
}
