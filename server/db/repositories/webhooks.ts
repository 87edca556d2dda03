/** Webhook endpoints, their deliveries and attempts (migration 008), and the dispatcher's cursor. */
import { named, type Queryable } from '../pool';
import { afterCursor } from './after-cursor';
import type { AttemptOutcome, WebhookDeliveryRow, WebhookEndpointChange, WebhookEndpointRow } from '../../core/store';

const ms = (d: Date | null): number | null => d?.getTime() ?? null;

const toEndpoint = (r: Record<string, any>): WebhookEndpointRow => ({
  id: r.id,
  tenantId: r.tenant_id,
  url: r.url,
  description: r.description,
  eventTypes: r.event_types,
  secret: r.secret,
  previousSecret: r.previous_secret,
  previousExpiresAt: ms(r.previous_expires_at),
  enabled: r.enabled,
  disabledReason: r.disabled_reason,
  failingSince: ms(r.failing_since),
  failures: r.failures,
  nextAttemptAt: r.next_attempt_at.getTime(),
  createdAt: r.created_at.getTime(),
  pending: r.pending,
});

const toDelivery = (r: Record<string, any>): WebhookDeliveryRow & { position: number } => ({
  position: Number(r.position),
  id: r.id,
  endpointId: r.endpoint_id,
  seq: Number(r.seq),
  eventType: r.event_type,
  redeliveryOf: r.redelivery_of,
  status: r.status,
  attempts: r.attempts,
  lastStatus: r.last_status,
  lastError: r.last_error,
  lastAttemptAt: ms(r.last_attempt_at),
  deliveredAt: ms(r.delivered_at),
  createdAt: r.created_at.getTime(),
});

const ENDPOINT_BASE = `id, tenant_id, url, description, event_types, secret, previous_secret, previous_expires_at, enabled, disabled_reason,
  failing_since, failures, next_attempt_at, created_at`;
const ENDPOINT = `${ENDPOINT_BASE},
  (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = webhook_endpoints.id AND d.status = 'pending')::int AS pending`;
/** The endpoint's columns without the pending count (the sender's reads: counting a long backlog on every attempt would cost more than the attempt). */
const ENDPOINT_PLAIN = ENDPOINT_BASE + ', 0 AS pending';
const DELIVERY = `position, id, endpoint_id, seq, event_type, redelivery_of, status, attempts, last_status, last_error, last_attempt_at, delivered_at, created_at`;

export const webhookRepository = {
  async create(q: Queryable, tenantId: string, e: { url: string; description: string; eventTypes: string[]; secret: string }): Promise<WebhookEndpointRow> {
    const { rows } = await q.query(
      `INSERT INTO webhook_endpoints (tenant_id, url, description, event_types, secret) VALUES ($1, $2, $3, $4, $5) RETURNING ${ENDPOINT}`,
      [tenantId, e.url, e.description, e.eventTypes, e.secret],
    );
    return toEndpoint(rows[0]);
  },

  async count(q: Queryable, tenantId: string): Promise<number> {
    // Concurrent creates of one tenant wait for each other here (until their transactions end), so a limit checked
    // against this count cannot be overshot.
    await q.query("SELECT pg_advisory_xact_lock(hashtextextended('webhook_endpoints:' || $1, 0))", [tenantId]);
    const { rows } = await q.query('SELECT count(*)::int AS n FROM webhook_endpoints WHERE tenant_id = $1', [tenantId]);
    return rows[0].n;
  },

  async get(q: Queryable, tenantId: string, id: string, lock = false): Promise<WebhookEndpointRow | null> {
    const { rows } = await q.query(`SELECT ${ENDPOINT} FROM webhook_endpoints WHERE tenant_id = $1 AND id = $2${lock ? ' FOR UPDATE' : ''}`, [tenantId, id]);
    return rows[0] ? toEndpoint(rows[0]) : null;
  },

  async byId(q: Queryable, id: string): Promise<WebhookEndpointRow | null> {
    const { rows } = await q.query(named('webhooks.byId', `SELECT ${ENDPOINT} FROM webhook_endpoints WHERE id = $1`, [id]));
    return rows[0] ? toEndpoint(rows[0]) : null;
  },

  async page(q: Queryable, tenantId: string, after: { createdAt: number; id: string } | null, limit: number): Promise<WebhookEndpointRow[]> {
    const { rows } = await q.query(
      `SELECT ${ENDPOINT} FROM webhook_endpoints WHERE tenant_id = $1 AND ($2::timestamptz IS NULL OR (created_at, id) > ($2, $3::uuid))
       ORDER BY created_at, id LIMIT $4`,
      [tenantId, after ? new Date(after.createdAt) : null, after?.id ?? null, limit],
    );
    return rows.map(toEndpoint);
  },

  async update(q: Queryable, id: string, change: WebhookEndpointChange): Promise<WebhookEndpointRow> {
    const { rows } = await q.query(
      `UPDATE webhook_endpoints SET url = coalesce($2, url), description = coalesce($3, description), event_types = coalesce($4, event_types), updated_at = now()
       WHERE id = $1 RETURNING ${ENDPOINT}`,
      [id, change.url ?? null, change.description ?? null, change.eventTypes ?? null],
    );
    return toEndpoint(rows[0]);
  },

  async enable(q: Queryable, id: string): Promise<WebhookEndpointRow> {
    const { rows } = await q.query(
      `UPDATE webhook_endpoints SET enabled = true, disabled_reason = NULL, failing_since = NULL, failures = 0, next_attempt_at = now(), updated_at = now()
       WHERE id = $1 RETURNING ${ENDPOINT}`,
      [id],
    );
    return toEndpoint(rows[0]);
  },

  async disable(q: Queryable, id: string, reason: string): Promise<WebhookEndpointRow> {
    const { rows } = await q.query(
      `UPDATE webhook_endpoints SET enabled = false, disabled_reason = $2, updated_at = now() WHERE id = $1 RETURNING ${ENDPOINT}`,
      [id, reason],
    );
    return toEndpoint(rows[0]);
  },

  async rotate(q: Queryable, id: string, secret: string, previousExpiresAt: number): Promise<WebhookEndpointRow> {
    const { rows } = await q.query(
      `UPDATE webhook_endpoints SET previous_secret = secret, previous_expires_at = $3, secret = $2, updated_at = now() WHERE id = $1 RETURNING ${ENDPOINT}`,
      [id, secret, new Date(previousExpiresAt)],
    );
    return toEndpoint(rows[0]);
  },

  async delete(q: Queryable, id: string): Promise<void> {
    await q.query('DELETE FROM webhook_endpoints WHERE id = $1', [id]);
  },

  async dispatch(q: Queryable, limit: number): Promise<{ events: number; endpoints: string[] } | null> {
    // A delivery per matching endpoint (disabled ones too: re-enabled, they get what they missed).
    const { rows } = await q.query(named('webhooks.dispatch', afterCursor({
      cursor: 'integration_cursor',
      eventColumns: 'e.seq, e.tenant_id, e.type, e.created_at',
      work: `ins AS (
        INSERT INTO webhook_deliveries (endpoint_id, tenant_id, seq, event_type)
        SELECT w.id, ev.tenant_id, ev.seq, ev.type
        FROM ev JOIN webhook_endpoints w ON w.tenant_id = ev.tenant_id AND ev.created_at >= w.created_at
          AND (cardinality(w.event_types) = 0 OR ev.type = ANY (w.event_types))
        ORDER BY ev.seq, w.id
        ON CONFLICT DO NOTHING
        RETURNING endpoint_id
      )`,
      answer: `coalesce((SELECT array_agg(DISTINCT endpoint_id) FROM ins), '{}') AS endpoints`,
    }), [limit]));
    const r = rows[0];
    if (r.locked === 0) return null;
    return { events: r.events, endpoints: r.endpoints };
  },

  async lease(q: Queryable, id: string, owner: string, ms: number): Promise<WebhookEndpointRow | null> {
    const { rows } = await q.query(named('webhooks.lease', `
      UPDATE webhook_endpoints SET lease_owner = $2, lease_until = now() + $3 * interval '1 millisecond'
      WHERE id = $1 AND (lease_until IS NULL OR lease_until < now() OR lease_owner = $2) RETURNING ${ENDPOINT_PLAIN}`, [id, owner, ms]));
    return rows[0] ? toEndpoint(rows[0]) : null;
  },

  async release(q: Queryable, id: string, owner: string): Promise<void> {
    await q.query(named('webhooks.release', 'UPDATE webhook_endpoints SET lease_owner = NULL, lease_until = NULL WHERE id = $1 AND lease_owner = $2', [id, owner]));
  },

  async due(q: Queryable, limit: number): Promise<string[]> {
    const { rows } = await q.query(named('webhooks.due', `
      SELECT w.id FROM webhook_endpoints w
      WHERE w.enabled AND w.next_attempt_at <= now() AND (w.lease_until IS NULL OR w.lease_until < now())
        AND EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.endpoint_id = w.id AND d.status = 'pending')
      LIMIT $1`, [limit]));
    return rows.map((r) => r.id);
  },

  async nextPending(q: Queryable, endpointId: string) {
    const { rows } = await q.query(named('webhooks.nextPending', `
      SELECT ${DELIVERY.split(', ').map((c) => `d.${c}`).join(', ')}, e.type AS e_type, e.resource_ids AS e_resource_ids, e.data AS e_data, e.created_at AS e_at
      FROM webhook_deliveries d JOIN events e ON e.seq = d.seq
      WHERE d.endpoint_id = $1 AND d.status = 'pending' ORDER BY d.position LIMIT 1`, [endpointId]));
    const r = rows[0];
    if (!r) return null;
    return {
      delivery: toDelivery(r),
      event: { seq: Number(r.seq), type: r.e_type as string, resourceIds: r.e_resource_ids as string[], data: r.e_data as Record<string, unknown>, at: (r.e_at as Date).getTime() },
    };
  },

  async recordAttempt(q: Queryable, deliveryId: string, endpointId: string, owner: string, o: AttemptOutcome, nextAttemptAt: number | null): Promise<WebhookEndpointRow | null> {
    // Only while the caller still holds the endpoint's lease: a sender whose lease ran out (and whose delivery another
    // sender may have made meanwhile) records nothing.
    const { rows } = await q.query(named('webhooks.attempt', `
      WITH own AS (SELECT id FROM webhook_endpoints WHERE id = $2 AND lease_owner = $8 AND lease_until > now() FOR UPDATE),
      a AS (INSERT INTO webhook_attempts (delivery_id, status, error, duration_ms) SELECT $1, $3, $4, $5 WHERE EXISTS (SELECT 1 FROM own)),
      d AS (
        UPDATE webhook_deliveries SET attempts = attempts + 1, last_status = $3, last_error = $4, last_attempt_at = now(),
          status = CASE WHEN $6 THEN 'delivered' ELSE status END, delivered_at = CASE WHEN $6 THEN now() ELSE delivered_at END
        WHERE id = $1 AND EXISTS (SELECT 1 FROM own)
      )
      UPDATE webhook_endpoints SET
        failures = CASE WHEN $6 THEN 0 ELSE failures + 1 END,
        failing_since = CASE WHEN $6 THEN NULL ELSE coalesce(failing_since, now()) END,
        next_attempt_at = coalesce($7, now())
      WHERE id IN (SELECT id FROM own) RETURNING ${ENDPOINT_PLAIN}`,
    [deliveryId, endpointId, o.status, o.error, Math.round(o.durationMs), o.ok, nextAttemptAt === null ? null : new Date(nextAttemptAt), owner]));
    return rows[0] ? toEndpoint(rows[0]) : null;
  },

  async deliveries(q: Queryable, endpointId: string, before: number | null, limit: number, status?: 'pending' | 'delivered') {
    const { rows } = await q.query(
      `SELECT ${DELIVERY} FROM webhook_deliveries WHERE endpoint_id = $1 AND ($2::bigint IS NULL OR position < $2) AND ($3::text IS NULL OR status = $3)
       ORDER BY position DESC LIMIT $4`,
      [endpointId, before, status ?? null, limit],
    );
    return rows.map(toDelivery);
  },

  async delivery(q: Queryable, endpointId: string, id: string): Promise<WebhookDeliveryRow | null> {
    const { rows } = await q.query(`SELECT ${DELIVERY} FROM webhook_deliveries WHERE endpoint_id = $1 AND id = $2`, [endpointId, id]);
    return rows[0] ? toDelivery(rows[0]) : null;
  },

  async attempts(q: Queryable, deliveryId: string, limit: number) {
    const { rows } = await q.query('SELECT at, status, error, duration_ms FROM webhook_attempts WHERE delivery_id = $1 ORDER BY id DESC LIMIT $2', [deliveryId, limit]);
    return rows.map((r) => ({ at: (r.at as Date).getTime(), status: r.status as number | null, error: r.error as string | null, durationMs: r.duration_ms as number }));
  },

  async redeliver(q: Queryable, endpointId: string, of: WebhookDeliveryRow): Promise<WebhookDeliveryRow> {
    const { rows } = await q.query(
      `INSERT INTO webhook_deliveries (endpoint_id, tenant_id, seq, event_type, redelivery_of)
       SELECT id, tenant_id, $2, $3, $4 FROM webhook_endpoints WHERE id = $1 RETURNING ${DELIVERY}`,
      [endpointId, of.seq, of.eventType, of.redeliveryOf ?? of.id],
    );
    return toDelivery(rows[0]);
  },

  async purge(q: Queryable, olderThanMs: number): Promise<number> {
    // In slices, so no one statement holds locks on a month of rows.
    let total = 0;
    for (;;) {
      const { rowCount } = await q.query(named('webhooks.purge', `
        DELETE FROM webhook_deliveries WHERE position IN (
          SELECT position FROM webhook_deliveries
          WHERE status = 'delivered' AND delivered_at < now() - $1 * interval '1 millisecond' LIMIT 5000)`, [olderThanMs]));
      total += rowCount ?? 0;
      if ((rowCount ?? 0) < 5000) return total;
    }
  },

  async stats(q: Queryable) {
    const { rows } = await q.query(`SELECT
      (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending')::int AS pending,
      (SELECT count(*) FROM webhook_endpoints WHERE enabled AND failures > 0)::int AS failing,
      (SELECT count(*) FROM webhook_endpoints WHERE NOT enabled)::int AS disabled`);
    return { pending: rows[0].pending, endpointsFailing: rows[0].failing, endpointsDisabled: rows[0].disabled };
  },
};
