"""Semantic search, the lower layer: embedding providers, vector and text stores, hybrid queries.

No domain code: callers hand in texts, ids and filters; the domains decide what a product's text is.
"""
