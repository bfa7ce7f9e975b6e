-- Migration 0006: a shop's data is purged only when that is due, and every purge decision (done
-- or skipped, and why) is kept.

-- Shopify's numeric id of the shop, from the app/uninstalled payload: a shop/redact must name it.
ALTER TABLE shops ADD COLUMN shopify_shop_id bigint;
GRANT SELECT (shopify_shop_id), UPDATE (shopify_shop_id) ON shops TO {app_role};

-- No foreign key to shops: the record outlives the shop it names. Under row-level security like
-- the tenant tables (the application reads and writes the current shop's records only), but
-- insert-only for the application, and not forced, so the owner (an operator) reads them all.
CREATE TABLE purge_audit (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  shop_id uuid NOT NULL,
  shop_domain text NOT NULL,
  requested_by text NOT NULL CHECK (requested_by IN ('shop/redact', 'scheduled')),
  -- The shop/redact delivery: its X-Shopify-Webhook-Id and the shop its payload names.
  webhook_id text,
  payload_shop_domain text,
  payload_shop_id bigint,
  outcome text NOT NULL CHECK (outcome IN ('purged', 'skipped')),
  reason text NOT NULL,
  uninstalled_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX purge_audit_shop_idx ON purge_audit (shop_id, created_at);
ALTER TABLE purge_audit ENABLE ROW LEVEL SECURITY;
CREATE POLICY purge_audit_read ON purge_audit FOR SELECT USING (shop_id = app_current_shop_id());
CREATE POLICY purge_audit_write ON purge_audit FOR INSERT
  WITH CHECK (shop_id = app_current_shop_id());
GRANT SELECT, INSERT ON purge_audit TO {app_role};
