-- Shopify never brings a deleted product back under the same id, so a deletion always applies.
-- Its time joins the row's version, so every version seen so far stays older than it; a version
-- that claims to be newer is checked against Shopify before it may revive the row.
INSERT INTO products AS p (shop_id, shopify_id, shopify_updated_at, deleted_at)
VALUES (%(shop_id)s, %(shopify_id)s, %(at)s, %(at)s)
ON CONFLICT (shop_id, shopify_id) DO UPDATE SET
  deleted_at = coalesce(p.deleted_at, excluded.deleted_at),
  shopify_updated_at = greatest(p.shopify_updated_at, excluded.shopify_updated_at),
  synced_at = now()
RETURNING 1
