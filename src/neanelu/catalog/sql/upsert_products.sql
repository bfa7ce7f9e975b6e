-- Newer wins by Shopify's updated_at (app_newer_wins, docs/newer-wins.md): a version older than
-- the stored one, or not newer than the product's deletion, changes nothing; one that wins revives
-- a deleted product. One version per product (the caller keeps the newest of a batch: a second row
-- for one product would be refused). Returns a row for each version that was applied.
INSERT INTO products AS p (
  shop_id, shopify_id, handle, title, vendor, product_type, status, tags, description,
  shopify_created_at, shopify_updated_at, synced_at, deleted_at
)
SELECT %(shop_id)s, r.shopify_id, r.handle, r.title, r.vendor, r.product_type, r.status,
       coalesce(r.tags, '{}'), r.description, r.created_at, r.updated_at, now(), NULL
FROM jsonb_to_recordset(%(products)s::jsonb) AS r(
  shopify_id bigint, handle text, title text, vendor text, product_type text, status text,
  tags text[], description text, created_at timestamptz, updated_at timestamptz
)
ORDER BY r.shopify_id
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
RETURNING shopify_id, deleted_at IS NULL AS live
