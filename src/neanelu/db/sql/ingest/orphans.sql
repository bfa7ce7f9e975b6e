-- After the products merge, before the variants: variants whose product is neither in this file
-- nor stored are kept aside with where they were, then dropped from staging. One anti-join over
-- the whole file, instead of a parent lookup per variant.
INSERT INTO sync_quarantine (shop_id, run_id, phase, line_no, byte_offset, reason, line)
SELECT app_current_shop_id(), %(run_id)s, 'core', s.line_no, s.byte_offset,
       'orphan: parent product ' || s.parent_id || ' is not in the file',
       'gid://shopify/ProductVariant/' || s.shopify_id
FROM stg_core s
WHERE s.kind = 'V'
  AND NOT EXISTS (SELECT 1 FROM products p WHERE p.shopify_id = s.parent_id)
ON CONFLICT (run_id, phase, line_no) DO NOTHING;
DELETE FROM stg_core s
WHERE s.kind = 'V'
  AND NOT EXISTS (SELECT 1 FROM products p WHERE p.shopify_id = s.parent_id);
