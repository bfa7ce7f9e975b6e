-- Undo migration 0001: everything it created, in dependency order.
DROP TABLE IF EXISTS outbox, webhook_inbox, sync_quarantine, sync_runs, inventory_levels, variants,
  products, shops CASCADE;
DROP FUNCTION IF EXISTS app_current_shop_id();
DO $body$
BEGIN
  IF current_setting('server_version_num')::int < 180000 THEN
    DROP FUNCTION IF EXISTS public.uuidv7();
  END IF;
END
$body$;
