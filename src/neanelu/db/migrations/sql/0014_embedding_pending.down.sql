DROP TABLE embedding_pending;
