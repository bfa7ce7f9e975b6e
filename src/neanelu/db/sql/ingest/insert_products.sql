-- One batch of products into a table that held none of the shop's rows when the sync
-- began: a plain insert. A row that arrived meanwhile (a webhook) or a duplicate line breaks
-- the batch on a unique key, and the batch is redone with the newer-wins upsert.
INSERT INTO products AS t (id, shop_id, shopify_id, handle, title, vendor, product_type, status, tags,
                           description, metafields, shopify_created_at, shopify_updated_at,
                           synced_at, deleted_at)
SELECT
       app_batch_uuidv7(%(id_hi)s, %(id_lo)s, s.line_no), %(shop_id)s::uuid,
       s.shopify_id, s.handle, s.title, s.vendor, s.product_type, s.status,
       coalesce(s.tags::text[], '{}'), s.description, coalesce(m.metafields, '{}'::jsonb), s.created,
       s.updated, now(), NULL
FROM stg_core s
LEFT JOIN stg_meta_agg m ON m.owner_kind = 'P' AND m.owner_id = s.shopify_id
WHERE s.kind = 'P' AND s.ctid >= %(lo)s::tid AND s.ctid < %(hi)s::tid;
