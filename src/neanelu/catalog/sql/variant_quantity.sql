-- A variant's inventoryQuantity is what its item has available across locations; an
-- inventory_levels/update moves it as Shopify moves it.
UPDATE variants v SET inventory_quantity = s.total, synced_at = now()
FROM (
  SELECT sum(available)::int AS total FROM inventory_levels
  WHERE shop_id = %(shop_id)s AND inventory_item_id = %(inventory_item_id)s
) s
WHERE v.shop_id = %(shop_id)s AND v.inventory_item_id = %(inventory_item_id)s
  AND v.deleted_at IS NULL AND v.inventory_quantity IS DISTINCT FROM s.total
