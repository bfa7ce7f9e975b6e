-- Undo migration 0005: the grants of 0001-0004, the foreign keys, no policies on shops.
REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {app_role};
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {app_role};
DO $body$
BEGIN
  IF current_setting('server_version_num')::int >= 170000 THEN
    EXECUTE 'GRANT MAINTAIN ON products, variants, inventory_levels TO {app_role}';
  END IF;
END
$body$;

DROP FUNCTION app_shop_by_api_key(bytea);
DROP FUNCTION app_shop_sealed_tokens(uuid);
DROP FUNCTION app_ensure_shop(text);
DROP POLICY shops_purge_own ON shops;
DROP POLICY shops_write_own ON shops;
DROP POLICY shops_read ON shops;
ALTER TABLE shops DISABLE ROW LEVEL SECURITY;

DROP TRIGGER shop_catalog_deleted ON shops;
DO $body$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['products', 'variants', 'inventory_levels'] LOOP
    EXECUTE format('DROP TRIGGER catalog_shop_exists ON %I', t);
    EXECUTE format('DROP TRIGGER catalog_shop_fixed ON %I', t);
    EXECUTE format(
      'ALTER TABLE %I ADD CONSTRAINT %I FOREIGN KEY (shop_id) REFERENCES shops (id) '
      'ON DELETE CASCADE', t, t || '_shop_id_fkey');
  END LOOP;
END
$body$;
DROP FUNCTION app_delete_shop_catalog();
DROP FUNCTION app_keep_catalog_shop();
DROP FUNCTION app_check_catalog_shops();
