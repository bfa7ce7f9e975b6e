DROP TABLE purge_audit;
ALTER TABLE shops DROP COLUMN shopify_shop_id;
