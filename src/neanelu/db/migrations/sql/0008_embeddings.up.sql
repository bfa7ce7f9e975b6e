-- Migration 0008: semantic search. Vectors per (shop, model, product) in a table LIST-partitioned
-- by shop (large shops get their own partition and HNSW index, small shops share the default
-- partition and are searched exactly), a full-text document per product in the shop's language
-- configuration, per-shop search settings, and a record of every embedding run.

-- The shop's text search configuration ('simple', 'romanian', 'english', ...): regconfig makes a
-- misspelt name fail at write time instead of at every search.
CREATE TABLE search_settings (
  shop_id uuid PRIMARY KEY REFERENCES shops (id) ON DELETE CASCADE,
  text_config regconfig NOT NULL DEFAULT 'simple',
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- One row per product and model. The model's name and dimension travel with every vector, so a
-- search names its model and never compares vectors of two models; `content_hash` is the SHA-256
-- of the embedding text, so unchanged products are skipped. The column is untyped `vector` (many
-- models, many dimensions); HNSW indexes are partial per model over a cast to its dimension.
CREATE TABLE embeddings (
  shop_id uuid NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
  model text NOT NULL CHECK (length(model) BETWEEN 1 AND 200),
  product_shopify_id bigint NOT NULL,
  dimension integer NOT NULL CHECK (dimension BETWEEN 1 AND 16000),
  content_hash bytea NOT NULL CHECK (length(content_hash) = 32),
  embedding vector NOT NULL,
  tokens integer NOT NULL DEFAULT 0 CHECK (tokens >= 0),
  embedded_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (shop_id, model, product_shopify_id),
  CHECK (vector_dims(embedding) = dimension)
) PARTITION BY LIST (shop_id);

-- Small shops share this partition; their searches are exact (the primary key narrows the scan to
-- the shop and model), which keeps recall at 1.0 where a shared HNSW with a shop filter loses it.
CREATE TABLE embeddings_default PARTITION OF embeddings DEFAULT;

-- The full-text document of a product, weighted title A, vendor/type/tags B, the rest C, built
-- in the shop's configuration. A deleted product's document stays, flagged, for searches that ask
-- to include deleted products; its vectors are removed.
CREATE TABLE search_documents (
  shop_id uuid NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
  product_shopify_id bigint NOT NULL,
  text_config regconfig NOT NULL,
  content_hash bytea NOT NULL CHECK (length(content_hash) = 32),
  document tsvector NOT NULL,
  deleted boolean NOT NULL DEFAULT false,
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (shop_id, product_shopify_id)
);
CREATE INDEX search_documents_document_gin ON search_documents USING gin (document);

-- What each embedding run did: the figures an operator reads.
CREATE TABLE embedding_runs (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  shop_id uuid NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
  source text NOT NULL CHECK (source IN ('full_sync', 'webhook', 'sweep', 'manual')),
  provider text NOT NULL,
  model text NOT NULL,
  status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'completed', 'failed')),
  queued integer NOT NULL DEFAULT 0,
  embedded integer NOT NULL DEFAULT 0,
  skipped integer NOT NULL DEFAULT 0,
  removed integer NOT NULL DEFAULT 0,
  tokens bigint NOT NULL DEFAULT 0,
  error text,
  started_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE INDEX embedding_runs_shop_started_idx ON embedding_runs (shop_id, started_at DESC);

-- The tenant policy every tenant table has, forced; also used for each shop's own partition.
CREATE FUNCTION app_tenant_isolation(p_table text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', p_table);
  EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', p_table);
  EXECUTE format(
    'CREATE POLICY tenant_isolation ON %I USING (shop_id = app_current_shop_id()) '
    'WITH CHECK (shop_id = app_current_shop_id())', p_table);
END
$$;

SELECT app_tenant_isolation(t) FROM unnest(ARRAY['search_settings', 'embeddings',
  'embeddings_default', 'search_documents', 'embedding_runs']) AS t;

-- The app role reaches vectors only through the parent (whose policy applies); partitions carry
-- the same forced policy so a direct read by anyone else sees only the current shop too.
GRANT SELECT, INSERT, UPDATE, DELETE ON search_settings, embeddings, search_documents,
  embedding_runs TO {app_role};

-- The HNSW index of one model on one shop's own partition (cosine). Partial per model, over the
-- vector cast to its dimension; m and ef_construction are pgvector's defaults (16, 64).
CREATE FUNCTION app_embeddings_index_model(
  p_partition text, p_model text, p_dimension integer, p_maintenance_work_mem text
) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  idx text := p_partition || '_' || substr(md5(p_model || '/' || p_dimension), 1, 12) || '_hnsw';
BEGIN
  IF to_regclass(idx) IS NOT NULL THEN
    RETURN idx;
  END IF;
  -- A bulk-loaded partition builds in memory when given enough; local to this transaction.
  PERFORM set_config('maintenance_work_mem', p_maintenance_work_mem, true);
  EXECUTE format(
    'CREATE INDEX %I ON %I USING hnsw ((embedding::vector(%s)) vector_cosine_ops) '
    'WITH (m = 16, ef_construction = 64) WHERE model = %L AND dimension = %s',
    idx, p_partition, p_dimension, p_model, p_dimension);
  RETURN idx;
END
$$;

-- Give a large shop its own partition: its rows move out of the default partition, the partition
-- is attached with the same forced policy, and each model in it gets its HNSW index. Run by the
-- owner role (`neanelu search partition`); running it again only adds indexes for new models.
CREATE FUNCTION app_embeddings_own_partition(p_shop uuid, p_maintenance_work_mem text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  part text := 'embeddings_' || replace(p_shop::text, '-', '');
  models text[];
  dims integer[];
BEGIN
  IF NOT EXISTS (SELECT 1 FROM shops WHERE id = p_shop) THEN
    RAISE EXCEPTION 'no shop with id %', p_shop USING ERRCODE = 'foreign_key_violation';
  END IF;
  -- The forced policies apply to the owner too: act as this shop for the move.
  PERFORM set_config('app.current_shop_id', p_shop::text, true);
  IF to_regclass(part) IS NULL THEN
    EXECUTE format('CREATE TABLE %I (LIKE embeddings INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
    EXECUTE format('INSERT INTO %I SELECT * FROM embeddings_default WHERE shop_id = %L', part, p_shop);
    DELETE FROM embeddings_default WHERE shop_id = p_shop;
    EXECUTE format('ALTER TABLE embeddings ATTACH PARTITION %I FOR VALUES IN (%L)', part, p_shop);
    PERFORM app_tenant_isolation(part);
  END IF;
  -- Read the models first: an open loop over the partition would block its CREATE INDEX.
  EXECUTE format('SELECT coalesce(array_agg(model), %L), coalesce(array_agg(dimension), %L) '
                 'FROM (SELECT DISTINCT model, dimension FROM %I) AS d', '{}', '{}', part)
    INTO models, dims;
  FOR i IN 1 .. cardinality(models) LOOP
    PERFORM app_embeddings_index_model(part, models[i], dims[i], p_maintenance_work_mem);
  END LOOP;
  RETURN part;
END
$$;
