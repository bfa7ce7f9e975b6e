-- One batch of variants, newer-wins (docs/newer-wins.md). A variant names its product by __parentId (any order, any
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
-- The newer-wins rule (app_newer_wins, docs/newer-wins.md) decides every field but the
-- metafields: a row it keeps (a webhook applied after this file was written, a deletion newer
-- than the file) is rewritten only for its metafields, which only syncs write.
ON CONFLICT (shop_id, shopify_id) DO UPDATE SET
  product_shopify_id = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.product_shopify_id ELSE t.product_shopify_id END,
  sku = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.sku ELSE t.sku END,
  title = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.title ELSE t.title END,
  price = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.price ELSE t.price END,
  compare_at_price = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.compare_at_price ELSE t.compare_at_price END,
  barcode = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.barcode ELSE t.barcode END,
  position = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.position ELSE t.position END,
  inventory_quantity = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.inventory_quantity ELSE t.inventory_quantity END,
  inventory_item_id = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.inventory_item_id ELSE t.inventory_item_id END,
  selected_options = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.selected_options ELSE t.selected_options END,
  -- Shopify's createdAt never changes: the first sighting that carried one is kept.
  shopify_created_at = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN coalesce(t.shopify_created_at, excluded.shopify_created_at) ELSE t.shopify_created_at END,
  shopify_updated_at = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.shopify_updated_at ELSE t.shopify_updated_at END,
  -- A partial metafields file only adds what it saw; a complete one replaces the object, but
  -- keeps the members of owner apps that could not be read (the kept patterns), and merges over
  -- the stored object of an owner a quarantined line names (it may have lost a member).
  metafields = CASE WHEN (%(metafields_complete)s AND NOT (%(protected_owners)s AND EXISTS (
                     SELECT 1 FROM stg_protected q
                     WHERE q.kind = 'MV' AND q.shopify_id = excluded.shopify_id)))
                    THEN app_kept_metafields(t.metafields, %(kept)s::text[]) || excluded.metafields
                    ELSE t.metafields || excluded.metafields END,
  synced_at = excluded.synced_at,
  -- A revived row (deleted, now newer than its deletion) is always written.
  deleted_at = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN NULL ELSE t.deleted_at END
-- Written only when the rule lets the file's version in and it changes something (an equal
-- version with equal content is a replay: left as is), or for the metafields alone.
WHERE (app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
       AND (t.deleted_at IS NOT NULL
            OR (t.product_shopify_id, t.sku, t.title, t.price, t.compare_at_price, t.barcode,
                t.position, t.inventory_quantity, t.inventory_item_id, t.selected_options,
                t.shopify_updated_at)
               IS DISTINCT FROM
               (excluded.product_shopify_id, excluded.sku, excluded.title, excluded.price,
                excluded.compare_at_price, excluded.barcode, excluded.position,
                excluded.inventory_quantity, excluded.inventory_item_id,
                excluded.selected_options, excluded.shopify_updated_at)
            OR (t.shopify_created_at IS NULL AND excluded.shopify_created_at IS NOT NULL)))
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
