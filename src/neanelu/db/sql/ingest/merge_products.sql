-- One batch of products (a range of staging pages) into the tenant's table, newer-wins
-- (docs/newer-wins.md). A row is rewritten when Shopify's updated_at is newer, or equal with
-- different content (metafield edits do not move a product's updated_at), or newer than the
-- row's deletion (which revives it).
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
-- The newer-wins rule (app_newer_wins, docs/newer-wins.md) decides every field but the
-- metafields: a row it keeps (a webhook applied after this file was written, a deletion newer
-- than the file) is rewritten only for its metafields, which only syncs write.
ON CONFLICT (shop_id, shopify_id) DO UPDATE SET
  handle = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.handle ELSE t.handle END,
  title = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.title ELSE t.title END,
  vendor = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.vendor ELSE t.vendor END,
  product_type = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.product_type ELSE t.product_type END,
  status = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.status ELSE t.status END,
  tags = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.tags ELSE t.tags END,
  description = CASE WHEN app_newer_wins(t.shopify_updated_at, t.deleted_at, excluded.shopify_updated_at)
    THEN excluded.description ELSE t.description END,
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
                     WHERE q.kind = 'MP' AND q.shopify_id = excluded.shopify_id)))
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
            OR (t.handle, t.title, t.vendor, t.product_type, t.status, t.tags, t.description,
                t.shopify_updated_at)
               IS DISTINCT FROM
               (excluded.handle, excluded.title, excluded.vendor, excluded.product_type,
                excluded.status, excluded.tags, excluded.description,
                excluded.shopify_updated_at)
            OR (t.shopify_created_at IS NULL AND excluded.shopify_created_at IS NOT NULL)))
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
