/**
 * Webhooks: endpoints per tenant, and the delivery of every event of the feed
 * to each endpoint that wants it (docs/integrations.md).
 *
 * - The dispatcher turns stored events (only committed changes have them)
 *   into one delivery per matching endpoint, moving its cursor in the same
 *   statement: nothing is lost or made twice, whichever node runs it.
 * - An endpoint's deliveries go out one at a time in feed order (so in order
 *   per resource), by jobs of the job queue keyed by the endpoint (at most
 *   one waits per endpoint) that take the endpoint's lease (one sends at a
 *   time in the cluster); a node that dies mid-job leaves its job to be run
 *   again and its lease to run out. Different endpoints are delivered to
 *   concurrently, so a slow or silent receiver delays only itself.
 * - Each request is signed per Standard Webhooks (webhook-id,
 *   webhook-timestamp, webhook-signature). A failed attempt is retried with
 *   exponential backoff and jitter; an endpoint failing for `disableAfterMs`
 *   (about a day) is disabled and a `webhook.disabled` event says so. Its
 *   deliveries wait: re-enabled, it gets everything it missed, in order.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { Webhook as Signer } from 'standardwebhooks';
import type { Webhook, WebhookCreate, WebhookPatch } from '../../../shared/schemas';
import { DomainError, notFound } from '../errors';
import { EVENT_TYPES } from '../events';
import type { CoreDeps, JobQueue, WebhookTransport } from '../ports';
import type { WebhookDeliveryRow, WebhookEndpointRow } from '../store';
import { decodeCursor, encodeCursor } from './cursor';

export interface WebhookSettings {
  /** Endpoints a tenant may have. */
  maxEndpoints: number;
  /** The first retry's delay; each next one doubles, up to `retryMaxMs`, with ±25 % jitter. */
  retryBaseMs: number;
  retryMaxMs: number;
  /** An endpoint failing without a success for this long is disabled (default a day). */
  disableAfterMs: number;
  /** Jobs deliver to their endpoint at most this long before handing over to a new job. */
  jobBudgetMs: number;
  /** Jobs that deliver at once on each node. */
  concurrency: number;
  /** The longest one attempt can take (the transport's timeout); the sending lease outlasts it. */
  attemptTimeoutMs: number;
}

export const DEFAULT_WEBHOOK_SETTINGS: WebhookSettings = {
  maxEndpoints: 20,
  retryBaseMs: 5_000,
  retryMaxMs: 4 * 3_600_000,
  disableAfterMs: 24 * 3_600_000,
  jobBudgetMs: 30_000,
  concurrency: 4,
  attemptTimeoutMs: 10_000,
};

/** The job that delivers an endpoint's pending deliveries. */
export const DELIVER_JOB = 'webhook-deliver';
const KNOWN_TYPES = new Set<string>(EVENT_TYPES);
const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

const view = (e: WebhookEndpointRow): Webhook => ({
  id: e.id,
  url: e.url,
  description: e.description,
  eventTypes: e.eventTypes,
  enabled: e.enabled,
  disabledReason: e.disabledReason,
  failingSince: iso(e.failingSince),
  failures: e.failures,
  nextAttemptAt: new Date(e.nextAttemptAt).toISOString(),
  pending: e.pending,
  createdAt: new Date(e.createdAt).toISOString(),
});

/** The webhook-id of an event's deliveries: the same for every attempt and redelivery, so receivers can drop repeats. */
export const webhookIdOf = (seq: number) => `evt_${seq}`;

const deliveryView = (d: WebhookDeliveryRow) => ({
  id: d.id,
  seq: d.seq,
  eventType: d.eventType,
  webhookId: webhookIdOf(d.seq),
  redeliveryOf: d.redeliveryOf,
  status: d.status,
  attempts: d.attempts,
  lastStatus: d.lastStatus,
  lastError: d.lastError,
  lastAttemptAt: iso(d.lastAttemptAt),
  deliveredAt: iso(d.deliveredAt),
  createdAt: new Date(d.createdAt).toISOString(),
});

const newSecret = () => `whsec_${randomBytes(32).toString('base64')}`;

/** The delay before retry number `failures` (1 = the first retry): doubling from base, capped, ±25 % jitter. */
export function retryDelay(failures: number, s: Pick<WebhookSettings, 'retryBaseMs' | 'retryMaxMs'>, random = Math.random): number {
  const plain = Math.min(s.retryMaxMs, s.retryBaseMs * 2 ** Math.min(30, Math.max(0, failures - 1)));
  return Math.round(plain * (0.75 + 0.5 * random()));
}

export function webhookService(deps: CoreDeps & { jobs: JobQueue; transport: WebhookTransport }, overrides: Partial<WebhookSettings> = {}) {
  const { store, jobs, transport, clock, log } = deps;
  const settings: WebhookSettings = { ...DEFAULT_WEBHOOK_SETTINGS, ...overrides };

  async function validTypes(types: string[]): Promise<string[]> {
    const unknown = types.filter((t) => !KNOWN_TYPES.has(t));
    if (unknown.length) {
      throw new DomainError('validation-failed', `unknown event types: ${unknown.join(', ')}`, {
        errors: unknown.map((t) => ({ path: 'body.eventTypes', message: `${t} is not an event type` })),
      });
    }
    return [...new Set(types)];
  }

  async function validUrl(url: string): Promise<string> {
    const why = await transport.check(url);
    if (why) throw new DomainError('webhook-url-refused', `${url}: ${why}`, { errors: [{ path: 'body.url', message: why }] });
    return url;
  }

  async function endpoint(tenantId: string, id: string): Promise<WebhookEndpointRow> {
    const e = await store.primary.webhooks.get(tenantId, id);
    if (!e) throw notFound(`webhook ${id}`);
    return e;
  }

  const kick = (endpointId: string) =>
    jobs.send(DELIVER_JOB, { endpointId }, { key: endpointId }).catch((err) => log.warn({ err: (err as Error).message, endpointId }, 'webhook job not queued; the sweep will queue it'));

  /** Signs and sends one delivery; records the attempt, schedules the retry or disables the endpoint. Returns true when delivered. */
  async function attempt(e: WebhookEndpointRow, owner: string): Promise<'delivered' | 'failed' | 'none'> {
    const next = await store.primary.webhooks.nextPending(e.id);
    if (!next) return 'none';
    const { delivery, event } = next;
    const now = clock.now();
    const body = JSON.stringify({
      type: event.type,
      timestamp: new Date(now).toISOString(),
      data: { seq: event.seq, type: event.type, resourceIds: event.resourceIds, data: event.data, at: new Date(event.at).toISOString() },
    });
    const id = webhookIdOf(delivery.seq);
    const at = new Date(Math.floor(now / 1000) * 1000);
    const secrets = [e.secret, ...(e.previousSecret && e.previousExpiresAt !== null && e.previousExpiresAt > now ? [e.previousSecret] : [])];
    const signature = secrets.map((s) => new Signer(s).sign(id, at, body)).join(' ');
    const result = await transport.post(e.url, body, { 'webhook-id': id, 'webhook-timestamp': String(at.getTime() / 1000), 'webhook-signature': signature });
    const ok = result.status !== null && result.status >= 200 && result.status < 300;
    const outcome = { ok, status: result.status, error: result.error ?? (ok ? null : `answered ${result.status}`), durationMs: result.durationMs };
    if (ok) return (await store.primary.webhooks.recordAttempt(delivery.id, e.id, owner, outcome, now)) ? 'delivered' : 'none';
    const failures = e.failures + 1;
    const failingSince = e.failingSince ?? now;
    const updated = await store.primary.webhooks.recordAttempt(delivery.id, e.id, owner, outcome, now + retryDelay(failures, settings));
    // The lease ran out during the attempt: whoever holds it now decides.
    if (!updated) return 'none';
    if (now - failingSince >= settings.disableAfterMs) {
      const reason = `every attempt failed for ${Math.round((now - failingSince) / 60_000)} minutes (${failures} attempts); the last: ${outcome.error}`;
      await store.tx(async (q) => {
        const d = await q.webhooks.disable(e.id, reason);
        await q.events.append(e.tenantId, 'webhook.disabled', [], {
          webhook: { id: d.id, url: d.url, reason, failingSince: iso(updated.failingSince), failures: updated.failures },
        });
      });
      log.warn({ endpointId: e.id, failures }, 'webhook endpoint disabled after sustained failure');
    }
    return 'failed';
  }

  return {
    settings,

    async create(tenantId: string, b: WebhookCreate) {
      const eventTypes = await validTypes(b.eventTypes);
      const url = await validUrl(b.url);
      const secret = newSecret();
      const e = await store.tx(async (q) => {
        if ((await q.webhooks.count(tenantId)) >= settings.maxEndpoints) {
          throw new DomainError('limit-exceeded', `a tenant may have ${settings.maxEndpoints} webhook endpoints; delete one first`, { limit: 'webhooks.tenant', max: settings.maxEndpoints });
        }
        return q.webhooks.create(tenantId, { url, description: b.description, eventTypes, secret });
      });
      return { ...view(e), secret };
    },

    async list(tenantId: string, cursor: string | undefined, limit: number) {
      const rows = await store.primary.webhooks.page(tenantId, decodeCursor(cursor), limit + 1);
      const items = rows.slice(0, limit);
      return { items: items.map(view), nextCursor: rows.length > limit ? encodeCursor(items[items.length - 1]!) : null };
    },

    async get(tenantId: string, id: string) {
      return view(await endpoint(tenantId, id));
    },

    async update(tenantId: string, id: string, p: WebhookPatch) {
      const eventTypes = p.eventTypes ? await validTypes(p.eventTypes) : undefined;
      const url = p.url !== undefined ? await validUrl(p.url) : undefined;
      const e = await store.tx(async (q) => {
        const current = await q.webhooks.get(tenantId, id, true);
        if (!current) throw notFound(`webhook ${id}`);
        let e = await q.webhooks.update(id, { url, description: p.description, eventTypes });
        if (p.enabled === true && !e.enabled) e = await q.webhooks.enable(id);
        if (p.enabled === false && e.enabled) e = await q.webhooks.disable(id, 'disabled by the tenant');
        return e;
      });
      if (e.enabled && e.pending > 0) void kick(e.id);
      return view(e);
    },

    async remove(tenantId: string, id: string) {
      await endpoint(tenantId, id);
      await store.primary.webhooks.delete(id);
    },

    /** A new secret now; the old one signs too (a second signature) for `overlapSeconds`. */
    async rotate(tenantId: string, id: string, overlapSeconds: number) {
      const secret = newSecret();
      const e = await store.tx(async (q) => {
        if (!(await q.webhooks.get(tenantId, id, true))) throw notFound(`webhook ${id}`);
        return q.webhooks.rotate(id, secret, clock.now() + overlapSeconds * 1000);
      });
      return { ...view(e), secret };
    },

    async deliveries(tenantId: string, id: string, cursor: string | undefined, limit: number, status?: 'pending' | 'delivered') {
      await endpoint(tenantId, id);
      let before: number | null = null;
      if (cursor !== undefined) {
        before = /^\d{1,18}$/.test(cursor) ? Number(cursor) : NaN;
        if (!Number.isSafeInteger(before)) throw new DomainError('validation-failed', 'cursor is not valid', { errors: [{ path: 'cursor', message: 'not a cursor from this API' }] });
      }
      const rows = await store.primary.webhooks.deliveries(id, before, limit + 1, status);
      const items = rows.slice(0, limit);
      return { items: items.map(deliveryView), nextCursor: rows.length > limit ? String(items[items.length - 1]!.position) : null };
    },

    async delivery(tenantId: string, id: string, deliveryId: string) {
      await endpoint(tenantId, id);
      const d = await store.primary.webhooks.delivery(id, deliveryId);
      if (!d) throw notFound(`delivery ${deliveryId}`);
      const attemptLog = await store.primary.webhooks.attempts(d.id, 50);
      return { ...deliveryView(d), attemptLog: attemptLog.map((a) => ({ ...a, at: new Date(a.at).toISOString() })) };
    },

    /** Sends a delivery's event again, after what is pending (same webhook-id). */
    async redeliver(tenantId: string, id: string, deliveryId: string) {
      const e = await endpoint(tenantId, id);
      const d = await store.primary.webhooks.delivery(id, deliveryId);
      if (!d) throw notFound(`delivery ${deliveryId}`);
      const made = await store.primary.webhooks.redeliver(id, d);
      if (e.enabled) void kick(id);
      return deliveryView(made);
    },

    /** Turns stored events into deliveries (on whichever node gets the cursor) and starts their endpoints' jobs. */
    async dispatch(limit = 1000): Promise<number> {
      const r = await store.primary.webhooks.dispatch(limit);
      if (!r) return 0;
      await Promise.all(r.endpoints.map(kick));
      return r.events;
    },

    /** Starts a job for each endpoint whose next attempt is due (a retry's time came, or a job was lost). */
    async sweep(): Promise<void> {
      const due = await store.primary.webhooks.due(500);
      await Promise.all(due.map(kick));
    },

    /**
     * The job: takes the endpoint's lease (one sender per endpoint in the
     * cluster: a second job for it returns at once) and delivers its pending
     * deliveries in order until none is left, one fails, or the budget is
     * spent. The lease is renewed before each attempt for longer than an
     * attempt can take; a node that dies leaves it to run out.
     */
    async deliver(endpointId: string): Promise<void> {
      const owner = randomUUID();
      const leaseMs = settings.attemptTimeoutMs + 5_000;
      const until = clock.now() + settings.jobBudgetMs;
      try {
        for (;;) {
          const e = await store.primary.webhooks.lease(endpointId, owner, leaseMs);
          if (!e || !e.enabled || e.nextAttemptAt > clock.now()) return;
          const r = await attempt(e, owner);
          if (r !== 'delivered') return;
          if (clock.now() >= until) {
            await kick(endpointId);
            return;
          }
        }
      } finally {
        await store.primary.webhooks.release(endpointId, owner).catch(() => {});
      }
    },

    /** Forgets deliveries delivered more than `olderThanMs` ago (the delivery log keeps what is pending, and a month). */
    async purge(olderThanMs: number): Promise<number> {
      return store.primary.webhooks.purge(olderThanMs);
    },

    async stats() {
      return store.primary.webhooks.stats();
    },
  };
}

export type WebhookService = ReturnType<typeof webhookService>;
