/**
 * Calendar feeds (docs/integrations.md#calendar-feeds): iCalendar text of a
 * resource's bookings or of a user's, and the feed tokens that let calendar
 * apps (which cannot send headers) read them from a URL.
 *
 * - A token is 32 random bytes; only its SHA-256 is stored, so it is shown
 *   once. Revoking deletes the feed: its URL answers 401 from then on.
 * - A token names one feed of one tenant: it reads that feed and nothing else.
 * - A feed holds bookings starting from `pastDays` ago to the slot horizon
 *   ahead, cancelled ones (STATUS:CANCELLED) only if cancelled within
 *   `pastDays`, and at most `maxEvents` of them, the soonest first.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { CalendarFeed, CalendarFeedCreate } from '../../../shared/schemas';
import { DomainError, notFound } from '../errors';
import type { CoreDeps } from '../ports';
import type { CalendarFeedRow } from '../store';
import type { TenantPrincipal } from '../types';
import { decodeCursor, encodeCursor } from './cursor';
import { bookingsCalendar } from './ics';
import { horizonEnd } from './slotgen';

export interface CalendarSettings {
  /** Events one feed answer holds at most (the soonest ones). */
  maxEvents: number;
  /** Feeds a tenant may have. */
  feedsPerTenant: number;
  /** How far back a feed reaches, and how long a cancellation stays in it. */
  pastDays: number;
}

export const DEFAULT_CALENDAR_SETTINGS: CalendarSettings = { maxEvents: 2_000, feedsPerTenant: 500, pastDays: 30 };

const DAY = 86_400_000;
const TOKEN_PREFIX = 'swcal_';
const hashOf = (token: string) => createHash('sha256').update(token).digest();

/** The path of a feed's calendar (without its token). */
export const feedPath = (f: Pick<CalendarFeedRow, 'resourceId' | 'userId'>) =>
  f.resourceId !== null ? `/v1/resources/${f.resourceId}/calendar.ics` : `/v1/users/${encodeURIComponent(f.userId!)}/calendar.ics`;

const view = (f: CalendarFeedRow): CalendarFeed => ({
  id: f.id,
  kind: f.resourceId !== null ? 'resource' : 'user',
  resourceId: f.resourceId,
  userId: f.userId,
  timezone: f.timezone,
  path: feedPath(f),
  createdAt: new Date(f.createdAt).toISOString(),
});

export function calendarFeedService(deps: CoreDeps, overrides: Partial<CalendarSettings> = {}) {
  const { store, clock, config } = deps;
  const settings: CalendarSettings = { ...DEFAULT_CALENDAR_SETTINGS, ...overrides };

  async function render(tenantId: string, w: { resourceId?: string; ownerId?: string }, name: string, timezone: string): Promise<string> {
    const now = clock.now();
    const bookings = await store.primary.bookings.forCalendar(tenantId, {
      ...w, from: now - settings.pastDays * DAY, to: horizonEnd(now, config.slotHorizonDays), cancelledSince: now - settings.pastDays * DAY,
    }, settings.maxEvents);
    const ids = [...new Set(bookings.flatMap((b) => b.resourceIds))];
    const resources = ids.length ? await store.primary.resources.byIds(tenantId, ids) : [];
    return bookingsCalendar(bookings, { name, timezone, resourceNames: new Map(resources.map((r) => [r.id, r.name])), now });
  }

  return {
    settings,

    /** A new feed and its token (shown only here). A user token may make only its own user feed. */
    async create(p: TenantPrincipal, b: CalendarFeedCreate, origin: string) {
      if (b.resourceId !== undefined && p.kind !== 'tenant') throw new DomainError('forbidden', 'a resource feed needs a tenant API key');
      if (b.userId !== undefined && p.kind === 'user' && p.userId !== b.userId) throw new DomainError('forbidden', 'a user token may make a feed of its own bookings only');
      if (b.resourceId !== undefined && (await store.primary.resources.byIds(p.tenantId, [b.resourceId])).length === 0) throw notFound(`resource ${b.resourceId}`);
      const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
      const f = await store.tx(async (q) => {
        if ((await q.calendarFeeds.count(p.tenantId)) >= settings.feedsPerTenant) {
          throw new DomainError('limit-exceeded', `a tenant may have ${settings.feedsPerTenant} calendar feeds; revoke one first`, { limit: 'calendar-feeds.tenant', max: settings.feedsPerTenant });
        }
        return q.calendarFeeds.insert(p.tenantId, {
          resourceId: b.resourceId ?? null, userId: b.userId ?? null, timezone: b.timezone ?? 'UTC', tokenHash: hashOf(token),
          createdBy: p.kind === 'tenant' ? `key:${p.keyId}` : `user:${p.userId}`,
        });
      });
      const v = view(f);
      return { ...v, token, url: `${origin}${v.path}?token=${token}` };
    },

    /** The tenant's feeds (a user token: its own user feeds), never their tokens. */
    async list(p: TenantPrincipal, cursor: string | undefined, limit: number) {
      const rows = await store.primary.calendarFeeds.page(p.tenantId, p.kind === 'user' ? p.userId : null, decodeCursor(cursor), limit + 1);
      const items = rows.slice(0, limit);
      return { items: items.map(view), nextCursor: rows.length > limit ? encodeCursor(items[items.length - 1]!) : null };
    },

    /** Revokes a feed: its URL stops working at once. A user token may revoke only its own user feeds. */
    async revoke(p: TenantPrincipal, id: string) {
      const f = await store.primary.calendarFeeds.get(p.tenantId, id);
      if (!f || (p.kind === 'user' && f.userId !== p.userId)) throw notFound(`calendar feed ${id}`);
      await store.primary.calendarFeeds.delete(id);
    },

    /** The feed a token opens, or null (unknown, malformed or revoked). */
    async feedOf(token: string): Promise<CalendarFeedRow | null> {
      if (!token.startsWith(TOKEN_PREFIX) || token.length > 100) return null;
      return store.primary.calendarFeeds.byTokenHash(hashOf(token));
    },

    /** A resource's bookings as iCalendar text, in the resource's time zone. */
    async resourceCalendar(tenantId: string, resourceId: string): Promise<string> {
      const [r] = await store.primary.resources.byIds(tenantId, [resourceId]);
      if (!r) throw notFound(`resource ${resourceId}`);
      return render(tenantId, { resourceId }, r.name, r.timezone);
    },

    /** The bookings a user made as iCalendar text. */
    async userCalendar(tenantId: string, userId: string, timezone: string): Promise<string> {
      return render(tenantId, { ownerId: userId }, `Bookings of ${userId}`, timezone);
    },
  };
}

export type CalendarFeedService = ReturnType<typeof calendarFeedService>;
