-- Migration 0004: other apps' tokens per shop, for their app-owned metafields (visible only to
-- the owning app), and what a full sync keeps of an owner app it could not read.
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

ALTER TABLE owner_apps ENABLE ROW LEVEL SECURITY;
ALTER TABLE owner_apps FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON owner_apps USING (shop_id = app_current_shop_id())
  WITH CHECK (shop_id = app_current_shop_id());
GRANT SELECT, INSERT, UPDATE, DELETE ON owner_apps TO {app_role};

-- The members of a metafields object whose keys (`namespace.key`) match one of the LIKE patterns:
-- what a full sync keeps of owner apps it could not read, instead of replacing them with nothing.
CREATE FUNCTION app_kept_metafields(metafields jsonb, patterns text[]) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
  SELECT CASE WHEN cardinality(patterns) = 0 THEN '{}'::jsonb ELSE
    (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}'::jsonb)
     FROM jsonb_each(metafields) AS e WHERE e.key LIKE ANY (patterns)) END
$$;

GRANT EXECUTE ON FUNCTION app_kept_metafields(jsonb, text[]) TO {app_role};
