-- The variants of the product versions that won; each variant is itself newer-wins
-- (app_newer_wins, docs/newer-wins.md): older than the stored variant, or not newer than its
-- deletion, it changes nothing. One row per variant (the caller keeps the newest).
INSERT INTO variants AS v (
  shop_id, shopify_id, product_shopify_id, sku, title, price, compare_at_price, barcode,
  position, inventory_quantity, inventory_item_id, selected_options, shopify_created_at,
  shopify_updated_at, synced_at, deleted_at
)
SELECT %(shop_id)s, r.shopify_id, r.product_shopify_id, r.sku, r.title, r.price,
       r.compare_at_price, r.barcode, r.position, r.inventory_quantity, r.inventory_item_id,
       coalesce(r.selected_options, '[]'), r.created_at, r.updated_at, now(), NULL
FROM jsonb_to_recordset(%(variants)s::jsonb) AS r(
  shopify_id bigint, product_shopify_id bigint, sku text, title text, price numeric,
  compare_at_price numeric, barcode text, position integer, inventory_quantity integer,
  inventory_item_id bigint, selected_options jsonb, created_at timestamptz,
  updated_at timestamptz
)
ORDER BY r.shopify_id
ON CONFLICT (shop_id, shopify_id) DO UPDATE SET
  product_shopify_id = excluded.product_shopify_id,
  sku = excluded.sku,
  title = excluded.title,
  price = excluded.price,
  compare_at_price = excluded.compare_at_price,
  barcode = excluded.barcode,
  position = excluded.position,
  inventory_quantity = excluded.inventory_quantity,
  inventory_item_id = excluded.inventory_item_id,
  selected_options = excluded.selected_options,
  -- Shopify's createdAt never changes: the first sighting that carried one is kept.
  shopify_created_at = coalesce(v.shopify_created_at, excluded.shopify_created_at),
  shopify_updated_at = excluded.shopify_updated_at,
  synced_at = now(),
  deleted_at = NULL
WHERE app_newer_wins(v.shopify_updated_at, v.deleted_at, excluded.shopify_updated_at)
