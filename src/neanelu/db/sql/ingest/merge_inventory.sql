-- One batch of inventory levels, newer-wins per (item, location).
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
WHERE t.shopify_updated_at IS NULL
   OR excluded.shopify_updated_at > t.shopify_updated_at
   OR (excluded.shopify_updated_at = t.shopify_updated_at
       AND (t.available, t.shopify_id) IS DISTINCT FROM (excluded.available, excluded.shopify_id));
