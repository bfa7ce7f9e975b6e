-- A deletion is a version of the product dated when it happened: a delivery of an older version
-- arriving later (reordered, retried) loses to it; a tombstone is written when the product was
-- never seen, for the same reason.
INSERT INTO products AS p (shop_id, shopify_id, shopify_updated_at, deleted_at)
VALUES (%(shop_id)s, %(shopify_id)s, %(at)s, %(at)s)
ON CONFLICT (shop_id, shopify_id) DO UPDATE SET
  deleted_at = coalesce(p.deleted_at, excluded.deleted_at),
  shopify_updated_at = excluded.shopify_updated_at,
  synced_at = now()
WHERE p.shopify_updated_at IS NULL OR excluded.shopify_updated_at >= p.shopify_updated_at
RETURNING 1
