-- Webhooks: endpoints per tenant, one delivery per (endpoint, event), and every
-- attempt of every delivery (the delivery log). Deliveries are made from the
-- stored event feed by the dispatcher (docs/integrations.md), which moves
-- `integration_cursor` in the same statement that records them: an event is
-- turned into deliveries exactly once, and only committed changes have events.

CREATE TABLE webhook_endpoints (
  id                   uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id            uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  url                  text NOT NULL,
  description          text NOT NULL DEFAULT '',
  -- Empty: every event type.
  event_types          text[] NOT NULL DEFAULT '{}',
  -- The signing secret (whsec_…, Standard Webhooks), and after a rotation the
  -- previous one, which signs too until previous_expires_at.
  secret               text NOT NULL,
  previous_secret      text,
  previous_expires_at  timestamptz,
  enabled              boolean NOT NULL DEFAULT true,
  disabled_reason      text,
  -- The first failure of the current run of failures (null while it succeeds),
  -- how many attempts have failed in a row, and when the next attempt is due.
  failing_since        timestamptz,
  failures             int NOT NULL DEFAULT 0,
  next_attempt_at      timestamptz NOT NULL DEFAULT now(),
  -- Who delivers to it now, until when: one sender per endpoint in the cluster; a
  -- sender that died leaves a lease that runs out.
  lease_owner          uuid,
  lease_until          timestamptz,
  created_at           timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  updated_at           timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at, id);

CREATE TABLE webhook_deliveries (
  -- The order deliveries of an endpoint are sent in: the feed's order (then redeliveries, in the order asked).
  position      bigserial PRIMARY KEY,
  id            uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  endpoint_id   uuid NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
  tenant_id     uuid NOT NULL,
  seq           bigint NOT NULL,
  event_type    text NOT NULL,
  -- A manual redelivery is a delivery of its own, naming the one it repeats.
  redelivery_of uuid,
  status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered')),
  attempts      int NOT NULL DEFAULT 0,
  last_status   int,
  last_error    text,
  last_attempt_at timestamptz,
  delivered_at  timestamptz,
  created_at    timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now())
);
-- The dispatcher makes one delivery per endpoint and event.
CREATE UNIQUE INDEX webhook_deliveries_once ON webhook_deliveries (endpoint_id, seq) WHERE redelivery_of IS NULL;
-- What the sender reads: an endpoint's next pending delivery.
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (endpoint_id, position) WHERE status = 'pending';
-- The delivery log, newest first.
CREATE INDEX webhook_deliveries_log ON webhook_deliveries (endpoint_id, position DESC);

CREATE TABLE webhook_attempts (
  id           bigserial PRIMARY KEY,
  delivery_id  uuid NOT NULL REFERENCES webhook_deliveries(id) ON DELETE CASCADE,
  at           timestamptz NOT NULL DEFAULT now(),
  status       int,
  error        text,
  duration_ms  int NOT NULL
);
CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, id);

-- How far the dispatcher has turned the feed into deliveries. It starts at the
-- feed's end: endpoints made later receive what happens after they exist.
CREATE TABLE integration_cursor (
  id   boolean PRIMARY KEY DEFAULT true CHECK (id),
  seq  bigint NOT NULL
);
INSERT INTO integration_cursor (seq) SELECT coalesce(max(seq), 0) FROM events;
