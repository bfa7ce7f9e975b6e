-- Every existing row a batch writes, locked up front in one fixed order (products by id, then
-- variants by id), so two batches of one shop that touch the same rows (the webhook queue runs
-- two jobs of a group at once) queue behind each other instead of deadlocking.
-- The variants are those of the batch's products and those of its inventory items. Two deliveries
-- for one item at different locations, applied at once, would each sum the levels without the
-- other's uncommitted row, and the later commit would leave a total missing one of them. Locking
-- the item's variants first queues the second behind the first, whose level it then sees (each
-- statement of a READ COMMITTED transaction takes a fresh snapshot).
SELECT
  (SELECT count(*) FROM (
     SELECT 1 FROM products
     WHERE shop_id = %(shop_id)s AND shopify_id = ANY(%(products)s)
     ORDER BY shopify_id
     FOR UPDATE
   ) AS p) AS products,
  (SELECT count(*) FROM (
     SELECT 1 FROM variants
     WHERE shop_id = %(shop_id)s
       AND (product_shopify_id = ANY(%(products)s) OR inventory_item_id = ANY(%(items)s))
     ORDER BY shopify_id
     FOR UPDATE
   ) AS v) AS variants
