-- A variant's inventoryQuantity is what its item has available across locations; an
-- inventory_levels/update moves it as Shopify moves it. Its own statement, after the levels'
-- upsert: its fresh snapshot sees the levels other transactions committed while this one waited
-- on the item's variants (lock_catalog_rows.sql).
UPDATE variants v SET inventory_quantity = s.total, synced_at = now()
FROM (
  SELECT inventory_item_id, sum(available)::int AS total FROM inventory_levels
  WHERE shop_id = %(shop_id)s AND inventory_item_id = ANY(%(items)s)
  GROUP BY inventory_item_id
) s
WHERE v.shop_id = %(shop_id)s AND v.inventory_item_id = s.inventory_item_id
  AND v.deleted_at IS NULL AND v.inventory_quantity IS DISTINCT FROM s.total
