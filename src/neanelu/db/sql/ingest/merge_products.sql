-- One batch of products (a range of staging pages) into the tenant's table, newer-wins.
-- A row is rewritten when Shopify's updated_at is newer, or equal with different content
-- (metafield edits do not move a product's updated_at), or when it was marked deleted.
INSERT INTO products AS t (id, shop_id, shopify_id, handle, title, vendor, product_type, status, tags,
                           description, metafields, shopify_created_at, shopify_updated_at,
                           synced_at, deleted_at)
SELECT DISTINCT ON (s.shopify_id)
       app_batch_uuidv7(%(id_hi)s, %(id_lo)s, s.line_no), %(shop_id)s::uuid,
       s.shopify_id, s.handle, s.title, s.vendor, s.product_type, s.status,
       coalesce(s.tags::text[], '{}'), s.description, coalesce(m.metafields, '{}'::jsonb), s.created,
       s.updated, now(), NULL
FROM stg_core s
LEFT JOIN stg_meta_agg m ON m.owner_kind = 'P' AND m.owner_id = s.shopify_id
WHERE s.kind = 'P' AND s.ctid >= %(lo)s::tid AND s.ctid < %(hi)s::tid
ORDER BY s.shopify_id, s.updated DESC NULLS LAST
-- Each field keeps the stored value when the stored row is newer (a webhook applied after this
-- file was written: the row is rewritten only for its metafields, which only syncs write).
ON CONFLICT (shop_id, shopify_id) DO UPDATE SET
  handle = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.handle ELSE excluded.handle END,
  title = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.title ELSE excluded.title END,
  vendor = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.vendor ELSE excluded.vendor END,
  product_type = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.product_type ELSE excluded.product_type END,
  status = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.status ELSE excluded.status END,
  tags = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.tags ELSE excluded.tags END,
  description = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.description ELSE excluded.description END,
  shopify_created_at = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.shopify_created_at ELSE excluded.shopify_created_at END,
  shopify_updated_at = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.shopify_updated_at ELSE excluded.shopify_updated_at END,
  -- A partial metafields file only adds what it saw; a complete one replaces the object, but
  -- keeps the members of owner apps that could not be read (the kept patterns), and merges over
  -- the stored object of an owner a quarantined line names (it may have lost a member).
  metafields = CASE WHEN (%(metafields_complete)s AND NOT (%(protected_owners)s AND EXISTS (
                     SELECT 1 FROM stg_protected q
                     WHERE q.kind = 'MP' AND q.shopify_id = excluded.shopify_id)))
                    THEN app_kept_metafields(t.metafields, %(kept)s::text[]) || excluded.metafields
                    ELSE t.metafields || excluded.metafields END,
  synced_at = excluded.synced_at,
  deleted_at = CASE WHEN t.shopify_updated_at > coalesce(excluded.shopify_updated_at, '-infinity')
    THEN t.deleted_at ELSE NULL END
WHERE t.shopify_updated_at IS NULL
   OR excluded.shopify_updated_at > t.shopify_updated_at
   OR (excluded.shopify_updated_at = t.shopify_updated_at
       AND (t.deleted_at IS NOT NULL
            OR (t.handle, t.title, t.vendor, t.product_type, t.status, t.tags, t.description,
                t.shopify_created_at)
               IS DISTINCT FROM
               (excluded.handle, excluded.title, excluded.vendor, excluded.product_type,
                excluded.status, excluded.tags, excluded.description, excluded.shopify_created_at)))
   -- Metafields apart: a webhook never carries them, so a row a webhook made newer than this
   -- file still takes the file's metafields (its own fields stay the newer ones above).
   OR ((%(metafields_complete)s AND NOT (%(protected_owners)s AND EXISTS (
           SELECT 1 FROM stg_protected q
           WHERE q.kind = 'MP' AND q.shopify_id = excluded.shopify_id)))
       AND t.metafields IS DISTINCT FROM
           app_kept_metafields(t.metafields, %(kept)s::text[]) || excluded.metafields)
   OR (NOT (%(metafields_complete)s AND NOT (%(protected_owners)s AND EXISTS (
           SELECT 1 FROM stg_protected q
           WHERE q.kind = 'MP' AND q.shopify_id = excluded.shopify_id)))
       AND NOT t.metafields @> excluded.metafields);
