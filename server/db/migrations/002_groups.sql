-- Group bookings (collaborative drafts) and the persisted Yjs updates of their documents.

CREATE TABLE group_bookings (
  id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  tenant_id   uuid NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
  title       text NOT NULL,
  created_by  text,
  status      text NOT NULL DEFAULT 'draft' CHECK (status IN ('draft', 'held', 'confirmed', 'cancelled', 'expired')),
  hold_id     uuid REFERENCES holds(id),
  booking_id  uuid REFERENCES bookings(id),
  created_at  timestamptz NOT NULL DEFAULT date_trunc('milliseconds', now()),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX group_bookings_tenant ON group_bookings (tenant_id, created_at, id);
CREATE INDEX group_bookings_hold ON group_bookings (hold_id) WHERE hold_id IS NOT NULL;

CREATE TABLE group_booking_members (
  group_booking_id  uuid NOT NULL REFERENCES group_bookings(id) ON DELETE CASCADE,
  user_id           text NOT NULL,
  role              text NOT NULL CHECK (role IN ('organizer', 'participant')),
  added_at          timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (group_booking_id, user_id)
);

-- Every accepted update of a document; compaction replaces a prefix by one merged row.
CREATE TABLE yjs_updates (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  doc_name    text NOT NULL,
  update      bytea NOT NULL,
  created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX yjs_updates_doc ON yjs_updates (doc_name, id);
