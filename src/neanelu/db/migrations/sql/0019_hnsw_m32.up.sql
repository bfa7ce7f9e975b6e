-- HNSW indexes of own partitions are built with m = 32 (was 24; ef_construction stays 400).
-- Measured (docs/search.md, `make bench-search`, 1M embedding-shaped vectors over 20 shops): with
-- m = 24 one query of the 277,960-vector shop found none of its true 10 at every ef_search from 40
-- to 400, whatever the build (ef_construction 200 or 400, serial or parallel): its category's
-- products sit at one distance from every other category's, and the descent ended in another.
-- With m = 32 it found all 10 at 100, the shop read 1.000 and reached 0.9982-0.9992 of its own
-- vectors; the cost: the build 331 s against 264 s, that shop's p95 5.10 ms against 3.79 (every
-- shop's p95 3.57 ms). Indexes that exist keep their build until dropped and rebuilt.
CREATE OR REPLACE FUNCTION app_embeddings_index_model(
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
