-- Migration 0016: an inventory level is its (item, location) pair, never the number of its GID.
-- Shopify's level GID is `InventoryLevel/<location id>?inventory_item_id=<item id>` (its own
-- webhook samples: level 24826418 of location 24826418): every level at one location shares the
-- number. UNIQUE (shop_id, shopify_id) refused the second item stocked at a location, so a real
-- shop's full sync failed on its inventory file and inventory webhooks after the first were lost.
-- Every write already resolves conflicts on (shop_id, inventory_item_id, location_id), which stays.
ALTER TABLE inventory_levels DROP CONSTRAINT inventory_levels_shop_shopify_id_key;
