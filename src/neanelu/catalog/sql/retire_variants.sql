-- Variants a product's applied version no longer lists (`keep`: its variants; empty for a
-- deleted product) were deleted in Shopify, as of that version's time. Shopify deletes a deleted
-- variant's inventory item, and its levels with it: the items come from the variants just
-- retired, so the levels go by their unique key. One row per product.
WITH retired AS (
  UPDATE variants AS v SET deleted_at = r.at, synced_at = now()
  FROM jsonb_to_recordset(%(products)s::jsonb) AS r(shopify_id bigint, keep bigint[], at timestamptz)
  WHERE v.shop_id = %(shop_id)s AND v.product_shopify_id = r.shopify_id
    AND v.deleted_at IS NULL AND NOT (v.shopify_id = ANY(r.keep))
  RETURNING v.inventory_item_id
)
DELETE FROM inventory_levels
WHERE shop_id = %(shop_id)s
  AND inventory_item_id IN (SELECT inventory_item_id FROM retired WHERE inventory_item_id IS NOT NULL)
