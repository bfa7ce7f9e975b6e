-- Stored rows missing from the file but named by one of its quarantined lines: kept as stored
-- (not marked deleted), and reported; then owners whose stored metafields were kept, the file's
-- merged over them. Products' statements run on the session that staged products, variants' on
-- the variants' one.
SELECT t.shopify_id FROM products t
WHERE t.deleted_at IS NULL AND t.synced_at < %(started)s
  AND EXISTS (SELECT 1 FROM stg_protected q WHERE q.kind = 'P' AND q.shopify_id = t.shopify_id)
  AND NOT EXISTS (SELECT 1 FROM stg_core s WHERE s.kind = 'P' AND s.shopify_id = t.shopify_id)
ORDER BY 1;
SELECT t.shopify_id FROM products t
WHERE t.deleted_at IS NULL AND t.synced_at < %(started)s
  AND EXISTS (SELECT 1 FROM stg_protected q WHERE q.kind = 'MP' AND q.shopify_id = t.shopify_id)
ORDER BY 1;
SELECT t.shopify_id FROM variants t
WHERE t.deleted_at IS NULL AND t.synced_at < %(started)s
  AND EXISTS (SELECT 1 FROM stg_protected q WHERE q.kind = 'V' AND q.shopify_id = t.shopify_id)
  AND NOT EXISTS (SELECT 1 FROM stg_core s WHERE s.kind = 'V' AND s.shopify_id = t.shopify_id)
ORDER BY 1;
SELECT t.shopify_id FROM variants t
WHERE t.deleted_at IS NULL AND t.synced_at < %(started)s
  AND EXISTS (SELECT 1 FROM stg_protected q WHERE q.kind = 'MV' AND q.shopify_id = t.shopify_id)
ORDER BY 1;
