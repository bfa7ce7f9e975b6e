-- Migration 0010: PostgreSQL 16 has no MAINTAIN privilege (0002), and there the application role's
-- ANALYZE of the catalog tables is skipped with only a warning, so a first sync of a million rows
-- left the planner with empty-table statistics until autovacuum came round. On such servers this
-- function, owned by the owner role, runs the ANALYZE for it: only of the three catalog tables.
DO $body$
BEGIN
  IF current_setting('server_version_num')::int < 170000 THEN
    EXECUTE $fn$
      CREATE FUNCTION app_analyze_catalog(p_tables text[]) RETURNS void
      LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $f$
      DECLARE
        t text;
      BEGIN
        FOREACH t IN ARRAY p_tables LOOP
          IF t NOT IN ('products', 'variants', 'inventory_levels') THEN
            RAISE EXCEPTION 'app_analyze_catalog: % is not a catalog table', t
              USING ERRCODE = 'insufficient_privilege';
          END IF;
          EXECUTE format('ANALYZE %I', t);
        END LOOP;
      END
      $f$
    $fn$;
    REVOKE ALL ON FUNCTION app_analyze_catalog(text[]) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION app_analyze_catalog(text[]) TO {app_role};
  END IF;
END
$body$;
