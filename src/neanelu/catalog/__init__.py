"""The catalog domain: products, variants, inventory levels as mirrored from Shopify."""
