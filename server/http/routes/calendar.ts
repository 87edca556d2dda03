/**
 * Calendar feeds (docs/integrations.md#calendar-feeds): iCalendar text of a
 * resource's or a user's bookings, read with the usual credentials or with a
 * feed token in the query (calendar apps cannot send headers), and the routes
 * that make, list and revoke feed tokens.
 */
import { z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { CalendarFeed, CalendarFeedCreate, CalendarFeedListQuery, CalendarFeedWithToken, CalendarQuery, Page } from '../../../shared/schemas';
import { DomainError } from '../../core/errors';
import { parseInput } from '../../core/pipeline';
import type { CalendarFeedRow } from '../../core/store';
import { requireTenantKey, requireTenantOrUser, type AuthEnv } from '../middleware/auth';
import { body, header, idParam, LOCATION, query, route, UserIdParam, userIdParam } from '../openapi';
import type { App, Services } from './types';

const ICS = 'text/calendar; charset=utf-8';
const icsAnswer = (description: string) => ({
  200: {
    description, mediaType: 'text/calendar',
    schema: z.string().openapi({ description: 'RFC 5545 iCalendar text (VCALENDAR with a VTIMEZONE and one VEVENT per booking)' }),
    headers: { 'Cache-Control': header('`private, max-age=300`: calendar apps poll; nothing shared caches it') },
  },
});
const TOKEN_ERRORS = {
  401: 'No credential, or the feed token is unknown, revoked or not this feed\'s',
  403: 'The credential may not read this feed (a user token reads only its own user feed, never a resource feed)',
};

/** The feed a `?token=` opens, or null without one; an unknown token is a failed authentication of the address. */
async function tokenFeed(c: Context<AuthEnv>, s: Services): Promise<CalendarFeedRow | null> {
  // Read directly, not through query(): its memo would keep tokens in memory.
  const q = parseInput(CalendarQuery, { token: c.req.query('token') }, 'query');
  if (q.token === undefined) return null;
  // An address past its failed-authentication budget is refused before the token is even looked at, as with headers.
  s.protection.checkAuthAllowed(c.get('ip'));
  const feed = await s.calendarFeeds.feedOf(q.token);
  if (!feed) {
    await s.protection.authFailed(c.get('ip'));
    throw new DomainError('unauthorized', 'the feed token is not valid or was revoked');
  }
  return feed;
}

const ics = (c: Context, text: string) => c.body(text, 200, { 'Content-Type': ICS, 'Cache-Control': 'private, max-age=300' });

/** Registers the calendar feeds and /v1/calendar-feeds. */
export function calendarRoutes(app: App, s: Services): void {
  const tag = 'Calendar feeds';

  route(app, {
    method: 'get', path: '/v1/resources/{id}/calendar.ics', tag, auth: 'tenant API key, or a feed token in `?token=`',
    summary: "The resource's bookings as iCalendar: from 30 days back to the slot horizon, cancelled ones (STATUS:CANCELLED) if cancelled in the last 30 days, at most CALENDAR_MAX_EVENTS (2,000), soonest first",
    query: CalendarQuery, answers: icsAnswer('The calendar'), errors: TOKEN_ERRORS,
  }, async (c) => {
    const id = idParam(c);
    const feed = await tokenFeed(c, s);
    if (feed) {
      if (feed.resourceId !== id) throw new DomainError('unauthorized', 'the feed token is not this feed\'s');
      return ics(c, await s.calendarFeeds.resourceCalendar(feed.tenantId, id));
    }
    // Every booking on the resource, with its customer's name: the tenant key only (a user sees only their own bookings).
    const tenantId = requireTenantKey(c);
    return ics(c, await s.calendarFeeds.resourceCalendar(tenantId, id));
  });

  route(app, {
    method: 'get', path: '/v1/users/{userId}/calendar.ics', tag, auth: 'tenant API key, the user\'s own token, or a feed token in `?token=`',
    summary: 'The bookings a user made as iCalendar (same window and bounds as a resource feed; times in the feed\'s time zone, UTC without a feed token)',
    params: { userId: UserIdParam }, query: CalendarQuery, answers: icsAnswer('The calendar'), errors: TOKEN_ERRORS,
  }, async (c) => {
    const userId = userIdParam(c);
    const feed = await tokenFeed(c, s);
    if (feed) {
      if (feed.userId !== userId) throw new DomainError('unauthorized', 'the feed token is not this feed\'s');
      return ics(c, await s.calendarFeeds.userCalendar(feed.tenantId, userId, feed.timezone));
    }
    const p = requireTenantOrUser(c);
    if (p.kind === 'user' && p.userId !== userId) throw new DomainError('forbidden', 'a user token reads only its own calendar');
    return ics(c, await s.calendarFeeds.userCalendar(p.tenantId, userId, 'UTC'));
  });

  route(app, {
    method: 'post', path: '/v1/calendar-feeds', tag, auth: 'tenant API key (a user token: its own user feed only)',
    summary: 'Make a feed URL for a resource or a user; its token is shown only in this answer',
    body: CalendarFeedCreate, answers: { 201: { schema: CalendarFeedWithToken, description: 'The feed with its token and URL', headers: { Location: LOCATION } } },
    errors: { 404: 'The resource is not found', 422: 'limit-exceeded (`calendar-feeds.tenant`): more feeds than CALENDAR_MAX_FEEDS (500)' },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    const made = await s.calendarFeeds.create(p, await body(c, CalendarFeedCreate), new URL(c.req.url).origin);
    return c.json(made, 201, { Location: `/v1/calendar-feeds/${made.id}` });
  });

  route(app, {
    method: 'get', path: '/v1/calendar-feeds', tag, auth: 'tenant API key, or a user token (its own feeds)',
    summary: 'List feeds (never their tokens), oldest first',
    query: CalendarFeedListQuery, answers: { 200: { schema: Page(CalendarFeed), description: 'A page of feeds' } },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    const q = query(c, CalendarFeedListQuery);
    return c.json(await s.calendarFeeds.list(p, q.cursor, q.limit));
  });

  route(app, {
    method: 'delete', path: '/v1/calendar-feeds/{id}', tag, auth: 'tenant API key, or a user token (its own feeds)',
    summary: 'Revoke a feed: its URL answers 401 from now on',
    answers: { 204: { description: 'Revoked' } }, errors: { 404: 'Not found' },
  }, async (c) => {
    const p = requireTenantOrUser(c);
    await s.calendarFeeds.revoke(p, idParam(c));
    return c.body(null, 204);
  });
}
