-- HNSW indexes of own partitions are built with m = 24 (was 16; ef_construction stays 200).
-- Measured (docs/search.md, `make bench-search`, 1M embedding-shaped vectors over 20 shops): a fresh
-- m = 16 build of the 277,960-vector shop found 0.978 of the true top 10 at every ef_search from
-- 100 to 400 (0.998 only at 1,000; the build is parallel and not the same twice: an earlier one of
-- the same vectors read 0.998 at 100), m = 24 found 0.998 at 40 and 1.000 at 100. Indexes that exist
-- keep their build until dropped and rebuilt (`app_embeddings_own_partition` rebuilds a missing one).
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
    'WITH (m = 24, ef_construction = 200) WHERE model = %L AND dimension = %s',
    idx, p_partition, p_dimension, p_model, p_dimension);
  RETURN idx;
END
$$;
