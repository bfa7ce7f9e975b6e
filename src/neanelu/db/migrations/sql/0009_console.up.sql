-- Migration 0009: the operator console at /admin.
--
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
