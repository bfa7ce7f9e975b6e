-- Migration 0005: the application role gets only the rights each of its paths needs.
-- Before, it could read every shop's sealed tokens, update any `shops` row, and (with
-- `session_replication_role`) insert catalog rows under a shop that does not exist.

-- 1. Catalog rows check their shop once per statement instead of once per row. A foreign key
-- queues a trigger per row that looks the shop up and locks it (3 us a row, a third of a bulk
-- merge); these triggers do the same check and lock once for all the statement's rows, whatever
-- role runs it, so no role needs to turn foreign keys off.
ALTER TABLE products DROP CONSTRAINT products_shop_id_fkey;
ALTER TABLE variants DROP CONSTRAINT variants_shop_id_fkey;
ALTER TABLE inventory_levels DROP CONSTRAINT inventory_levels_shop_id_fkey;

-- Every shop the statement's new rows name exists, and stays until this transaction ends (locked
-- FOR KEY SHARE, as a foreign key's check locks it): a purge waits for the rows, then takes them.
CREATE FUNCTION app_check_catalog_shops() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  wanted uuid[];
  locked integer;
BEGIN
  -- Hashed, not sorted: a batch brings tens of thousands of rows, almost always of one shop.
  SELECT array_agg(d.shop_id) INTO wanted FROM (SELECT DISTINCT shop_id FROM new_rows) d;
  IF wanted IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM 1 FROM shops WHERE id = ANY (wanted) FOR KEY SHARE;
  GET DIAGNOSTICS locked = ROW_COUNT;
  IF locked < cardinality(wanted) THEN
    RAISE EXCEPTION 'insert into % names a shop that does not exist', TG_TABLE_NAME
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END
$$;

-- A catalog row never moves to another shop (what the foreign key checked on update). Fires
-- only for updates that name shop_id, after row-level security has had its say.
CREATE FUNCTION app_keep_catalog_shop() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.shop_id IS DISTINCT FROM OLD.shop_id THEN
    RAISE EXCEPTION 'shop_id of a % row cannot change', TG_TABLE_NAME
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END
$$;

-- What ON DELETE CASCADE did: a deleted shop takes its catalog with it. The tenant is set for
-- the deletes (row-level security is forced on these tables), then set back to the caller's.
CREATE FUNCTION app_delete_shop_catalog() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  caller text := coalesce(current_setting('app.current_shop_id', true), '');
BEGIN
  PERFORM set_config('app.current_shop_id', OLD.id::text, true);
  DELETE FROM inventory_levels WHERE shop_id = OLD.id;
  DELETE FROM variants WHERE shop_id = OLD.id;
  DELETE FROM products WHERE shop_id = OLD.id;
  PERFORM set_config('app.current_shop_id', caller, true);
  RETURN NULL;
END
$$;

DO $body$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['products', 'variants', 'inventory_levels'] LOOP
    EXECUTE format(
      'CREATE TRIGGER catalog_shop_exists AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows '
      'FOR EACH STATEMENT EXECUTE FUNCTION app_check_catalog_shops()', t);
    EXECUTE format(
      'CREATE TRIGGER catalog_shop_fixed AFTER UPDATE OF shop_id ON %I '
      'FOR EACH ROW EXECUTE FUNCTION app_keep_catalog_shop()', t);
  END LOOP;
END
$body$;
CREATE TRIGGER shop_catalog_deleted AFTER DELETE ON shops
  FOR EACH ROW EXECUTE FUNCTION app_delete_shop_catalog();

-- 2. `shops`: every row readable without its secrets (webhook ingress, the CLI and the periodic
-- sweeps look shops up by domain or status), but written only in the shop's own tenant scope, and
-- deleted (the purge) only once uninstalled. Not forced: the owner, and the functions below that
-- run as the owner, see every row.
ALTER TABLE shops ENABLE ROW LEVEL SECURITY;
CREATE POLICY shops_read ON shops FOR SELECT USING (true);
CREATE POLICY shops_write_own ON shops FOR UPDATE USING (id = app_current_shop_id())
  WITH CHECK (id = app_current_shop_id());
CREATE POLICY shops_purge_own ON shops FOR DELETE
  USING (id = app_current_shop_id() AND status = 'uninstalled');

-- The install: the shop's row by domain, created on first install, locked either way.
CREATE FUNCTION app_ensure_shop(p_domain text, OUT shop_id uuid, OUT created boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  LOOP
    INSERT INTO shops (domain) VALUES (p_domain) ON CONFLICT (domain) DO NOTHING
      RETURNING id INTO shop_id;
    IF FOUND THEN
      created := true;
      RETURN;
    END IF;
    SELECT s.id INTO shop_id FROM shops s WHERE s.domain = p_domain FOR UPDATE;
    IF FOUND THEN
      created := false;
      RETURN;
    END IF;
    -- Purged between the two statements: insert again.
  END LOOP;
END
$$;

-- The sealed tokens of the shop, in that shop's own tenant scope only.
CREATE FUNCTION app_shop_sealed_tokens(p_shop_id uuid, OUT access_token_ct bytea,
                                       OUT refresh_token_ct bytea)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT s.access_token_ct, s.refresh_token_ct FROM shops s
  WHERE s.id = p_shop_id AND s.id = app_current_shop_id()
$$;

-- API-key authentication: the shop whose key hashes to the digest (the hashes stay unreadable).
CREATE FUNCTION app_shop_by_api_key(p_digest bytea, OUT id uuid, OUT domain text, OUT status text)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT s.id, s.domain, s.status FROM shops s WHERE s.api_key_hash = p_digest
$$;

-- 3. Grants, table by table (they were ALL TABLES: alembic_version and every shops column too).
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {app_role};
GRANT SELECT ON alembic_version TO {app_role};
GRANT SELECT (id, domain, status, scopes, access_token_key_id, access_token_expires_at,
              refresh_token_key_id, refresh_token_expires_at, plan_name, api_bucket_size,
              api_restore_rate, installed_at, uninstalled_at, purge_after, last_full_sync_at,
              last_incremental_sync_at, created_at, updated_at)
  ON shops TO {app_role};
GRANT UPDATE (status, scopes, access_token_ct, access_token_key_id, access_token_expires_at,
              refresh_token_ct, refresh_token_key_id, refresh_token_expires_at, api_key_hash,
              plan_name, api_bucket_size, api_restore_rate, installed_at, uninstalled_at,
              purge_after, last_full_sync_at, last_incremental_sync_at, updated_at)
  ON shops TO {app_role};
GRANT DELETE ON shops TO {app_role};
GRANT SELECT, INSERT, UPDATE, DELETE ON products, variants, inventory_levels, sync_runs,
  sync_quarantine, webhook_inbox, owner_apps, outbox TO {app_role};
DO $body$
BEGIN
  IF current_setting('server_version_num')::int >= 170000 THEN
    EXECUTE 'GRANT MAINTAIN ON products, variants, inventory_levels TO {app_role}';
  END IF;
END
$body$;

-- Functions are executable by PUBLIC unless revoked: these run as the owner, so only the
-- application role may call them (the trigger functions only as triggers).
REVOKE ALL ON FUNCTION app_check_catalog_shops(), app_keep_catalog_shop(),
  app_delete_shop_catalog(), app_ensure_shop(text), app_shop_sealed_tokens(uuid),
  app_shop_by_api_key(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_ensure_shop(text), app_shop_sealed_tokens(uuid),
  app_shop_by_api_key(bytea) TO {app_role};
