-- The declared schema of neanelu, as the migrations must build it (tests compare the two).
-- {app_role} is replaced with the application role's quoted name before this runs.

CREATE EXTENSION IF NOT EXISTS vector;
-- pgcrypto is optional: nothing depends on it (tokens are sealed in the application, random bytes
-- come from gen_random_uuid()), but servers that ship it get it for ad-hoc digests.
DO $body$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pgcrypto') THEN
    CREATE EXTENSION IF NOT EXISTS pgcrypto;
  END IF;
END
$body$;

-- PostgreSQL 18 has uuidv7(); older servers get the same time-ordered layout from this function.
DO $body$
BEGIN
  IF current_setting('server_version_num')::int < 180000
     AND to_regprocedure('public.uuidv7()') IS NULL THEN
    EXECUTE $fn$
      CREATE FUNCTION public.uuidv7() RETURNS uuid LANGUAGE sql VOLATILE AS $$
        SELECT encode(
          set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send((extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1), 'hex')::uuid
      $$
    $fn$;
  END IF;
END
$body$;

-- The tenant of the current transaction; NULL (no rows visible) when the scope did not set it.
-- NULLIF: after a SET LOCAL ends, the setting reads as '' on that session rather than NULL.
CREATE FUNCTION app_current_shop_id() RETURNS uuid LANGUAGE sql STABLE PARALLEL SAFE AS $$
  SELECT NULLIF(current_setting('app.current_shop_id', true), '')::uuid
$$;

-- Ids for the rows a bulk merge inserts: a UUIDv7 whose random bits are drawn once per batch (in
-- `hi` and `lo`) and whose counter is the row's line number in its bulk file (unique per file).
-- uuidv7() per row reads the kernel's random source each time (3 us without OpenSSL).
CREATE FUNCTION app_batch_uuidv7(hi bigint, lo bigint, n bigint) RETURNS uuid
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT encode(int8send(hi) || int8send(lo | ((n & 4294967295) << 30)), 'hex')::uuid
$$;

-- The members of a metafields object whose keys (`namespace.key`) match one of the LIKE patterns:
-- what a full sync keeps of owner apps it could not read, instead of replacing them with nothing.
CREATE FUNCTION app_kept_metafields(metafields jsonb, patterns text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(patterns) = 0 THEN '{}'::jsonb ELSE
    (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb)
     FROM jsonb_each(metafields) AS e WHERE e.key LIKE ANY (patterns)) END
$$;

-- The newer-wins rule (docs/newer-wins.md), shared by the bulk merges and the webhook upserts:
-- whether an incoming version (Shopify's updated_at) replaces the stored row. Not older than the
-- stored version, newer than the stored row's deletion; an undated one only over an undated live
-- row. A plain SQL expression, so the planner inlines it into each statement.
CREATE FUNCTION app_newer_wins(stored_updated timestamptz, stored_deleted timestamptz,
                               incoming_updated timestamptz) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN incoming_updated IS NULL
    THEN stored_updated IS NULL AND stored_deleted IS NULL
    ELSE incoming_updated >= coalesce(stored_updated, '-infinity')
         AND incoming_updated > coalesce(stored_deleted, '-infinity') END
$$;

CREATE TABLE shops (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  domain text NOT NULL UNIQUE CHECK (domain ~ '^[a-z0-9][a-z0-9-]*\.myshopify\.com$'),
  status text NOT NULL DEFAULT 'installed'
    CHECK (status IN ('installed', 'needs_reauth', 'uninstalled')),
  scopes text[] NOT NULL DEFAULT '{}',
  access_token_ct bytea,
  access_token_key_id text,
  access_token_expires_at timestamptz,
  refresh_token_ct bytea,
  refresh_token_key_id text,
  refresh_token_expires_at timestamptz,
  api_key_hash bytea UNIQUE,
  plan_name text,
  api_bucket_size integer CHECK (api_bucket_size > 0),
  api_restore_rate integer CHECK (api_restore_rate > 0),
  installed_at timestamptz,
  uninstalled_at timestamptz,
  purge_after timestamptz,
  last_full_sync_at timestamptz,
  last_incremental_sync_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  -- Shopify's numeric id of the shop, from the app/uninstalled payload: a shop/redact must name it.
  shopify_shop_id bigint
);

-- Catalog rows (the three big tables) name their shop without a foreign key: the triggers at the
-- end of this file check them once per statement (see migration 0005).
CREATE TABLE products (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  shop_id uuid NOT NULL,
  shopify_id bigint NOT NULL,
  handle text,
  title text,
  vendor text,
  product_type text,
  status text,
  tags text[] NOT NULL DEFAULT '{}',
  description text,
  metafields jsonb NOT NULL DEFAULT '{}',
  shopify_created_at timestamptz,
  shopify_updated_at timestamptz,
  synced_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  CONSTRAINT products_shop_shopify_id_key UNIQUE (shop_id, shopify_id)
);
CREATE INDEX products_metafields_gin ON products USING gin (metafields jsonb_path_ops);
CREATE INDEX products_shop_updated_idx ON products (shop_id, shopify_updated_at);

CREATE TABLE variants (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  shop_id uuid NOT NULL,
  shopify_id bigint NOT NULL,
  product_shopify_id bigint NOT NULL,
  sku text,
  title text,
  price numeric(20, 4),
  compare_at_price numeric(20, 4),
  barcode text,
  position integer,
  inventory_quantity integer,
  inventory_item_id bigint,
  selected_options jsonb NOT NULL DEFAULT '[]',
  metafields jsonb NOT NULL DEFAULT '{}',
  shopify_created_at timestamptz,
  shopify_updated_at timestamptz,
  synced_at timestamptz NOT NULL DEFAULT now(),
  deleted_at timestamptz,
  CONSTRAINT variants_shop_shopify_id_key UNIQUE (shop_id, shopify_id)
);
CREATE INDEX variants_shop_product_idx ON variants (shop_id, product_shopify_id);
CREATE INDEX variants_shop_inventory_item_idx ON variants (shop_id, inventory_item_id);

CREATE TABLE inventory_levels (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  shop_id uuid NOT NULL,
  shopify_id bigint NOT NULL,
  inventory_item_id bigint NOT NULL,
  location_id bigint NOT NULL,
  available integer,
  shopify_updated_at timestamptz,
  synced_at timestamptz NOT NULL DEFAULT now(),
  -- Not unique: Shopify's level GID carries the location's number (migration 0016).
  CONSTRAINT inventory_levels_shop_item_location_key UNIQUE (shop_id, inventory_item_id, location_id)
);

CREATE TABLE sync_runs (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  shop_id uuid NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
  kind text NOT NULL CHECK (kind IN ('full', 'incremental')),
  status text NOT NULL DEFAULT 'queued'
    CHECK (status IN ('queued', 'running', 'completed', 'failed', 'canceled')),
  phase text NOT NULL DEFAULT 'core',
  bulk_operations jsonb NOT NULL DEFAULT '{}',
  counts jsonb NOT NULL DEFAULT '{}',
  bytes bigint NOT NULL DEFAULT 0,
  bad_lines bigint NOT NULL DEFAULT 0,
  attempts integer NOT NULL DEFAULT 0,
  error text,
  updated_since timestamptz,
  started_at timestamptz,
  finished_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_runs_shop_created_idx ON sync_runs (shop_id, created_at DESC);
-- One full sync at a time per shop.
CREATE UNIQUE INDEX sync_runs_one_active_full ON sync_runs (shop_id)
  WHERE kind = 'full' AND status IN ('queued', 'running');

CREATE TABLE sync_quarantine (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  shop_id uuid NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
  run_id uuid NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
  phase text NOT NULL,
  line_no bigint NOT NULL,
  byte_offset bigint NOT NULL,
  reason text NOT NULL,
  line text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT sync_quarantine_run_line_key UNIQUE (run_id, phase, line_no)
);
CREATE INDEX sync_quarantine_shop_idx ON sync_quarantine (shop_id);

-- Every attempt of a sync run, with its holder, its heartbeat and how it ended.
CREATE TABLE sync_run_attempts (
  shop_id uuid NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
  run_id uuid NOT NULL REFERENCES sync_runs (id) ON DELETE CASCADE,
  attempt integer NOT NULL CHECK (attempt > 0),
  -- Who runs it: a worker's id (host:pid:suffix) or the CLI's host:pid; and the queue job, if any.
  holder text NOT NULL CHECK (length(holder) <= 200),
  job_id text CHECK (length(job_id) <= 200),
  started_at timestamptz NOT NULL DEFAULT now(),
  -- Renewed while the attempt runs; past lease_until its holder stopped (killed, hung, cut off).
  heartbeat_at timestamptz NOT NULL DEFAULT now(),
  lease_until timestamptz NOT NULL,
  ended_at timestamptz,
  outcome text CHECK (outcome IN
    ('completed', 'failed', 'error', 'deferred', 'interrupted', 'abandoned')),
  error text,
  PRIMARY KEY (run_id, attempt),
  CHECK ((ended_at IS NULL) = (outcome IS NULL))
);
CREATE INDEX sync_run_attempts_shop_idx ON sync_run_attempts (shop_id);

CREATE TABLE webhook_inbox (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  shop_id uuid NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
  webhook_id text NOT NULL,
  event_id text,
  topic text NOT NULL,
  api_version text,
  triggered_at timestamptz,
  payload jsonb NOT NULL,
  received_at timestamptz NOT NULL DEFAULT now(),
  processed_at timestamptz,
  CONSTRAINT webhook_inbox_shop_webhook_id_key UNIQUE (shop_id, webhook_id)
);
-- A shop's deliveries not yet applied (a job takes its shop's waiting ones with its own).
CREATE INDEX webhook_inbox_unprocessed ON webhook_inbox (shop_id, id) WHERE processed_at IS NULL;

CREATE TABLE owner_apps (
  shop_id uuid NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
  -- Shopify's numeric API client id of another app installed on the shop: its app-owned
  -- metafields live in namespaces `app--{api_client_id}` and `app--{api_client_id}--*`.
  api_client_id bigint NOT NULL CHECK (api_client_id > 0),
  name text NOT NULL DEFAULT '' CHECK (length(name) <= 200),
  -- That app's Admin API token for this shop, sealed by the vault; NULL: known but not readable,
  -- so its metafields are reported unavailable and what is stored of them is kept.
  access_token_ct bytea,
  access_token_key_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (shop_id, api_client_id),
  CHECK ((access_token_ct IS NULL) = (access_token_key_id IS NULL))
);

-- Jobs written in the caller's transaction and relayed to Redis; not a tenant table because the
-- relay drains every shop's rows, and it holds job arguments only, never catalog data or secrets.
CREATE TABLE outbox (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  queue text NOT NULL,
  job_id text NOT NULL,
  group_id text NOT NULL,
  task text NOT NULL,
  payload jsonb NOT NULL,
  options jsonb NOT NULL DEFAULT '{}',
  created_at timestamptz NOT NULL DEFAULT now()
);

-- What became of each purge of a shop's data (done or skipped, and why). No foreign key to shops:
-- the record outlives the shop it names. Under row-level security like the tenant tables (the
-- application reads and writes the current shop's records only), but insert-only for the
-- application, and not forced, so the owner (an operator) reads them all.
CREATE TABLE purge_audit (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  shop_id uuid NOT NULL,
  shop_domain text NOT NULL,
  requested_by text NOT NULL CHECK (requested_by IN ('shop/redact', 'scheduled')),
  -- The shop/redact delivery: its X-Shopify-Webhook-Id and the shop its payload names.
  webhook_id text,
  payload_shop_domain text,
  payload_shop_id bigint,
  outcome text NOT NULL CHECK (outcome IN ('purged', 'skipped')),
  reason text NOT NULL,
  uninstalled_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX purge_audit_shop_idx ON purge_audit (shop_id, created_at);

-- Row-level security: every tenant table sees only the current shop's rows, for reads and writes,
-- and FORCE makes it hold for the table owner too.
DO $body$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['products', 'variants', 'inventory_levels', 'sync_runs',
                           'sync_quarantine', 'webhook_inbox', 'owner_apps',
                           'sync_run_attempts'] LOOP
    EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
    EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
    EXECUTE format(
      'CREATE POLICY tenant_isolation ON %I USING (shop_id = app_current_shop_id()) '
      'WITH CHECK (shop_id = app_current_shop_id())', t);
  END LOOP;
END
$body$;

-- Catalog rows check their shop once per statement instead of a foreign key's trigger per row.
-- Every shop the statement's new rows name exists, and stays until this transaction ends (locked
-- FOR KEY SHARE, as a foreign key's check locks it): a purge waits for the rows, then takes them.
CREATE FUNCTION app_check_catalog_shops() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  wanted uuid[];
  locked integer;
BEGIN
  -- Hashed, not sorted: a batch brings tens of thousands of rows, almost always of one shop.
  SELECT array_agg(d.shop_id) INTO wanted FROM (SELECT DISTINCT shop_id FROM new_rows) d;
  IF wanted IS NULL THEN
    RETURN NULL;
  END IF;
  PERFORM 1 FROM shops WHERE id = ANY (wanted) FOR KEY SHARE;
  GET DIAGNOSTICS locked = ROW_COUNT;
  IF locked < cardinality(wanted) THEN
    RAISE EXCEPTION 'insert into % names a shop that does not exist', TG_TABLE_NAME
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END
$$;

-- A catalog row never moves to another shop (what the foreign key checked on update). Fires
-- only for updates that name shop_id, after row-level security has had its say.
CREATE FUNCTION app_keep_catalog_shop() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF NEW.shop_id IS DISTINCT FROM OLD.shop_id THEN
    RAISE EXCEPTION 'shop_id of a % row cannot change', TG_TABLE_NAME
      USING ERRCODE = 'foreign_key_violation';
  END IF;
  RETURN NULL;
END
$$;

-- What ON DELETE CASCADE did: a deleted shop takes its catalog with it. The tenant is set for
-- the deletes (row-level security is forced on these tables), then set back to the caller's.
CREATE FUNCTION app_delete_shop_catalog() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  caller text := coalesce(current_setting('app.current_shop_id', true), '');
BEGIN
  PERFORM set_config('app.current_shop_id', OLD.id::text, true);
  DELETE FROM inventory_levels WHERE shop_id = OLD.id;
  DELETE FROM variants WHERE shop_id = OLD.id;
  DELETE FROM products WHERE shop_id = OLD.id;
  PERFORM set_config('app.current_shop_id', caller, true);
  RETURN NULL;
END
$$;

DO $body$
DECLARE t text;
BEGIN
  FOREACH t IN ARRAY ARRAY['products', 'variants', 'inventory_levels'] LOOP
    EXECUTE format(
      'CREATE TRIGGER catalog_shop_exists AFTER INSERT ON %I REFERENCING NEW TABLE AS new_rows '
      'FOR EACH STATEMENT EXECUTE FUNCTION app_check_catalog_shops()', t);
    EXECUTE format(
      'CREATE TRIGGER catalog_shop_fixed AFTER UPDATE OF shop_id ON %I '
      'FOR EACH ROW EXECUTE FUNCTION app_keep_catalog_shop()', t);
  END LOOP;
END
$body$;
CREATE TRIGGER shop_catalog_deleted AFTER DELETE ON shops
  FOR EACH ROW EXECUTE FUNCTION app_delete_shop_catalog();

-- `shops`: every row readable without its secrets (webhook ingress, the CLI and the periodic
-- sweeps look shops up by domain or status), but written only in the shop's own tenant scope, and
-- deleted (the purge) only once uninstalled. Not forced: the owner, and the functions below that
-- run as the owner, see every row.
ALTER TABLE shops ENABLE ROW LEVEL SECURITY;
CREATE POLICY shops_read ON shops FOR SELECT USING (true);
CREATE POLICY shops_write_own ON shops FOR UPDATE USING (id = app_current_shop_id())
  WITH CHECK (id = app_current_shop_id());
CREATE POLICY shops_purge_own ON shops FOR DELETE
  USING (id = app_current_shop_id() AND status = 'uninstalled');

-- The install: the shop's row by domain, created on first install, locked either way.
CREATE FUNCTION app_ensure_shop(p_domain text, OUT shop_id uuid, OUT created boolean)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
  LOOP
    INSERT INTO shops (domain) VALUES (p_domain) ON CONFLICT (domain) DO NOTHING
      RETURNING id INTO shop_id;
    IF FOUND THEN
      created := true;
      RETURN;
    END IF;
    SELECT s.id INTO shop_id FROM shops s WHERE s.domain = p_domain FOR UPDATE;
    IF FOUND THEN
      created := false;
      RETURN;
    END IF;
    -- Purged between the two statements: insert again.
  END LOOP;
END
$$;

-- The sealed tokens of the shop, in that shop's own tenant scope only.
CREATE FUNCTION app_shop_sealed_tokens(p_shop_id uuid, OUT access_token_ct bytea,
                                       OUT refresh_token_ct bytea)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT s.access_token_ct, s.refresh_token_ct FROM shops s
  WHERE s.id = p_shop_id AND s.id = app_current_shop_id()
$$;

-- API-key authentication: the shop whose key hashes to the digest (the hashes stay unreadable).
CREATE FUNCTION app_shop_by_api_key(p_digest bytea, OUT id uuid, OUT domain text, OUT status text)
RETURNS SETOF record
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
  SELECT s.id, s.domain, s.status FROM shops s WHERE s.api_key_hash = p_digest
$$;

-- purge_audit: the current shop's records only, insert-only for the application.
ALTER TABLE purge_audit ENABLE ROW LEVEL SECURITY;
CREATE POLICY purge_audit_read ON purge_audit FOR SELECT USING (shop_id = app_current_shop_id());
CREATE POLICY purge_audit_write ON purge_audit FOR INSERT
  WITH CHECK (shop_id = app_current_shop_id());

-- The application role's rights, table by table and column by column.
GRANT USAGE ON SCHEMA public TO {app_role};
GRANT SELECT (id, domain, status, scopes, access_token_key_id, access_token_expires_at,
              refresh_token_key_id, refresh_token_expires_at, plan_name, api_bucket_size,
              api_restore_rate, installed_at, uninstalled_at, purge_after, last_full_sync_at,
              last_incremental_sync_at, created_at, updated_at, shopify_shop_id)
  ON shops TO {app_role};
GRANT UPDATE (status, scopes, access_token_ct, access_token_key_id, access_token_expires_at,
              refresh_token_ct, refresh_token_key_id, refresh_token_expires_at, api_key_hash,
              plan_name, api_bucket_size, api_restore_rate, installed_at, uninstalled_at,
              purge_after, last_full_sync_at, last_incremental_sync_at, updated_at,
              shopify_shop_id)
  ON shops TO {app_role};
GRANT DELETE ON shops TO {app_role};
GRANT SELECT, INSERT, UPDATE, DELETE ON products, variants, inventory_levels, sync_runs,
  sync_run_attempts, sync_quarantine, webhook_inbox, owner_apps, outbox TO {app_role};
GRANT SELECT, INSERT ON purge_audit TO {app_role};
GRANT USAGE, SELECT ON SEQUENCE sync_quarantine_id_seq, webhook_inbox_id_seq, outbox_id_seq
  TO {app_role};
GRANT EXECUTE ON FUNCTION app_current_shop_id() TO {app_role};
GRANT EXECUTE ON FUNCTION app_batch_uuidv7(bigint, bigint, bigint) TO {app_role};
GRANT EXECUTE ON FUNCTION app_kept_metafields(jsonb, text[]) TO {app_role};
GRANT EXECUTE ON FUNCTION app_newer_wins(timestamptz, timestamptz, timestamptz) TO {app_role};
-- These run as the owner: only the application role may call them (the trigger functions only
-- as triggers).
REVOKE ALL ON FUNCTION app_check_catalog_shops(), app_keep_catalog_shop(),
  app_delete_shop_catalog(), app_ensure_shop(text), app_shop_sealed_tokens(uuid),
  app_shop_by_api_key(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_ensure_shop(text), app_shop_sealed_tokens(uuid),
  app_shop_by_api_key(bytea) TO {app_role};

-- The application role may ANALYZE the catalog tables after a bulk load (PostgreSQL 17+).
DO $body$
BEGIN
  IF current_setting('server_version_num')::int >= 170000 THEN
    EXECUTE 'GRANT MAINTAIN ON products, variants, inventory_levels TO {app_role}';
  END IF;
END
$body$;

-- PostgreSQL 16 has no MAINTAIN privilege (0002), and there the application role's
-- ANALYZE of the catalog tables is skipped with only a warning, so a first sync of a million rows
-- left the planner with empty-table statistics until autovacuum came round. On such servers this
-- function, owned by the owner role, runs the ANALYZE for it: only of the three catalog tables.
DO $body$
BEGIN
  IF current_setting('server_version_num')::int < 170000 THEN
    EXECUTE $fn$
      CREATE FUNCTION app_analyze_catalog(p_tables text[]) RETURNS void
      LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $f$
      DECLARE
        t text;
      BEGIN
        FOREACH t IN ARRAY p_tables LOOP
          IF t NOT IN ('products', 'variants', 'inventory_levels') THEN
            RAISE EXCEPTION 'app_analyze_catalog: % is not a catalog table', t
              USING ERRCODE = 'insufficient_privilege';
          END IF;
          EXECUTE format('ANALYZE %I', t);
        END LOOP;
      END
      $f$
    $fn$;
    REVOKE ALL ON FUNCTION app_analyze_catalog(text[]) FROM PUBLIC;
    GRANT EXECUTE ON FUNCTION app_analyze_catalog(text[]) TO {app_role};
  END IF;
END
$body$;


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
  finished_at timestamptz,
  -- Runs through the OpenAI Batch API (migration 0012): the queue job that owns the run, when
  -- its requests were all written, products never embedded after every attempt.
  job_id text,
  submitted_at timestamptz,
  failed integer NOT NULL DEFAULT 0 CHECK (failed >= 0)
);
CREATE INDEX embedding_runs_shop_started_idx ON embedding_runs (shop_id, started_at DESC);
CREATE UNIQUE INDEX embedding_runs_job_idx ON embedding_runs (shop_id, job_id)
  WHERE job_id IS NOT NULL;

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
-- vector cast to its dimension; m = 32, ef_construction = 400 (measured: docs/search.md).
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
    'WITH (m = 32, ef_construction = 400) WHERE model = %L AND dimension = %s',
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

-- The operator console (migration 0009).
-- Operators and their sessions are not tenant data (an operator sees every shop), so these tables
-- have no row-level security; the audit log is append-only for the application role.
--
-- The console reads across shops without switching RLS off and without depending on the
-- application role's table rights: every read goes through a console_* function below, SECURITY
-- DEFINER and owned by the owner role (whose reads FORCE ROW LEVEL SECURITY still scopes). Each
-- function sets the tenant to one shop at a time (and puts the caller's back on return), and
-- refuses to run unless the transaction carries a live operator session (console_operator()):
-- the application role alone, without an operator's cookie, reads nothing through them.
-- Tokens never leave: the functions return whether a token exists, never the token.

CREATE TABLE console_operators (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  username text NOT NULL UNIQUE CHECK (username ~ '^[a-z0-9][a-z0-9._@-]{0,63}$'),
  password_hash text NOT NULL CHECK (password_hash LIKE '$argon2%'),
  disabled_at timestamptz,
  last_login_at timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

-- The cookie carries a random token; only its SHA-256 is stored, so a copy of this table opens
-- no session.
CREATE TABLE console_sessions (
  token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
  operator_id uuid NOT NULL REFERENCES console_operators (id) ON DELETE CASCADE,
  csrf_token text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX console_sessions_operator_idx ON console_sessions (operator_id);
CREATE INDEX console_sessions_expires_idx ON console_sessions (expires_at);

CREATE TABLE console_audit (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  operator_id uuid REFERENCES console_operators (id) ON DELETE SET NULL,
  username text NOT NULL,
  action text NOT NULL,
  target text NOT NULL DEFAULT '',
  detail jsonb NOT NULL DEFAULT '{}',
  remote_addr text,
  at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX console_audit_at_idx ON console_audit (at DESC);

GRANT SELECT, INSERT, UPDATE ON console_operators TO {app_role};
GRANT SELECT, INSERT, DELETE ON console_sessions TO {app_role};
GRANT SELECT, INSERT ON console_audit TO {app_role};
GRANT USAGE, SELECT ON SEQUENCE console_audit_id_seq TO {app_role};

-- The operator of the transaction's session (set by the console as app.console_session, the hex
-- SHA-256 of its cookie token); raises when there is none, or it expired.
CREATE FUNCTION console_operator() RETURNS uuid
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
  op uuid;
BEGIN
  SELECT s.operator_id INTO op
  FROM console_sessions s JOIN console_operators o ON o.id = s.operator_id
  WHERE s.token_hash = decode(NULLIF(current_setting('app.console_session', true), ''), 'hex')
    AND s.expires_at > now() AND o.disabled_at IS NULL;
  IF op IS NULL THEN
    RAISE EXCEPTION 'console: no live operator session' USING ERRCODE = '42501';
  END IF;
  RETURN op;
END
$$;

-- Every shop with its latest run and the figures of its latest completed full run (recorded
-- counts, never a count(*)): one indexed lookup per shop. p_shop: that shop alone.
CREATE FUNCTION console_shops(p_shop uuid DEFAULT NULL) RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
  prev text := current_setting('app.current_shop_id', true);
  s shops%ROWTYPE;
  latest jsonb;
  full_run jsonb;
  apps integer;
BEGIN
  PERFORM console_operator();
  FOR s IN SELECT * FROM shops WHERE p_shop IS NULL OR id = p_shop ORDER BY domain LOOP
    PERFORM set_config('app.current_shop_id', s.id::text, true);
    SELECT jsonb_build_object('id', r.id, 'kind', r.kind, 'status', r.status, 'phase', r.phase,
                              'error', r.error, 'created_at', r.created_at,
                              'finished_at', r.finished_at)
      INTO latest FROM sync_runs r ORDER BY r.created_at DESC LIMIT 1;
    SELECT jsonb_build_object('counts', r.counts, 'finished_at', r.finished_at)
      INTO full_run FROM sync_runs r
      WHERE r.kind = 'full' AND r.status = 'completed' ORDER BY r.created_at DESC LIMIT 1;
    SELECT count(*) INTO apps FROM owner_apps;
    RETURN NEXT jsonb_build_object(
      'id', s.id, 'domain', s.domain, 'status', s.status, 'scopes', to_jsonb(s.scopes),
      'plan_name', s.plan_name, 'api_bucket_size', s.api_bucket_size,
      'api_restore_rate', s.api_restore_rate, 'installed_at', s.installed_at,
      'has_access_token', s.access_token_ct IS NOT NULL,
      'access_token_expires_at', s.access_token_expires_at,
      'has_refresh_token', s.refresh_token_ct IS NOT NULL,
      'refresh_token_expires_at', s.refresh_token_expires_at,
      'token_updated_at', s.updated_at,
      'last_full_sync_at', s.last_full_sync_at,
      'last_incremental_sync_at', s.last_incremental_sync_at,
      'latest_run', latest, 'last_full_run', full_run, 'owner_apps', apps);
  END LOOP;
  PERFORM set_config('app.current_shop_id', coalesce(prev, ''), true);
END
$$;

-- Shop ids and domains alone, for naming queue groups (one per shop) on the queue pages.
CREATE FUNCTION console_shop_domains() RETURNS TABLE (id uuid, domain text)
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = public, pg_temp AS $$
BEGIN
  PERFORM console_operator();
  RETURN QUERY SELECT s.id, s.domain FROM shops s ORDER BY s.domain;
END
$$;

CREATE FUNCTION console_runs(p_shop uuid, p_limit integer) RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
  prev text := current_setting('app.current_shop_id', true);
BEGIN
  PERFORM console_operator();
  PERFORM set_config('app.current_shop_id', p_shop::text, true);
  RETURN QUERY SELECT to_jsonb(r) FROM sync_runs r
    ORDER BY r.created_at DESC LIMIT least(greatest(p_limit, 1), 200);
  PERFORM set_config('app.current_shop_id', coalesce(prev, ''), true);
END
$$;

CREATE FUNCTION console_run(p_shop uuid, p_run uuid) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
  prev text := current_setting('app.current_shop_id', true);
  found jsonb;
BEGIN
  PERFORM console_operator();
  PERFORM set_config('app.current_shop_id', p_shop::text, true);
  SELECT to_jsonb(r) INTO found FROM sync_runs r WHERE r.id = p_run;
  PERFORM set_config('app.current_shop_id', coalesce(prev, ''), true);
  RETURN found;
END
$$;

CREATE FUNCTION console_quarantine(p_shop uuid, p_run uuid, p_limit integer) RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
  prev text := current_setting('app.current_shop_id', true);
BEGIN
  PERFORM console_operator();
  PERFORM set_config('app.current_shop_id', p_shop::text, true);
  RETURN QUERY SELECT jsonb_build_object('phase', q.phase, 'line_no', q.line_no,
      'byte_offset', q.byte_offset, 'reason', q.reason, 'line', left(q.line, 500),
      'created_at', q.created_at)
    FROM sync_quarantine q WHERE q.run_id = p_run
    ORDER BY q.phase, q.line_no LIMIT least(greatest(p_limit, 1), 500);
  PERFORM set_config('app.current_shop_id', coalesce(prev, ''), true);
END
$$;

-- Deliveries without their payloads (customer data stays in the inbox).
CREATE FUNCTION console_webhooks(p_shop uuid, p_limit integer) RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
  prev text := current_setting('app.current_shop_id', true);
BEGIN
  PERFORM console_operator();
  PERFORM set_config('app.current_shop_id', p_shop::text, true);
  RETURN QUERY SELECT jsonb_build_object('id', w.id, 'topic', w.topic,
      'webhook_id', w.webhook_id, 'api_version', w.api_version,
      'triggered_at', w.triggered_at, 'received_at', w.received_at,
      'processed_at', w.processed_at)
    FROM webhook_inbox w ORDER BY w.id DESC LIMIT least(greatest(p_limit, 1), 200);
  PERFORM set_config('app.current_shop_id', coalesce(prev, ''), true);
END
$$;

CREATE FUNCTION console_owner_apps(p_shop uuid) RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
  prev text := current_setting('app.current_shop_id', true);
BEGIN
  PERFORM console_operator();
  PERFORM set_config('app.current_shop_id', p_shop::text, true);
  RETURN QUERY SELECT jsonb_build_object('api_client_id', a.api_client_id, 'name', a.name,
      'has_token', a.access_token_ct IS NOT NULL, 'created_at', a.created_at,
      'updated_at', a.updated_at)
    FROM owner_apps a ORDER BY a.api_client_id;
  PERFORM set_config('app.current_shop_id', coalesce(prev, ''), true);
END
$$;

-- One page of a shop's products by Shopify id (keyset on the (shop_id, shopify_id) index).
-- Filters: status and vendor exactly, title by case-insensitive substring. A page looks at no
-- more than p_window products past p_after, so a filter that matches little costs a bounded scan,
-- never the whole catalog: when the window ran out before the page filled, a last element
-- {"scanned_to": id} says where the next page should carry on searching.
CREATE FUNCTION console_products(p_shop uuid, p_after bigint, p_limit integer, p_status text,
                                 p_vendor text, p_title text, p_window integer DEFAULT 10000)
RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
  prev text := current_setting('app.current_shop_id', true);
  n integer := least(greatest(p_limit, 1), 201);
  w integer := least(greatest(p_window, 1), 100000);
  found integer;
  window_end bigint;
  window_rows integer;
BEGIN
  PERFORM console_operator();
  PERFORM set_config('app.current_shop_id', p_shop::text, true);
  RETURN QUERY SELECT jsonb_build_object('shopify_id', p.shopify_id, 'handle', p.handle,
      'title', p.title, 'vendor', p.vendor, 'product_type', p.product_type,
      'status', p.status, 'tags', to_jsonb(p.tags), 'shopify_updated_at', p.shopify_updated_at,
      'synced_at', p.synced_at, 'deleted_at', p.deleted_at)
    FROM (SELECT * FROM products x
          WHERE x.shop_id = p_shop AND x.shopify_id > coalesce(p_after, 0)
          ORDER BY x.shopify_id LIMIT w) p
    WHERE (p_status IS NULL OR p.status = p_status)
      AND (p_vendor IS NULL OR p.vendor = p_vendor)
      AND (p_title IS NULL OR p.title ILIKE '%' || replace(replace(replace(p_title, '\', '\\'),
                                                   '%', '\%'), '_', '\_') || '%')
    ORDER BY p.shopify_id LIMIT n;
  GET DIAGNOSTICS found = ROW_COUNT;
  IF found < n THEN
    SELECT max(x.shopify_id), count(*) INTO window_end, window_rows
    FROM (SELECT shopify_id FROM products
          WHERE shop_id = p_shop AND shopify_id > coalesce(p_after, 0)
          ORDER BY shopify_id LIMIT w) x;
    IF window_rows = w THEN
      RETURN NEXT jsonb_build_object('scanned_to', window_end);
    END IF;
  END IF;
  PERFORM set_config('app.current_shop_id', coalesce(prev, ''), true);
END
$$;

CREATE FUNCTION console_product(p_shop uuid, p_shopify_id bigint) RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
  prev text := current_setting('app.current_shop_id', true);
  found jsonb;
BEGIN
  PERFORM console_operator();
  PERFORM set_config('app.current_shop_id', p_shop::text, true);
  SELECT to_jsonb(p) - 'shop_id' || jsonb_build_object(
      'variants', coalesce((
        SELECT jsonb_agg(to_jsonb(v) - 'shop_id' || jsonb_build_object('inventory', coalesce((
            SELECT jsonb_agg(jsonb_build_object('location_id', l.location_id,
                                                'available', l.available,
                                                'shopify_updated_at', l.shopify_updated_at)
                             ORDER BY l.location_id)
            FROM inventory_levels l
            WHERE l.shop_id = p_shop AND l.inventory_item_id = v.inventory_item_id), '[]'))
          ORDER BY v.position, v.shopify_id)
        FROM variants v WHERE v.shop_id = p_shop AND v.product_shopify_id = p.shopify_id), '[]'))
    INTO found
  FROM products p WHERE p.shop_id = p_shop AND p.shopify_id = p_shopify_id;
  PERFORM set_config('app.current_shop_id', coalesce(prev, ''), true);
  RETURN found;
END
$$;

-- Parity checks asked for from the console: a sample of stored products compared with Shopify by
-- the `sync.parity` task, which records what it found here (a tenant table like the runs).
CREATE TABLE parity_checks (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  shop_id uuid NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
  status text NOT NULL DEFAULT 'queued'
    CHECK (status IN ('queued', 'running', 'matches', 'differs', 'failed')),
  requested_by text NOT NULL DEFAULT '',
  sample integer NOT NULL CHECK (sample BETWEEN 1 AND 10000),
  sampled integer NOT NULL DEFAULT 0,
  compared integer NOT NULL DEFAULT 0,
  difference_count integer NOT NULL DEFAULT 0,
  -- The first differences found (field, stored, shopify), capped by the task.
  differences jsonb NOT NULL DEFAULT '[]',
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  finished_at timestamptz
);
CREATE INDEX parity_checks_shop_created_idx ON parity_checks (shop_id, created_at DESC);
ALTER TABLE parity_checks ENABLE ROW LEVEL SECURITY;
ALTER TABLE parity_checks FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON parity_checks USING (shop_id = app_current_shop_id())
  WITH CHECK (shop_id = app_current_shop_id());
GRANT SELECT, INSERT, UPDATE ON parity_checks TO {app_role};

CREATE FUNCTION console_parity(p_shop uuid, p_limit integer) RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER
SET search_path = public, pg_temp AS $$
DECLARE
  prev text := current_setting('app.current_shop_id', true);
BEGIN
  PERFORM console_operator();
  PERFORM set_config('app.current_shop_id', p_shop::text, true);
  RETURN QUERY SELECT to_jsonb(c) - 'shop_id' FROM parity_checks c
    ORDER BY c.created_at DESC LIMIT least(greatest(p_limit, 1), 50);
  PERFORM set_config('app.current_shop_id', coalesce(prev, ''), true);
END
$$;

DO $body$
DECLARE f text;
BEGIN
  FOREACH f IN ARRAY ARRAY['console_operator()', 'console_shops(uuid)', 'console_shop_domains()', 'console_runs(uuid, integer)',
      'console_run(uuid, uuid)', 'console_quarantine(uuid, uuid, integer)',
      'console_webhooks(uuid, integer)', 'console_owner_apps(uuid)',
      'console_products(uuid, bigint, integer, text, text, text, integer)',
      'console_product(uuid, bigint)', 'console_parity(uuid, integer)'] LOOP
    EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f);
    EXECUTE format('GRANT EXECUTE ON FUNCTION %s TO {app_role}', f);
  END LOOP;
END
$body$;

-- Embedding runs through the OpenAI Batch API (migration 0012).
-- One OpenAI batch (one input file). `submitting` until its file is uploaded and the batch
-- created; then the API's status as last polled; `applied_at` once its output and error files
-- were read and stored.
CREATE TABLE embedding_batches (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  shop_id uuid NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
  run_id uuid NOT NULL REFERENCES embedding_runs (id) ON DELETE CASCADE,
  status text NOT NULL DEFAULT 'submitting' CHECK (status IN ('submitting', 'validating',
    'in_progress', 'finalizing', 'completed', 'failed', 'expired', 'cancelling', 'cancelled')),
  requests integer NOT NULL CHECK (requests > 0),
  input_file_id text,
  openai_batch_id text UNIQUE,
  output_file_id text,
  error_file_id text,
  error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  polled_at timestamptz,
  applied_at timestamptz
);
CREATE INDEX embedding_batches_run_idx ON embedding_batches (run_id) WHERE applied_at IS NULL;

-- One embeddings request; its id is the request's `custom_id`. `queued` waits for a batch (the
-- first time, or again after a failure or an expiry), `submitted` is in one, `done` is stored,
-- `failed` ran out of attempts.
CREATE TABLE embedding_requests (
  id uuid PRIMARY KEY DEFAULT uuidv7(),
  shop_id uuid NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
  run_id uuid NOT NULL REFERENCES embedding_runs (id) ON DELETE CASCADE,
  batch_id uuid REFERENCES embedding_batches (id) ON DELETE SET NULL,
  state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'submitted', 'done', 'failed')),
  attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  product_ids bigint[] NOT NULL CHECK (cardinality(product_ids) BETWEEN 1 AND 2048),
  content_hashes bytea[] NOT NULL,
  inputs text[] NOT NULL,
  error text,
  CHECK (cardinality(content_hashes) = cardinality(product_ids)
    AND cardinality(inputs) = cardinality(product_ids))
);
CREATE INDEX embedding_requests_run_state_idx ON embedding_requests (run_id, state);
CREATE INDEX embedding_requests_batch_idx ON embedding_requests (batch_id);

SELECT app_tenant_isolation(t) FROM unnest(ARRAY['embedding_batches', 'embedding_requests']) AS t;
GRANT SELECT, INSERT, UPDATE, DELETE ON embedding_batches, embedding_requests TO {app_role};

-- Migration 0014: products that webhooks changed, waiting for the shop's next embedding job.
CREATE TABLE embedding_pending (
  shop_id uuid NOT NULL REFERENCES shops (id) ON DELETE CASCADE,
  product_shopify_id bigint NOT NULL,
  marked_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (shop_id, product_shopify_id)
);

SELECT app_tenant_isolation('embedding_pending');
GRANT SELECT, INSERT, UPDATE, DELETE ON embedding_pending TO {app_role};
