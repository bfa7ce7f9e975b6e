"""The catalog's semantic search: what a product's text is, the embedding jobs that keep vectors
and full-text documents current, and the hybrid search behind `/api/search` and `neanelu search`."""
