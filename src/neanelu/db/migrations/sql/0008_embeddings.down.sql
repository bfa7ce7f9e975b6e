DROP FUNCTION app_embeddings_own_partition(uuid, text);
DROP FUNCTION app_embeddings_index_model(text, text, integer, text);
DROP FUNCTION app_tenant_isolation(text);
DROP TABLE embedding_runs;
DROP TABLE search_documents;
-- Dropping the parent drops every shop's own partition with it.
DROP TABLE embeddings;
DROP TABLE search_settings;
