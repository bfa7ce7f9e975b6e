-- A product payload carries each variant's inventoryQuantity as of the product event, which may be
-- older than inventory_levels/update deliveries already applied (Shopify does not order them).
-- Where the levels are stored, their sum is the newer truth and wins. Correlated per variant, so
-- every lookup goes through the (shop, item, location) key whatever plan is cached.
UPDATE variants v
SET inventory_quantity = (
  SELECT sum(l.available)::int FROM inventory_levels l
  WHERE l.shop_id = v.shop_id AND l.inventory_item_id = v.inventory_item_id
)
WHERE v.shop_id = %(shop_id)s AND v.product_shopify_id = ANY(%(products)s)
  AND v.deleted_at IS NULL
  AND EXISTS (
    SELECT 1 FROM inventory_levels l
    WHERE l.shop_id = v.shop_id AND l.inventory_item_id = v.inventory_item_id
  )
  AND v.inventory_quantity IS DISTINCT FROM (
    SELECT sum(l.available)::int FROM inventory_levels l
    WHERE l.shop_id = v.shop_id AND l.inventory_item_id = v.inventory_item_id
  )
