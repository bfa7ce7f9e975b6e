-- Migration 0002: the application role may ANALYZE the catalog tables after a bulk load (a 1M-row
-- first sync leaves the planner with empty-table statistics until autovacuum comes round).
-- MAINTAIN exists from PostgreSQL 17; older servers rely on autovacuum alone.
DO $body$
BEGIN
  IF current_setting('server_version_num')::int >= 170000 THEN
    EXECUTE 'GRANT MAINTAIN ON products, variants, inventory_levels TO {app_role}';
  END IF;
END
$body$;
