-- Newer wins by Shopify's updated_at (app_newer_wins, docs/newer-wins.md): a version older than
-- the stored one, or not newer than the product's deletion, changes nothing; one that wins revives
-- a deleted product. Returns a row only when this version was applied.
INSERT INTO products AS p (
  shop_id, shopify_id, handle, title, vendor, product_type, status, tags, description,
  shopify_created_at, shopify_updated_at, synced_at, deleted_at
) VALUES (
  %(shop_id)s, %(shopify_id)s, %(handle)s, %(title)s, %(vendor)s, %(product_type)s, %(status)s,
  %(tags)s, %(description)s, %(created_at)s, %(updated_at)s, now(), NULL
)
ON CONFLICT (shop_id, shopify_id) DO UPDATE SET
  handle = excluded.handle,
  title = excluded.title,
  vendor = excluded.vendor,
  product_type = excluded.product_type,
  status = excluded.status,
  tags = excluded.tags,
  description = excluded.description,
  -- Shopify's createdAt never changes: the first sighting that carried one is kept.
  shopify_created_at = coalesce(p.shopify_created_at, excluded.shopify_created_at),
  shopify_updated_at = excluded.shopify_updated_at,
  synced_at = now(),
  deleted_at = NULL
WHERE app_newer_wins(p.shopify_updated_at, p.deleted_at, excluded.shopify_updated_at)
RETURNING deleted_at IS NULL AS live
