-- After the products merge, before the variants: variants whose product is neither in this file
-- nor stored are taken out of staging and kept aside with where they were. One pass: an anti-join
-- with the file's own products (hashed, inside staging) leaves the rare candidates that are
-- looked up among the stored products.
WITH gone AS (
  DELETE FROM stg_core s
  WHERE s.kind = 'V'
    AND NOT EXISTS (SELECT 1 FROM stg_core p WHERE p.kind = 'P' AND p.shopify_id = s.parent_id)
    AND NOT EXISTS (SELECT 1 FROM products p WHERE p.shopify_id = s.parent_id)
  RETURNING s.line_no, s.byte_offset, s.parent_id, s.shopify_id
)
INSERT INTO sync_quarantine (shop_id, run_id, phase, line_no, byte_offset, reason, line)
SELECT app_current_shop_id(), %(run_id)s, 'core', g.line_no, g.byte_offset,
       'orphan: parent product ' || g.parent_id || ' is not in the file',
       'gid://shopify/ProductVariant/' || g.shopify_id
FROM gone g
ON CONFLICT (run_id, phase, line_no) DO NOTHING;
