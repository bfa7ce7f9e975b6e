-- One batch of variants, newer-wins. A variant names its product by __parentId (any order, any
-- distance in the file); orphans were set aside before this runs (orphans.sql).
INSERT INTO variants AS t (id, shop_id, shopify_id, product_shopify_id, sku, title, price,
                           compare_at_price, barcode, position, inventory_quantity,
                           inventory_item_id, selected_options, metafields, shopify_created_at,
                           shopify_updated_at, synced_at, deleted_at)
SELECT DISTINCT ON (s.shopify_id)
       app_batch_uuidv7(%(id_hi)s, %(id_lo)s, s.line_no), %(shop_id)s::uuid,
       s.shopify_id, s.parent_id, s.sku, s.title, s.price::numeric,
       s.compare_at_price::numeric, s.barcode, s.position, s.inventory_quantity, s.inventory_item_id,
       coalesce(s.selected_options, '[]')::jsonb, coalesce(m.metafields, '{}'::jsonb), s.created,
       s.updated, now(), NULL
FROM stg_core s
LEFT JOIN stg_meta_agg m ON m.owner_kind = 'V' AND m.owner_id = s.shopify_id
WHERE s.kind = 'V' AND s.ctid >= %(lo)s::tid AND s.ctid < %(hi)s::tid
ORDER BY s.shopify_id, s.updated DESC NULLS LAST
ON CONFLICT (shop_id, shopify_id) DO UPDATE SET
  product_shopify_id = excluded.product_shopify_id,
  sku = excluded.sku,
  title = excluded.title,
  price = excluded.price,
  compare_at_price = excluded.compare_at_price,
  barcode = excluded.barcode,
  position = excluded.position,
  inventory_quantity = excluded.inventory_quantity,
  inventory_item_id = excluded.inventory_item_id,
  selected_options = excluded.selected_options,
  -- A complete metafields file replaces the object (see merge_products.sql), except for owners a
  -- quarantined line names: theirs may have lost a member, so the file's are merged over them.
  metafields = CASE WHEN (%(metafields_complete)s AND NOT (%(protected_owners)s AND EXISTS (
                     SELECT 1 FROM stg_protected q
                     WHERE q.kind = 'MV' AND q.shopify_id = excluded.shopify_id)))
                    THEN app_kept_metafields(t.metafields, %(kept)s::text[]) || excluded.metafields
                    ELSE t.metafields || excluded.metafields END,
  shopify_created_at = excluded.shopify_created_at,
  shopify_updated_at = excluded.shopify_updated_at,
  synced_at = excluded.synced_at,
  deleted_at = NULL
WHERE t.shopify_updated_at IS NULL
   OR excluded.shopify_updated_at > t.shopify_updated_at
   OR (excluded.shopify_updated_at = t.shopify_updated_at
       AND (t.deleted_at IS NOT NULL
            OR (t.product_shopify_id, t.sku, t.title, t.price, t.compare_at_price, t.barcode,
                t.position, t.inventory_quantity, t.inventory_item_id, t.selected_options,
                t.shopify_created_at)
               IS DISTINCT FROM
               (excluded.product_shopify_id, excluded.sku, excluded.title, excluded.price,
                excluded.compare_at_price, excluded.barcode, excluded.position,
                excluded.inventory_quantity, excluded.inventory_item_id,
                excluded.selected_options, excluded.shopify_created_at)
            OR t.metafields IS DISTINCT FROM
               CASE WHEN %(metafields_complete)s
                         AND NOT (%(protected_owners)s AND EXISTS (
                           SELECT 1 FROM stg_protected q
                           WHERE q.kind = 'MV' AND q.shopify_id = excluded.shopify_id))
                    THEN app_kept_metafields(t.metafields, %(kept)s::text[]) || excluded.metafields
                    ELSE t.metafields || excluded.metafields END));
