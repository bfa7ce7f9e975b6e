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
-- Each field keeps the stored value when the stored row is newer (a webhook applied after this
-- file was written: the row is rewritten only for its metafields, which only syncs write).
ON CONFLICT (shop_id, shopify_id) DO UPDATE SET
  product_shopify_id = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.product_shopify_id ELSE excluded.product_shopify_id END,
  sku = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.sku ELSE excluded.sku END,
  title = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.title ELSE excluded.title END,
  price = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.price ELSE excluded.price END,
  compare_at_price = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.compare_at_price ELSE excluded.compare_at_price END,
  barcode = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.barcode ELSE excluded.barcode END,
  position = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.position ELSE excluded.position END,
  inventory_quantity = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.inventory_quantity ELSE excluded.inventory_quantity END,
  inventory_item_id = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.inventory_item_id ELSE excluded.inventory_item_id END,
  selected_options = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.selected_options ELSE excluded.selected_options END,
  shopify_created_at = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.shopify_created_at ELSE excluded.shopify_created_at END,
  shopify_updated_at = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.shopify_updated_at ELSE excluded.shopify_updated_at END,
  -- A partial metafields file only adds what it saw; a complete one replaces the object, but
  -- keeps the members of owner apps that could not be read (the kept patterns), and merges over
  -- the stored object of an owner a quarantined line names (it may have lost a member).
  metafields = CASE WHEN (%(metafields_complete)s AND NOT (%(protected_owners)s AND EXISTS (
                     SELECT 1 FROM stg_protected q
                     WHERE q.kind = 'MV' AND q.shopify_id = excluded.shopify_id)))
                    THEN app_kept_metafields(t.metafields, %(kept)s::text[]) || excluded.metafields
                    ELSE t.metafields || excluded.metafields END,
  synced_at = excluded.synced_at,
  deleted_at = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.deleted_at ELSE NULL END
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
                excluded.selected_options, excluded.shopify_created_at)))
   -- Metafields apart: a webhook never carries them, so a row a webhook made newer than this
   -- file still takes the file's metafields (its own fields stay the newer ones above).
   OR ((%(metafields_complete)s AND NOT (%(protected_owners)s AND EXISTS (
           SELECT 1 FROM stg_protected q
           WHERE q.kind = 'MV' AND q.shopify_id = excluded.shopify_id)))
       AND t.metafields IS DISTINCT FROM
           app_kept_metafields(t.metafields, %(kept)s::text[]) || excluded.metafields)
   OR (NOT (%(metafields_complete)s AND NOT (%(protected_owners)s AND EXISTS (
           SELECT 1 FROM stg_protected q
           WHERE q.kind = 'MV' AND q.shopify_id = excluded.shopify_id)))
       AND NOT t.metafields @> excluded.metafields);
