-- Newer wins by Shopify's updated_at (app_newer_wins, docs/newer-wins.md). Levels have no
-- tombstone: a deleted level is gone, and a later delivery inserts it again.
INSERT INTO inventory_levels AS l (
  shop_id, shopify_id, inventory_item_id, location_id, available, shopify_updated_at, synced_at
) VALUES (
  %(shop_id)s, %(shopify_id)s, %(inventory_item_id)s, %(location_id)s, %(available)s,
  %(updated_at)s, now()
)
ON CONFLICT (shop_id, inventory_item_id, location_id) DO UPDATE SET
  shopify_id = excluded.shopify_id,
  available = excluded.available,
  shopify_updated_at = excluded.shopify_updated_at,
  synced_at = now()
WHERE app_newer_wins(l.shopify_updated_at, NULL, excluded.shopify_updated_at)
