-- After a complete full sync: inventory levels Shopify no longer has (a location or variant gone).
-- Levels written after the run began (webhooks racing the snapshot) are left alone, and so are
-- levels a quarantined line names, by their own id or their item's (ingest/evidence.py).
DELETE FROM inventory_levels t
WHERE t.synced_at < %(started)s
  AND NOT EXISTS (SELECT 1 FROM stg_inv s
                  WHERE s.item_id = t.inventory_item_id AND s.location_id = t.location_id)
  AND NOT EXISTS (SELECT 1 FROM stg_protected q
                  WHERE (q.kind = 'L' AND q.shopify_id = t.shopify_id)
                     OR (q.kind = 'I' AND q.shopify_id = t.inventory_item_id));
