-- Session-private staging for one sync attempt. No row-level security (PostgreSQL refuses COPY
-- into RLS tables) and no WAL (temp tables); rows reach the tenant tables only through the merges,
-- which RLS checks. A crashed session takes its staging with it; the next attempt starts clean.
DROP TABLE IF EXISTS stg_core, stg_meta, stg_meta_agg, stg_protected;
CREATE TEMP TABLE stg_core (
  kind text NOT NULL,            -- 'P' product, 'V' variant
  line_no bigint NOT NULL,
  byte_offset bigint NOT NULL,
  shopify_id bigint NOT NULL,
  parent_id bigint,
  handle text,
  title text,
  vendor text,
  product_type text,
  status text,
  tags text,                     -- an array literal (cast to text[] when merged)
  description text,
  sku text,
  price text,                    -- Shopify's Decimal string, checked when decoded
  compare_at_price text,
  barcode text,
  position integer,
  inventory_quantity integer,
  inventory_item_id bigint,
  selected_options text,
  created timestamptz,
  updated timestamptz
);
CREATE TEMP TABLE stg_meta (
  line_no bigint NOT NULL,
  byte_offset bigint NOT NULL,
  owner_kind text NOT NULL,      -- 'P' product, 'V' variant
  owner_id bigint NOT NULL,
  -- One JSON object member, `"namespace.key":{"type":...,"value":...}`, built while decoding so
  -- that folding an owner's metafields is a string concatenation, not a JSON build per row.
  entry text NOT NULL,
  source smallint NOT NULL       -- which metafield file of the run (rows.METAFIELD_FILES, owner apps)
);
-- Ids named by quarantined lines (ingest/evidence.py): kept from the sweeps and replacements.
CREATE TEMP TABLE stg_protected (
  kind text NOT NULL,            -- P product, V variant, MP/MV their metafields, L level, I item
  shopify_id bigint NOT NULL,
  PRIMARY KEY (kind, shopify_id)
);
