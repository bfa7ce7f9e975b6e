-- One batch of inventory levels into a table that held none of the shop's rows when the sync
-- began: a plain insert. A row that arrived meanwhile (a webhook) or a duplicate line breaks
-- the batch on a unique key, and the batch is redone with the newer-wins upsert.
INSERT INTO inventory_levels AS t (id, shop_id, shopify_id, inventory_item_id, location_id,
                                   available, shopify_updated_at, synced_at)
SELECT
       app_batch_uuidv7(%(id_hi)s, %(id_lo)s, s.line_no), %(shop_id)s::uuid,
       s.shopify_id, s.item_id, s.location_id, s.available, s.updated, now()
FROM stg_inv s
WHERE s.ctid >= %(lo)s::tid AND s.ctid < %(hi)s::tid;
