"""neanelu: a self-hosted backend for very large Shopify catalogs."""
