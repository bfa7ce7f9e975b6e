-- HNSW indexes of own partitions are built with ef_construction = 400 (was 200; m stays 24).
-- Measured (docs/search.md, 1M embedding-shaped vectors over 20 shops): searched by itself, a
-- stored vector of the 277,960-vector shop was found in 0.9931-0.9962 of samples of builds at 200
-- (so ~1,000-1,900 of its products out of every search's reach, and builds near the reach check's
-- 0.995 floor built again), 0.9971-0.9988 at 400; the 138,976-vector shop 0.9962-0.9985 at 200, 0.9995 at
-- 400. A build at 400 took ~1.34x as long. Indexes that exist keep their build until dropped and
-- rebuilt (`neanelu search-partition` rebuilds one below the floor).
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
    'WITH (m = 24, ef_construction = 400) WHERE model = %L AND dimension = %s',
    idx, p_partition, p_dimension, p_model, p_dimension);
  RETURN idx;
END
$$;
