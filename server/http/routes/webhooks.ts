/** Webhook endpoints, their signing secrets and delivery logs (tenant API key only; docs/integrations.md). */
import {
  ListQuery, Page, Webhook, WebhookCreate, WebhookDelivery, WebhookDeliveryDetail, WebhookDeliveryQuery, WebhookPatch, WebhookRotate, WebhookWithSecret,
} from '../../../shared/schemas';
import { requireTenantKey } from '../middleware/auth';
import { body, idParam, LOCATION, query, route } from '../openapi';
import type { App, Services } from './types';

const EndpointListQuery = ListQuery.strict();

/** Registers /v1/webhooks and its deliveries. */
export function webhookRoutes(app: App, s: Services): void {
  const auth = 'tenant API key';
  const tag = 'Webhooks';

  route(app, {
    method: 'post', path: '/v1/webhooks', tag, auth,
    summary: 'Add an endpoint: every event of the tenant (or of the listed types) is POSTed to it, signed per Standard Webhooks; its secret is shown only in this answer',
    body: WebhookCreate, answers: { 201: { schema: WebhookWithSecret, description: 'The endpoint with its signing secret', headers: { Location: LOCATION } } },
    errors: { 422: `webhook-url-refused (not http(s), or a private or loopback address), or limit-exceeded (more endpoints than WEBHOOK_MAX_ENDPOINTS, 20 by default)` },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    const made = await s.webhooks.create(tenantId, await body(c, WebhookCreate));
    return c.json(made, 201, { Location: `/v1/webhooks/${made.id}` });
  });

  route(app, {
    method: 'get', path: '/v1/webhooks', tag, auth, summary: 'List the tenant\'s endpoints (never their secrets)',
    query: EndpointListQuery, answers: { 200: { schema: Page(Webhook), description: 'A page of endpoints, oldest first' } },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    const q = query(c, EndpointListQuery);
    return c.json(await s.webhooks.list(tenantId, q.cursor, q.limit));
  });

  route(app, {
    method: 'get', path: '/v1/webhooks/{id}', tag, auth, summary: 'Read an endpoint: whether it is enabled, failing, and how many deliveries wait',
    answers: { 200: { schema: Webhook, description: 'The endpoint' } }, errors: { 404: 'Not found' },
  }, async (c) => c.json(await s.webhooks.get(requireTenantKey(c), idParam(c))));

  route(app, {
    method: 'patch', path: '/v1/webhooks/{id}', tag, auth,
    summary: 'Change an endpoint; `enabled: true` re-enables a disabled one, and everything it missed is delivered, in order',
    body: WebhookPatch, answers: { 200: { schema: Webhook, description: 'The endpoint' } },
    errors: { 404: 'Not found', 422: 'webhook-url-refused' },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    const id = idParam(c);
    return c.json(await s.webhooks.update(tenantId, id, await body(c, WebhookPatch)));
  });

  route(app, {
    method: 'delete', path: '/v1/webhooks/{id}', tag, auth, summary: 'Delete an endpoint and its delivery log; nothing more is sent to it',
    answers: { 204: { description: 'Deleted' } }, errors: { 404: 'Not found' },
  }, async (c) => {
    await s.webhooks.remove(requireTenantKey(c), idParam(c));
    return c.body(null, 204);
  });

  route(app, {
    method: 'post', path: '/v1/webhooks/{id}/rotate-secret', tag, auth,
    summary: 'A new signing secret, shown only in this answer; the old one signs too (a second signature) for overlapSeconds (default a day)',
    body: WebhookRotate, bodyRequired: false, answers: { 200: { schema: WebhookWithSecret, description: 'The endpoint with its new secret' } },
    errors: { 404: 'Not found' },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    const id = idParam(c);
    const b = await body(c, WebhookRotate, true);
    return c.json(await s.webhooks.rotate(tenantId, id, b?.overlapSeconds ?? 86_400));
  });

  route(app, {
    method: 'get', path: '/v1/webhooks/{id}/deliveries', tag, auth, summary: 'The delivery log, newest first: one delivery per event (and per redelivery)',
    query: WebhookDeliveryQuery, answers: { 200: { schema: Page(WebhookDelivery), description: 'A page of deliveries, newest first' } },
    errors: { 404: 'Not found' },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    const id = idParam(c);
    const q = query(c, WebhookDeliveryQuery);
    return c.json(await s.webhooks.deliveries(tenantId, id, q.cursor, q.limit, q.status));
  });

  route(app, {
    method: 'get', path: '/v1/webhooks/{id}/deliveries/{deliveryId}', tag, auth, summary: 'One delivery with its attempts (status, error, duration)',
    answers: { 200: { schema: WebhookDeliveryDetail, description: 'The delivery' } }, errors: { 404: 'Not found' },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    return c.json(await s.webhooks.delivery(tenantId, idParam(c), idParam(c, 'deliveryId')));
  });

  route(app, {
    method: 'post', path: '/v1/webhooks/{id}/deliveries/{deliveryId}/redeliver', tag, auth,
    summary: 'Send a delivery\'s event again (same webhook-id), after what is pending',
    answers: { 202: { schema: WebhookDelivery, description: 'The new delivery' } }, errors: { 404: 'Not found' },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    return c.json(await s.webhooks.redeliver(tenantId, idParam(c), idParam(c, 'deliveryId')), 202);
  });
}
