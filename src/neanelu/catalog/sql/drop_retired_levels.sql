-- Shopify deletes a deleted variant's inventory item, and its levels with it. The items come from
-- the variants just retired, so the statement touches only their rows (by the unique key).
DELETE FROM inventory_levels
WHERE shop_id = %(shop_id)s AND inventory_item_id = ANY(%(items)s)
