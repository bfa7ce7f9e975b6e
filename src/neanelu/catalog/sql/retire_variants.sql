-- Variants the applied product version no longer lists were deleted in Shopify.
UPDATE variants SET deleted_at = %(at)s, synced_at = now()
WHERE shop_id = %(shop_id)s AND product_shopify_id = %(product_shopify_id)s
  AND deleted_at IS NULL AND NOT (shopify_id = ANY(%(keep)s))
RETURNING inventory_item_id
