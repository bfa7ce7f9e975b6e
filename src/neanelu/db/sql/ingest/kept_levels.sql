-- Stored inventory levels missing from the file but named by one of its quarantined lines (by
-- their own id or their item's): kept as stored, and reported.
SELECT t.shopify_id FROM inventory_levels t
WHERE t.synced_at < %(started)s
  AND NOT EXISTS (SELECT 1 FROM stg_inv s
                  WHERE s.item_id = t.inventory_item_id AND s.location_id = t.location_id)
  AND EXISTS (SELECT 1 FROM stg_protected q
              WHERE (q.kind = 'L' AND q.shopify_id = t.shopify_id)
                 OR (q.kind = 'I' AND q.shopify_id = t.inventory_item_id))
ORDER BY 1;
