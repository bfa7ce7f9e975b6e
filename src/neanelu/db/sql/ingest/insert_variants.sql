-- One batch of variants into a table that held none of the shop's rows when the sync
-- began: a plain insert. A row that arrived meanwhile (a webhook) or a duplicate line breaks
-- the batch on a unique key, and the batch is redone with the newer-wins upsert.
INSERT INTO variants AS t (id, shop_id, shopify_id, product_shopify_id, sku, title, price,
                           compare_at_price, barcode, position, inventory_quantity,
                           inventory_item_id, selected_options, metafields, shopify_created_at,
                           shopify_updated_at, synced_at, deleted_at)
SELECT
       app_batch_uuidv7(%(id_hi)s, %(id_lo)s, s.line_no), %(shop_id)s::uuid,
       s.shopify_id, s.parent_id, s.sku, s.title, s.price::numeric,
       s.compare_at_price::numeric, s.barcode, s.position, s.inventory_quantity, s.inventory_item_id,
       coalesce(s.selected_options, '[]')::jsonb, coalesce(m.metafields, '{}'::jsonb), s.created,
       s.updated, now(), NULL
FROM stg_core s
LEFT JOIN stg_meta_agg m ON m.owner_kind = 'V' AND m.owner_id = s.shopify_id
WHERE s.kind = 'V' AND s.ctid >= %(lo)s::tid AND s.ctid < %(hi)s::tid;
