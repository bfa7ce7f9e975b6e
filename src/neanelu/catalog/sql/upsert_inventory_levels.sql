-- Newer wins by Shopify's updated_at (app_newer_wins, docs/newer-wins.md). Levels have no
-- tombstone: a deleted level is gone, and a later delivery inserts it again. One row per item
-- and location (the caller keeps the newest).
INSERT INTO inventory_levels AS l (
  shop_id, shopify_id, inventory_item_id, location_id, available, shopify_updated_at, synced_at
)
SELECT %(shop_id)s, r.shopify_id, r.inventory_item_id, r.location_id, r.available,
       r.updated_at, now()
FROM jsonb_to_recordset(%(levels)s::jsonb) AS r(
  shopify_id bigint, inventory_item_id bigint, location_id bigint, available integer,
  updated_at timestamptz
)
ORDER BY r.inventory_item_id, r.location_id
ON CONFLICT (shop_id, inventory_item_id, location_id) DO UPDATE SET
  shopify_id = excluded.shopify_id,
  available = excluded.available,
  shopify_updated_at = excluded.shopify_updated_at,
  synced_at = now()
WHERE app_newer_wins(l.shopify_updated_at, NULL, excluded.shopify_updated_at)
