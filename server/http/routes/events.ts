/** GET /v1/events: the tenant's event feed. */
import { z } from '@hono/zod-openapi';
import { Event, EventsQuery } from '../../../shared/schemas';
import { requireTenantKey } from '../middleware/auth';
import { query, route } from '../openapi';
import type { App, Services } from './types';

/** Registers the event feed route. */
export function eventRoutes(app: App, s: Services): void {
  route(app, {
    method: 'get', path: '/v1/events', tag: 'Events', auth: 'tenant API key', summary: 'The event feed, oldest first (resume with after=lastSeq)',
    query: EventsQuery, answers: { 200: { schema: z.object({ events: z.array(Event), lastSeq: z.number().int() }).openapi('EventPage'), description: 'Events' } },
    errors: { 503: 'feed.wait: the feed decoder has not yet stored what committed before the read' },
  }, async (c) => {
    const tenantId = requireTenantKey(c);
    const q = query(c, EventsQuery);
    return c.json(await s.events.feed(tenantId, q.after, q.limit));
  });
}
