-- After staging: fold metafields into one JSON object per owner, keyed for the merges' lookups.
-- A key seen twice keeps the value of its last line. Stored in owner order: the merges walk
-- the core file, which Shopify writes in id order, so their lookups touch neighbouring pages
-- instead of jumping across a table far larger than the session's buffers.
SET LOCAL work_mem = '256MB';
DROP TABLE IF EXISTS stg_meta_agg;
CREATE TEMP TABLE stg_meta_agg AS
  SELECT owner_kind, owner_id, ('{' || string_agg(entry, ',' ORDER BY line_no) || '}')::jsonb AS metafields
  FROM stg_meta
  GROUP BY owner_kind, owner_id
  ORDER BY owner_kind, owner_id;
CREATE UNIQUE INDEX stg_meta_agg_owner ON stg_meta_agg (owner_kind, owner_id);
ANALYZE stg_meta_agg;
ANALYZE stg_core;
