DROP TABLE embedding_requests;
DROP TABLE embedding_batches;
DROP INDEX embedding_runs_job_idx;
ALTER TABLE embedding_runs DROP COLUMN failed;
ALTER TABLE embedding_runs DROP COLUMN submitted_at;
ALTER TABLE embedding_runs DROP COLUMN job_id;
