-- Inventory staging lives on its own session, so its merge runs while the metafields still stream
-- into the catalog session: PostgreSQL works on both at once.
DROP TABLE IF EXISTS stg_inv, stg_protected;
CREATE TEMP TABLE stg_inv (
  line_no bigint NOT NULL,
  byte_offset bigint NOT NULL,
  shopify_id bigint NOT NULL,
  item_id bigint NOT NULL,
  location_id bigint NOT NULL,
  available integer,
  updated timestamptz
);
CREATE TEMP TABLE stg_protected (
  kind text NOT NULL,            -- L level, I inventory item (ingest/evidence.py)
  shopify_id bigint NOT NULL,
  PRIMARY KEY (kind, shopify_id)
);
