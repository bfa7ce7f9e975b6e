-- A product payload carries each variant's inventoryQuantity as of the product event, which may be
-- older than inventory_levels/update deliveries already applied (Shopify does not order them).
-- Where the levels are stored, their sum is the newer truth and wins.
UPDATE variants v SET inventory_quantity = s.total
FROM (
  SELECT l.inventory_item_id, sum(l.available)::int AS total
  FROM inventory_levels l
  JOIN variants p ON p.shop_id = l.shop_id AND p.inventory_item_id = l.inventory_item_id
  WHERE p.shop_id = %(shop_id)s AND p.product_shopify_id = %(product_shopify_id)s
  GROUP BY l.inventory_item_id
) s
WHERE v.shop_id = %(shop_id)s AND v.product_shopify_id = %(product_shopify_id)s
  AND v.inventory_item_id = s.inventory_item_id AND v.deleted_at IS NULL
  AND v.inventory_quantity IS DISTINCT FROM s.total
