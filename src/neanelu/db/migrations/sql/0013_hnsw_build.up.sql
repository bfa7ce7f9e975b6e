-- HNSW indexes of own partitions are built with ef_construction = 200 (was pgvector's default, 64).
-- Measured (docs/search.md, bench-search's embedding-shaped vectors): on a 69k-vector shop m = 16,
-- ef_construction = 64 found 0.970 of the true top 10 at every ef_search from 40 to 400 (points the
-- graph cannot reach: more ef_search does not help), ef_construction = 200 found 1.000 at all of
-- them; at 1M vectors over 20 shops the old build left the worst shop at 0.958. Indexes that exist
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
    'WITH (m = 16, ef_construction = 200) WHERE model = %L AND dimension = %s',
    idx, p_partition, p_dimension, p_model, p_dimension);
  RETURN idx;
END
$$;
