-- One batch of inventory levels, newer-wins per (item, location) (app_newer_wins,
-- docs/newer-wins.md). Levels have no tombstone: a deleted level is gone, and any later sighting
-- inserts it again. An equal version with equal content is a replay: left as is.
INSERT INTO inventory_levels AS t (id, shop_id, shopify_id, inventory_item_id, location_id,
                                   available, shopify_updated_at, synced_at)
SELECT DISTINCT ON (s.item_id, s.location_id)
       app_batch_uuidv7(%(id_hi)s, %(id_lo)s, s.line_no), %(shop_id)s::uuid,
       s.shopify_id, s.item_id, s.location_id, s.available, s.updated, now()
FROM stg_inv s
WHERE s.ctid >= %(lo)s::tid AND s.ctid < %(hi)s::tid
ORDER BY s.item_id, s.location_id, s.updated DESC NULLS LAST
ON CONFLICT (shop_id, inventory_item_id, location_id) DO UPDATE SET
  shopify_id = excluded.shopify_id,
  available = excluded.available,
  shopify_updated_at = excluded.shopify_updated_at,
  synced_at = excluded.synced_at
WHERE app_newer_wins(t.shopify_updated_at, NULL, excluded.shopify_updated_at)
  AND (t.available, t.shopify_id, t.shopify_updated_at)
      IS DISTINCT FROM (excluded.available, excluded.shopify_id, excluded.shopify_updated_at);
