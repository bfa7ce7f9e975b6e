-- After a complete full sync: what Shopify no longer has is marked deleted. Rows written after the
-- run began (webhooks racing the snapshot) are left alone, and so are rows a quarantined line
-- names (stg_protected, see ingest/evidence.py): a bad line is no evidence of absence.
UPDATE products t SET deleted_at = now()
WHERE t.deleted_at IS NULL AND t.synced_at < %(started)s
  AND NOT EXISTS (SELECT 1 FROM stg_core s WHERE s.kind = 'P' AND s.shopify_id = t.shopify_id)
  AND NOT EXISTS (SELECT 1 FROM stg_protected q WHERE q.kind = 'P' AND q.shopify_id = t.shopify_id);
UPDATE variants t SET deleted_at = now()
WHERE t.deleted_at IS NULL AND t.synced_at < %(started)s
  AND NOT EXISTS (SELECT 1 FROM stg_core s WHERE s.kind = 'V' AND s.shopify_id = t.shopify_id)
  AND NOT EXISTS (SELECT 1 FROM stg_protected q WHERE q.kind = 'V' AND q.shopify_id = t.shopify_id);
