/** API key lifecycle and user token revocation (tenant API key only). */
import { ApiKey, ApiKeyCreate, ApiKeyRotate, ApiKeyWithSecret, ListQuery, Page, TokenRevoked, UserTokensRevoked } from '../../../shared/schemas';
import { DomainError } from '../../core/errors';
import { requireTenantKey } from '../middleware/auth';
import { body, describe, idParam, query } from '../openapi';
import type { App, Services } from './types';

const KeyListQuery = ListQuery.strict();

/** Registers /v1/api-keys, DELETE /v1/tokens/:id and DELETE /v1/users/:userId/tokens. */
export function credentialRoutes(app: App, s: Services): void {
  const r = app.openAPIRegistry;
  const auth = 'tenant API key';

  describe(r, {
    method: 'post', path: '/v1/api-keys', tag: 'Credentials', auth, summary: 'Create another API key (its secret is shown only in this answer)',
    body: ApiKeyCreate, bodyRequired: false, idempotent: true, ok: { status: 201, schema: ApiKeyWithSecret, description: 'The key with its secret' },
    errors: { 422: 'The tenant has 100 live keys' },
  });
  app.post('/v1/api-keys', async (c) => {
    const tenantId = requireTenantKey(c);
    const b = await body(c, ApiKeyCreate, true);
    return c.json(await s.credentials.createKey(tenantId, b.name), 201);
  });

  describe(r, {
    method: 'get', path: '/v1/api-keys', tag: 'Credentials', auth, summary: 'List the tenant\'s API keys (never their secrets)',
    query: KeyListQuery, ok: { status: 200, schema: Page(ApiKey), description: 'A page of keys, oldest first' },
  });
  app.get('/v1/api-keys', async (c) => {
    const tenantId = requireTenantKey(c);
    const q = query(c, KeyListQuery);
    return c.json(await s.credentials.listKeys(tenantId, q.cursor, q.limit));
  });

  describe(r, {
    method: 'post', path: '/v1/api-keys/:id/rotate', tag: 'Credentials', auth,
    summary: 'Replace a key: a new key now, the old one working for overlapSeconds more (default 3600), then refused on every node',
    body: ApiKeyRotate, bodyRequired: false, idempotent: true, ok: { status: 201, schema: ApiKeyWithSecret, description: 'The new key with its secret' },
    errors: { 404: 'Not found', 409: 'The key is revoked or expired' },
  });
  app.post('/v1/api-keys/:id/rotate', async (c) => {
    const tenantId = requireTenantKey(c);
    const id = idParam(c);
    const b = await body(c, ApiKeyRotate, true);
    return c.json(await s.credentials.rotateKey(tenantId, id, b.overlapSeconds), 201);
  });

  describe(r, {
    method: 'delete', path: '/v1/api-keys/:id', tag: 'Credentials', auth,
    summary: 'Revoke a key at once on every node, live connections included (idempotent)',
    ok: { status: 200, schema: ApiKey, description: 'The revoked key' }, errors: { 404: 'Not found', 409: 'The tenant\'s last live key' },
  });
  app.delete('/v1/api-keys/:id', async (c) => {
    const tenantId = requireTenantKey(c);
    return c.json(await s.credentials.revokeKey(tenantId, idParam(c)));
  });

  describe(r, {
    method: 'delete', path: '/v1/tokens/:id', tag: 'Credentials', auth,
    summary: 'Revoke one user token (its id from POST /v1/tokens) on every node, live connections included (idempotent)',
    ok: { status: 200, schema: TokenRevoked, description: 'The revoked token' }, errors: { 404: 'No token with this id' },
  });
  app.delete('/v1/tokens/:id', async (c) => {
    const tenantId = requireTenantKey(c);
    return c.json(await s.credentials.revokeToken(tenantId, idParam(c)));
  });

  describe(r, {
    method: 'delete', path: '/v1/users/:userId/tokens', tag: 'Credentials', auth,
    summary: 'Cut a user off: revoke every unexpired token of theirs on every node, live connections included',
    ok: { status: 200, schema: UserTokensRevoked, description: 'The ids of the tokens revoked' },
  });
  app.delete('/v1/users/:userId/tokens', async (c) => {
    const tenantId = requireTenantKey(c);
    const userId = c.req.param('userId');
    if (!userId || userId.length > 200) {
      throw new DomainError('validation-failed', 'userId must be 1 to 200 characters', { errors: [{ path: 'path.userId', message: 'must be 1 to 200 characters' }] });
    }
    return c.json(await s.credentials.revokeUserTokens(tenantId, userId));
  });
}
