-- After a sync's merges: a variant's inventoryQuantity is what its item has available across
-- locations. Inventory changes do not move the variant's updatedAt, so the file's quantity (as old
-- as the file) rewrote a newer one that a stock webhook had set while the sync ran; the levels
-- merged newer-wins, and their sums are the truth. One range of inventory item ids
-- [lo, hi): two sessions settle the two halves of a shop side by side (an UPDATE runs in one
-- process, and the join's first read of freshly merged pages is the slowest part of it).
UPDATE variants v SET inventory_quantity = l.total, synced_at = now()
FROM (
  SELECT inventory_item_id, sum(available)::int AS total FROM inventory_levels
  WHERE inventory_item_id >= %(lo)s AND inventory_item_id < %(hi)s
  GROUP BY inventory_item_id
) l
WHERE v.inventory_item_id = l.inventory_item_id AND v.deleted_at IS NULL
  AND v.inventory_item_id >= %(lo)s AND v.inventory_item_id < %(hi)s
  AND v.inventory_quantity IS DISTINCT FROM l.total
