/** What the core needs from the outside world, as interfaces the composition root fills. */
import type { ResourceCache } from './services/resource-cache';
import type { Store } from './store';
import type { Clock } from './types';

export interface CoreConfig {
  holdTtlSeconds: number;
  holdMinTtlSeconds: number;
  slotHorizonDays: number;
  /** Test hook: false sends every hold and direct booking down the general path (migration 003 has the fast one). */
  fastPaths?: boolean;
  /** What one user (token) may hold (0: no limit); tenant keys are not limited. */
  holdQuota?: { perUser: number; reholdLimit: number; reholdWindowSeconds: number };
  /** Payments: the first retry's delay of a failed capture (PAYMENT_CAPTURE_RETRY_MS; 5 s when absent). */
  paymentCaptureRetryMs?: number;
}

/** What a rate counter says after a take: allowed or not, and how the budget stands. */
export interface RateVerdict {
  allowed: boolean;
  /** The budget of the window (0: unlimited). */
  limit: number;
  remaining: number;
  /** Milliseconds until the window resets. */
  resetMs: number;
}

/** Fixed-window rate counters shared by every node (the bus layer implements it over Redis). */
/** One take of a budget: `points` (default 1) from `bucket`'s budget for `key`. */
export interface RateTake {
  bucket: string;
  key: string;
  points?: number;
}

export interface RateCounter {
  /** Takes `points` from `bucket`'s budget for `key`; never rejects (a store outage counts in memory). */
  take(bucket: string, key: string, points?: number): Promise<RateVerdict>;
  /** Several takes counted at once (one round trip to the store); their verdicts in the same order. */
  takeMany(takes: readonly RateTake[]): Promise<RateVerdict[]>;
}

/** Messages between nodes (the bus implements it): what one node changes that every node must act on. */
export interface ClusterChannel {
  publish(channel: string, type: string, payload: unknown): Promise<void>;
  subscribe(channel: string, handler: (env: { type: string; nodeId: string; payload: unknown }) => void): Promise<() => Promise<void>>;
  /** True when messages can currently reach the other nodes. */
  healthy(): boolean;
  /** Calls handler each time the channel is back after an outage (what was sent meanwhile was lost). */
  onReconnect?(handler: () => void): () => void;
}

/** The job queue: post-commit work that must not be lost (server/db/jobs.ts implements it on Postgres with pg-boss). */
export interface JobQueue {
  /**
   * Enqueues a job. With `key`, at most one job of that key waits: sending
   * while one waits is a no-op (the waiting one will do the work). Jobs of a
   * key may still run side by side: a handler that must run alone takes a
   * lock or lease of its own.
   */
  send(name: string, data: object, opts?: { key?: string }): Promise<void>;
  /** Runs jobs of `name` on this node, `concurrency` at a time; a handler that throws is retried; a node that dies mid-job leaves it to be retried. */
  work(name: string, concurrency: number, handler: (data: Record<string, unknown>) => Promise<void>): Promise<void>;
}

/** What one outbound webhook request did. */
export interface OutboundResult {
  /** The HTTP status, or null when none came (refused address, connection error, timeout). */
  status: number | null;
  error: string | null;
  durationMs: number;
}

/** Outbound HTTP for webhooks (server/http/outbound.ts): refuses private and loopback addresses unless configured to allow them. */
export interface WebhookTransport {
  /** Why this URL cannot be delivered to (scheme, credentials, an address it resolves to), or null when it can. */
  check(url: string): Promise<string | null>;
  /** POSTs the body; never throws. */
  post(url: string, body: string, headers: Record<string, string>): Promise<OutboundResult>;
}

/** One e-mail: a plain-text and an HTML body, and an iCalendar invitation (iTIP) as an alternative part. */
export interface MailMessage {
  from: string;
  to: string[];
  subject: string;
  text: string;
  html: string;
  /** Message-ID: the same on every attempt of one message, so a mailbox can drop a repeat. */
  messageId: string;
  calendar: { method: 'REQUEST' | 'CANCEL'; content: string };
}

/** What one attempt to send came to: accepted by the server, only logged (no SMTP server configured), or refused for now or for good. */
export type MailResult =
  | { outcome: 'sent'; response: string }
  | { outcome: 'logged' }
  | { outcome: 'temporary' | 'permanent'; error: string };

/** Outgoing mail (server/http/smtp.ts: SMTP with nodemailer, or a log when no server is configured). */
export interface MailTransport {
  readonly mode: 'smtp' | 'log';
  /** Sends one message; never throws. */
  send(m: MailMessage): Promise<MailResult>;
}

export interface Logger {
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  debug(obj: object | string, msg?: string): void;
}

// ---- payments (docs/integrations.md "Payments")
/** What an authorization attempt came to. */
export type AuthorizeResult =
  | { outcome: 'authorized'; reference: string }
  | { outcome: 'declined'; reason: string }
  | { outcome: 'failed'; reason: string };

/**
 * A payment provider. `authorize` honours `idempotencyKey`: the same key
 * answers the same authorization (one hold, one card, one charge at most).
 * `capture` and `void` are idempotent and throw when the provider fails.
 */
export interface PaymentProvider {
  readonly name: string;
  authorize(amount: number, currency: string, token: string, idempotencyKey: string): Promise<AuthorizeResult>;
  capture(reference: string): Promise<void>;
  void(reference: string): Promise<void>;
}
// ---- end payments

export interface CoreDeps {
  store: Store;
  /** Other nodes (absent or a no-op when the node runs alone). */
  cluster?: ClusterChannel;
  clock: Clock;
  config: CoreConfig;
  log: Logger;
  /** The resources this node remembers for the fast paths (a cache of its own when absent). */
  resourceCache?: ResourceCache;
  /** Payments: the provider, or absent (PAYMENT_PROVIDER=none: no payment step). */
  payments?: PaymentProvider;
}

export type GroupStatus = 'draft' | 'held' | 'confirmed' | 'cancelled' | 'expired';

/** What the server writes into a group document's `server` map. */
export interface GroupServerState {
  status: GroupStatus;
  holdId: string | null;
  expiresAt: string | null;
  bookingId: string | null;
  error: string | null;
}

/** The converged content of a group booking document. */
export interface GroupDocContent {
  draft: { title?: unknown; start?: unknown; end?: unknown; resourceIds?: unknown; seats?: unknown };
  participants: Record<string, { name?: unknown; email?: unknown; status?: unknown }>;
  notes: string;
  server: Record<string, unknown>;
}

/** The collaborative documents of group bookings (the Yjs side implements it). */
export interface GroupDocs {
  create(groupId: string, init: { title: string; resourceIds: string[] }): Promise<void>;
  read(groupId: string): Promise<GroupDocContent>;
  setServer(groupId: string, state: Partial<GroupServerState>): Promise<void>;
  /** Disconnects a user's live connections to the document on every node. */
  revoke(groupId: string, userId: string): Promise<void>;
}
