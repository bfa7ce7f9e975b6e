DO $body$
BEGIN
  IF current_setting('server_version_num')::int >= 170000 THEN
    EXECUTE 'REVOKE MAINTAIN ON products, variants, inventory_levels FROM {app_role}';
  END IF;
END
$body$;
