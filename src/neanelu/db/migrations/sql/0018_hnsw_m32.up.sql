-- HNSW indexes of own partitions are built with m = 32 and ef_construction = 400 (were 24 and
-- 200). Measured (docs/search.md, `make bench-search`, 1M embedding-shaped vectors over 20 shops),
-- 8,000 stored vectors of the 277,960-vector shop searched by themselves: found in 0.9931-0.9962
-- of them at m 24 / 200 (builds near the reach check's 0.995 floor, built again), 0.9971-0.9988 at
-- m 24 / 400, 0.9992 at m 32 / 400. And at m = 24, whatever the ef_construction, one query of that
-- shop found none of its true 10 at every ef_search from 40 to 400: its category's products sit at
-- one distance from every other category's, and the descent ended in another. At m = 32 it found
-- all 10 at 100; from nothing every shop read 1.000 and reached 0.9985-1.0000 with no rebuild. The
-- cost: a build ~1.25x as long as m 24 / 400, the largest shop's p95 4.7-5.1 ms against 3.8.
-- Indexes that exist keep their build until dropped and rebuilt.
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
