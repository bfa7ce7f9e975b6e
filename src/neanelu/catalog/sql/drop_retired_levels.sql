-- Shopify deletes a deleted variant's inventory item, and its levels with it.
DELETE FROM inventory_levels l
USING variants v
WHERE v.shop_id = %(shop_id)s AND v.product_shopify_id = %(product_shopify_id)s
  AND v.deleted_at IS NOT NULL
  AND l.shop_id = v.shop_id AND l.inventory_item_id = v.inventory_item_id
