/**
 * Request and response schemas shared by the server and browser clients.
 * The server validates every request against these once, at the edge, and
 * generates /openapi.json from the same objects.
 */
import { z } from '@hono/zod-openapi';
import { MAX_AVAILABILITY_DAYS, MAX_AVAILABILITY_RESOURCES } from './limits';

export { MAX_AVAILABILITY_DAYS, MAX_AVAILABILITY_RESOURCES };

const WEEKDAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'] as const;
export const MAX_SEATS = 10_000;
export const MAX_RESOURCES_PER_REQUEST = 20;
/** A hold or booking may span at most this many days. */
export const MAX_BOOKING_DAYS = 31;

/** True when `tz` names an IANA zone this runtime knows. */
export function isTimeZone(tz: string): boolean {
  if (!tz || /^[+-]|^UTC[+-]/i.test(tz)) return false;
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

export const Id = z.uuid({ message: 'must be a UUID' }).openapi({ example: '0b6f3c2e-8d0a-4c1e-9b1f-2f8a6c1d9e01' });
/** An RFC 3339 instant; the offset (Z or ±hh:mm) is mandatory. */
export const Instant = z
  .iso.datetime({ offset: true, message: 'must be an RFC 3339 time with Z or an offset' })
  .openapi({ example: '2027-01-12T09:00:00Z' });
const WallTime = z.string().regex(/^(([01]\d|2[0-3]):[0-5]\d|24:00)$/, 'must be HH:MM (00:00 to 24:00)');
const Name = z.string().trim().min(1).max(200);
const Metadata = z.record(z.string().max(100), z.unknown()).openapi({ example: { source: 'web' } });
export const TimeZone = z.string().max(64).refine(isTimeZone, 'must be an IANA time zone such as Europe/Berlin');
export const SlotMinutes = z
  .number()
  .int()
  .min(5)
  .max(1440)
  .refine((n) => 1440 % n === 0, 'must divide a day (1440 minutes)');
const Seats = z.number().int().min(1).max(MAX_SEATS);
const ResourceIds = z
  .array(Id)
  .min(1)
  .max(MAX_RESOURCES_PER_REQUEST)
  .refine((ids) => new Set(ids).size === ids.length, 'must not repeat an id');

/** Checks end > start on objects with RFC 3339 start/end, and a sane length. */
function rangeOk(v: { start?: string; end?: string }, maxDays: number, ctx: z.RefinementCtx, endPath = 'end'): void {
  if (v.start === undefined || v.end === undefined) return;
  const s = Date.parse(v.start);
  const e = Date.parse(v.end);
  if (!(e > s)) ctx.addIssue({ code: 'custom', path: [endPath], message: `${endPath} must be after the start` });
  else if (e - s > maxDays * 86_400_000) ctx.addIssue({ code: 'custom', path: [endPath], message: `the range may span at most ${maxDays} days` });
}

const RuleFields = {
  minNoticeMinutes: z.number().int().min(0).max(525_600),
  maxAdvanceDays: z.number().int().min(1).max(3650),
  bufferBeforeMinutes: z.number().int().min(0).max(1440),
  bufferAfterMinutes: z.number().int().min(0).max(1440),
};
export const Rules = z
  .strictObject({
    minNoticeMinutes: RuleFields.minNoticeMinutes.default(0),
    maxAdvanceDays: RuleFields.maxAdvanceDays.default(365),
    bufferBeforeMinutes: RuleFields.bufferBeforeMinutes.default(0),
    bufferAfterMinutes: RuleFields.bufferAfterMinutes.default(0),
  })
  .openapi('Rules');
// No defaults here: zod fills defaults even inside .partial(), which would reset the rules a PATCH leaves out.
const RulesPatch = z.strictObject(RuleFields).partial().openapi('RulesPatch');
export type Rules = z.infer<typeof Rules>;

export const TenantCreate = z.strictObject({ name: Name }).openapi('TenantCreate');
/** Only a key's hash is stored: an idempotent replay of the answer that showed it (Idempotent-Replayed: true) cannot show it again. */
const ShownOnce = z.string().nullable().openapi({
  description: 'The API key itself, shown only in this answer; null in an idempotent replay of it (Idempotent-Replayed: true), since only its hash is kept',
});
export const Tenant = z.object({ id: Id, name: z.string(), apiKey: ShownOnce, createdAt: Instant }).openapi('TenantWithKey');

export const TokenCreate = z
  .strictObject({
    userId: z.string().trim().min(1).max(200),
    name: Name,
    role: z.enum(['member', 'organizer']),
    ttlSeconds: z.number().int().min(60).max(30 * 86_400).optional(),
  })
  .openapi('TokenCreate');
export const Token = z
  .object({ token: z.string(), id: Id.openapi({ description: 'The token id (its `jti` claim): DELETE /v1/tokens/{id} revokes it' }), expiresAt: Instant })
  .openapi('UserToken');
export const TokenRevoked = z.object({ id: Id, userId: z.string(), expiresAt: Instant, revokedAt: Instant }).openapi('RevokedToken');
export const UserTokensRevoked = z.object({ userId: z.string(), revoked: z.array(Id) }).openapi('RevokedUserTokens');

/** The longest overlap a rotated API key may keep working for (7 days). */
export const MAX_KEY_OVERLAP_SECONDS = 7 * 86_400;
export const ApiKeyCreate = z.strictObject({ name: Name.optional() }).openapi('ApiKeyCreate');
export const ApiKeyRotate = z
  .strictObject({
    overlapSeconds: z.number().int().min(0).max(MAX_KEY_OVERLAP_SECONDS).optional()
      .openapi({ description: 'How long the old key keeps working (default 3600; 0 revokes it at once)' }),
  })
  .openapi('ApiKeyRotate');
export const ApiKey = z
  .object({ id: Id, name: z.string(), prefix: z.string(), createdAt: Instant, expiresAt: Instant.nullable(), revokedAt: Instant.nullable() })
  .openapi('ApiKey');
export type ApiKey = z.infer<typeof ApiKey>;
export const ApiKeyWithSecret = ApiKey.extend({ apiKey: ShownOnce }).openapi('ApiKeyWithSecret');


// ---- payments (docs/api.md "Payments")
/** A price per booking in minor units (cents) of an ISO 4217 currency. */
export const Price = z
  .strictObject({
    amount: z.number().int().min(0).max(100_000_000),
    currency: z.string().regex(/^[A-Z]{3}$/, 'must be an ISO 4217 code such as EUR'),
  })
  .openapi('Price');
export type Price = z.infer<typeof Price>;
/** What the client pays with: a card token of the payment provider. */
export const PaymentInput = z
  .strictObject({ token: z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/, 'must be visible ASCII') })
  .openapi('PaymentInput');
export type PaymentInput = z.infer<typeof PaymentInput>;
/** A booking's payment: authorized, captured, capture_pending (captured later by a sweep) or voided. */
export const BookingPayment = z
  .object({
    status: z.enum(['authorized', 'captured', 'capture_pending', 'voided']),
    amount: z.number().int(),
    currency: z.string(),
    reference: z.string(),
  })
  .openapi('BookingPayment');
export type BookingPayment = z.infer<typeof BookingPayment>;
// ---- end payments

export const ResourceCreate = z
  .strictObject({
    name: Name,
    kind: z.string().trim().min(1).max(50).default('resource'),
    parentId: Id.nullable().optional(),
    capacity: Seats.default(1),
    timezone: TimeZone.default('UTC'),
    slotMinutes: SlotMinutes.default(30),
    rules: Rules.default({ minNoticeMinutes: 0, maxAdvanceDays: 365, bufferBeforeMinutes: 0, bufferAfterMinutes: 0 }),
    metadata: Metadata.default({}),
    price: Price.nullable().optional(), // payments
  })
  .openapi('ResourceCreate');
export type ResourceCreate = z.infer<typeof ResourceCreate>;

export const ResourcePatch = z
  .strictObject({
    name: Name.optional(),
    kind: z.string().trim().min(1).max(50).optional(),
    parentId: Id.nullable().optional(),
    capacity: Seats.optional(),
    timezone: TimeZone.optional(),
    slotMinutes: SlotMinutes.optional(),
    rules: RulesPatch.optional(),
    metadata: Metadata.optional(),
    price: Price.nullable().optional(), // payments
  })
  .openapi('ResourcePatch');
export type ResourcePatch = z.infer<typeof ResourcePatch>;

export const Resource = z
  .object({
    id: Id,
    name: z.string(),
    kind: z.string(),
    parentId: Id.nullable(),
    capacity: z.number().int(),
    timezone: z.string(),
    slotMinutes: z.number().int(),
    rules: Rules,
    metadata: Metadata,
    version: z.number().int(),
    archivedAt: Instant.nullable(),
    price: Price.nullable(), // payments
    createdAt: Instant,
    updatedAt: Instant,
  })
  .openapi('Resource');
export type Resource = z.infer<typeof Resource>;

const Interval = z
  .strictObject({ start: WallTime, end: WallTime })
  .refine((i) => i.end > i.start, { message: 'end must be after start', path: ['end'] });
export const ScheduleInput = z
  .strictObject({
    timezone: TimeZone.optional(),
    weekly: z
      .array(
        z
          .strictObject({
            days: z.array(z.enum(WEEKDAYS)).min(1).max(7),
            start: WallTime,
            end: WallTime,
          })
          .refine((i) => i.end > i.start, { message: 'end must be after start', path: ['end'] }),
      )
      .max(50),
    overrides: z
      .array(
        z.strictObject({
          date: z.iso.date({ message: 'must be a date YYYY-MM-DD' }),
          intervals: z.array(Interval).max(20),
        }),
      )
      .max(500)
      .default([]),
  })
  .openapi('ScheduleInput');
export type ScheduleInput = z.infer<typeof ScheduleInput>;

export const SlotRef = z.object({ resourceId: Id, start: Instant, end: Instant, seatsTaken: z.number().int() }).openapi('SlotRef');
const Schedule = z.object({ timezone: z.string(), weekly: z.array(z.any()), overrides: z.array(z.any()), version: z.number().int() }).openapi('Schedule');
const Horizon = z.object({ from: Instant, to: Instant }).openapi({ description: 'The range slots are generated for' });
export const ScheduleRead = z.object({ schedule: Schedule, horizon: Horizon }).openapi('ScheduleRead');
export const ScheduleResult = z
  .object({
    schedule: Schedule,
    horizon: Horizon,
    slots: z.number().int().openapi({ description: 'open slots now generated for this resource and its descendants' }),
  })
  .openapi('ScheduleResult');

export const BlockCreate = z
  .strictObject({ start: Instant, end: Instant, reason: z.string().max(500).optional() })
  .superRefine((v, ctx) => rangeOk(v, 366, ctx))
  .openapi('BlockCreate');
export const Block = z
  .object({ id: Id, resourceId: Id, start: Instant, end: Instant, reason: z.string().nullable(), createdAt: Instant })
  .openapi('Block');

export const AvailabilityQuery = z
  .object({
    resourceIds: z
      .string()
      // A repeated id is asked once: the cap counts distinct resources, and the answer lists each once (first occurrence first).
      .transform((s) => [...new Set(s.split(',').filter(Boolean))])
      .pipe(z.array(Id).min(1).max(MAX_AVAILABILITY_RESOURCES)),
    from: Instant,
    to: Instant,
    duration: z.coerce.number().int().min(1).max(MAX_BOOKING_DAYS * 1440).optional(),
    seats: z.coerce.number().int().min(1).max(MAX_SEATS).default(1),
    mode: z.enum(['all', 'any']).default('all'),
  })
  .strict()
  .superRefine((v, ctx) => rangeOk({ start: v.from, end: v.to }, MAX_AVAILABILITY_DAYS, ctx, 'to'));
export const AvailabilitySlots = z
  .object({
    resources: z.array(
      z.object({
        resourceId: Id,
        slots: z.array(z.object({ start: Instant, end: Instant, capacity: z.number().int(), remaining: z.number().int() })),
      }),
    ),
  })
  .openapi('AvailabilitySlots');
export const AvailabilityOptions = z
  .object({ options: z.array(z.object({ start: Instant, end: Instant, resourceIds: z.array(Id) })) })
  .openapi('AvailabilityOptions');

export const HoldCreate = z
  .strictObject({
    resourceIds: ResourceIds,
    start: Instant,
    end: Instant,
    seats: Seats.default(1),
    ttlSeconds: z.number().int().min(1).max(900).optional().openapi({ description: "Seconds until expiry (default HOLD_TTL_SECONDS, at least HOLD_MIN_TTL_SECONDS, normally 30)" }),
  })
  .superRefine((v, ctx) => rangeOk(v, MAX_BOOKING_DAYS, ctx))
  .openapi('HoldCreate');
export type HoldCreate = z.infer<typeof HoldCreate>;
export const HoldExtend = z.strictObject({ ttlSeconds: z.number().int().min(1).max(900) }).openapi('HoldExtend');
export const Hold = z
  .object({
    id: Id,
    status: z.enum(['held', 'confirmed', 'released', 'expired']),
    resourceIds: z.array(Id),
    start: Instant,
    end: Instant,
    seats: z.number().int(),
    expiresAt: Instant,
    bookingId: Id.nullable(),
    ownerId: z.string().nullable(),
    createdAt: Instant,
  })
  .openapi('Hold');
export type Hold = z.infer<typeof Hold>;

const Customer = z.strictObject({ name: Name, email: z.email().max(320) }).openapi('Customer');
const Attendees = z.array(z.strictObject({ name: Name, email: z.email().max(320).optional() })).max(500);
export const HoldConfirm = z
  .strictObject({ customer: Customer, attendees: Attendees.optional(), metadata: Metadata.optional(), payment: PaymentInput.optional() })
  .openapi('HoldConfirm');
export type HoldConfirm = z.infer<typeof HoldConfirm>;

export const BookingCreate = z
  .strictObject({
    resourceIds: ResourceIds,
    start: Instant,
    end: Instant,
    seats: Seats.default(1),
    customer: Customer,
    attendees: Attendees.optional(),
    metadata: Metadata.optional(),
    payment: PaymentInput.optional(), // payments
  })
  .superRefine((v, ctx) => rangeOk(v, MAX_BOOKING_DAYS, ctx))
  .openapi('BookingCreate');
export type BookingCreate = z.infer<typeof BookingCreate>;
export const BookingPatch = z
  .strictObject({
    start: Instant.optional(),
    end: Instant.optional(),
    resourceIds: ResourceIds.optional(),
    seats: Seats.optional(),
    metadata: Metadata.optional(),
  })
  .superRefine((v, ctx) => rangeOk(v, MAX_BOOKING_DAYS, ctx))
  .openapi('BookingPatch');
export type BookingPatch = z.infer<typeof BookingPatch>;
export const BookingCancel = z.strictObject({ reason: z.string().max(500).optional() }).openapi('BookingCancel');
/**
 * A booking's customer as stored: the e-mail may be missing when a group
 * booking was confirmed without a customer and none of its participants gave a
 * valid e-mail (every other way of booking requires one).
 */
const BookingCustomer = z.object({ name: Name, email: z.email().max(320).optional() }).openapi('BookingCustomer');
export const Booking = z
  .object({
    id: Id,
    status: z.enum(['confirmed', 'cancelled']),
    resourceIds: z.array(Id),
    start: Instant,
    end: Instant,
    seats: z.number().int(),
    customer: BookingCustomer,
    attendees: Attendees,
    metadata: Metadata,
    holdId: Id.nullable(),
    ownerId: z.string().nullable(),
    version: z.number().int(),
    cancelReason: z.string().nullable(),
    payment: BookingPayment.nullable(), // payments
    createdAt: Instant,
    updatedAt: Instant,
  })
  .openapi('Booking');
export type Booking = z.infer<typeof Booking>;

export const Page = <T extends z.ZodTypeAny>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().nullable() });
export const ListQuery = z.object({
  cursor: z.string().max(500).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
});
export const BookingListQuery = ListQuery.extend({
  resourceId: Id.optional(),
  from: Instant.optional(),
  to: Instant.optional(),
  status: z.enum(['confirmed', 'cancelled']).optional(),
}).strict();

export const EventsQuery = z
  .object({
    after: z.coerce.number().int().min(0).default(0),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
  })
  .strict();
export const Event = z
  .object({ seq: z.number().int(), type: z.string(), resourceIds: z.array(Id), data: z.record(z.string(), z.unknown()), at: Instant })
  .openapi('Event');
export type Event = z.infer<typeof Event>;

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .openapi('Problem');

const GroupRole = z.enum(['organizer', 'participant']);
const UserId = z.string().trim().min(1).max(200);
export const GroupMember = z.strictObject({ userId: UserId, role: GroupRole }).openapi('GroupMember');
export const GroupBookingCreate = z
  .strictObject({
    title: Name,
    resourceIds: z.array(Id).max(MAX_RESOURCES_PER_REQUEST).optional(),
    members: z.array(GroupMember).max(200).optional(),
  })
  .openapi('GroupBookingCreate');
export type GroupBookingCreate = z.infer<typeof GroupBookingCreate>;
export const GroupHold = z.strictObject({ ttlSeconds: z.number().int().min(1).max(900).optional() }).openapi('GroupHold');
export const GroupConfirm = z.strictObject({ customer: Customer.optional(), metadata: Metadata.optional() }).openapi('GroupConfirm');
export const GroupCancel = z.strictObject({ reason: z.string().max(500).optional() }).openapi('GroupCancel');
export const GroupBooking = z
  .object({
    id: Id,
    docName: z.string(),
    title: z.string(),
    status: z.enum(['draft', 'held', 'confirmed', 'cancelled', 'expired']),
    holdId: Id.nullable(),
    bookingId: Id.nullable(),
    // One closed object, not an allOf of GroupMember (closed) and another closed object, which nothing satisfies.
    members: z.array(z.object({ userId: z.string(), role: GroupRole, addedAt: Instant }).openapi('GroupMemberEntry')),
    document: z.record(z.string(), z.unknown()).openapi({ description: 'The converged Yjs document: draft, participants, notes, server' }),
    // A union with null (anyOf [ref, null]); .nullable() of a named schema becomes an allOf that refuses null.
    hold: z.union([Hold, z.null()]),
    booking: z.union([Booking, z.null()]),
    createdAt: Instant,
  })
  .openapi('GroupBooking');
export type GroupBooking = z.infer<typeof GroupBooking>;

// ---------------------------------------------------------------------------
// Webhooks (docs/integrations.md)

const WebhookUrl = z.string().trim().min(1).max(2048).openapi({ description: 'http or https; private and loopback addresses are refused unless the server allows them (WEBHOOK_ALLOW_PRIVATE)' });
const EventTypeName = z.string().regex(/^[a-z][a-z-]*(\.[a-z][a-z-]*)+$/, 'must be an event type such as booking.confirmed');
const WebhookEventTypes = z.array(EventTypeName).max(50).openapi({ description: 'The event types sent; empty or absent: every type' });
export const WebhookCreate = z
  .strictObject({ url: WebhookUrl, description: z.string().max(500).default(''), eventTypes: WebhookEventTypes.default([]) })
  .openapi('WebhookCreate');
export type WebhookCreate = z.infer<typeof WebhookCreate>;
export const WebhookPatch = z
  .strictObject({
    url: WebhookUrl.optional(),
    description: z.string().max(500).optional(),
    eventTypes: WebhookEventTypes.optional(),
    enabled: z.boolean().optional().openapi({ description: 'true re-enables a disabled endpoint: everything it missed is delivered, in order' }),
  })
  .openapi('WebhookPatch');
export type WebhookPatch = z.infer<typeof WebhookPatch>;
export const Webhook = z
  .object({
    id: Id,
    url: z.string(),
    description: z.string(),
    eventTypes: z.array(z.string()),
    enabled: z.boolean(),
    disabledReason: z.string().nullable(),
    failingSince: Instant.nullable().openapi({ description: 'When the current run of failed attempts began; null while deliveries succeed' }),
    failures: z.number().int().openapi({ description: 'Attempts failed in a row' }),
    nextAttemptAt: Instant,
    pending: z.number().int().openapi({ description: 'Deliveries not yet made' }),
    createdAt: Instant,
  })
  .openapi('Webhook');
export type Webhook = z.infer<typeof Webhook>;
const WebhookSecretValue = z.string().nullable().openapi({
  description: 'The signing secret (whsec_…, Standard Webhooks), shown only in this answer; null in an idempotent replay of it',
});
export const WebhookWithSecret = Webhook.extend({ secret: WebhookSecretValue }).openapi('WebhookWithSecret');
export const WebhookRotate = z
  .strictObject({ overlapSeconds: z.number().int().min(0).max(7 * 86_400).default(86_400).openapi({ description: 'How long the old secret signs too (both signatures are sent)' }) })
  .openapi('WebhookRotate');
export const WebhookDelivery = z
  .object({
    id: Id,
    seq: z.number().int().openapi({ description: 'The event\'s position in the feed (GET /v1/events)' }),
    eventType: z.string(),
    webhookId: z.string().openapi({ description: 'The webhook-id header it is sent with: the same for every attempt and redelivery of the event' }),
    redeliveryOf: Id.nullable(),
    status: z.enum(['pending', 'delivered']),
    attempts: z.number().int(),
    lastStatus: z.number().int().nullable(),
    lastError: z.string().nullable(),
    lastAttemptAt: Instant.nullable(),
    deliveredAt: Instant.nullable(),
    createdAt: Instant,
  })
  .openapi('WebhookDelivery');
export const WebhookAttempt = z
  .object({ at: Instant, status: z.number().int().nullable(), error: z.string().nullable(), durationMs: z.number().int() })
  .openapi('WebhookAttempt');
export const WebhookDeliveryDetail = WebhookDelivery.extend({ attemptLog: z.array(WebhookAttempt).openapi({ description: 'The latest attempts, newest first (at most 50)' }) })
  .openapi('WebhookDeliveryDetail');
export const WebhookDeliveryQuery = ListQuery.extend({ status: z.enum(['pending', 'delivered']).optional() }).strict();

// ---------------------------------------------------------------------------
// Calendar feeds (docs/integrations.md#calendar-feeds)

export const CalendarFeedCreate = z
  .strictObject({
    resourceId: Id.optional().openapi({ description: "A resource's feed: its bookings (tenant API key only)" }),
    userId: UserId.optional().openapi({ description: "A user's feed: the bookings the user made (a user token may ask only for its own)" }),
    timezone: TimeZone.optional().openapi({ description: "A user feed's time zone (default UTC); a resource feed uses the resource's" }),
  })
  .superRefine((v, ctx) => {
    if ((v.resourceId === undefined) === (v.userId === undefined)) ctx.addIssue({ code: 'custom', path: ['resourceId'], message: 'give exactly one of resourceId and userId' });
    if (v.resourceId !== undefined && v.timezone !== undefined) ctx.addIssue({ code: 'custom', path: ['timezone'], message: "a resource feed uses the resource's time zone" });
  })
  .openapi('CalendarFeedCreate');
export type CalendarFeedCreate = z.infer<typeof CalendarFeedCreate>;
export const CalendarFeed = z
  .object({
    id: Id,
    kind: z.enum(['resource', 'user']),
    resourceId: Id.nullable(),
    userId: z.string().nullable(),
    timezone: z.string(),
    path: z.string().openapi({ description: 'The feed\'s path without its token (add ?token=… to subscribe)' }),
    createdAt: Instant,
  })
  .openapi('CalendarFeed');
export type CalendarFeed = z.infer<typeof CalendarFeed>;
export const CalendarFeedWithToken = CalendarFeed.extend({
  token: z.string().nullable().openapi({ description: 'The feed token, shown only in this answer (only its hash is kept); null in an idempotent replay of it' }),
  url: z.string().nullable().openapi({ description: 'The URL to subscribe to, token included; null in an idempotent replay' }),
}).openapi('CalendarFeedWithToken');
/** A feed's query: the feed token, for calendar apps that cannot send headers. Other parameters are ignored (apps add their own). */
export const CalendarQuery = z.object({
  token: z.string().min(1).max(200).optional().openapi({ description: 'A feed token from POST /v1/calendar-feeds (instead of Authorization)' }),
});
export const CalendarFeedListQuery = ListQuery.strict();
