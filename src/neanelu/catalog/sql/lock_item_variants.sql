-- Two deliveries for one item at different locations, applied at once, would each sum the levels
-- without the other's uncommitted row, and the later commit would leave a total missing one of
-- them. Locking the item's variants first queues the second behind the first, whose level it then
-- sees (each statement of a READ COMMITTED transaction takes a fresh snapshot).
SELECT 1 FROM variants
WHERE shop_id = %(shop_id)s AND inventory_item_id = %(inventory_item_id)s
ORDER BY shopify_id
FOR UPDATE
