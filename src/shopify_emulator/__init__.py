"""A Shopify stand-in speaking HTTP only."""
