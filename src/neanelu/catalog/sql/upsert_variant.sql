-- One variant of a product version that won; each variant is itself newer-wins (app_newer_wins,
-- docs/newer-wins.md): older than the stored variant, or not newer than its deletion, it changes
-- nothing.
INSERT INTO variants AS v (
  shop_id, shopify_id, product_shopify_id, sku, title, price, compare_at_price, barcode,
  position, inventory_quantity, inventory_item_id, selected_options, shopify_created_at,
  shopify_updated_at, synced_at, deleted_at
) VALUES (
  %(shop_id)s, %(shopify_id)s, %(product_shopify_id)s, %(sku)s, %(title)s, %(price)s,
  %(compare_at_price)s, %(barcode)s, %(position)s, %(inventory_quantity)s, %(inventory_item_id)s,
  %(selected_options)s::jsonb, %(created_at)s, %(updated_at)s, now(), NULL
)
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
