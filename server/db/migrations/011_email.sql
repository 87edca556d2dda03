-- E-mail (docs/integrations.md#e-mail): one message per booking change someone
-- should hear about (a confirmation, a change, a cancellation) and one reminder
-- per booking start. Messages are made from the stored event feed by the mail
-- dispatcher, which moves `mail_cursor` in the statement that records them (an
-- event is turned into a message exactly once, and only committed changes have
-- events), and by the reminder pass; jobs send them, a booking's in order, each
-- under a lease on its row.

CREATE TABLE email_messages (
  -- The order a booking's messages are sent in.
  position        bigserial PRIMARY KEY,
  id              uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
  tenant_id       uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  booking_id      uuid NOT NULL,
  kind            text NOT NULL CHECK (kind IN ('confirmation', 'change', 'cancellation', 'reminder')),
  -- The event the message tells of (its booking is read from the event when the
  -- message is sent: the row stays small); a reminder has none and reads the
  -- booking as it is then.
  seq             bigint UNIQUE,
  -- A reminder's start: a booking moved to another time is reminded again.
  starts_at       timestamptz,
  status          text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sent', 'logged', 'skipped', 'failed')),
  attempts        int NOT NULL DEFAULT 0,
  last_error      text,
  next_attempt_at timestamptz NOT NULL DEFAULT now(),
  -- Who sends it now, until when: a sender that died leaves a lease that runs out.
  lease_owner     uuid,
  lease_until     timestamptz,
  recipients      text[] NOT NULL DEFAULT '{}',
  sent_at         timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  CHECK ((kind = 'reminder') = (seq IS NULL))
);
CREATE UNIQUE INDEX email_messages_reminder_once ON email_messages (booking_id, starts_at) WHERE kind = 'reminder';
-- What the sender reads: pending messages in order, and whether a booking has an earlier one pending.
CREATE INDEX email_messages_pending ON email_messages (position) WHERE status = 'pending';
CREATE INDEX email_messages_booking_pending ON email_messages (booking_id, position) WHERE status = 'pending';
CREATE INDEX email_messages_tenant ON email_messages (tenant_id, created_at);
CREATE INDEX email_messages_done ON email_messages (created_at) WHERE status <> 'pending';

-- The reminder pass reads confirmed bookings by start, across tenants.
CREATE INDEX bookings_upcoming ON bookings (start_at) WHERE status = 'confirmed';

-- How far the mail dispatcher has read the feed. It starts at the feed's end.
CREATE TABLE mail_cursor (
  id   boolean PRIMARY KEY DEFAULT true CHECK (id),
  seq  bigint NOT NULL
);
INSERT INTO mail_cursor (seq) SELECT coalesce(max(seq), 0) FROM events;

-- Up to which start the reminder pass has looked. It starts now: bookings
-- already due a reminder get it on the first pass. Each pass reads only the
-- starts that entered the reminder window since the last one.
CREATE TABLE reminder_cursor (
  id      boolean PRIMARY KEY DEFAULT true CHECK (id),
  until   timestamptz NOT NULL
);
INSERT INTO reminder_cursor (until) VALUES (now());
