-- Migration 0011: the newer-wins rule (docs/newer-wins.md) as one function, called by the bulk
-- merges (db/sql/ingest/merge_*.sql) and the webhook upserts (catalog/sql/upsert_*.sql) alike.
-- Whether an incoming version (Shopify's updated_at) replaces the stored row: not older than the
-- stored version, newer than the stored row's deletion, and an undated one only over an undated
-- live row. A plain SQL expression, so the planner inlines it into each statement.
CREATE FUNCTION app_newer_wins(stored_updated timestamptz, stored_deleted timestamptz,
                               incoming_updated timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN incoming_updated IS NULL
    THEN stored_updated IS NULL AND stored_deleted IS NULL
    ELSE incoming_updated >= coalesce(stored_updated, '-infinity')
         AND incoming_updated > coalesce(stored_deleted, '-infinity') END
$$;
GRANT EXECUTE ON FUNCTION app_newer_wins(timestamptz, timestamptz, timestamptz) TO {app_role};
