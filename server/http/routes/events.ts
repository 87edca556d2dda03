/** GET /v1/events: the tenant's event feed. */
import { z } from '@hono/zod-openapi';
import { Event, EventsQuery } from '../../../shared/schemas';
import { requireTenantKey } from '../middleware/auth';
import { describe, query } from '../openapi';
import type { App, Services } from './types';

/** Registers the event feed route. */
export function eventRoutes(app: App, s: Services): void {
  describe(app.openAPIRegistry, {
    method: 'get', path: '/v1/events', tag: 'Events', auth: 'tenant API key', summary: 'The event feed, oldest first (resume with after=lastSeq)',
    query: EventsQuery, ok: { status: 200, schema: z.object({ events: z.array(Event), lastSeq: z.number().int() }), description: 'Events' },
  });
  app.get('/v1/events', async (c) => {
    const tenantId = requireTenantKey(c);
    const q = query(c, EventsQuery);
    return c.json(await s.events.feed(tenantId, q.after, q.limit));
  });
}
