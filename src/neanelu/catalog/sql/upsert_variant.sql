-- One variant of a product version that won; each variant is itself newer-wins.
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
  shopify_created_at = coalesce(excluded.shopify_created_at, v.shopify_created_at),
  shopify_updated_at = coalesce(excluded.shopify_updated_at, v.shopify_updated_at),
  synced_at = now(),
  deleted_at = NULL
WHERE v.shopify_updated_at IS NULL OR excluded.shopify_updated_at IS NULL
   OR excluded.shopify_updated_at >= v.shopify_updated_at
