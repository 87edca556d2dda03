-- Payments (docs/integrations.md "Payments"): an optional price per booking on
-- resources, the payment state of a booking, and the test provider's ledger.

-- A resource's price per booking: {"amount": <minor units>, "currency": "EUR"}, or null (free).
ALTER TABLE resources ADD COLUMN IF NOT EXISTS price jsonb;

-- A booking's payment: {"status", "amount", "currency", "reference"}, or null (no payment step).
ALTER TABLE bookings ADD COLUMN IF NOT EXISTS payment jsonb;
-- The capture sweep's work list: bookings whose payment is authorized but not captured yet.
CREATE INDEX IF NOT EXISTS bookings_payment_pending ON bookings ((payment->>'status'))
  WHERE payment->>'status' IN ('authorized', 'capture_pending');

-- The in-process test provider (PAYMENT_PROVIDER=test): one row per authorization,
-- keyed by the provider idempotency key; every capture and void call is counted.
CREATE TABLE IF NOT EXISTS payments (
  id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
  idempotency_key text NOT NULL UNIQUE,
  amount integer NOT NULL CHECK (amount >= 0),
  currency text NOT NULL,
  token text NOT NULL,
  status text NOT NULL CHECK (status IN ('authorized', 'declined', 'captured', 'voided')),
  authorize_calls integer NOT NULL DEFAULT 1,
  capture_calls integer NOT NULL DEFAULT 0,
  captures integer NOT NULL DEFAULT 0,
  void_calls integer NOT NULL DEFAULT 0,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
