-- Migration 0007: every attempt of a sync run, with its holder, its heartbeat and how it ended, so
-- a retried run keeps each attempt's error (not only the last) and `neanelu sync status` can tell
-- a live attempt from one whose worker was killed.
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

ALTER TABLE sync_run_attempts ENABLE ROW LEVEL SECURITY;
ALTER TABLE sync_run_attempts FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON sync_run_attempts USING (shop_id = app_current_shop_id())
  WITH CHECK (shop_id = app_current_shop_id());
GRANT SELECT, INSERT, UPDATE, DELETE ON sync_run_attempts TO {app_role};
