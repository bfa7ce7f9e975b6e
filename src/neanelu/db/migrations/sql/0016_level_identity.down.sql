-- Fails on any shop with two items at one location (Shopify's ids), which is the point: going
-- back would have to drop stock levels.
ALTER TABLE inventory_levels
  ADD CONSTRAINT inventory_levels_shop_shopify_id_key UNIQUE (shop_id, shopify_id);
