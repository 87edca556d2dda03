/**
 * The storage ports of the core: the rows it reads and writes, one repository
 * interface per kind of row, and the unit of work that hands them out bound
 * to one transaction. `server/db` implements them over Postgres and
 * `node.ts` wires them in; the services see only these interfaces (unit tests
 * run them over in-memory fakes).
 */
import type { Problem } from '../../shared/errors';
import type { Rules } from '../../shared/schemas';
import type { DomainEvent, EventData, EventType, FeedEvent } from './events';
import type { GroupStatus } from './ports';
import type { BookingPaymentState, BookingRow, HoldRow, HoldStatus, ResourceRow, SlotRow } from './types';

/** A stored event (the feed's row). */
export type EventRow = FeedEvent;

/** What a one-statement fast path did: wrote `row`, or nothing ('conflict' with the slots in the way, or 'fallback'). */
export type FastResult<T> =
  | { status: 'ok'; row: T }
  | { status: 'conflict'; conflicts: { resourceId: string; start: string; end: string; remaining: number; reason: 'blocked' | 'full' }[] }
  | { status: 'fallback'; conflicts?: undefined };

/**
 * The event of a fast path, built before the database has given the row its
 * id and times: `build` puts `mark(name)` where each of `names` goes, and the
 * store fills them in (with the seats the change left) as it commits.
 */
export interface MarkedEvent {
  build(mark: (name: string) => string): DomainEvent;
  names: string[];
}

/** What a new booking is made of (the store gives it its id, status, version and times). */
export type NewBooking = Pick<BookingRow, 'holdId' | 'ownerId' | 'resourceIds' | 'start' | 'end' | 'seats' | 'customer' | 'attendees' | 'metadata' | 'payment'>;
export interface BookingFilter {
  ownerId?: string;
  resourceId?: string;
  from?: number;
  to?: number;
  status?: string;
}
export interface BookingRepository {
  /**
   * The one-statement direct booking (migration 003's create_booking_fast):
   * seats, booking, resources and its booking.confirmed event, or nothing with
   * 'conflict' or 'fallback'. `event` is the event's data; the function fills
   * in the booking's id, createdAt and updatedAt.
   */
  createFast(tenantId: string, b: NewBooking & {
    holdId: null;
  }, event: MarkedEvent, versions: number[]): Promise<FastResult<BookingRow>>;
  /** Inserts a confirmed booking with its resources. */
  insert(tenantId: string, b: NewBooking): Promise<BookingRow>;
  /** Reads one booking of a tenant; `lock` takes its row lock. */
  get(tenantId: string, id: string, lock?: boolean): Promise<BookingRow | null>;
  /** The booking made from a hold. */
  byHold(holdId: string): Promise<BookingRow | null>;
  /** Cancels a locked booking. */
  cancel(id: string, reason: string | null): Promise<BookingRow>;
  /** Writes a locked booking's new range, resources, seats and metadata; bumps its version. */
  reschedule(b: Pick<BookingRow, 'id' | 'resourceIds' | 'start' | 'end' | 'seats' | 'metadata'>): Promise<BookingRow>;
  /** One page of bookings, newest range last, filtered. */
  page(tenantId: string, f: BookingFilter, after: {
    createdAt: number;
    id: string;
  } | null, limit: number): Promise<BookingRow[]>;
  /** Confirmed bookings on a resource ending after `from` (for archive checks). */
  liveOn(resourceId: string, from: number): Promise<number>;
  /** A calendar feed's bookings (calendar-feeds.ts): see CalendarWindow; by start, at most `limit`. */
  forCalendar(tenantId: string, w: CalendarWindow, limit: number): Promise<BookingRow[]>;
  /** Payments: writes a booking's payment state (no version bump: the booking itself did not change). */
  setPayment(id: string, payment: BookingPaymentState): Promise<void>;
  /** Payments: bookings (confirmed or cancelled) whose payment is authorized or capture_pending, older than `olderThanMs`, whose next try is due; the longest due first. */
  pendingCaptures(olderThanMs: number, limit: number): Promise<BookingRow[]>;
}

/** Which bookings a calendar feed shows: one resource's or one user's, starting in [from, to); cancelled ones only if cancelled since `cancelledSince`. */
export interface CalendarWindow {
  resourceId?: string;
  ownerId?: string;
  from: number;
  to: number;
  cancelledSince: number;
}

/** API keys (stored as SHA-256 hashes) and the ids of issued user tokens. */
export interface ApiKeyRow {
  id: string;
  tenantId: string;
  name: string;
  prefix: string;
  createdAt: number;
  expiresAt: number | null;
  revokedAt: number | null;
}
export interface ApiKeyRepository {
  /** Stores the hash of a new key. */
  insert(tenantId: string, keyHash: Buffer, prefix: string, name: string): Promise<ApiKeyRow>;
  /** The live key with this hash (not revoked, not expired), if any. */
  byHash(keyHash: Buffer): Promise<ApiKeyRow | null>;
  /** One key of the tenant, optionally locked. */
  get(tenantId: string, id: string, lock?: boolean): Promise<ApiKeyRow | null>;
  /** A page of the tenant's keys, oldest first, after the cursor. */
  page(tenantId: string, after: {
    createdAt: number;
    id: string;
  } | null, limit: number): Promise<ApiKeyRow[]>;
  /**
   * How many keys of the tenant will keep working (not revoked, and not
   * rotated away: no expiry), not counting `except`; locks them so two
   * revocations cannot both pass.
   */
  lastingCount(tenantId: string, except?: string): Promise<number>;
  /** Revokes a key now. */
  revoke(id: string): Promise<ApiKeyRow>;
  /** Makes a key stop working `seconds` from now (or sooner, if it already expires sooner). */
  expireIn(id: string, seconds: number): Promise<ApiKeyRow>;
  /** Keys revoked or given an expiry after `since` (the database clock), for nodes that may have missed the news. */
  changedSince(since: Date): Promise<{
    id: string;
    endsAt: number;
  }[]>;
}
export interface UserTokenRepository {
  /** Records an issued token's id. */
  insert(t: {
    id: string;
    tenantId: string;
    userId: string;
    expiresAt: number;
  }): Promise<void>;
  /** Revokes one token of the tenant (`fresh`: by this call); null when the tenant issued no token with that id. */
  revoke(tenantId: string, id: string): Promise<{
    id: string;
    userId: string;
    expiresAt: number;
    revokedAt: number;
    fresh: boolean;
  } | null>;
  /** Revokes every unexpired token of a user; returns their ids and expiries. */
  revokeUser(tenantId: string, userId: string): Promise<{
    id: string;
    expiresAt: number;
  }[]>;
  /** Tokens revoked after `since` that have not expired yet. */
  revokedSince(since: Date): Promise<{
    id: string;
    expiresAt: number;
  }[]>;
  /** The database clock (what `since` is measured in). */
  now(): Promise<Date>;
}

export interface EventRepository {
  /**
   * Writes an event in the caller's transaction, as a transactional logical
   * message: the feed decoder sees it once the transaction commits, never if
   * it rolls back. The message carries the seats the change left on the
   * ranges it touched, read in this transaction (which holds their row locks).
   */
  append<T extends EventType>(tenantId: string, type: T, resourceIds: string[], data: EventData[T]): Promise<void>;
  /**
   * A tenant's numbered events after `after`, oldest first (only those naming
   * one of `resourceIds` when given): at most `limit`, and within `maxBytes`
   * of `data` (as JSON text) in all, except that the first comes whatever its
   * size, so a reader always moves on. The sizes are summed in SQL over the
   * page's positions and only the events within the budget are sent, so an
   * oversized page is never materialized here. `cut`: events within `limit`
   * were left out for the budget.
   */
  page(tenantId: string, after: number, limit: number, maxBytes: number, resourceIds?: string[]): Promise<{
    rows: EventRow[];
    cut: boolean;
  }>;
  /**
   * Writes a mark into the WAL (a non-transactional logical message): once
   * the feed decoder has passed it, every transaction that committed before
   * this call is stored. Returns its LSN (see `storedUpTo`).
   */
  mark(): Promise<string>;
  /** True once the decoder has stored everything before `lsn` (a mark's). */
  storedUpTo(lsn: string): Promise<boolean>;
  /** The highest seq stored so far (a subscriber's starting point). */
  lastSeq(): Promise<number>;
}

/** Group bookings and their members. */
export type GroupRole = 'organizer' | 'participant';
export interface GroupRow {
  id: string;
  tenantId: string;
  title: string;
  createdBy: string | null;
  status: GroupStatus;
  holdId: string | null;
  bookingId: string | null;
  createdAt: number;
  updatedAt: number;
}
export interface MemberRow {
  userId: string;
  role: GroupRole;
  addedAt: number;
}
export interface GroupRepository {
  /** Inserts a group booking with its first members. */
  insert(tenantId: string, title: string, createdBy: string | null, members: {
    userId: string;
    role: GroupRole;
  }[]): Promise<GroupRow>;
  /** Reads a group booking of a tenant; `lock` takes its row lock. */
  get(tenantId: string, id: string, lock?: boolean): Promise<GroupRow | null>;
  /** The group booking holding this hold, if any. */
  byHold(holdId: string): Promise<GroupRow | null>;
  /** Writes status, hold and booking of a locked group booking. */
  setState(id: string, s: {
    status: GroupStatus;
    holdId: string | null;
    bookingId: string | null;
  }): Promise<void>;
  /** Marks held groups whose hold is among `holdIds` expired; returns their ids (each once, cluster-wide). */
  expireByHolds(holdIds: string[]): Promise<string[]>;
  /** The members of a group booking. */
  members(id: string): Promise<MemberRow[]>;
  /** A user's role in a group booking of the tenant, or null. */
  roleOf(tenantId: string, id: string, userId: string): Promise<GroupRole | null>;
  /** Adds or re-roles a member. */
  upsertMember(id: string, userId: string, role: GroupRole): Promise<void>;
  /** Removes a member; true when one was removed. */
  removeMember(id: string, userId: string): Promise<boolean>;
}

/** Holds and their resources. */
export interface HoldRepository {
  /** Inserts a hold expiring ttlSeconds from the database's now. */
  insert(tenantId: string, ownerId: string | null, req: {
    resourceIds: string[];
    start: number;
    end: number;
    seats: number;
  }, ttlSeconds: number): Promise<HoldRow>;
  /**
   * The one-statement hold (migration 003's create_hold_fast): seats, hold,
   * resources and its hold.created event, or nothing with 'conflict' or
   * 'fallback'. `event` is the event's data; the function fills in the hold's
   * id, createdAt and expiresAt.
   */
  createFast(tenantId: string, ownerId: string | null, req: {
    resourceIds: string[];
    start: number;
    end: number;
    seats: number;
  }, ttlSeconds: number, event: MarkedEvent, versions: number[]): Promise<FastResult<HoldRow>>;
  /** Reads one hold of a tenant; `lock` takes its row lock. */
  get(tenantId: string, id: string, lock?: boolean): Promise<HoldRow | null>;
  /** Sets status (and booking) of a locked hold. */
  setStatus(id: string, status: HoldStatus, bookingId?: string | null): Promise<void>;
  /** Moves a locked hold's expiry. */
  setExpiry(id: string, expiresAt: number): Promise<number>;
  /**
   * Locks live holds whose expiry has passed, skipping rows another
   * transaction holds (another node's sweeper, or a confirm in flight), so no
   * two nodes expire the same hold. Optionally only those touching resources
   * and a range.
   */
  lockDue(limit: number, near?: {
    tenantId: string;
    resourceIds: string[];
    start: number;
    end: number;
  }): Promise<HoldRow[]>;
  /** True when some live hold on these resources is past its expiry (a cheap, lock-free probe). */
  anyDueNear(resourceIds: string[], start: number, end: number): Promise<boolean>;
  /**
   * Takes the transaction's lock on one user's holds, then counts what the
   * quotas read: the user's live holds (and when the first of them expires),
   * and their holds on any of these resources overlapping the range created
   * within the window (and when the oldest of those leaves it). Locked, so
   * concurrent requests of one user are counted one after the other; each
   * count reads only its own index range (holds_owner_live, holds_owner),
   * never the user's whole history.
   */
  quotaOf(tenantId: string, ownerId: string, req: {
    resourceIds: string[];
    start: number;
    end: number;
  }, windowSeconds: number): Promise<{
    live: number;
    nextExpiry: number | null;
    again: number;
    againClears: number | null;
    now: number;
  }>;
  /** Holds with live seats on a resource from `from` on (for archive checks). */
  liveOn(resourceId: string, from: number): Promise<number>;
}

/** Stored responses for Idempotency-Key replays (24 hours). */
export interface StoredResponse {
  fingerprint: string;
  status: number | null;
  headers: Record<string, string> | null;
  body: string | null;
}
export interface IdempotencyRepository {
  /**
   * Claims a key inside the request's transaction. A concurrent request with
   * the same key blocks on the primary key until this transaction ends, then
   * sees the stored response. Returns null when claimed, else the existing record.
   */
  claim(scope: string, key: string, fingerprint: string): Promise<StoredResponse | null>;
  /** Stores the response of a claimed key. */
  complete(scope: string, key: string, status: number, headers: Record<string, string>, body: string): Promise<void>;
}

/** Resources (the tree), their schedules and blocks. */
export interface NewResource {
  name: string;
  kind: string;
  parentId: string | null;
  capacity: number;
  timezone: string;
  slotMinutes: number;
  rules: Rules;
  metadata: Record<string, unknown>;
  /** Payments: the price per booking, or null (free). */
  price?: { amount: number; currency: string } | null;
}
export interface ScheduleRow {
  resourceId: string;
  generatedTo: number;
  timezone: string;
  weekly: {
    days: string[];
    start: string;
    end: string;
  }[];
  overrides: {
    date: string;
    intervals: {
      start: string;
      end: string;
    }[];
  }[];
  version: number;
}
export interface BlockRow {
  id: string;
  resourceId: string;
  start: number;
  end: number;
  reason: string | null;
  createdAt: number;
}
/** How `byIds` locks the rows it reads: not at all, FOR UPDATE, or FOR NO KEY UPDATE. */
export type RowLock = false | 'update' | 'no-key-update';
export interface ResourceRepository {
  /** Inserts a resource. */
  insert(tenantId: string, r: NewResource): Promise<ResourceRow>;
  /** Writes every field of a resource and bumps its version. */
  update(r: ResourceRow & {
    archivedAt: number | null;
  }): Promise<ResourceRow>;
  /**
   * Reads resources of a tenant by id (any order); `lock` takes row locks sorted by id: 'update' (FOR UPDATE),
   * or 'no-key-update' (FOR NO KEY UPDATE), which serializes changes of the resource without blocking the
   * KEY SHARE lock that a hold's or booking's foreign key takes on it after locking its slots (FOR UPDATE there
   * deadlocked a capacity cut, a block or a schedule change with every hold on the slots it had not locked yet).
   */
  byIds(tenantId: string, ids: string[], lock?: RowLock): Promise<ResourceRow[]>;
  /** One page of a tenant's resources in creation order. */
  page(tenantId: string, after: {
    createdAt: number;
    id: string;
  } | null, limit: number, includeArchived: boolean): Promise<ResourceRow[]>;
  /** Ids of the resource's ancestors, nearest first. */
  ancestorIds(tenantId: string, id: string): Promise<string[]>;
  /** The resource and all its descendants, parents before children. */
  subtree(tenantId: string, id: string): Promise<ResourceRow[]>;
  /** True when the resource has children that are not archived. */
  hasLiveChildren(id: string): Promise<boolean>;
}
export interface ScheduleRepository {
  /** Schedules of the given resources, keyed by resource id. */
  forResources(ids: string[]): Promise<Map<string, ScheduleRow>>;
  /** Locks up to `limit` schedules whose slots end before `until`, skipping ones another node is extending. */
  lockLagging(until: number, limit: number): Promise<{
    tenantId: string;
    resourceId: string;
    generatedTo: number;
  }[]>;
  /** Records how far slots of these resources are generated. */
  setGeneratedTo(ids: string[], to: number): Promise<void>;
  /** Creates or replaces a resource's schedule. */
  upsert(tenantId: string, s: Omit<ScheduleRow, 'version'>): Promise<ScheduleRow>;
}
export interface BlockRepository {
  /** Inserts a block. */
  insert(tenantId: string, resourceId: string, start: number, end: number, reason: string | null): Promise<BlockRow>;
  /** Deletes a block, returning it. */
  delete(tenantId: string, id: string): Promise<BlockRow | null>;
  /** Blocks on any of the resources that overlap [from, to). */
  overlapping(resourceIds: string[], from: number, to: number): Promise<BlockRow[]>;
}

/** Slot rows: the only place seats are counted. */
export interface SlotWindow {
  resourceId: string;
  start: number;
  end: number;
}
/** A resource as availability needs it. */
export type AvailabilityResource = Pick<ResourceRow, 'id' | 'slotMinutes' | 'rules'> & {
  archived: boolean;
}
/** What `slotRepository.availability` read. */
export interface AvailabilityRead {
  /** The named resources found (archived ones too), in no particular order. */
  resources: AvailabilityResource[];
  /** Slot rows read in all, at most `limit + 1`. */
  total: number;
  /** Each found resource's slots sorted by start; null when `total` passed `limit` (nothing was sent). */
  slots: Map<string, SlotRow[]> | null;
}
export interface SlotRepository {
  /**
   * Locks every slot overlapping any of the windows, in one global order
   * (resource, start). Every writer locks slots this way and only this way,
   * which is why concurrent multi-resource requests cannot deadlock.
   */
  lock(tenantId: string, windows: SlotWindow[]): Promise<SlotRow[]>;
  /** Adds a seat delta to each slot; the table's CHECK refuses any oversell. */
  addSeats(deltas: Map<number, number>): Promise<void>;
  /**
   * Everything an availability answer reads, in one statement: the named
   * resources (archived ones too, so the caller can say which is missing)
   * and their slots overlapping [from - pad, to + pad), where pad is the
   * largest buffer padding (before + after) of those resources. Unlocked;
   * it reads at most `limit + 1` slot rows in all (each resource is its own index
   * scan that stops there, and the outer LIMIT stops the loop); past `limit` it sends only
   * the count (`slots` null), so an oversized query costs the database
   * `limit + 1` index entries and this node nothing. Each resource's slots
   * come as one string of numbers (see `parseSlots`) that Postgres builds in
   * start order: one row per resource instead of one per slot, and no
   * timestamps for pg to parse (their parsing was the top of the profile).
   */
  availability(tenantId: string, resourceIds: string[], from: number, to: number, limit: number): Promise<AvailabilityRead>;
  /** Inserts new slots and updates changed ones (end, capacity, blocked). */
  upsert(tenantId: string, slots: Omit<SlotRow, 'id' | 'seatsTaken'>[]): Promise<void>;
  /** Deletes slots by id (callers have checked they hold no seats). */
  delete(ids: number[]): Promise<void>;
  /** Count of open slots of the resources from `from` on. */
  countOpen(resourceIds: string[], from: number): Promise<number>;
}

/** Tenants and node-independent settings (API keys are in credentials.ts). */
export interface TenantRepository {
  /** Inserts a tenant and returns its row. */
  create(name: string): Promise<{
    id: string;
    name: string;
    createdAt: number;
  }>;
}
export interface SettingsRepository {
  /** Reads a setting, or inserts `fallback` when absent (first writer wins across nodes). */
  getOrInit<T>(key: string, fallback: T): Promise<T>;
  /** Reads a setting. */
  get<T>(key: string): Promise<T | null>;
}

/** A tenant's webhook endpoint. */
export interface WebhookEndpointRow {
  id: string;
  tenantId: string;
  url: string;
  description: string;
  /** Empty: every type. */
  eventTypes: string[];
  secret: string;
  /** The secret before the last rotation, still signing until `previousExpiresAt`. */
  previousSecret: string | null;
  previousExpiresAt: number | null;
  enabled: boolean;
  disabledReason: string | null;
  failingSince: number | null;
  failures: number;
  nextAttemptAt: number;
  createdAt: number;
  /** Deliveries not made yet. */
  pending: number;
}
export type WebhookEndpointChange = Partial<Pick<WebhookEndpointRow, 'url' | 'description' | 'eventTypes' | 'enabled'>>;
/** One event for one endpoint (or a manual redelivery of one). */
export interface WebhookDeliveryRow {
  id: string;
  endpointId: string;
  seq: number;
  eventType: string;
  redeliveryOf: string | null;
  status: 'pending' | 'delivered';
  attempts: number;
  lastStatus: number | null;
  lastError: string | null;
  lastAttemptAt: number | null;
  deliveredAt: number | null;
  createdAt: number;
}
export interface WebhookAttemptRow {
  at: number;
  status: number | null;
  error: string | null;
  durationMs: number;
}
/** What an attempt did: delivered (2xx), or failed with the status or error. */
export interface AttemptOutcome {
  ok: boolean;
  status: number | null;
  error: string | null;
  durationMs: number;
}
export interface WebhookRepository {
  create(tenantId: string, e: { url: string; description: string; eventTypes: string[]; secret: string }): Promise<WebhookEndpointRow>;
  /** The tenant's endpoints; inside a transaction, concurrent counts of one tenant wait for each other until it ends (a limit checked against it holds). */
  count(tenantId: string): Promise<number>;
  get(tenantId: string, id: string, lock?: boolean): Promise<WebhookEndpointRow | null>;
  /** An endpoint by id alone (the sender's read). */
  byId(id: string): Promise<WebhookEndpointRow | null>;
  page(tenantId: string, after: { createdAt: number; id: string } | null, limit: number): Promise<WebhookEndpointRow[]>;
  update(id: string, change: WebhookEndpointChange): Promise<WebhookEndpointRow>;
  /** Enabled again: the run of failures forgotten, the next attempt due now. */
  enable(id: string): Promise<WebhookEndpointRow>;
  disable(id: string, reason: string): Promise<WebhookEndpointRow>;
  rotate(id: string, secret: string, previousExpiresAt: number): Promise<WebhookEndpointRow>;
  delete(id: string): Promise<void>;
  /**
   * Turns the stored feed after the dispatcher's cursor into deliveries (one
   * per matching endpoint and event committed after the endpoint was made, at
   * most `limit` events) and moves the
   * cursor, in one statement; null when another node holds the cursor.
   * Returns the endpoints that got deliveries.
   */
  dispatch(limit: number): Promise<{ events: number; endpoints: string[] } | null>;
  /** Takes (or renews) the endpoint's sending lease for `ms`; null when another sender holds it. */
  lease(id: string, owner: string, ms: number): Promise<WebhookEndpointRow | null>;
  release(id: string, owner: string): Promise<void>;
  /** Enabled endpoints, not leased, with a pending delivery whose next attempt is due. */
  due(limit: number): Promise<string[]>;
  /** The endpoint's next pending delivery with its event (the event as the REST feed shows it). */
  nextPending(endpointId: string): Promise<{ delivery: WebhookDeliveryRow; event: { seq: number; type: string; resourceIds: string[]; data: Record<string, unknown>; at: number } } | null>;
  /** Records an attempt of a delivery and its outcome on the delivery (and on the endpoint: its run of failures and next attempt), if `owner` still holds the lease; else nothing (null). */
  recordAttempt(deliveryId: string, endpointId: string, owner: string, outcome: AttemptOutcome, nextAttemptAt: number | null): Promise<WebhookEndpointRow | null>;
  deliveries(endpointId: string, before: number | null, limit: number, status?: 'pending' | 'delivered'): Promise<(WebhookDeliveryRow & { position: number })[]>;
  delivery(endpointId: string, id: string): Promise<WebhookDeliveryRow | null>;
  attempts(deliveryId: string, limit: number): Promise<WebhookAttemptRow[]>;
  redeliver(endpointId: string, of: WebhookDeliveryRow): Promise<WebhookDeliveryRow>;
  /** Deletes deliveries delivered more than `olderThanMs` ago, with their attempts; returns how many. */
  purge(olderThanMs: number): Promise<number>;
  /** Pending deliveries, in all and those due, and attempts that failed since start (for /metrics). */
  stats(): Promise<{ pending: number; endpointsFailing: number; endpointsDisabled: number }>;
}

/** What an e-mail tells of. */
export type MailKind = 'confirmation' | 'change' | 'cancellation' | 'reminder';
/** One e-mail about one booking (migration 011). */
export interface MailMessageRow {
  id: string;
  tenantId: string;
  bookingId: string;
  kind: MailKind;
  /** The event it tells of (null: a reminder). */
  seq: number | null;
  /** The booking as the event left it (the event's `booking`, read when claimed), or null for a reminder. */
  booking: Record<string, unknown> | null;
  startsAt: number | null;
  status: 'pending' | 'sent' | 'logged' | 'skipped' | 'failed';
  attempts: number;
  lastError: string | null;
  nextAttemptAt: number;
  createdAt: number;
}
/** A booking event that makes a message, as the dispatcher of logged messages returns it. */
export interface UnstoredMessage {
  seq: number;
  tenantId: string;
  kind: Exclude<MailKind, 'reminder'>;
  booking: Record<string, unknown>;
}
/** What an attempt at a message came to. */
export interface MailOutcome {
  id: string;
  status: MailMessageRow['status'];
  error: string | null;
  recipients: string[];
  /** Pending again: when to try next. */
  nextAttemptAt?: number;
}
export interface MailRepository {
  /**
   * Turns the stored feed after the mail cursor into messages (one per
   * booking event whose booking has an e-mail address, at most `limit`
   * events) and moves the cursor, in one statement; null when another node
   * holds the cursor. Returns the bookings that got messages.
   */
  dispatch(limit: number): Promise<{ events: number; bookings: string[] } | null>;
  /** As `dispatch`, for messages that are only logged: moves the cursor and returns the booking events that would have made messages, storing nothing. */
  dispatchUnstored(limit: number): Promise<{ events: number; messages: UnstoredMessage[] } | null>;
  /**
   * Makes a reminder for each confirmed booking whose start entered the
   * reminder window (`beforeMs` ahead) since the last pass and that was last
   * changed before its reminder time, and moves the pass's cursor, in one
   * statement; null when another node holds the cursor. Returns their bookings.
   */
  remind(beforeMs: number): Promise<string[] | null>;
  /** Leases up to `limit` due messages to `owner` for `ms`, each the first pending one of its booking and leased by no one. */
  claim(owner: string, ms: number, limit: number): Promise<MailMessageRow[]>;
  /** Extends `owner`'s leases on these messages to `ms` from now (those it still holds). */
  renew(owner: string, ids: string[], ms: number): Promise<void>;
  /** Records attempts (pending again with a next attempt time, or final) of messages `owner` still holds; returns their ids. */
  record(owner: string, outcomes: MailOutcome[]): Promise<string[]>;
  /** Deletes finished messages older than `olderThanMs`. */
  purge(olderThanMs: number): Promise<number>;
  /** Messages by status (for /metrics). */
  stats(): Promise<Record<string, number>>;
}

/** A calendar feed (migration 009): a resource's or a user's bookings behind a token whose hash alone is kept. */
export interface CalendarFeedRow {
  id: string;
  tenantId: string;
  resourceId: string | null;
  userId: string | null;
  timezone: string;
  createdBy: string;
  createdAt: number;
}
export interface CalendarFeedRepository {
  insert(tenantId: string, f: { resourceId: string | null; userId: string | null; timezone: string; tokenHash: Buffer; createdBy: string }): Promise<CalendarFeedRow>;
  /** The tenant's feeds; inside a transaction, concurrent counts of one tenant wait for each other until it ends (a limit checked against it holds). */
  count(tenantId: string): Promise<number>;
  byTokenHash(tokenHash: Buffer): Promise<CalendarFeedRow | null>;
  get(tenantId: string, id: string): Promise<CalendarFeedRow | null>;
  /** One page in creation order; only the user's feeds when `userId` is given. */
  page(tenantId: string, userId: string | null, after: { createdAt: number; id: string } | null, limit: number): Promise<CalendarFeedRow[]>;
  delete(id: string): Promise<void>;
}

/** The persisted updates of Yjs documents: an append-only log per document, compacted now and then. */

/** The repositories of one unit of work, each bound to its transaction (or to the pool, for plain reads). */
export interface Unit {
  tenants: TenantRepository;
  settings: SettingsRepository;
  apiKeys: ApiKeyRepository;
  userTokens: UserTokenRepository;
  resources: ResourceRepository;
  schedules: ScheduleRepository;
  blocks: BlockRepository;
  slots: SlotRepository;
  holds: HoldRepository;
  bookings: BookingRepository;
  groups: GroupRepository;
  events: EventRepository;
  idempotency: IdempotencyRepository;
  webhooks: WebhookRepository;
  calendarFeeds: CalendarFeedRepository;
  mail: MailRepository;
}

type AfterCommit = () => void | Promise<void>;

/** Transactions and reads (the unit of work); the db layer implements it. */
export interface Store {
  /** Runs fn in a transaction (joining an ambient one, if any); afterCommit runs once it is durable. Retries a lost deadlock. */
  tx<T>(fn: (t: Unit) => Promise<T>, afterCommit?: AfterCommit): Promise<T>;
  /** Runs fn's self-contained statements without BEGIN/COMMIT (joining an ambient transaction); afterCommit runs when fn returns non-null. */
  autocommit<T>(fn: (t: Unit) => Promise<T | null>, afterCommit?: AfterCommit): Promise<T | null>;
  /** Opens a transaction that every `tx` inside fn joins; fn decides whether it commits. */
  ambient<T>(fn: (t: Unit) => Promise<{ commit: boolean; value: T }>): Promise<T>;
  /** Plain reads and single writes on the primary, outside any transaction. */
  primary: Unit;
  /** Availability reads (a replica when configured, else the primary). */
  replica: Unit;
  /** What a storage failure means to the client (a problem), or null when err is not the store's. */
  explain(err: unknown, log: { warn(obj: object, msg?: string): void }): Problem | null;
}

/** The persisted updates of Yjs documents (the realtime gateway's storage; the db layer implements it). */
export interface DocumentStore {
  /** Appends one update to a document's log, durably enough for live editing; returns its id. */
  append(docName: string, update: Uint8Array): Promise<number>;
  /** Every stored update of a document in id order (`fresh`: on the connections of Yjs storage, not the request pool). */
  load(docName: string, opts?: { fresh?: boolean }): Promise<{ updates: Uint8Array[]; lastId: number }>;
  /**
   * In one snapshot transaction: reads the document's updates and, when
   * `merge` returns an update, replaces exactly the rows read by it. Returns
   * how many updates were read, or null when another node compacted them first.
   */
  compact(docName: string, merge: (updates: Uint8Array[]) => Uint8Array | null): Promise<number | null>;
}
