-- Migration 0012: embedding runs through the OpenAI Batch API. A run's changed products become
-- requests (up to 2,048 inputs each, their texts and hashes kept for a resubmission), packed into
-- batches (one OpenAI batch each); the job that owns the run records them here and polls them
-- later instead of waiting on the worker.

-- The queue job that owns a run (a deferred job finds its run again by it), when the run's
-- requests were all written, and how many products the API never embedded after every attempt.
ALTER TABLE embedding_runs ADD COLUMN job_id text;
ALTER TABLE embedding_runs ADD COLUMN submitted_at timestamptz;
ALTER TABLE embedding_runs ADD COLUMN failed integer NOT NULL DEFAULT 0 CHECK (failed >= 0);
CREATE UNIQUE INDEX embedding_runs_job_idx ON embedding_runs (shop_id, job_id)
  WHERE job_id IS NOT NULL;

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
