-- After staging: fold metafields into one JSON object per owner, keyed for the merges' lookups.
-- A key seen twice keeps its last value, as jsonb does.
CREATE TEMP TABLE stg_meta_agg AS
  SELECT owner_kind, owner_id, ('{' || string_agg(entry, ',') || '}')::jsonb AS metafields
  FROM stg_meta
  GROUP BY owner_kind, owner_id;
CREATE UNIQUE INDEX stg_meta_agg_owner ON stg_meta_agg (owner_kind, owner_id);
ANALYZE stg_meta_agg;
ANALYZE stg_core;
