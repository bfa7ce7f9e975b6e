-- Newer wins by Shopify's updated_at; a product deleted earlier comes back only when this
-- version is newer than its deletion. Returns a row only when this version was applied.
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
  shopify_created_at = coalesce(excluded.shopify_created_at, p.shopify_created_at),
  shopify_updated_at = excluded.shopify_updated_at,
  synced_at = now(),
  deleted_at = CASE
    WHEN p.deleted_at IS NOT NULL AND excluded.shopify_updated_at > p.deleted_at THEN NULL
    ELSE p.deleted_at
  END
WHERE p.shopify_updated_at IS NULL OR excluded.shopify_updated_at >= p.shopify_updated_at
RETURNING deleted_at IS NULL AS live
