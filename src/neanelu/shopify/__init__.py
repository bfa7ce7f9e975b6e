"""The Shopify client: OAuth, HMAC, Admin GraphQL with a cost budget, bulk operations. No database."""
