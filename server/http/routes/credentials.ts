/** API key lifecycle and user token revocation (tenant API key only). */
import { ApiKey, ApiKeyCreate, ApiKeyRotate, ApiKeyWithSecret, ListQuery, Page, TokenRevoked, UserTokensRevoked } from '../../../shared/schemas';
import { requireTenantKey } from '../middleware/auth';
import { body, idParam, query, route, UserIdParam, userIdParam } from '../openapi';
import type { App, Services } from './types';

const KeyListQuery = ListQuery.strict();

/** Registers /v1/api-keys, DELETE /v1/tokens/{id} and DELETE /v1/users/{userId}/tokens. */
export function credentialRoutes(app: App, s: Services): void {
  const auth = 'tenant API key';

  route(app, {
    method: 'post', path: '/v1/api-keys', tag: 'Credentials', auth, summary: 'Create another API key (its secret is shown only in this answer)',
    body: ApiKeyCreate, bodyRequired: false, answers: { 201: { schema: ApiKeyWithSecret, description: 'The key with its secret' } },
    errors: { 422: 'The tenant has 100 live keys' },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    const b = await body(c, ApiKeyCreate, true);
    return c.json(await s.credentials.createKey(tenantId, b.name), 201);
  });

  route(app, {
    method: 'get', path: '/v1/api-keys', tag: 'Credentials', auth, summary: 'List the tenant\'s API keys (never their secrets)',
    query: KeyListQuery, answers: { 200: { schema: Page(ApiKey), description: 'A page of keys, oldest first' } },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    const q = query(c, KeyListQuery);
    return c.json(await s.credentials.listKeys(tenantId, q.cursor, q.limit));
  });

  route(app, {
    method: 'post', path: '/v1/api-keys/{id}/rotate', tag: 'Credentials', auth,
    summary: 'Replace a key: a new key now, the old one working for overlapSeconds more (default 3600), then refused on every node',
    body: ApiKeyRotate, bodyRequired: false, answers: { 201: { schema: ApiKeyWithSecret, description: 'The new key with its secret' } },
    errors: { 404: 'Not found', 409: 'The key is revoked or expired' },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    const id = idParam(c);
    const b = await body(c, ApiKeyRotate, true);
    return c.json(await s.credentials.rotateKey(tenantId, id, b.overlapSeconds), 201);
  });

  route(app, {
    method: 'delete', path: '/v1/api-keys/{id}', tag: 'Credentials', auth,
    summary: 'Revoke a key at once on every node, live connections included (idempotent)',
    answers: { 200: { schema: ApiKey, description: 'The revoked key' } }, errors: { 404: 'Not found', 409: 'The tenant\'s last live key' },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    return c.json(await s.credentials.revokeKey(tenantId, idParam(c)));
  });

  route(app, {
    method: 'delete', path: '/v1/tokens/{id}', tag: 'Credentials', auth,
    summary: 'Revoke one user token (its id from POST /v1/tokens) on every node, live connections included (idempotent)',
    answers: { 200: { schema: TokenRevoked, description: 'The revoked token' } }, errors: { 404: 'No token with this id' },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    return c.json(await s.credentials.revokeToken(tenantId, idParam(c)));
  });

  route(app, {
    method: 'delete', path: '/v1/users/{userId}/tokens', tag: 'Credentials', auth,
    summary: 'Cut a user off: revoke every unexpired token of theirs on every node, live connections included', params: { userId: UserIdParam },
    answers: { 200: { schema: UserTokensRevoked, description: 'The ids of the tokens revoked' } },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    const userId = userIdParam(c);
    return c.json(await s.credentials.revokeUserTokens(tenantId, userId));
  });
}
